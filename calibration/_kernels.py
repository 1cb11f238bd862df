"""Numba kernels of the calibration's per-frame statistics: one pass over a frame's pixels each, no temporaries.

Each replaces a sequence of NumPy array operations (conversions to float64, strided slices, differences,
reductions) whose memory traffic dominated calibration time (a 12 MP dark: 223 ms for the residual statistics,
now sums the frame summary takes on its way, 42 ms for the frame summary, 60 ms for a BLAKE2 digest; a flat
pair: 190 ms for its tile statistics). Integer sums are exact (int64), so the results equal the NumPy formulas
up to the last float64 rounding; the tests compare both. All kernels release the GIL (``--jobs`` threads run
them in parallel).

Bayer planes: ``lut[y & 1, x & 1]`` is the channel index (R, Gr, Gb, B order of :func:`_planes`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio multiplier (Knuth); odd, so x -> x * K is a bijection


def plane_lut(planes) -> np.ndarray:
    """(2, 2) int64 table: the channel index of each (row parity, column parity)."""
    lut = np.zeros((2, 2), dtype=np.int64)
    for c, (i, j) in enumerate(planes):
        lut[i, j] = c
    return lut


@njit(cache=True, nogil=True, inline="always")
def _weight(y, x):
    """The hash weight of pixel (y, x): an odd 64-bit number that differs for every position."""
    return ((np.uint64(y) << np.uint64(32)) + np.uint64(x) + np.uint64(1)) * _HASH_MUL | np.uint64(1)


@njit(cache=True, nogil=True)
def frame_summary(d, lut, white):
    """Per channel: pixel sum, sum of squares and count; per row, the sums of its even and odd columns (the
    dark statistics' row means, :class:`calibration.estimators.DarkAccumulator`); on every 4th row of each
    plane, the sum and sum of squares of horizontal same-channel neighbour differences and their count; pixels >= white; min; max; a 64-bit
    position-weighted hash of the pixel values (wrapping sum of value x odd weight(position): a duplicate-frame
    key; a match is confirmed by comparing the pixels)."""
    H, W = d.shape
    s = np.zeros(4, dtype=np.int64)
    sq = np.zeros(4, dtype=np.int64)
    n = np.zeros(4, dtype=np.int64)
    rowsum = np.zeros((H, 2), dtype=np.int64)
    ds = np.zeros(4, dtype=np.int64)
    ds2 = np.zeros(4, dtype=np.int64)
    dn = np.zeros(4, dtype=np.int64)
    sat = 0
    lo = np.int64(d[0, 0])
    hi = np.int64(d[0, 0])
    h = np.uint64(0)
    wv = np.int64(white)
    for y in range(H):
        row = d[y]
        s0 = np.int64(0)
        s1 = np.int64(0)
        q0 = np.int64(0)
        q1 = np.int64(0)
        hr = np.uint64(0)
        for x in range(W):
            v = np.int64(row[x])
            if x & 1:
                s1 += v
                q1 += v * v
            else:
                s0 += v
                q0 += v * v
            sat += v >= wv
            lo = min(lo, v)
            hi = max(hi, v)
            hr += np.uint64(v) * (np.uint64(x) * _HASH_MUL | np.uint64(1))
        h += hr * _weight(y, 0)
        c0 = lut[y & 1, 0]
        c1 = lut[y & 1, 1]
        s[c0] += s0
        s[c1] += s1
        sq[c0] += q0
        sq[c1] += q1
        rowsum[y, 0] = s0
        rowsum[y, 1] = s1
        n[c0] += (W + 1) // 2
        n[c1] += W // 2
        if (y >> 1) % 4 == 0:  # plane rows 0, 4, 8, ... of each plane
            for x in range(W - 2):
                e = np.int64(row[x + 2]) - np.int64(row[x])
                c = c1 if x & 1 else c0
                ds[c] += e
                ds2[c] += e * e
                dn[c] += 1
    return s, sq, n, rowsum, ds, ds2, dn, sat, lo, hi, h


@njit(cache=True, nogil=True)
def add_frame(acc, frame):
    """``acc += frame`` (a uint32 or float64 accumulator, an integer frame) without a converted copy of the frame."""
    H, W = frame.shape
    for y in range(H):
        for x in range(W):
            acc[y, x] += frame[y, x]


@njit(cache=True, nogil=True, inline="always")
def _mix64(z):
    """SplitMix64's output function (Steele, Lea and Flood 2014): a bijection of 64-bit integers whose outputs for
    consecutive inputs pass BigCrush (the counter-based generator of :func:`sample_index`)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


SAMPLE_RUN = 64  # pixels per run of the dark-residual sample (a run is contiguous in its plane's row)


@njit(cache=True, nogil=True)
def sample_index(stream, k, size):
    """The first ``k`` of a stream of positions in ``[0, size)`` (a plane's pixels in row-major order): runs of
    :data:`SAMPLE_RUN` consecutive positions whose starts are uniform, the start of run ``r`` being the top bits of
    ``_mix64(stream + (r + 1) * golden)`` scaled to ``size`` (multiply-shift; the bias is below size / 2^32;
    positions past the plane's end wrap). Runs keep the gather streaming (random single pixels of a 12 MP frame
    cost a cache miss each); the first ``k`` of a longer draw are the draw of ``k``."""
    out = np.empty(k, dtype=np.int64)
    sz = np.uint64(size)
    start = np.int64(0)
    for m in range(k):
        r = m // SAMPLE_RUN
        if m % SAMPLE_RUN == 0:
            z = _mix64(np.uint64(stream) + np.uint64(r + 1) * _HASH_MUL)
            start = np.int64(((z >> np.uint64(32)) * sz) >> np.uint64(32))
        out[m] = (start + m % SAMPLE_RUN) % size
    return out


@njit(cache=True, nogil=True)
def gather_samples(frame, i, j, wc, stream, k, size):
    """``frame[i + 2 (p // wc), j + 2 (p % wc)]`` for the first ``k`` positions ``p`` of :func:`sample_index`."""
    idx = sample_index(stream, k, size)
    out = np.empty(k, dtype=frame.dtype)
    for m in range(k):
        p = idx[m]
        out[m] = frame[i + 2 * (p // wc), j + 2 * (p % wc)]
    return out


@njit(cache=True, nogil=True)
def dark_sum_stats(S, n, lut):
    """From the per-pixel sum ``S`` of ``n`` dark frames, without a float64 mean frame: per channel the sum of the
    mean frame ``M = S / n``, the sum of ``S^2``, and the sum and sum of squares of the fixed pattern
    ``M - (its row's mean)``; per row the sums of ``M`` over even and odd columns ``(H, 2)``."""
    H, W = S.shape
    msum = np.zeros(4)
    s2 = np.zeros(4)
    fsum = np.zeros(4)
    fsq = np.zeros(4)
    rho = np.zeros((H, 2))
    for y in range(H):  # per-row partial sums, then the rows': the rounding error stays ~ (W + H) ulp
        row = S[y]
        t = 0.0
        for x in range(W):
            t += row[x]
        rmean = t / n / W
        m0 = m1 = q0 = q1 = f0 = f1 = g0 = g1 = 0.0
        for x in range(0, W - 1, 2):
            v = np.float64(row[x])
            u = np.float64(row[x + 1])
            m0 += v
            m1 += u
            q0 += v * v
            q1 += u * u
            f = v / n - rmean
            e = u / n - rmean
            f0 += f
            f1 += e
            g0 += f * f
            g1 += e * e
        if W & 1:
            v = np.float64(row[W - 1])
            m0 += v
            q0 += v * v
            f = v / n - rmean
            f0 += f
            g0 += f * f
        c0 = lut[y & 1, 0]
        c1 = lut[y & 1, 1]
        msum[c0] += m0 / n
        msum[c1] += m1 / n
        s2[c0] += q0
        s2[c1] += q1
        fsum[c0] += f0
        fsum[c1] += f1
        fsq[c0] += g0
        fsq[c1] += g1
        rho[y, 0] = m0 / n
        rho[y, 1] = m1 / n
    return msum, s2, fsum, fsq, rho


@njit(cache=True, nogil=True)
def pair_difference(a, b, lut):
    """Per channel: sum, sum of squares and count of ``a - b`` (exact integers)."""
    H, W = a.shape
    s = np.zeros(4, dtype=np.int64)
    s2 = np.zeros(4, dtype=np.int64)
    n = np.zeros(4, dtype=np.int64)
    for y in range(H):
        ra = a[y]
        rb = b[y]
        e0 = np.int64(0)
        e1 = np.int64(0)
        f0 = np.int64(0)
        f1 = np.int64(0)
        for x in range(W):
            e = np.int64(ra[x]) - np.int64(rb[x])
            if x & 1:
                e1 += e
                f1 += e * e
            else:
                e0 += e
                f0 += e * e
        c0 = lut[y & 1, 0]
        c1 = lut[y & 1, 1]
        s[c0] += e0
        s2[c0] += f0
        n[c0] += (W + 1) // 2
        s[c1] += e1
        s2[c1] += f1
        n[c1] += W // 2
    return s, s2, n


@njit(cache=True, nogil=True)
def pair_tiles(a, b, i, j, t, ty, tx, white):
    """Tiles of ``t`` x ``t`` pixels of the plane ``[i::2, j::2]`` of a flat pair: per tile the sum of ``a + b``,
    the sum and sum of squares of ``a - b`` (exact integers) and whether any pixel of either frame is >= white."""
    ssum = np.zeros((ty, tx), dtype=np.int64)
    dsum = np.zeros((ty, tx), dtype=np.int64)
    dsq = np.zeros((ty, tx), dtype=np.int64)
    clip = np.zeros((ty, tx), dtype=np.bool_)
    for Y in range(ty):
        for yy in range(t):
            y = i + 2 * (Y * t + yy)
            for X in range(tx):
                s_ = np.int64(0)
                d_ = np.int64(0)
                q_ = np.int64(0)
                c_ = False
                for xx in range(t):
                    x = j + 2 * (X * t + xx)
                    av = np.int64(a[y, x])
                    bv = np.int64(b[y, x])
                    s_ += av + bv
                    e = av - bv
                    d_ += e
                    q_ += e * e
                    if av >= white or bv >= white:
                        c_ = True
                ssum[Y, X] += s_
                dsum[Y, X] += d_
                dsq[Y, X] += q_
                if c_:
                    clip[Y, X] = True
    return ssum, dsum, dsq, clip
