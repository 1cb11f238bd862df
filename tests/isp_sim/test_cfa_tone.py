import numpy as np
import pytest

from isp_sim import InputError, mosaic, tone
from isp_sim.cfa import PATTERNS, channel_map, per_channel_image, shift_pattern


def test_channel_maps_are_golden():
    assert channel_map("RGGB").tolist() == [[0, 1], [2, 3]]
    assert channel_map("BGGR").tolist() == [[3, 2], [1, 0]]
    assert channel_map("GRBG").tolist() == [[1, 0], [3, 2]]
    assert channel_map("GBRG").tolist() == [[2, 3], [0, 1]]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("dy,dx", [(0, 1), (1, 0), (1, 1)])
def test_roll_equals_pattern_switch(pattern, dy, dx):
    rng = np.random.default_rng(0)
    img = rng.random((8, 10, 3))
    rolled = np.roll(img, (-dy, -dx), axis=(0, 1))
    assert np.array_equal(mosaic(rolled, shift_pattern(pattern, dy, dx)),
                          np.roll(mosaic(img, pattern), (-dy, -dx), axis=(0, 1)))


def test_mosaic_samples_the_right_planes():
    img = np.zeros((2, 2, 3))
    img[..., 0], img[..., 1], img[..., 2] = 1, 2, 3
    assert mosaic(img, "RGGB").tolist() == [[1, 2], [2, 3]]
    assert mosaic(img, "BGGR").tolist() == [[3, 2], [2, 1]]


def test_per_channel_image_follows_pattern():
    im = per_channel_image([10, 20, 30, 40], (2, 4), "GBRG")
    assert im.tolist() == [[30, 40, 30, 40], [10, 20, 10, 20]]


@pytest.mark.parametrize("bad", ["RGBG", "rggbx", "", "XYZW"])
def test_unknown_pattern_raises(bad):
    with pytest.raises(InputError, match="unknown CFA pattern"):
        channel_map(bad)


def test_mosaic_bad_shape():
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        mosaic(np.zeros((4, 4)), "RGGB")


@pytest.mark.parametrize("enc,dec", [
    (lambda x: tone.gamma_encode(x, 2.2), lambda y: tone.gamma_decode(y, 2.2)),
    (tone.srgb_encode, tone.srgb_decode),
    (tone.smoothstep, tone.smoothstep_inverse),
])
def test_transfer_functions_invert_exactly(enc, dec):
    x = np.linspace(0, 1, 100001)
    assert np.max(np.abs(dec(enc(x)) - x)) < 1e-9
    assert np.max(np.abs(enc(dec(x)) - x)) < 1e-9


def test_srgb_golden_values():
    # IEC 61966-2-1: 18% grey encodes to ~0.4613, the breakpoint is continuous
    assert tone.srgb_encode(np.array(0.18)) == pytest.approx(0.461356, abs=1e-6)
    assert tone.srgb_encode(np.array(0.0031308)) == pytest.approx(0.04045, abs=1e-6)
    assert tone.gamma_encode(np.array(0.5), 2.2) == pytest.approx(0.5 ** (1 / 2.2))


def test_unknown_transfer():
    with pytest.raises(InputError, match="allowed: gamma, srgb, linear"):
        tone.encode(np.zeros(3), "log")
