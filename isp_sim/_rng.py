"""Counter-based random numbers for the numba kernels.

Every random draw is a pure function of ``(key, counter)``: the SplitMix64
output function (Steele, Lea, Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014) applied to ``key + counter * 0x9E3779B97F4A7C15``.
A kernel gives each pixel its own block of counters (pixel index << 16, plus
the draw number), so the value drawn for a pixel does not depend on which
thread computes it or in which order: output is bit-identical for any numba
thread count. Keys come from :class:`numpy.random.SeedSequence`.

Samplers here are exact methods driven by these uniforms: Poisson by inversion
(mean < 10) and by PTRS transformed rejection (Hoermann, "The transformed
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
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0
DRAW_BITS = 16  # draws available per pixel: 65536


@njit(inline="always", cache=True)
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always", cache=True)
def uniform(key, counter):
    """Uniform double in the open interval (0, 1) for ``(key, counter)`` (both uint64)."""
    z = mix64(key + counter * _GOLDEN)
    return (float(z >> _S11) + 0.5) * _TWO_M53


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
    # float32 powers: twice as fast, and far more precise than the integer DN the result is rounded to
    uf = np.float32(u)
    lf = np.float32(lam)
    return float((uf ** lf - (np.float32(1.0) - uf) ** lf) / lf)


@njit(cache=True)
def poisson(lam, key, counter):
    """Exact Poisson(lam) draw using uniforms from ``counter`` upwards (at most 2**16 - 1 draws)."""
    if lam <= 0.0:
        return 0.0
    if lam < 10.0:
        # inversion by sequential search
        u = uniform(key, counter)
        p = math.exp(-lam)
        f = p
        k = 0
        while u > f and k < 1000:
            k += 1
            p *= lam / k
            f += p
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
    (absolute error < 1e-12 there, below the precision the PTRS acceptance test needs)."""
    if k < 10.0:
        r = 0.0
        for i in range(2, int(k) + 1):
            r += math.log(i)
        return r
    z = k + 1.0
    iz = 1.0 / z
    iz2 = iz * iz
    return (z - 0.5) * math.log(z) - z + 0.9189385332046728 + iz * (1.0 / 12.0 - iz2 * (1.0 / 360.0 - iz2 / 1260.0))
