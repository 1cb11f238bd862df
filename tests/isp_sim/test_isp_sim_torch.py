"""isp_sim.torch against the numba engine: exact stages, noise statistics, reproducibility, errors (CPU torch)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import isp_sim  # noqa: E402
import isp_sim.torch as ist  # noqa: E402
from isp_sim import ISPSettings, process, unprocess  # noqa: E402
from isp_sim.demosaic import demosaic  # noqa: E402
from isp_sim.errors import InputError, InputTypeError  # noqa: E402

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
PHONE_B = "examples/profiles/sim_phone_b.json"


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]


def test_import_isp_sim_loads_no_torch():
    code = "import sys, isp_sim, calibration; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("method", ["bilinear", "malvar2004", "menon2007"])
@pytest.mark.parametrize("shape", [(40, 48), (37, 45), (3, 5)])
def test_demosaic_equals_numba_everywhere(method, shape):
    """Within 1e-5 on the whole image (the borders too: the same mirrored and zero-framed neighbours)."""
    rng = np.random.default_rng(7)
    x = rng.random(shape).astype(np.float32)
    x[: shape[0] // 2, : shape[1] // 3] *= 0.1  # edges, so Menon's decision varies
    for pattern in PATTERNS:
        want = demosaic(x, pattern, method=method)
        got = ist.demosaic(torch.from_numpy(x)[None], pattern, method=method)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{method} {pattern}")
    if method == "menon2007":
        want = demosaic(x, "RGGB", method=method, refining_step=False)
        got = ist.demosaic(torch.from_numpy(x)[None], "RGGB", method=method, refining_step=False)[0]
        np.testing.assert_allclose(got.permute(1, 2, 0).numpy(), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("settings", [ISPSettings(), ISPSettings(transfer="srgb", tone_curve=True),
                                      ISPSettings(ccm=((1.6, -0.4, -0.2), (-0.3, 1.5, -0.2), (0.0, -0.5, 1.5)),
                                                  demosaic="bilinear")],
                         ids=["d2hnet", "srgb_tone", "ccm_bilinear"])
def test_unprocess_and_noise_free_process_equal_numba(settings):
    rng = np.random.default_rng(1)
    x = rng.random((24, 30, 3)).astype(np.float32)
    for pattern in PATTERNS:
        a = unprocess(x, pattern=pattern, wb=(2.0, 1.7), settings=settings)
        b = ist.unprocess(_t(x), pattern=pattern, wb=(2.0, 1.7), settings=settings)[0].numpy()
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)
        pa = process(a, pattern=pattern, wb=(2.0, 1.7), settings=settings)
        pb = ist.process(torch.from_numpy(a)[None], pattern=pattern, wb=(2.0, 1.7), settings=settings)
        np.testing.assert_allclose(pb[0].permute(1, 2, 0).numpy(), pa, atol=1e-6, rtol=0)


def _channel_stats(raw: np.ndarray, clean: np.ndarray, pattern: str):
    from isp_sim.cfa import channel_map

    cm = channel_map(pattern)
    out = []
    for c in range(4):
        (i, j), = [(a, b) for a in (0, 1) for b in (0, 1) if cm[a, b] == c]
        d = raw[i::2, j::2].astype(np.float64) - clean[i::2, j::2]
        out.append((d.mean(), d.var()))
    return out


@pytest.mark.parametrize("profile,iso", [("mi_note10", 1600), ("mi_note10", 12800), (PHONE_B, 200), (PHONE_B, 6400)])
def test_raw_variance_law_matches_numba(profile, iso):
    """Per channel and grey level, >= 100k pixels each: the noisy-minus-clean variance within 3% of the numba
    engine's and of the model's K x + read^2 + row^2 + 1/12 (same parameter record on both engines)."""
    prof = isp_sim.load_profile(profile)
    gen = torch.Generator().manual_seed(3)
    for level in (0.05, 0.3, 0.7):
        img = np.full((640, 640, 3), level, np.float32)
        r = isp_sim.degrade(img, prof, iso=iso, seed=11)
        t = ist.degrade(_t(img), prof, params=[r.params], generator=gen)
        sn = _channel_stats(r.raw, r.raw_clean, r.params.pattern)
        st = _channel_stats(t.raw[0].numpy(), t.raw_clean[0].numpy(), r.params.pattern)
        n = r.params.noise
        for c in range(4):
            assert st[c][1] == pytest.approx(sn[c][1], rel=0.03), (level, c, st[c], sn[c])
            if 0.1 < level < 0.9:  # away from the clip points the model holds
                clean_c = _channel_stats(r.raw_clean, np.full_like(r.raw_clean, n.black_level[c]), r.params.pattern)
                want = n.expected_variance(clean_c[c][0])[c]
                assert st[c][1] == pytest.approx(want, rel=0.03), (level, c)


@pytest.mark.parametrize("lam", [1e-16, -1e-13, 1e-11, 1e-9])
def test_torch_tukey_quantile_is_stable_for_tiny_lambda(lam):
    """The tensor engine's quantile uses the expm1 form, as the numba engine's tables do: shapes near 0 give the
    logistic law (the naive (u^l - (1-u)^l) / l loses ~1e-16 / l to cancellation)."""
    u = torch.linspace(1e-6, 1 - 1e-6, 1001, dtype=torch.float64)
    got = ist._tukey_quantile(u, torch.full_like(u, lam)).numpy()
    want = np.log(u.numpy() / (1 - u.numpy()))
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_read_noise_quantiles_row_noise_and_bias():
    """Dark frames (4096 rows, so that row noise averages out of the means): Tukey-lambda quantiles of the
    read-noise sampler within 2% of the law's; dark-frame row std within 10% and bias within 0.05 DN of the
    numba engine's."""
    from scipy import stats

    u = torch.rand(400_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for lam in (-0.05, 0.0, 0.14):
        q = ist._tukey_quantile(u, torch.full_like(u, lam)).numpy()
        for p in (0.01, 0.05, 0.95, 0.99):
            assert np.quantile(q, p) == pytest.approx(stats.tukeylambda.ppf(p, lam), rel=0.02), (lam, p)
    prof = isp_sim.load_profile("mi_note10")
    dark = np.zeros((4096, 64, 3), np.float32)
    r = isp_sim.degrade(dark, prof, iso=6400, seed=5)
    t = ist.degrade(_t(dark), prof, params=[r.params], generator=torch.Generator().manual_seed(2))
    n = r.params.noise

    def row_std(raw):
        d = raw.astype(np.float64) - raw.mean()
        rows = d.mean(axis=1)
        return np.sqrt(max(rows.var() - d.var() / raw.shape[1], 0.0))
    assert row_std(t.raw[0].numpy()) == pytest.approx(row_std(r.raw), rel=0.10)
    assert row_std(r.raw) == pytest.approx(n.row_std, rel=0.10)
    sn = _channel_stats(r.raw, r.raw_clean, r.params.pattern)
    st = _channel_stats(t.raw[0].numpy(), t.raw_clean[0].numpy(), r.params.pattern)
    for c in range(4):
        assert abs(st[c][0] - sn[c][0]) < 0.05, (c, st[c][0], sn[c][0])
        assert abs(st[c][0] - n.bias[c]) < 0.1


@pytest.mark.parametrize("profile", ["mi_note10", PHONE_B])
def test_srgb_output_mean_and_noise_match_numba(profile):
    rng = np.random.default_rng(0)
    base = np.kron(rng.random((8, 8, 3)), np.ones((48, 48, 1))).astype(np.float32) * 0.8 + 0.1
    prof = isp_sim.load_profile(profile)
    lo, hi = prof.iso_range
    r = isp_sim.degrade(base, prof, iso=float(np.sqrt(lo * hi)), seed=4)
    t = ist.degrade(_t(base), prof, params=[r.params], generator=torch.Generator().manual_seed(4))
    img_t = t.image[0].permute(1, 2, 0).numpy()
    clean = isp_sim.process(r.raw_clean, pattern=r.params.pattern, wb=r.params.wb, black_level=r.params.noise.black_level,
                            white_level=r.params.noise.white_level)
    assert img_t.mean() == pytest.approx(r.image.mean(), rel=0.002)
    assert (img_t - clean).std() == pytest.approx((r.image - clean).std(), rel=0.03)


def test_same_generator_same_output_and_parameters_per_image():
    prof = isp_sim.load_profile("mi_note10")
    x = torch.rand(3, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    a = ist.degrade(x, prof, iso=(800, 12800), generator=torch.Generator().manual_seed(9))
    b = ist.degrade(x, prof, iso=(800, 12800), generator=torch.Generator().manual_seed(9))
    assert torch.equal(a.image, b.image) and torch.equal(a.raw, b.raw)
    assert len({p.iso for p in a.params}) == 3  # each image its own draw
    c = ist.degrade(x, prof, iso=(800, 12800), generator=torch.Generator().manual_seed(10))
    assert not torch.equal(a.raw, c.raw)
    d = ist.degrade(x, prof, iso=[900.0, 3000.0, 12000.0], wb=[(2.0, 1.6), (2.1, 1.7), (2.2, 1.8)],
                    generator=torch.Generator().manual_seed(1))
    assert [round(p.iso) for p in d.params] == [900, 3000, 12000] and d.params[2].wb == (2.2, 1.0, 1.8)
    # a record drawn here replays on the numba engine (same parameters, same sizes)
    rn = isp_sim.degrade(x[0].permute(1, 2, 0).numpy(), prof, params=a.params[0])
    assert rn.params.iso == a.params[0].iso and rn.image.shape == (32, 40, 3)


def test_one_white_balance_row_serves_a_whole_batch():
    """wb as one row applies to every image of the batch (it was refused for N > 1 as shape (1, 3))."""
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    wb = (2.0, 1.0, 1.7)
    both = ist.unprocess(x, wb=wb)
    for k in range(3):
        torch.testing.assert_close(both[k:k + 1], ist.unprocess(x[k:k + 1], wb=wb), rtol=0, atol=0)
    torch.testing.assert_close(ist.process(both, wb=wb), ist.process(both, wb=[wb] * 3), rtol=0, atol=0)


def test_bad_input_gives_the_numba_api_errors():
    prof = "mi_note10"
    x2 = torch.rand(2, 3, 8, 8)
    with pytest.raises(InputError, match="must be finite and above every black level"):
        ist.unprocess(x2, white_level=float("inf"))
    with pytest.raises(InputError, match=r"white_level must be a number or 2 numbers"):
        ist.unprocess(x2, white_level=[1.0, 1.0, 1.0])
    with pytest.raises(InputError, match=r"shape \(N, 3, H, W\)"):
        ist.degrade(torch.rand(3, 8, 8), prof)
    with pytest.raises(InputTypeError, match="dtype"):
        ist.degrade(torch.zeros(1, 3, 8, 8, dtype=torch.int32), prof)
    bad = torch.rand(1, 3, 8, 8)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        ist.degrade(bad, prof)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        ist.degrade(torch.rand(1, 3, 8, 8) + 1.0, prof)
    with pytest.raises(InputError, match="empty batch"):
        ist.degrade(torch.rand(0, 3, 8, 8), prof)
    with pytest.raises(InputError, match="pattern"):
        ist.demosaic(torch.rand(1, 8, 8), "RGBG")
    with pytest.raises(InputError, match="unknown demosaicing method"):
        ist.demosaic(torch.rand(1, 8, 8), "RGGB", method="ahd")
    with pytest.raises(InputTypeError, match="torch tensor"):
        ist.degrade(np.zeros((1, 3, 8, 8), np.float32), prof)
