import json

import numpy as np
import pytest
import rawpy

from isp_sim import ImageIOError, InputError, load_profile
from isp_sim.cli import main
from isp_sim.dng import write_dng
from isp_sim.imageio import read_image_raw, read_rgb, sample_image_path, write_image


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("depth", [8, 16])
def test_image_round_trip_keeps_bit_depth(tmp_path, suffix, depth):
    rng = np.random.default_rng(0)
    dtype = np.uint8 if depth == 8 else np.uint16
    q = rng.integers(0, np.iinfo(dtype).max + 1, (17, 23, 3), dtype=dtype)
    p = write_image(tmp_path / f"x{suffix}", q, depth)
    back = read_image_raw(p)
    assert back.dtype == dtype and np.array_equal(back, q)
    f, d = read_rgb(p)
    assert d == depth and f.dtype == np.float32


def test_pillow_would_lose_16_bit_png(tmp_path):
    """The reason for pypng: Pillow opens a 16-bit RGB PNG as 8-bit."""
    from PIL import Image

    q = np.full((4, 4, 3), 257 * 100 + 7, np.uint16)
    p = write_image(tmp_path / "x.png", q, 16)
    with Image.open(p) as im:
        assert np.asarray(im).dtype == np.uint8
    assert read_image_raw(p).max() == 257 * 100 + 7


def test_image_errors(tmp_path):
    with pytest.raises(ImageIOError, match="no such image file"):
        read_rgb(tmp_path / "nope.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"hello")
    with pytest.raises(ImageIOError, match="junk.png"):
        read_rgb(junk)
    gray = write_image(tmp_path / "g.png", np.zeros((4, 4), np.uint8), 8)
    with pytest.raises(ImageIOError, match="grayscale"):
        read_rgb(gray)
    rgba = write_image(tmp_path / "a.png", np.zeros((4, 4, 4), np.uint8), 8)
    with pytest.raises(ImageIOError, match="RGBA"):
        read_rgb(rgba)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        write_image(tmp_path / "o.png", np.full((2, 2, 3), 2.0), 8)
    with pytest.raises(ImageIOError, match="unsupported output format"):
        write_image(tmp_path / "o.jpg", np.zeros((2, 2, 3)), 8)


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("loc", ["exif", "ifd0"])
def test_dng_is_read_back_by_rawpy(tmp_path, pattern, loc):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 1024, (32, 48)).astype(np.uint16)
    path = write_dng(tmp_path / "f.dng", raw, pattern, [60, 61, 62, 63], 1023, iso=3200, exposure_time=0.02,
                     iso_location=loc)
    with rawpy.imread(str(path)) as r:
        assert np.array_equal(r.raw_image_visible, raw)
        desc = r.color_desc.decode()
        seen = "".join(desc[i] for i in r.raw_pattern.ravel())
        assert seen.replace("G", "G") == pattern
        # rawpy lists black per colour index R, G, B, G2
        assert list(r.black_level_per_channel) == [60, 61, 63, 62]
        assert r.white_level == 1023
        assert r.other.iso_speed == (3200 if loc == "exif" else 0)  # rawpy misses IFD0 ISO
        assert r.other.shutter_speed == pytest.approx(0.02)


def test_cli_degrade_writes_images_raw_and_sidecar(tmp_path, capsys):
    src = write_image(tmp_path / "in.png", np.random.default_rng(0).random((40, 60, 3)), 16)
    rc = main(["degrade", str(src), "-o", str(tmp_path / "out"), "--profile", "mi_note10", "--iso", "3200",
               "--seed", "4", "--save-raw"])
    assert rc == 0
    img, depth = read_rgb(tmp_path / "out" / "in_noisy.png")
    assert depth == 16 and img.shape == (40, 60, 3)
    params = json.loads((tmp_path / "out" / "in_params.json").read_text())
    assert params["noise"]["iso"] == 3200
    with rawpy.imread(str(tmp_path / "out" / "in_raw.dng")) as r:
        assert r.raw_image_visible.shape == (40, 60) and r.other.iso_speed == 3200
        assert r.raw_image_visible.max() <= 1023
    # same seed -> same output
    main(["degrade", str(src), "-o", str(tmp_path / "out2"), "--iso", "3200", "--seed", "4", "-q"])
    assert np.array_equal(read_rgb(tmp_path / "out2" / "in_noisy.png")[0], img)


def test_cli_errors_and_listing(tmp_path, capsys):
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert "mi_note10" in out and "sony_a7s2" in out
    assert main(["show-profile", "mi_note10"]) == 0
    out = capsys.readouterr().out
    assert "12800" in out and "0.090" in out
    assert main(["show-profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    src = write_image(tmp_path / "in.png", np.zeros((8, 8, 3)), 8)
    assert main(["degrade", str(src), "-o", str(tmp_path / "o"), "--iso", "50"]) == 1
    assert "outside" in capsys.readouterr().err


def test_sample_image_bundled():
    img, depth = read_rgb(sample_image_path("coffee"))
    assert img.shape == (400, 600, 3) and depth == 8
