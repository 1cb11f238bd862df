"""Fused numba kernels for the colour stages of unprocess and process.

Transfer codes: 0 = power-law gamma, 1 = sRGB, 2 = linear. Each kernel works
per pixel with no cross-pixel reductions, so results do not depend on the
numba thread count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True)
def _decode(v, code, gamma, tone):
    # display -> linear: inverse tone curve, then inverse transfer
    if v < 0.0:
        v = 0.0
    if tone:
        if v > 1.0:
            v = 1.0
        v = 0.5 - math.sin(math.asin(1.0 - 2.0 * v) / 3.0)
    if code == 0:
        return v ** gamma
    if code == 1:
        if v <= 0.040449936:  # 12.92 * 0.0031308: the exact image of the encode breakpoint
            return v / 12.92
        return ((v + 0.055) / 1.055) ** 2.4
    return v


@njit(inline="always", cache=True)
def _encode(v, code, inv_gamma, tone):
    # linear -> display: transfer, then tone curve (input already clipped to [0, 1])
    if code == 0:
        v = v ** inv_gamma
    elif code == 1:
        if v <= 0.0031308:
            v = 12.92 * v
        else:
            v = 1.055 * v ** (1.0 / 2.4) - 0.055
    if tone:
        v = v * v * (3.0 - 2.0 * v)
    return v


@njit(cache=True, parallel=True)
def unprocess_mosaic(img, planes, cmap, inv_wb, ccm_inv, use_ccm, code, gamma, tone, black, scale, out):
    """sRGB (H, W, 3) -> clean mosaic in DN (black included), only the sampled plane computed."""
    h, w = out.shape
    for y in prange(h):
        for x in range(w):
            p = planes[y & 1, x & 1]
            c = cmap[y & 1, x & 1]
            if use_ccm:
                v = 0.0
                for j in range(3):
                    v += ccm_inv[p, j] * _decode(float(img[y, x, j]), code, gamma, tone)
            else:
                v = _decode(float(img[y, x, p]), code, gamma, tone)
            out[y, x] = v * inv_wb[p] * scale[c] + black[c]


@njit(cache=True, parallel=True)
def unprocess_planes(img, inv_wb, ccm_inv, use_ccm, code, gamma, tone, black3, scale3, out):
    """sRGB (H, W, 3) -> clean (H, W, 3) camera RGB in DN, black included (no mosaic)."""
    h, w, _ = img.shape
    for y in prange(h):
        lin = np.empty(3)
        for x in range(w):
            for j in range(3):
                lin[j] = _decode(float(img[y, x, j]), code, gamma, tone)
            for p in range(3):
                if use_ccm:
                    v = ccm_inv[p, 0] * lin[0] + ccm_inv[p, 1] * lin[1] + ccm_inv[p, 2] * lin[2]
                else:
                    v = lin[p]
                out[y, x, p] = v * inv_wb[p] * scale3[p] + black3[p]


@njit(cache=True, parallel=True)
def normalize_mosaic(raw, cmap, planes, black, inv_range, wb, out):
    """Mosaic DN -> black-subtracted, normalised, white-balanced float32, highlights clipped at 1."""
    h, w = raw.shape
    for y in prange(h):
        for x in range(w):
            c = cmap[y & 1, x & 1]
            v = (float(raw[y, x]) - black[c]) * inv_range[c] * wb[planes[y & 1, x & 1]]
            if v > 1.0:
                v = 1.0
            out[y, x] = v


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


@njit(cache=True, parallel=True)
def finish(rgb, ccm, use_ccm, code, inv_gamma, tone, out):
    """Camera RGB (white-balanced, linear) -> display: CCM, clip to [0, 1], transfer, tone curve."""
    h, w, _ = rgb.shape
    for y in prange(h):
        for x in range(w):
            r = float(rgb[y, x, 0])
            g = float(rgb[y, x, 1])
            b = float(rgb[y, x, 2])
            for p in range(3):
                if use_ccm:
                    v = ccm[p, 0] * r + ccm[p, 1] * g + ccm[p, 2] * b
                elif p == 0:
                    v = r
                elif p == 1:
                    v = g
                else:
                    v = b
                if v < 0.0:
                    v = 0.0
                elif v > 1.0:
                    v = 1.0
                out[y, x, p] = _encode(v, code, inv_gamma, tone)
