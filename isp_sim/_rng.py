"""Counter-based random numbers for the numba kernels.

Every random draw is a pure function of ``(key, counter)``: the SplitMix64
output function (Steele, Lea, Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014) applied to ``key + counter * 0x9E3779B97F4A7C15``.
A kernel gives each pixel its own block of counters (pixel index << 16, plus
the draw number), so the value drawn for a pixel does not depend on which
thread computes it or in which order: output is bit-identical for any numba
thread count. Keys come from :class:`numpy.random.SeedSequence`.

Samplers here are exact methods driven by these uniforms: Poisson by table
inversion (mean < 256, see :func:`poisson`) and by PTRS transformed rejection (Hoermann, "The transformed
rejection method for generating Poisson random variables", Insurance:
Mathematics and Economics 12, 1993; the method numpy uses), symmetric read-noise
laws (Tukey lambda, Gaussian) by their inverse CDF (:func:`quantile_table`), and
the per-row normals by Box-Muller.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Note for editors: these functions and tables are inlined into (frozen into) the noise kernel
# (isp_sim/noise.py: _noise_kernel), and numba's on-disk cache only watches the file that defines a kernel: after
# changing anything here, touch noise.py (or delete its __pycache__) so that it is recompiled.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S12 = np.uint64(12)
_TWO_M52 = 1.0 / 4503599627370496.0
DRAW_BITS = 16  # draws available per pixel: 65536


@njit(inline="always", cache=True)
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always", cache=True)
def uniform(key, counter):
    """Uniform double in the open interval (0, 1) for ``(key, counter)`` (both uint64).

    52 bits: ``(n + 0.5) / 2**52`` is exact in a double for every n < 2**52, so the result is never
    0 or 1 (with 53 bits the top value rounds to 1.0).
    """
    z = mix64(key + counter * _GOLDEN)
    return (float(np.int64(z >> _S12)) + 0.5) * _TWO_M52  # < 2**52: the signed conversion is exact and cheaper


@njit(inline="always", cache=True)
def normal(key, counter):
    """Standard normal from two uniforms at ``counter`` and ``counter + 1`` (Box-Muller)."""
    u1 = uniform(key, counter)
    u2 = uniform(key, counter + np.uint64(1))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


# --- symmetric inverse CDFs by table lookup over the bits of the folded uniform -----------------
#
# A read-noise draw is Q(u) for a law symmetric about 0 (Tukey lambda, Gaussian), so Q(u) = -Q(1 - u)
# and only s = min(u, 1 - u) in (0, 1/2) needs a table. 1 - u is exact in double precision for the
# generator's uniforms (multiples of 2**-53), so s keeps every bit. The table is indexed by the IEEE
# bits of s: QUANTILE_SEGMENTS segments per binade (power-of-two interval) from 2**-53 (the smallest s)
# up to 1/2, linear interpolation inside a segment (s is linear in the mantissa within a binade). The
# spacing is thus relative (2**-10 of s), which follows the quantile's curvature into the far tails:
# the interpolation error is below 4e-7 standard units for |Q| < 10 and below 1e-7 of |Q| beyond
# (tested for Tukey shapes -0.15 .. 0.2 and the Gaussian). No exact-formula fallback, no branch; the
# hot part (s > 1/16 for 7/8 of the draws) is 3 binades, 24 KB.

QUANTILE_SEGMENTS_LOG2 = 10
QUANTILE_SHIFT = np.uint64(52 - QUANTILE_SEGMENTS_LOG2)  # mantissa bits below the segment index
QUANTILE_BASE = np.uint64((1023 - 53) << 52)  # IEEE bits of 2**-53
_QUANTILE_FRAC_MASK = (np.uint64(1) << QUANTILE_SHIFT) - np.uint64(1)
_QUANTILE_FRAC_SCALE = 1.0 / float(1 << (52 - QUANTILE_SEGMENTS_LOG2))


def quantile_table(law: str, shape: float = 0.0) -> np.ndarray:
    """Table of the standard quantile Q(s) at the segment starts for s in [2**-53, 1/2] (float64).

    ``law`` is ``"tukey_lambda"`` (shape lambda) or ``"gaussian"`` (shape ignored).
    """
    n = (52 << QUANTILE_SEGMENTS_LOG2) + 1
    bits = QUANTILE_BASE + (np.arange(n, dtype=np.uint64) << QUANTILE_SHIFT)
    s = bits.view(np.float64).copy()
    s[-1] = 0.5  # the entry after the last segment (bits of 1.0 would be the next binade's start)
    if law == "gaussian":
        from scipy.special import ndtri

        q = ndtri(s)
    elif shape == 0.0:
        q = np.log(s) - np.log1p(-s)
    else:  # expm1 form of (s^lam - (1-s)^lam) / lam: no cancellation for tiny |lam|
        q = (np.expm1(shape * np.log(s)) - np.expm1(shape * np.log1p(-s))) / shape
    q[-1] = 0.0
    return q


@njit(inline="always", cache=True)
def fold(u):
    """``(sign, s)``: sign +1 for u > 1/2 else -1, and s = min(u, 1 - u) (exact), so that Q(u) = -sign * Q(s)."""
    up = u > 0.5
    s = (1.0 - u) if up else u
    return (1.0 if up else -1.0), s


@njit(inline="always", cache=True)
def quantile_at_bits(bits, table):
    """Q(s) from the IEEE ``bits`` of s in [2**-53, 1/2] by interpolation in ``table`` (:func:`quantile_table`)."""
    t = bits - QUANTILE_BASE
    j = t >> QUANTILE_SHIFT
    f = float(t & _QUANTILE_FRAC_MASK) * _QUANTILE_FRAC_SCALE
    a = table[j]
    return a + f * (table[j + np.uint64(1)] - a)


@njit(cache=True)
def symmetric_quantile(u, table):
    """Q(u) of the symmetric law tabulated in ``table``, for a scalar u in (0, 1) (the kernels do this per row)."""
    sign, s = fold(u)
    buf = np.empty(1)
    buf[0] = s
    return -sign * quantile_at_bits(buf.view(np.uint64)[0], table)


@njit(inline="always", cache=True)
def uniform_row(key, first, draw, out):
    """``out[x] = uniform(key, ((first + x) << DRAW_BITS) + draw)`` for a row of pixels (a vectorisable loop)."""
    step = _GOLDEN << np.uint64(DRAW_BITS)
    z0 = key + ((first << np.uint64(DRAW_BITS)) + np.uint64(draw)) * _GOLDEN
    for x in range(out.shape[0]):
        z = mix64(z0 + np.uint64(x) * step)
        out[x] = (float(np.int64(z >> _S12)) + 0.5) * _TWO_M52


_INV_INT = 1.0 / np.arange(1, 1025, dtype=np.float64)

# Poisson means below TABLE_MAX are drawn by table inversion: lam = lam0 + delta with lam0 on a grid
# that is finer for small means (steps of 1/4 below 64, 1/2 below 128, 1 below 256).
TABLE_GRID = ((64.0, 4), (128.0, 2), (256.0, 1))  # (segment end, grid points per unit mean)
TABLE_MAX = TABLE_GRID[-1][0]
TABLE_TAIL = 2.0 ** -55  # tail mass left out of each table: below half the uniforms' resolution (2**-53)


def _grid_means() -> np.ndarray:
    means, start = [], 0.0
    for end, steps in TABLE_GRID:
        means.extend(start + np.arange(int((end - start) * steps)) / steps)
        start = end
    return np.array(means)


def _poisson_tables():
    """CDF tables of Poisson(lam0) for every grid mean lam0 (``_grid_means``).

    A table covers k_lo .. k_hi, where P(X < k_lo) and P(X > k_hi) are below ``TABLE_TAIL``: no uniform
    of the generator (all in [2**-53, 1 - 2**-53]) can invert to a count outside that range, so the
    trimmed table gives exactly the draws of the full one. CDF values are normalised by the total
    mass of the computed pmf and the last is set to 1.0 (so an inversion always stops). Returns (cdf,
    table offsets, k_lo, lam0), 0.6 MB in all.
    """
    lam0s = _grid_means()
    kmax = int(TABLE_MAX + 20.0 * math.sqrt(TABLE_MAX) + 64)
    log_fact = np.array([math.lgamma(k + 1.0) for k in range(kmax)])
    offs = np.zeros(len(lam0s) + 1, dtype=np.int64)
    k_lo = np.zeros(len(lam0s), dtype=np.int64)
    cdfs = []
    for m, lam0 in enumerate(lam0s):
        if lam0 == 0.0:
            cdf = np.ones(1)
        else:
            n = int(lam0 + 20.0 * math.sqrt(lam0) + 40)  # the mass beyond is < 1e-40
            pmf = np.exp(-lam0 + np.arange(n) * math.log(lam0) - log_fact[:n])
            total = pmf.sum()
            cdf_all = np.cumsum(pmf) / total
            sf_all = np.cumsum(pmf[::-1])[::-1] / total  # P(X >= k)
            lo = int(np.argmax(cdf_all >= TABLE_TAIL))
            hi = int(np.nonzero(sf_all >= TABLE_TAIL)[0][-1])  # P(X > hi) = sf_all[hi + 1] < TABLE_TAIL
            k_lo[m] = lo
            cdf = cdf_all[lo:hi + 1].copy()
            cdf[-1] = 1.0
        cdfs.append(cdf)
        offs[m + 1] = offs[m] + len(cdf)
    return np.concatenate(cdfs), offs, k_lo, lam0s


_CDF, _OFFS, _KLO, _LAM0 = _poisson_tables()
N_TABLES = len(_LAM0)
assert TABLE_GRID == ((64.0, 4), (128.0, 2), (256.0, 1)) and N_TABLES == 512, "table_index hard-codes this grid"
_BASE = _KLO - _OFFS[:-1]  # the count at _CDF index k of table m is k + _BASE[m]

# Guide tables with answers. Table m's uniforms are cut into G = 2**p equal cells, G the power of two at or
# above GUIDE_CELLS times the table's length, so that a cell is j = int(u * G) exactly (a power-of-two product
# is not rounded). A cell that holds no CDF value of the table ("pure") inverts every uniform in it to the same
# count, which its entry gives outright; only a cell with a CDF value inside needs a search, from its entry
# (the answer at the cell's lower end, at most the answer of any uniform in the cell). Entries are int16,
# (index in the table << 1) | 1 for "search on"; with 4 cells per CDF value 93% of the draws need no CDF load.
GUIDE_CELLS = 4


def _guide_tables(cdf_all: np.ndarray, offs: np.ndarray, k_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int16 entries of all guides, per table its meta ``guide offset | p << 20 | k_lo << 24``) for the CDF
    tables of :func:`_poisson_tables` (comment above)."""
    entries, meta, goff = [], np.zeros(len(k_lo), np.int64), 0
    for m in range(len(k_lo)):
        cdf = cdf_all[offs[m]:offs[m + 1]]
        p = int(math.ceil(math.log2(GUIDE_CELLS * len(cdf))))
        edges = np.arange((1 << p) + 1) / float(1 << p)  # exact
        first = np.searchsorted(cdf, edges[:-1], side="left")  # the answer at the cell's lower end
        above = np.searchsorted(cdf, edges[1:], side="left")  # the first CDF value at or above its upper end
        entries.append((first << 1) | (first != above))
        assert p < 16 and len(cdf) < 1 << 14  # the fields: p in 4 bits; int16 entries (index << 1 | flag)
        meta[m] = goff | (p << 20) | (int(k_lo[m]) << 24)
        goff += 1 << p
    assert goff < 1 << 20  # the guide offset's 20 bits
    return np.concatenate(entries).astype(np.int16), meta


_GUIDE, _GMETA = _guide_tables(_CDF, _OFFS, _KLO)


@njit(inline="always", cache=True)
def table_index(lam):
    """Index of the grid mean at or below ``lam`` (the last table for lam >= TABLE_MAX)."""
    if lam < 64.0:
        m = int(lam * 4.0)
    elif lam < 128.0:
        m = int(lam * 2.0) + 128
    else:
        m = int(min(lam, TABLE_MAX)) + 256
    return min(m, N_TABLES - 1)


@njit(inline="always", cache=True)
def table_mean(m):
    """The grid mean of table ``m``: ``_LAM0[m]``, computed (exact; no load)."""
    if m < 256:
        return m * 0.25
    if m < 384:
        return (m - 128) * 0.5
    return float(m - 256)


@njit(inline="always", cache=True)
def guide_lookup(m, u):
    """The Poisson(_LAM0[m]) count of ``u`` from table ``m``'s guide in two loads: ``(count, 0)`` where the
    guide cell answers outright, ``(count at the cell's start, 1)`` where :func:`table_search` must go on."""
    meta = _GMETA[m]
    j = np.int64(u * float(np.int64(1) << ((meta >> 20) & 15)))
    e = np.int64(_GUIDE[(meta & 0xFFFFF) + j])
    return (meta >> 24) + (e >> 1), e & 1


@njit(inline="always", cache=True)
def table_search(m, count, u):
    """The Poisson(_LAM0[m]) count whose CDF interval holds ``u``, searching up from ``count`` (at most it)."""
    k = count - _BASE[m]
    k += np.int64(_CDF[k] < u)  # one step branch-free: most cells that need a search hold one CDF value
    while _CDF[k] < u:  # terminates: each table's last entry is 1.0 > u
        k += 1
    return _BASE[m] + k


@njit(inline="always", cache=True)
def table_invert(m, u):
    """The Poisson(_LAM0[m]) count whose CDF interval holds ``u`` (the guide, then a search where needed)."""
    count, more = guide_lookup(m, u)
    if more:
        count = table_search(m, count, u)
    return count


_EXP_STEPS = 64
_EXP_TAB = np.exp(-np.arange(_EXP_STEPS + 2) / _EXP_STEPS)


@njit(inline="always", cache=True)
def exp_parts(d):
    """exp(-d) for d in [0, 1] without a libm call: ``_EXP_TAB[j] * poly``, a 1/64-step table times the
    degree-6 Taylor polynomial of the rest r < 1/64 (truncation < 5e-17 relative; about 2 ulp in all). Returns
    ``(j, poly)``: a loop over many values computes these without the table load, which keeps it vectorised."""
    j = np.int64(d * _EXP_STEPS)
    r = d - j * (1.0 / _EXP_STEPS)
    return j, 1.0 - r * (1.0 - r * (0.5 - r * (1.0 / 6.0 - r * (1.0 / 24.0 - r * (1.0 / 120.0 - r * (1.0 / 720.0))))))


@njit(inline="always", cache=True)
def exp_step(j):
    """exp(-j / 64), the table factor of :func:`exp_parts`."""
    return _EXP_TAB[j]


@njit(inline="always", cache=True)
def exp_neg_unit(d):
    """exp(-d) for d in [0, 1] (:func:`exp_parts`)."""
    j, poly = exp_parts(d)
    return exp_step(j) * poly


@njit(inline="always", cache=True)
def remainder_steps(d, v, p):
    """Poisson(d), d in [0, 1], by inversion of ``v`` as far as count 3, given ``p = exp_neg_unit(d)``: returns
    ``(k, cum, p)``, where k < 3 is the draw and k == 3 means the draw is >= 3 and continues in
    :func:`remainder_tail`."""
    cum = p
    k = np.float64(v > cum)
    p *= d
    cum += p
    k += v > cum
    p *= d * 0.5
    cum += p
    k += v > cum
    return k, cum, p


@njit(inline="always", cache=True)
def remainder_head(d, v):
    """:func:`remainder_steps` with its ``exp(-d)`` computed."""
    return remainder_steps(d, v, exp_neg_unit(d))


@njit(cache=True)
def remainder_tail(d, v, cum, p):
    """The inversion of :func:`remainder_head` from count 3 on (probability below d**3 / 6)."""
    k = 3
    while k < 1000:
        p *= d * _INV_INT[k - 1]
        cum += p
        if not v > cum:
            break
        k += 1
    return float(k)


@njit(inline="always", cache=True)
def remainder_draw(d, v):
    """Poisson(d) for d in [0, 1] by inversion of ``v`` (the head for all, the tail when needed)."""
    k, cum, p = remainder_head(d, v)
    if k == 3.0:
        k = remainder_tail(d, v, cum, p)
    return k


@njit(inline="always", cache=True)
def ptrs_constants(lam):
    """PTRS's ``a``, ``b`` and ``v_r`` for mean ``lam`` (Hoermann 1993, table 2)."""
    b = 0.931 + 2.53 * math.sqrt(lam)
    return -0.059 + 0.02483 * b, b, 0.9277 - 3.6224 / (b - 2.0)


@njit(inline="always", cache=True)
def ptrs_candidate(lam, a, b, uu, us):
    """PTRS's candidate count from ``uu = u - 1/2`` and ``us = 1/2 - |uu|``."""
    return math.floor((2.0 * a / us + b) * uu + lam + 0.43)


@njit(cache=True)
def poisson(lam, key, counter):
    """Exact Poisson(lam) draw using uniforms from ``counter`` upwards (at most 2**16 - 1 draws).

    Mean below TABLE_MAX (256): lam = lam0 + delta with lam0 on the table grid (``TABLE_GRID``),
    and Poisson(lam) = Poisson(lam0) + Poisson(delta) (independent): the first by inverting a
    precomputed CDF table through its guide table (one uniform), the second (delta < 1) by
    sequential inversion of a second uniform (:func:`remainder_draw`). From TABLE_MAX up: PTRS.
    """
    if lam <= 0.0:
        return 0.0
    if lam < TABLE_MAX:
        m = table_index(lam)
        delta = lam - table_mean(m)
        k = table_invert(m, uniform(key, counter))
        return float(k) + remainder_draw(delta, uniform(key, counter + np.uint64(1)))
    a, b, vr = ptrs_constants(lam)
    c = counter
    while True:
        uu = uniform(key, c) - 0.5
        v = uniform(key, c + np.uint64(1))
        c += np.uint64(2)
        us = 0.5 - abs(uu)
        k = ptrs_candidate(lam, a, b, uu, us)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        if math.log(v * invalpha / (a / (us * us) + b)) <= -lam + k * math.log(lam) - log_factorial(k):
            return k


@njit(inline="always", cache=True)
def log_factorial(k):
    """ln(k!) for integer-valued k >= 0: exact sum below 10, Stirling series with 3 corrections above
    (absolute error < 5e-11 there, below the precision the PTRS acceptance test needs)."""
    if k < 10.0:
        r = 0.0
        for i in range(2, int(k) + 1):
            r += math.log(i)
        return r
    z = k + 1.0
    iz = 1.0 / z
    iz2 = iz * iz
    return (z - 0.5) * math.log(z) - z + 0.9189385332046728 + iz * (1.0 / 12.0 - iz2 * (1.0 / 360.0 - iz2 / 1260.0))
