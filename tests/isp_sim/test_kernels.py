"""Accuracy of the kernels' tabulated functions against the exact ones, and the RNG's basic statistics."""

import numpy as np
import pytest
from scipy import stats

from isp_sim import _isp_kernels as K
from isp_sim import _rng
from isp_sim import tone


@pytest.mark.parametrize("code,dec,enc", [
    (0, lambda x: tone.gamma_decode(x, 2.2), lambda x: tone.gamma_encode(x, 2.2)),
    (1, tone.srgb_decode, tone.srgb_encode),
])
def test_transfer_tables_within_1e6(code, dec, enc):
    x = np.random.default_rng(0).random(200_000)
    x = np.concatenate([x, x * 1e-4, [0.0, 1.0, 0.0031308, 0.04045]])
    dlut, elut = K.decode_lut(code, 2.2), K.encode_table(code, 2.2)
    got_d = np.array([K._interp(dlut, v * (dlut.shape[0] - 2)) for v in x[:20000]])
    assert np.max(np.abs(got_d - dec(x[:20000]))) < 1e-6
    # the production kernel (float32 table and arithmetic) on the whole sample
    rgb = np.ascontiguousarray(np.repeat(x.astype(np.float32)[None, :, None], 3, axis=2))
    out = np.empty_like(rgb)
    K.finish(rgb, elut, False, out)
    assert np.max(np.abs(out[0, :, 0] - enc(x.astype(np.float32).astype(np.float64)))) < 1e-6
    # every binade of float32 down to the denormals, and the clip points (negative, > 1, inf)
    tiny = np.float32(2.0) ** -np.arange(0, 150, 0.37).astype(np.float32)
    edge = np.array([-0.0, -1e-30, -1.0, 1.0 + 1e-7, 2.0, np.inf], dtype=np.float32)
    rgb = np.ascontiguousarray(np.repeat(np.concatenate([tiny, edge])[None, :, None], 3, axis=2))
    out = np.empty_like(rgb)
    K.finish(rgb, elut, False, out)
    want = enc(np.clip(rgb[0, :, 0].astype(np.float64), 0, 1))
    assert np.max(np.abs(out[0, :, 0] - want)) < 1e-6


@pytest.mark.parametrize("law,lam", [("tukey_lambda", -0.15), ("tukey_lambda", 0.0), ("tukey_lambda", 0.09),
                                     ("tukey_lambda", 0.2), ("gaussian", 0.0)])
def test_read_noise_quantile_table_accuracy(law, lam):
    """The symmetric quantile tables against scipy over the whole range of the generator's uniforms:
    within 4e-7 standard units where |Q| < 10 and 1e-7 relative beyond (the far tails)."""
    table = _rng.quantile_table(law, lam)
    rng = np.random.default_rng(3)
    s = 2.0 ** rng.uniform(-53, -1, 20000)  # every binade of min(u, 1 - u)
    u = np.concatenate([s, 1 - s, rng.random(20000), [0.5 / 2**52, 1 - 0.5 / 2**52, 0.5, 0.25, 0.75]])
    got = np.array([_rng.symmetric_quantile(v, table) for v in u])
    dist = stats.norm if law == "gaussian" else stats.tukeylambda(lam)
    exact = np.where(u < 0.5, dist.ppf(u), -dist.ppf(1 - u))  # the tails from the side scipy resolves
    err = np.abs(got - exact)
    centre = np.abs(exact) < 10
    assert err[centre].max() < 4e-7
    assert np.all(err[~centre] <= 1e-7 * np.abs(exact[~centre]))
    # odd symmetry is exact
    assert _rng.symmetric_quantile(0.5, table) == 0.0
    assert _rng.symmetric_quantile(0.25, table) == -_rng.symmetric_quantile(0.75, table)


def test_uniforms_are_uniform_and_independent():
    key = np.uint64(987654321)
    u = np.array([_rng.uniform(key, np.uint64(i)) for i in range(200_000)])
    assert 0 < u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


@pytest.mark.parametrize("lam", [0.003, 0.3, 0.2499, 0.25, 4.0, 9.99, 21.99, 37.3, 63.99, 64.0, 64.49, 127.99, 128.0,
                                 150.0, 200.97, 255.999, 256.0, 900.0, 3000.0])
def test_poisson_sampler_matches_the_law(lam):
    key = np.uint64(42)
    n = 40_000
    x = np.array([_rng.poisson(lam, key, np.uint64(i) << np.uint64(16)) for i in range(n)])
    assert np.all(x == np.round(x)) and x.min() >= 0
    assert x.mean() == pytest.approx(lam, abs=5 * np.sqrt(lam / n))
    # relative SE of a Poisson sample variance: sqrt(2/n + 1/(n lam)); 5 sigma
    assert x.var() == pytest.approx(lam, rel=5 * np.sqrt(2 / n + 1 / (n * lam)))
    # chi-square against the exact pmf over the bulk
    lo, hi = int(stats.poisson.ppf(0.001, lam)), int(stats.poisson.ppf(0.999, lam))
    ks = np.arange(lo, hi + 1)
    obs = np.array([(x == k).sum() for k in ks])
    exp = stats.poisson.pmf(ks, lam) * n
    keep = exp > 5
    chi2 = ((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4


def test_log_factorial_is_accurate():
    import math

    k = np.arange(0, 5000, dtype=np.float64)
    got = np.array([_rng.log_factorial(v) for v in k])
    assert np.max(np.abs(got - np.array([math.lgamma(v + 1) for v in k]))) < 1e-10


def test_uniform_never_reaches_0_or_1():
    # the largest and smallest 52-bit values map strictly inside (0, 1)
    top = (float(2**52 - 1) + 0.5) / 2**52
    assert top < 1.0 and 0.5 / 2**52 > 0.0


@pytest.mark.parametrize("lam", [1e-16, -1e-13, 1e-9])
def test_tukey_quantile_is_stable_for_tiny_lambda(lam):
    """The expm1 form keeps shapes near 0 on the logistic law (the naive (u^l - (1-u)^l) / l cancels)."""
    u = np.linspace(1e-6, 1 - 1e-6, 1001)
    table = _rng.quantile_table("tukey_lambda", lam)
    got = np.array([_rng.symmetric_quantile(v, table) for v in u])
    np.testing.assert_allclose(got, np.log(u / (1 - u)), atol=1e-6)


def test_poisson_tables_cover_every_reachable_count():
    """Each trimmed table ends at 1.0, and the counts it leaves out have probability below 2**-55 on
    each side (scipy's exact pmf), so no uniform of the generator (>= 2**-53 from 0 and 1) reaches them."""
    ends = _rng._CDF[_rng._OFFS[1:] - 1]
    assert np.all(ends == 1.0)
    for m in range(0, _rng.N_TABLES, 7):
        lam0 = _rng._LAM0[m]
        if lam0 == 0:
            continue
        lo = _rng._KLO[m]
        hi = lo + _rng._OFFS[m + 1] - _rng._OFFS[m] - 1
        assert stats.poisson.cdf(lo - 1, lam0) < 2.0**-55
        assert stats.poisson.sf(hi, lam0) < 2.0**-55
        # the stored CDF is the exact one
        table = _rng._CDF[_rng._OFFS[m]:_rng._OFFS[m + 1] - 1]
        np.testing.assert_allclose(table, stats.poisson.cdf(np.arange(lo, hi), lam0), rtol=1e-12, atol=1e-17)
    # the extreme uniforms invert to the table's ends, not past them
    for lam in (0.3, 62.25, 100.5, 255.5):
        m = _rng.table_index(lam)
        lo = _rng._KLO[m]
        hi = lo + _rng._OFFS[m + 1] - _rng._OFFS[m] - 1
        assert lo <= _rng.table_invert(m, 0.5 / 2**52) <= _rng.table_invert(m, 1 - 0.5 / 2**52) <= hi


def test_guide_with_answers_inverts_exactly():
    """The guide's outright answers and its searches give, for every table, the inversion min{k: CDF[k] >= u}
    (np.searchsorted on the table) at each guide cell's two ends, at each CDF value and one ulp either side of
    it, and at random uniforms; most draws are answered without a search."""
    rng = np.random.default_rng(0)
    searched = 0
    total = 0
    for m in range(0, _rng.N_TABLES, 3):
        cdf = _rng._CDF[_rng._OFFS[m]:_rng._OFFS[m + 1]]
        p = int((_rng._GMETA[m] >> 20) & 15)
        cells = np.arange(1 << p) / float(1 << p)
        u = np.concatenate([cells[1:], np.nextafter(cells[1:], 0.0), cdf[:-1], np.nextafter(cdf[:-1], 0.0),
                            np.nextafter(cdf[:-1], 1.0), rng.random(300)])
        u = u[(u >= 2.0**-53) & (u <= 1.0 - 2.0**-53)]  # the generator's uniforms
        want = _rng._KLO[m] + np.searchsorted(cdf, u, side="left")
        got = np.array([_rng.table_invert(m, v) for v in u])
        assert np.array_equal(got, want), m
        more = np.array([_rng.guide_lookup(m, v)[1] for v in u[-300:]])
        searched += int(more.sum())
        total += more.size
    assert searched / total < 0.10  # 7% expected: 4 cells per CDF value


def test_table_grid_index():
    assert all(_rng.table_mean(m) == _rng._LAM0[m] for m in range(_rng.N_TABLES))
    for lam in np.concatenate([np.linspace(0, 300, 30011), [63.999999, 64.0, 127.9999999, 128.0, 255.99999, 256.0]]):
        m = _rng.table_index(lam)
        if lam < _rng.TABLE_MAX:
            assert _rng._LAM0[m] <= lam
            assert m == _rng.N_TABLES - 1 or lam < _rng._LAM0[m + 1]
        else:
            assert m == _rng.N_TABLES - 1


def test_noise_kernel_draws_the_scalar_samplers_values():
    """The row kernel (table start, branch-free steps, search, remainder, PTRS) gives every pixel exactly the count
    of the scalar :func:`_rng.poisson` at that pixel's counter, and the read noise of the scalar quantile of its
    uniform: means from 0 to 3000 (tables, remainder tails, PTRS with rejections). The first 12 rows are mostly
    large means (PTRS's first try over the whole row), the others have a few (PTRS over the listed pixels)."""
    from isp_sim.cfa import channel_map
    from isp_sim.noise import _quantile_tables, add_noise_checked, noise_keys
    from isp_sim.params import NoiseParams

    h, w = 24, 160
    lam = np.random.default_rng(3).uniform(0.0, 3000.0, (h, w))
    lam[12:] = np.random.default_rng(4).uniform(0.0, 270.0, (h - 12, w))
    lam[:, :8] = np.array([0.0, 1e-9, 0.5, 63.99, 127.99, 255.99, 256.0, 256.5])
    n_large = (lam >= _rng.TABLE_MAX).sum(axis=1)
    from isp_sim.noise import _PTRS_ROW_SHARE
    assert (n_large[:12] * _PTRS_ROW_SHARE >= w).all() and (n_large[12:] * _PTRS_ROW_SHARE < w).all()
    key = 12345
    k_shot, k_read, _ = noise_keys(key)
    cmap = channel_map("RGGB")
    shot_only = NoiseParams(K=1.0, read_law="gaussian", read_lambda=0.0, read_scale=0.0, read_std=0.0, row_std=0.0,
                            bias=0.0, black_level=10.0, white_level=65535)
    got = add_noise_checked(lam + 10.0, shot_only, cmap, key).astype(np.float64) - 10.0
    shift = np.uint64(_rng.DRAW_BITS)
    want = np.array([[_rng.poisson(lam[y, x], k_shot, np.uint64(y * w + x) << shift) for x in range(w)]
                     for y in range(h)])
    assert np.array_equal(got, want)
    read_only = NoiseParams(K=1.0, read_law="tukey_lambda", read_lambda=0.1, read_scale=3.0, read_std=1.0,
                            row_std=0.0, bias=0.0, black_level=200.0, white_level=65535)
    got = add_noise_checked(np.full((h, w), 200.0), read_only, cmap, key).astype(np.float64)
    table = _quantile_tables("tukey_lambda", (0.1,) * 4)[0][0]
    q = np.array([[_rng.symmetric_quantile(_rng.uniform(k_read, np.uint64(y * w + x) << shift), table) for x in range(w)]
                  for y in range(h)])
    assert np.array_equal(got, np.floor(3.0 * q + 200.0 + 0.5))
