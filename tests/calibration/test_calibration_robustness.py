"""Robustness: bad and odd files in a session are named and skipped, the run finishes; CLI end to end."""

import json
import shutil

import numpy as np
import pytest

from calibration import CalibrationError, CalibrationWarning, calibrate, loglinear_profile, simulate_capture
from calibration.cli import main
from isp_sim.dng import SHORT, write_dng

PROF = dict(isos=(400, 1600), k_per_iso=1e-3, read_fit=(0.85, 0.9), row_fit=(0.85, -0.9))


@pytest.fixture(scope="module")
def base_session(tmp_path_factory):
    d = tmp_path_factory.mktemp("base")
    sess = simulate_capture(loglinear_profile("robust", **PROF), d, isos=[400, 1600], size=(96, 128), n_dark=6,
                            n_flat_pairs=4, seed=5)
    return d, sess


def _copy(base, tmp_path):
    d = tmp_path / "s"
    shutil.copytree(base, d)
    return d


def _msgs(record):
    return [str(w.message) for w in record]


def test_bad_files_are_named_and_skipped(base_session, tmp_path):
    base, sess = base_session
    d = _copy(base, tmp_path)
    good = sorted((d / "dark").glob("*.dng"))[0]
    data = good.read_bytes()
    (d / "dark" / "trunc.dng").write_bytes(data[: len(data) // 4])
    (d / "dark" / "notraw.dng").write_text("not a raw file")
    raw = np.full((96, 128), 70, np.uint16)
    write_dng(d / "flat" / "demosaiced.dng", raw, "RGGB", 64, 1023, iso=400, extra_tags={262: (SHORT, [34892])})
    write_dng(d / "dark" / "other_camera.dng", raw, "RGGB", 64, 1023, iso=400, make="Other", model="Phone")
    write_dng(d / "dark" / "other_size.dng", np.full((64, 64), 70, np.uint16), "RGGB", 64, 1023, iso=400)
    write_dng(d / "dark" / "no_iso.dng", raw, "RGGB", 64, 1023)
    with pytest.warns(CalibrationWarning) as rec:
        res = calibrate(d, progress=False)
    msgs = " | ".join(_msgs(rec))
    for name in ("trunc.dng", "notraw.dng", "demosaiced.dng", "other_camera.dng", "other_size.dng", "no_iso.dng"):
        assert name in msgs, name
    assert "another camera" in msgs and "size" in msgs and "--iso-from-name" in msgs and "demosaiced" in msgs
    assert res.isos == [400.0, 1600.0]
    assert len(res.session.skipped) == 6
    assert res.warnings == _msgs(rec)
    assert len(res.profile.provenance["skipped"]) == 6


def test_iso_from_name(base_session, tmp_path):
    base, sess = base_session
    d = _copy(base, tmp_path)
    for f in (d / "dark").glob("dark_iso400_00[0-1].dng"):  # rewrite two darks without ISO tags
        from calibration import read_raw

        fr = read_raw(f)
        write_dng(f, fr.data, fr.pattern, fr.black_level, fr.white_level, exposure_time=0.01)
    with pytest.warns(CalibrationWarning, match="no ISO"):
        calibrate(d, progress=False)
    res = calibrate(d, progress=False, iso_from_name=r"iso(\d+)")
    assert res.warnings == []
    assert res.profile.points[0]["quality"]["n_dark"] == 6


def test_saturated_flats_and_too_few_frames(tmp_path):
    prof = loglinear_profile("sat", **PROF)
    simulate_capture(prof, tmp_path, isos=[400], size=(96, 128), n_dark=6, n_flat_pairs=4, seed=6,
                     flat_levels=[0.05, 0.2, 0.5, 1.3])
    simulate_capture(prof, tmp_path / "more", isos=[1600], size=(96, 128), n_dark=1, n_flat_pairs=0, seed=7)
    shutil.move(str(tmp_path / "more" / "dark" / "dark_iso1600_000.dng"), tmp_path / "dark")
    with pytest.warns(CalibrationWarning) as rec:
        res = calibrate(tmp_path, progress=False)
    msgs = " | ".join(_msgs(rec))
    assert "flat_iso400_L03_a.dng, flat_iso400_L03_b.dng" in msgs and "clipped" in msgs
    assert "ISO 1600: 1 dark frame(s) and 0 flat pair(s)" in msgs
    assert res.isos == [400.0]
    assert res.profile.at_iso(400).K[1] == pytest.approx(0.4, rel=0.03)


def test_no_usable_frames_is_an_error(tmp_path):
    (tmp_path / "junk.dng").write_text("nope")
    with pytest.raises(CalibrationError, match="junk.dng"):  # the error names every skipped file's reason
        calibrate(tmp_path, progress=False)
    with pytest.raises(CalibrationError, match="no raw files"):
        calibrate(_empty(tmp_path), progress=False)


def _empty(tmp_path):
    e = tmp_path / "empty"
    e.mkdir()
    return e


def test_mixed_folder_classification(tmp_path):
    prof = loglinear_profile("mixed", **PROF)
    simulate_capture(prof, tmp_path, isos=[400, 1600], size=(96, 128), n_dark=6, n_flat_pairs=4, seed=8,
                     layout="mixed")
    res = calibrate(tmp_path, progress=False)
    assert res.session.layout == "mixed"
    for path, kind, *_ in res.session.classification:
        assert kind == ("dark" if "/dark_" in path else "flat"), path
    assert any("classified automatically" in n for n in res.notes)


def test_cli_end_to_end(base_session, tmp_path, capsys):
    base, sess = base_session
    d = _copy(base, tmp_path)
    (d / "README.txt").write_text("session notes")
    assert main(["--raw-dir", str(d), "--jobs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "profile:" in out and "report:" in out
    prof = json.loads((d / "profile.json").read_text())
    assert prof["provenance"]["n_files"] == 2 * (6 + 8)
    assert prof["provenance"]["tool"].startswith("phonenoise")
    rep = d / "report"
    for name in ("summary.md", "k_vs_iso.png", "sigma_vs_k.png", "ptc_iso400.png", "ppcc_iso1600.png",
                 "dark_hist_iso400.png"):
        assert (rep / name).stat().st_size > 0, name
    text = (rep / "summary.md").read_text()
    assert "README.txt" in text and "DNG NoiseProfile" in text and "Gr and Gb are merged" in text
    assert main(["--raw-dir", str(d), "-o", str(tmp_path / "p.json"), "--no-report", "--quiet"]) == 0
    assert (tmp_path / "p.json").exists()
    assert main(["--raw-dir", str(_empty(tmp_path)), "--quiet"]) == 2  # nothing usable: exit 2
    assert "no usable frames" in capsys.readouterr().err


def test_cli_simulate(tmp_path, capsys):
    assert main(["--simulate", "mi_note10", "--out-dir", str(tmp_path / "sim"), "--isos", "1000", "--size", "32", "48",
                 "--n-dark", "2", "--n-flat-pairs", "1"]) == 0
    assert len(list((tmp_path / "sim").rglob("*.dng"))) == 4
    assert (tmp_path / "sim" / "truth.json").exists()
