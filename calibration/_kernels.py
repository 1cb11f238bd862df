"""Numba kernels of the calibration's per-frame statistics: one pass over a frame's pixels each, no temporaries.

Each replaces a sequence of NumPy array operations (conversions to float64, strided slices, differences,
reductions) whose memory traffic dominated calibration time (a 12 MP dark: 223 ms for the residual statistics,
42 ms for the frame summary, 60 ms for a BLAKE2 digest; a flat pair: 190 ms for its tile statistics). Integer
sums are exact (int64), so the results equal the NumPy formulas up to the last float64 rounding; the tests
compare both. All kernels release the GIL (``--jobs`` threads run them in parallel).

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
    """Per channel: pixel sum and count; on every 4th row of each plane, the sum and sum of squares of
    horizontal same-channel neighbour differences and their count; pixels >= white; min; max; a 64-bit
    position-weighted hash of the pixel values (wrapping sum of value x odd weight(position): a duplicate-frame
    key; a match is confirmed by comparing the pixels)."""
    H, W = d.shape
    s = np.zeros(4, dtype=np.int64)
    n = np.zeros(4, dtype=np.int64)
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
        hr = np.uint64(0)
        for x in range(W):
            v = np.int64(row[x])
            if x & 1:
                s1 += v
            else:
                s0 += v
            sat += v >= wv
            lo = min(lo, v)
            hi = max(hi, v)
            hr += np.uint64(v) * (np.uint64(x) * _HASH_MUL | np.uint64(1))
        h += hr * _weight(y, 0)
        c0 = lut[y & 1, 0]
        c1 = lut[y & 1, 1]
        s[c0] += s0
        s[c1] += s1
        n[c0] += (W + 1) // 2
        n[c1] += W // 2
        if (y >> 1) % 4 == 0:  # plane rows 0, 4, 8, ... of each plane
            for x in range(W - 2):
                e = np.int64(row[x + 2]) - np.int64(row[x])
                c = c1 if x & 1 else c0
                ds[c] += e
                ds2[c] += e * e
                dn[c] += 1
    return s, n, ds, ds2, dn, sat, lo, hi, h


@njit(cache=True, nogil=True)
def add_frame(acc, frame):
    """``acc += frame`` (float64 accumulator, integer frame) without a float64 copy of the frame."""
    H, W = frame.shape
    for y in range(H):
        for x in range(W):
            acc[y, x] += frame[y, x]


@njit(cache=True, nogil=True)
def dark_residuals(frame, ref, lut, rows, ss):
    """Residuals ``frame - ref`` minus each row's mean: writes the row means into ``rows`` (H,) and adds each
    channel's sum of squared residuals into ``ss`` (4,). One pass per row: with v = frame - ref and the row
    mean m, sum (v - m)^2 over a channel's n pixels of the row = sum v^2 - 2 m sum v + n m^2 (v is a few DN,
    m a fraction of it, so nothing cancels)."""
    H, W = frame.shape
    for y in range(H):
        fr = frame[y]
        rr = ref[y]
        a0 = 0.0
        a1 = 0.0
        q0 = 0.0
        q1 = 0.0
        for x in range(0, W - 1, 2):
            v0 = fr[x] - rr[x]
            v1 = fr[x + 1] - rr[x + 1]
            a0 += v0
            a1 += v1
            q0 += v0 * v0
            q1 += v1 * v1
        n0 = W // 2
        if W & 1:
            v0 = fr[W - 1] - rr[W - 1]
            a0 += v0
            q0 += v0 * v0
            n0 += 1
        n1 = W // 2
        m = (a0 + a1) / W
        rows[y] = m
        ss[lut[y & 1, 0]] += q0 - 2.0 * m * a0 + n0 * m * m
        ss[lut[y & 1, 1]] += q1 - 2.0 * m * a1 + n1 * m * m


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
