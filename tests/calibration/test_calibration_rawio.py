"""calibration.read_raw: metadata from both ISO locations, CFA/black mapping, DNG sanity checks, bad files."""

import struct

import numpy as np
import pytest

from calibration import NotSensorRawError, RawReadError, read_raw
from isp_sim.dng import SHORT, TAG_LINEARIZATION_TABLE, TAG_OPCODE_LIST2, UNDEFINED, write_dng


def _raw(h=32, w=48, seed=0):
    return np.random.default_rng(seed).integers(60, 1000, size=(h, w)).astype(np.uint16)


@pytest.mark.parametrize("loc", ["exif", "ifd0", "both"])
def test_iso_and_exposure_from_either_ifd(tmp_path, loc):
    raw = _raw()
    p = write_dng(tmp_path / "a.dng", raw, "RGGB", 64, 1023, iso=1600, exposure_time=1 / 50, iso_location=loc,
                  make="Xiaomi", model="Mi Note 10", noise_profile=[(1e-3, 2e-6)] * 3)
    f = read_raw(p)
    assert f.iso == 1600
    assert f.exposure_time == pytest.approx(0.02)
    assert f.camera == "Xiaomi Mi Note 10"
    assert f.noise_profile == [(1e-3, 2e-6)] * 3
    assert f.data.dtype == np.uint16 and np.array_equal(f.data, raw)
    assert f.white_level == 1023
    if loc == "ifd0":
        assert f.iso_source == "IFD0"  # rawpy reports ISO 0 there


def test_missing_iso_is_none_and_can_be_supplied(tmp_path):
    p = write_dng(tmp_path / "a.dng", _raw(), "RGGB", 64, 1023)
    f = read_raw(p)
    assert f.iso is None and f.exposure_time is None
    assert read_raw(p, iso=400).iso == 400


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_pattern_and_black_order(tmp_path, pattern):
    black = [60.0, 61.0, 62.0, 63.0]  # R, Gr, Gb, B
    p = write_dng(tmp_path / "a.dng", _raw(), pattern, black, 4095, iso=100)
    f = read_raw(p)
    assert f.pattern == pattern
    assert f.black_level.tolist() == black
    assert f.bit_depth == 12


def test_bad_files_name_file_and_reason(tmp_path):
    with pytest.raises(RawReadError, match="no such raw file"):
        read_raw(tmp_path / "missing.dng")
    txt = tmp_path / "notes.dng"
    txt.write_text("this is not a raw file\n" * 10)
    with pytest.raises(RawReadError, match="notes.dng"):
        read_raw(txt)
    p = write_dng(tmp_path / "full.dng", _raw(64, 64), "RGGB", 64, 1023, iso=100)
    data = p.read_bytes()
    trunc = tmp_path / "trunc.dng"
    trunc.write_bytes(data[: len(data) // 3])
    with pytest.raises(RawReadError, match="trunc.dng"):
        read_raw(trunc)


def test_demosaiced_dng_refused(tmp_path):
    p = write_dng(tmp_path / "lin.dng", _raw(), "RGGB", 64, 1023, iso=100, extra_tags={262: (SHORT, [34892])})
    with pytest.raises(NotSensorRawError, match="demosaiced"):
        read_raw(p)


def test_linearization_table(tmp_path):
    curve = (np.sqrt(np.arange(1024) / 1023.0) * 1023).astype(int).tolist()
    p = write_dng(tmp_path / "curve.dng", _raw(), "RGGB", 64, 1023, iso=100,
                  extra_tags={TAG_LINEARIZATION_TABLE: (SHORT, curve)})
    raw = _raw()
    fr = read_raw(p)  # read through the table, as LibRaw does: linear DN, and the notes say so
    assert np.array_equal(fr.data, np.asarray(curve)[raw])
    assert any("LinearizationTable (1024 entries) applied" in n for n in fr.notes)
    bad = write_dng(tmp_path / "bad.dng", _raw(), "RGGB", 64, 1023, iso=100,
                    extra_tags={TAG_LINEARIZATION_TABLE: (SHORT, curve[::-1])})
    with pytest.raises(NotSensorRawError, match="not monotonic"):
        read_raw(bad)
    ident = write_dng(tmp_path / "ident.dng", _raw(), "RGGB", 64, 1023, iso=100,
                      extra_tags={TAG_LINEARIZATION_TABLE: (SHORT, list(range(1024)))})
    assert any("identity" in n for n in read_raw(ident).notes)


def gain_map_opcode_list() -> bytes:
    payload = b"\0" * 76  # a GainMap's fixed header (content irrelevant to the reader)
    return struct.pack(">IIIII", 1, 9, 0x01030000, 1, len(payload)) + payload


def test_gain_map_opcode_is_reported(tmp_path):
    p = write_dng(tmp_path / "gm.dng", _raw(), "RGGB", 64, 1023, iso=100,
                  extra_tags={TAG_OPCODE_LIST2: (UNDEFINED, gain_map_opcode_list())})
    f = read_raw(p)
    assert any("GainMap" in n and "OpcodeList2" in n for n in f.notes)


def test_rgb_tiff_named_nef_is_not_called_a_dng(tmp_path):
    """A film-scanner style RGB TIFF (synthetic, written with tifffile) renamed .nef gets its own message."""
    import tifffile

    p = tmp_path / "scan.nef"
    tifffile.imwrite(p, np.zeros((16, 16, 3), np.uint16), photometric="rgb")
    with pytest.raises((NotSensorRawError, RawReadError)) as exc:
        read_raw(p)
    msg = str(exc.value)
    assert "scan.nef" in msg and "DNG" not in msg


def test_tifffile_messages_are_attributed_not_printed(tmp_path, caplog):
    import logging

    p = tmp_path / "cut.dng"
    good = write_dng(tmp_path / "g.dng", _raw(), "RGGB", 64, 1023, iso=100)
    data = bytearray(good.read_bytes())
    data[4:8] = (len(data) + 1000).to_bytes(4, "little")  # first-IFD offset past the end
    p.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="tifffile"):
        with pytest.raises(RawReadError, match="cut.dng"):
            read_raw(p)
    assert not [r for r in caplog.records if r.name == "tifffile"]
