"""Counter-based random numbers for the numba kernels.

Every random draw is a pure function of ``(key, counter)``: the SplitMix64
output function (Steele, Lea, Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014) applied to ``key + counter * 0x9E3779B97F4A7C15``.
A kernel gives each pixel its own block of counters (pixel index << 16, plus
the draw number), so the value drawn for a pixel does not depend on which
thread computes it or in which order: output is bit-identical for any numba
thread count. Keys come from :class:`numpy.random.SeedSequence`.

Samplers here are exact methods driven by these uniforms: Poisson by table
inversion (mean < 64, see :func:`poisson`) and by PTRS transformed rejection (Hoermann, "The transformed
rejection method for generating Poisson random variables", Insurance:
Mathematics and Economics 12, 1993; the method numpy uses), Tukey-lambda by its
inverse CDF, and normals by Box-Muller.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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
    return (float(z >> _S12) + 0.5) * _TWO_M52


@njit(inline="always", cache=True)
def normal(key, counter):
    """Standard normal from two uniforms at ``counter`` and ``counter + 1`` (Box-Muller)."""
    u1 = uniform(key, counter)
    u2 = uniform(key, counter + np.uint64(1))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(inline="always", cache=True)
def tukey_lambda_standard(u, lam):
    """Inverse CDF of the standard Tukey-lambda law at ``u`` in (0, 1)."""
    if lam == 0.0:
        return math.log(u / (1.0 - u))
    # expm1 form: (u^lam - (1-u)^lam) / lam without cancellation for tiny |lam|
    return (math.expm1(lam * math.log(u)) - math.expm1(lam * math.log1p(-u))) / lam


TUKEY_LUT_SIZE = 8192
TUKEY_LUT_LO = 1.0 / 32.0  # the table covers u in [1/32, 31/32]; tails use the exact formula


def tukey_lambda_lut(lams) -> np.ndarray:
    """Per-channel tables of the standard Tukey-lambda inverse CDF on [1/32, 31/32], shape (len(lams), N + 2).

    Linear interpolation in these tables is within 5e-6 (standard units, shapes -0.15..0.2) of the exact quantile
    (tested); samples outside the table's range are computed exactly.
    """
    u = np.linspace(TUKEY_LUT_LO, 1.0 - TUKEY_LUT_LO, TUKEY_LUT_SIZE + 1)
    out = np.empty((len(lams), TUKEY_LUT_SIZE + 2))
    for i, lam in enumerate(lams):
        q = np.log(u / (1 - u)) if lam == 0 else (np.expm1(lam * np.log(u)) - np.expm1(lam * np.log1p(-u))) / lam
        out[i, :-1] = q
        out[i, -1] = q[-1]
    return out


@njit(inline="always", cache=True)
def tukey_lambda_fast(u, lam, lut, row):
    """Standard Tukey-lambda quantile at ``u``: lookup in table ``lut[row]`` in the centre, exact in the tails."""
    lo = TUKEY_LUT_LO
    if u < lo or u > 1.0 - lo:
        return tukey_lambda_standard(u, lam)
    pos = (u - lo) * (TUKEY_LUT_SIZE / (1.0 - 2.0 * lo))
    i = int(pos)
    f = pos - i
    a = lut[row, i]
    return a + f * (lut[row, i + 1] - a)


_INV_INT = 1.0 / np.arange(1, 1025, dtype=np.float64)
TABLE_STEPS = 4  # tabulated Poisson means on a grid of 1/4
TABLE_MAX = 64.0  # below this mean: table inversion; above: PTRS


def _poisson_tables():
    """CDF tables (with guide tables) of Poisson(m / TABLE_STEPS) for m = 0 .. TABLE_MAX * TABLE_STEPS - 1.

    Each table runs to mean + 12 sqrt(mean) + 16 (the mass beyond is < 1e-28) and is normalised to end at 1; ``guide[j]`` is the
    smallest k with cdf[k] >= j / length, so an inversion starts at most a step or two from its answer.
    """
    from math import lgamma

    n = int(TABLE_MAX * TABLE_STEPS)
    offs = np.zeros(n + 1, dtype=np.int64)
    cdfs, guides = [], []
    for m in range(n):
        lam0 = m / TABLE_STEPS
        length = int(lam0 + 12.0 * math.sqrt(lam0) + 16)
        k = np.arange(length, dtype=np.float64)
        if lam0 == 0.0:
            pmf = (k == 0).astype(np.float64)
        else:
            pmf = np.exp(-lam0 + k * math.log(lam0) - np.array([lgamma(v + 1.0) for v in k]))
        cdf = np.cumsum(pmf)
        cdf /= cdf[-1]  # the sum can end a few 1e-14 below 1; the mass beyond the table is < 1e-28
        cdf[-1] = 1.0
        guide = np.searchsorted(cdf, np.arange(length) / length, side="left")
        cdfs.append(cdf)
        guides.append(np.minimum(guide, length - 1))
        offs[m + 1] = offs[m] + length
    return np.concatenate(cdfs), np.concatenate(guides).astype(np.int64), offs


_CDF, _GUIDE, _OFFS = _poisson_tables()


@njit(inline="always", cache=True)
def _poisson_small(lam, u):
    """Poisson(lam) by sequential inversion of uniform ``u`` (for small lam)."""
    p = math.exp(-lam)
    u -= p
    k = 0
    while u > 0.0 and k < 1000:
        p *= lam * _INV_INT[k]
        k += 1
        u -= p
    return k


@njit(cache=True)
def poisson(lam, key, counter):
    """Exact Poisson(lam) draw using uniforms from ``counter`` upwards (at most 2**16 - 1 draws).

    Mean below 64: lam = lam0 + delta with lam0 on a 1/4 grid, and Poisson(lam) = Poisson(lam0) +
    Poisson(delta) (independent): the first by inverting a precomputed CDF table through its guide
    table (one uniform), the second by sequential inversion of a second uniform, skipped without
    any exp when that uniform is at most 1 - delta <= exp(-delta). Above 64: PTRS.
    """
    if lam <= 0.0:
        return 0.0
    if lam < TABLE_MAX:
        m = int(lam * TABLE_STEPS)
        delta = lam - m * (1.0 / TABLE_STEPS)
        u = uniform(key, counter)
        off = _OFFS[m]
        length = _OFFS[m + 1] - off
        k = _GUIDE[off + min(int(u * length), length - 1)]
        while _CDF[off + k] < u:  # terminates: the table's last entry is 1.0 > u
            k += 1
        v = uniform(key, counter + np.uint64(1))
        if v > 1.0 - delta:
            k += _poisson_small(delta, v)
        return float(k)
    slam = math.sqrt(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    vr = 0.9277 - 3.6224 / (b - 2.0)
    c = counter
    while True:
        uu = uniform(key, c) - 0.5
        v = uniform(key, c + np.uint64(1))
        c += np.uint64(2)
        us = 0.5 - abs(uu)
        k = math.floor((2.0 * a / us + b) * uu + lam + 0.43)
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
