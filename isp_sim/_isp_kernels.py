"""Fused numba kernels for the colour stages of unprocess and process.

Transfer codes: 0 = power-law gamma, 1 = sRGB, 2 = linear. Each kernel works
per pixel with no cross-pixel reductions, so results do not depend on the
numba thread count.

Transfer functions run through lookup tables with linear interpolation
(:func:`decode_lut`, :func:`encode_table`) because a ``pow`` per sample
dominated the pipeline. Decoding (``x ** 2.2``, sRGB) is smooth on [0, 1] and
tabulated uniformly (8192 intervals); encoding (``x ** (1/2.2)``) has an
infinite slope at 0, so it is tabulated over the float32 bit pattern of x
(1024 segments per binade). The largest error against the exact functions is
below 1e-6 (tested), far below float32 image precision needs and the
8/16-bit outputs. The smoothstep
tone curve's inverse is evaluated exactly (its slope is infinite at both ends).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._parallel import BLOCKS, ROWS, chunked


LUT_SIZE = 8192


def decode_lut(code: int, gamma: float) -> np.ndarray:
    """Table of display -> linear at ``i / LUT_SIZE`` (exact functions, float64)."""
    x = np.linspace(0.0, 1.0, LUT_SIZE + 1)
    if code == 0:
        y = x ** gamma
    elif code == 1:
        y = np.where(x <= 12.92 * 0.0031308, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    else:
        y = x
    return np.concatenate([y, y[-1:]])


ENCODE_SHIFT = 13  # float32 mantissa bits below a segment: 2**10 segments per binade
ONE_F32_BITS = 0x3F800000


def encode_table(code: int, gamma: float) -> np.ndarray:
    """Table of linear -> display (float32) at the float32 values with bits ``j << ENCODE_SHIFT``.

    Indexing by the IEEE bits of the input gives 1024 segments per binade over every float32 in
    [0, 1] (denormals included), i.e. a spacing relative to x that follows ``x ** (1 / gamma)`` down to
    0, where its slope is infinite; linear interpolation is within 1.5e-7 of the exact function
    (tested), with no ``pow`` or ``sqrt`` per sample.
    """
    n = (ONE_F32_BITS >> ENCODE_SHIFT) + 2
    bits = (np.arange(n, dtype=np.uint64) << ENCODE_SHIFT).astype(np.uint32)
    x = np.minimum(bits.view(np.float32).astype(np.float64), 1.0)
    if code == 0:
        y = x ** (1.0 / gamma)
    elif code == 1:
        y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    else:
        y = x
    return y.astype(np.float32)


@njit(inline="always", cache=True)
def _interp(lut, pos):
    i = np.uint64(pos)  # pos >= 0; an unsigned index skips numba's negative-index wraparound
    f = pos - float(i)
    a = lut[i]
    return a + f * (lut[i + np.uint64(1)] - a)


@njit(inline="always", cache=True)
def _decode_fast(v, lut, tone):
    v = v if v > 0.0 else 0.0  # also NaN -> 0: the table index stays in range whatever the input
    v = v if v < 1.0 else 1.0
    if tone:
        v = 0.5 - math.sin(math.asin(1.0 - 2.0 * v) / 3.0)
    return _interp(lut, v * (lut.shape[0] - 2))


@chunked(BLOCKS)
@njit(cache=True, parallel=True)
def count_outside_unit(bits):
    """Number of float32 values (given as their uint32 bits) that are not in [0, 1]: NaN, inf,
    negative or above 1. Integer compares only (a vectorised reduction): for a float32 with the sign
    bit clear, bits <= bits(1.0) exactly when 0 <= value <= 1; -0.0 is the one allowed value with
    the sign bit set."""
    n = bits.shape[0]
    chunk = 1 << 16
    nt = (n + chunk - 1) // chunk
    counts = np.zeros(nt, np.int64)
    for t in prange(nt):
        # a slice from 0: LLVM vectorises the loop (2.0 -> 0.6 ms per 3 M values in cache, one thread)
        counts[t] = _count_outside_unit(bits[t * chunk:min(n, (t + 1) * chunk)])
    return counts.sum()


@njit(inline="always", cache=True)
def _count_outside_unit(part):
    one = np.uint32(0x3F800000)
    neg_zero = np.uint32(0x80000000)
    c = np.int32(0)
    for i in range(part.shape[0]):
        b = part[i]
        c += np.int32(b > one) - np.int32(b == neg_zero)
    return c


@njit(inline="always", cache=True)
def _unprocess_sites_ccm(img, y, x0, p, g, s, black, ccm_inv, lut, tone, orow):
    """The sites ``x0, x0 + 2, ...`` of mosaic row ``y`` (all of plane ``p``) through the inverse CCM: one loop per
    CFA site of the row, with its constants hoisted, so that it vectorises."""
    for x in range(x0, orow.shape[0], 2):
        v = 0.0
        for j in range(3):
            v += ccm_inv[p, j] * _decode_fast(float(img[y, x, j]), lut, tone)
        orow[x] = v * g * s + black


@chunked(ROWS)
@njit(cache=True, parallel=True)
def unprocess_mosaic(img, planes, cmap, inv_wb, ccm_inv, use_ccm, lut, tone, black, scale, out, bits):
    """sRGB (H, W, 3) -> clean mosaic in DN (black included), only the sampled plane computed.

    ``bits``: None, or the image's float32 values as uint32 ``(H, 3 W)``; then the number of values outside
    [0, 1] (NaN included) is returned, counted row by row while the row is in cache (instead of a pass of
    its own over the image before), else 0. Such values are clamped into [0, 1] (NaN to 0) meanwhile.
    """
    h, w = out.shape
    bad = np.zeros(h, np.int64)
    for y in prange(h):
        if bits is not None:
            bad[y] = _count_outside_unit(bits[y])
        if use_ccm:
            for x0 in range(2):
                p, c = planes[y & 1, x0], cmap[y & 1, x0]
                _unprocess_sites_ccm(img, y, x0, p, inv_wb[p], scale[c], black[c], ccm_inv, lut, tone, out[y])
        else:  # both sites of a column pair in one loop: it reads the row's pixels in order
            p0, c0, p1, c1 = planes[y & 1, 0], cmap[y & 1, 0], planes[y & 1, 1], cmap[y & 1, 1]
            if tone:  # a literal flag: its test leaves the loop
                _unprocess_pairs(img[y], p0, inv_wb[p0], scale[c0], black[c0], p1, inv_wb[p1], scale[c1], black[c1],
                                 lut, True, out[y])
            else:
                _unprocess_pairs(img[y], p0, inv_wb[p0], scale[c0], black[c0], p1, inv_wb[p1], scale[c1], black[c1],
                                 lut, False, out[y])
    return bad.sum()


@njit(inline="always", cache=True)
def _unprocess_pairs(row, p0, g0, s0, b0, p1, g1, s1, b1, lut, tone, orow):
    """:func:`_unprocess_sites_ccm` without a CCM, both CFA sites of a mosaic row column pair by column pair."""
    w = orow.shape[0]
    for k in range(w // 2):
        orow[2 * k] = _decode_fast(float(row[2 * k, p0]), lut, tone) * g0 * s0 + b0
        orow[2 * k + 1] = _decode_fast(float(row[2 * k + 1, p1]), lut, tone) * g1 * s1 + b1
    if w & 1:
        orow[w - 1] = _decode_fast(float(row[w - 1, p0]), lut, tone) * g0 * s0 + b0


@chunked(ROWS)
@njit(cache=True, parallel=True)
def unprocess_planes(img, inv_wb, ccm_inv, use_ccm, lut, tone, black3, scale3, out):
    """sRGB (H, W, 3) -> clean (H, W, 3) camera RGB in DN, black included (no mosaic)."""
    h, w, _ = img.shape
    for y in prange(h):
        lin = np.empty(3)
        for x in range(w):
            for j in range(3):
                lin[j] = _decode_fast(float(img[y, x, j]), lut, tone)
            for p in range(3):
                if use_ccm:
                    v = ccm_inv[p, 0] * lin[0] + ccm_inv[p, 1] * lin[1] + ccm_inv[p, 2] * lin[2]
                else:
                    v = lin[p]
                out[y, x, p] = v * inv_wb[p] * scale3[p] + black3[p]


@njit(inline="always", cache=True)
def _normalized(v, black, inv_range, g):
    """One raw value -> black-subtracted, normalised, white-balanced, clipped at 1 (float64)."""
    v = (float(v) - black) * inv_range * g
    return 1.0 if v > 1.0 else v


@chunked(ROWS)
@njit(cache=True, parallel=True)
def normalize_mosaic(raw, cmap, planes, black, inv_range, wb, out):
    """Mosaic DN -> black-subtracted, normalised, white-balanced float32, highlights clipped at 1."""
    h, w = raw.shape
    for y in prange(h):
        for x in range(w):
            c = cmap[y & 1, x & 1]
            out[y, x] = _normalized(raw[y, x], black[c], inv_range[c], wb[planes[y & 1, x & 1]])


@chunked(ROWS)
@njit(cache=True, parallel=True)
def normalize_planar(raw, cmap, planes, black, inv_range, wb, out):
    """:func:`normalize_mosaic` into the rows' even and odd columns as half rows, ``out[y, p, k]`` for column
    ``2 k + p`` (Menon 2007's :func:`~isp_sim.demosaic.menon2007.planar` layout; the slot past an odd width's last
    odd column is 0): both columns of a pair in one loop, which vectorises."""
    h, w = raw.shape
    wc = out.shape[2]
    for y in prange(h):
        c0, c1 = cmap[y & 1, 0], cmap[y & 1, 1]
        b0, s0, g0 = black[c0], inv_range[c0], wb[planes[y & 1, 0]]
        b1, s1, g1 = black[c1], inv_range[c1], wb[planes[y & 1, 1]]
        src, e, o = raw[y], out[y, 0], out[y, 1]
        for k in range(w // 2):
            e[k] = _normalized(src[2 * k], b0, s0, g0)
            o[k] = _normalized(src[2 * k + 1], b1, s1, g1)
        if w & 1:
            e[wc - 1] = _normalized(src[w - 1], b0, s0, g0)
            o[wc - 1] = 0.0


@chunked(ROWS)
@njit(cache=True, parallel=True)
def normalize_planes(raw, black3, inv_range3, wb, out):
    h, w, _ = raw.shape
    for y in prange(h):
        for x in range(w):
            for p in range(3):
                v = (float(raw[y, x, p]) - black3[p]) * inv_range3[p] * wb[p]
                if v > 1.0:
                    v = 1.0
                out[y, x, p] = v


@chunked(ROWS)
@njit(cache=True, parallel=True)
def apply_ccm(rgb, ccm, out):
    """out = rgb @ ccm.T per pixel (camera RGB -> linear sRGB)."""
    h, w, _ = rgb.shape
    for y in prange(h):
        _ccm_row(rgb[y], ccm, out[y])


@njit(inline="always", cache=True)
def _ccm_row(src, ccm, dst):
    for x in range(src.shape[0]):
        r = float(src[x, 0])
        g = float(src[x, 1])
        b = float(src[x, 2])
        for p in range(3):
            dst[x, p] = ccm[p, 0] * r + ccm[p, 1] * g + ccm[p, 2] * b


@chunked(ROWS)
@njit(cache=True, parallel=True)
def finish(rgb, table, tone, out):
    """Linear RGB -> display: clip to [0, 1], transfer via :func:`encode_table`, tone curve; float32 math."""
    n = rgb.size
    h = rgb.shape[0]
    src = rgb.reshape(n).view(np.uint32)
    dst = out.reshape(n)
    m = n // h
    for y in prange(h):
        # row slices from 0 and the tone test outside the loops: LLVM vectorises them (4x)
        _finish_span(src[y * m:(y + 1) * m], dst[y * m:(y + 1) * m], table, tone)


@njit(inline="always", cache=True)
def _finish_span(s, d, table, tone):
    """:func:`finish` of the float32 values with bits ``s`` into ``d`` (1-D, from index 0)."""
    if tone:
        for i in range(s.shape[0]):
            d[i] = display_value(s[i], table, True)
    else:
        for i in range(s.shape[0]):
            d[i] = display_value(s[i], table, False)


@njit(inline="always", cache=True)
def display_value(b, table, tone):
    """:func:`finish` of one float32 given as its bits ``b`` (uint32): clip, transfer, tone curve."""
    v = _encode(b, table, np.uint32(ONE_F32_BITS), np.uint32(0x80000000), np.uint32((1 << ENCODE_SHIFT) - 1),
                np.uint32(ENCODE_SHIFT), np.float32(1.0 / (1 << ENCODE_SHIFT)))
    if tone:
        v = v * v * (np.float32(3.0) - np.float32(2.0) * v)
    return v


# Note for editors: post_row and display_value (with _ccm_row, _finish_span and _encode) are inlined into Menon 2007's
# row kernel (isp_sim/demosaic/menon2007.py: _red_blue), and numba's on-disk cache only watches the file that defines a
# kernel: after changing them, touch menon2007.py (or delete its __pycache__) so that it is recompiled.
@njit(inline="always", cache=True)
def post_row(o, ccm, use_ccm, table, tone):
    """:func:`apply_ccm` (if ``use_ccm``) then :func:`finish` of one C-contiguous ``(W, 3)`` float32 row, in place:
    for a demosaicer to run on each output row while it is in cache (same values as the two whole-image passes)."""
    if use_ccm:
        _ccm_row(o, ccm, o)
    flat = o.reshape(o.size)
    _finish_span(flat.view(np.uint32), flat, table, tone)


@njit(inline="always", cache=True)
def _encode(b, table, one_bits, sign_bits, mask, shift, frac):
    """:func:`encode_table` at the float32 with bits ``b``, clipped to [0, 1] (sign bit set -> 0; above 1, +inf
    and NaN -> 1)."""
    b = min(b, one_bits) if b < sign_bits else np.uint32(0)
    j = b >> shift
    a = table[j]
    return a + np.float32(b & mask) * frac * (table[j + np.uint32(1)] - a)
