"""Controls for the thread table of bench_degrade: what the machine itself gives a second thread in the same window.

``compute``: 64 independent dependent-sqrt chains (no memory traffic); ``triad``: ``a = b + s * c`` over three
32 MB float64 arrays (beyond a 32 MB L3 together: the memory bandwidth). Both run in the benchmark's child after its
degrades, on the same thread count, so a window where the degrades scale badly shows whether the machine did too.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def _compute(out, n):
    for i in prange(out.size):
        s = 0.0
        for j in range(n):
            s += np.sqrt(j + s)
        out[i] = s


@njit(cache=True, parallel=True)
def _triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


def control_ms(repeat: int = 5) -> dict:
    """Median milliseconds of the compute loop and of the triad (after one warm-up call each)."""
    out = np.zeros(64)
    a, b, c = (np.full(4 << 20, v) for v in (0.0, 1.0, 2.0))
    res = {}
    for name, call in (("compute_ms", lambda: _compute(out, 40000)), ("triad_ms", lambda: _triad(a, b, c, 0.5))):
        call()
        ts = []
        for _ in range(repeat):
            t = time.perf_counter()
            call()
            ts.append(time.perf_counter() - t)
        res[name] = 1e3 * statistics.median(ts)
    return res
