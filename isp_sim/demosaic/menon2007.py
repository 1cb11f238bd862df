"""
DDFAPD - Menon (2007) Bayer CFA demosaicing
===========================================

Demosaicing with directional filtering and a posteriori decision: green is
interpolated both horizontally and vertically (with the paper's 5-tap
filter), the direction whose colour differences vary less over a small
window is kept, red and blue follow from the green plane, and an optional
refining step smooths the colour differences along the chosen direction.
Equivalent to colour-demosaicing's ``demosaicing_CFA_Bayer_Menon2007``,
including at the border.

References
----------
Menon, D., Andriani, S., & Calvagno, G. (2007). Demosaicing with directional
filtering and a posteriori decision. IEEE Transactions on Image Processing,
16(1), 132-141. doi:10.1109/TIP.2006.884928
"""

from __future__ import annotations

import numpy as np
import numpy.typing  # noqa: F401  (np.typing in the signatures)
from numba import njit, prange

from ..errors import InputTypeError
from ._common import as_cfa_float32, pattern_map, row_layout, umirror

__all__ = ["demosaicing_CFA_Bayer_Menon2007"]

# Layout of the scratch arrays: values that exist only at the R/B sites of a
# row are stored "compact", column j at index j >> 1 (there is one R/B site
# per column pair in every row, since green sites form a checkerboard).
# Kernels index with unsigned integers (see _common.umirror); ``si``/``jj``
# are the signed copies used for index arithmetic that can go negative.


@njit(cache=True, parallel=True)
def _directional_differences(x, cmap, ch, cv):  # pragma: no cover - compiled
    """Colour differences x - G_H and x - G_V at R/B sites (float64, compact)."""
    h, w = x.shape
    one = np.uint64(1)
    for i in prange(h):
        si = np.int64(i)
        iu = np.uint64(i)
        im2 = umirror(si - 2, h)
        im1 = umirror(si - 1, h)
        ip1 = umirror(si + 1, h)
        ip2 = umirror(si + 2, h)
        goff, _ = row_layout(cmap, si)
        for jj in range(1 - goff, w, 2):
            j = np.uint64(jj)
            jm2 = umirror(jj - 2, w)
            jm1 = umirror(jj - 1, w)
            jp1 = umirror(jj + 1, w)
            jp2 = umirror(jj + 2, w)
            c = np.float64(x[iu, j])
            # h0 = [0, 1/2, 0, 1/2, 0] plus h1 = [-1/4, 0, 1/2, 0, -1/4]
            g_h = 0.5 * (np.float64(x[iu, jm1]) + x[iu, jp1]) + 0.25 * ((c - x[iu, jm2]) + (c - x[iu, jp2]))
            g_v = 0.5 * (np.float64(x[im1, j]) + x[ip1, j]) + 0.25 * ((c - x[im2, j]) + (c - x[ip2, j]))
            ch[iu, j >> one] = c - g_h
            cv[iu, j >> one] = c - g_v


@njit(cache=True, parallel=True)
def _gradients(ch, cv, cmap, w, dh, dv):  # pragma: no cover - compiled
    """D_H = |C_H(i, j) - C_H(i, j + 2)|, D_V = |C_V(i, j) - C_V(i + 2, j)| (mirrored).

    ``dh`` and ``dv`` are compact with a zero frame: site (i, j) lives at
    ``[i + 2, (j >> 1) + 1]``; the caller zeroes them, so every slot without a
    site (the frame, the last slot of short rows) stays 0.
    """
    h = ch.shape[0]
    one = np.uint64(1)
    two = np.uint64(2)
    for i in prange(h):
        si = np.int64(i)
        iu = np.uint64(i)
        ip2 = umirror(si + 2, h)
        goff, _ = row_layout(cmap, si)
        for jj in range(1 - goff, w, 2):
            k = np.uint64(jj) >> one
            dh[iu + two, k + one] = abs(ch[iu, k] - ch[iu, umirror(jj + 2, w) >> one])
            dv[iu + two, k + one] = abs(cv[iu, k] - cv[ip2, k])


@njit(cache=True, parallel=True)
def _decide(x, cmap, ch, cv, dh, dv, g1, hmask):  # pragma: no cover - compiled
    """Classifier sums d_H, d_V (zero outside the image); keep G_H where d_V >= d_H, else G_V."""
    h, w = x.shape
    one = np.uint64(1)
    two = np.uint64(2)
    for i in prange(h):
        iu = np.uint64(i)
        goff, _ = row_layout(cmap, np.int64(i))
        r = iu + two  # row i of the zero-framed dh/dv
        for jj in range(1 - goff, w, 2):
            j = np.uint64(jj)
            k = j >> one
            c0 = k + one  # column j
            cm2 = k  # column j - 2
            cm1 = (j + one) >> one  # column j - 1 (a site on rows i -+ 1)
            cp1 = cm1 + one  # column j + 1
            cp2 = k + two  # column j + 2
            d_h = (
                3.0 * (dh[r, c0] + dh[r, cm2])
                + ((dh[r - two, c0] + dh[r + two, c0]) + (dh[r - two, cm2] + dh[r + two, cm2]))
                + (dh[r - one, cm1] + dh[r + one, cm1])
            )
            d_v = (
                3.0 * (dv[r, c0] + dv[r - two, c0])
                + ((dv[r, cm2] + dv[r, cp2]) + (dv[r - two, cm2] + dv[r - two, cp2]))
                + (dv[r - one, cm1] + dv[r - one, cp1])
            )
            # Selects, not branches: on noisy data the decision is a coin flip.
            keep_h = d_v >= d_h
            hmask[iu, k] = np.uint8(keep_h)
            g1[iu, k] = np.float32(np.float64(x[iu, j]) - (ch[iu, k] if keep_h else cv[iu, k]))


@njit(cache=True, parallel=True)
def _rb_at_green(x, cmap, g, out):  # pragma: no cover - compiled
    """At green sites: R and B = G + mean colour difference (R - G or B - G) of the two
    neighbours of that colour; ``g`` is the green at R/B sites (compact)."""
    h, w = x.shape
    half = np.float32(0.5)
    one = np.uint64(1)
    for i in prange(h):
        si = np.int64(i)
        iu = np.uint64(i)
        im1 = umirror(si - 1, h)
        ip1 = umirror(si + 1, h)
        goff, nc = row_layout(cmap, si)
        oc = np.uint64(2) - nc
        for jj in range(goff, w, 2):
            j = np.uint64(jj)
            v = x[iu, j]
            jm1 = umirror(jj - 1, w)
            jp1 = umirror(jj + 1, w)
            out[iu, j, one] = v
            out[iu, j, nc] = v + half * ((x[iu, jm1] - g[iu, jm1 >> one]) + (x[iu, jp1] - g[iu, jp1 >> one]))
            out[iu, j, oc] = v + half * ((x[im1, j] - g[im1, j >> one]) + (x[ip1, j] - g[ip1, j >> one]))


@njit(cache=True, parallel=True)
def _rb_at_rb(x, cmap, g1, hmask, refine, out, g3):  # pragma: no cover - compiled
    """At R/B sites: the other of R/B from the green-site values along the chosen direction;
    with ``refine`` also the refined green (stored in ``out`` and compact in ``g3``)."""
    h, w = x.shape
    half = np.float32(0.5)
    third = np.float32(1.0 / 3.0)
    one = np.uint64(1)
    for i in prange(h):
        si = np.int64(i)
        iu = np.uint64(i)
        im1 = umirror(si - 1, h)
        ip1 = umirror(si + 1, h)
        goff, nc = row_layout(cmap, si)
        oc = np.uint64(2) - nc
        for jj in range(1 - goff, w, 2):
            j = np.uint64(jj)
            k = j >> one
            horizontal = hmask[iu, k] != 0
            ra = iu if horizontal else im1
            rb = iu if horizontal else ip1
            ja = umirror(jj - 1, w) if horizontal else j
            jb = umirror(jj + 1, w) if horizontal else j
            v = x[iu, j]
            a = x[ra, ja]
            b = x[rb, jb]
            a_c = out[ra, ja, nc]
            b_c = out[rb, jb, nc]
            out[iu, j, nc] = v
            out[iu, j, oc] = v + half * ((out[ra, ja, oc] - a_c) + (out[rb, jb, oc] - b_c))
            if refine:
                gv = v - third * (((a_c - a) + (v - g1[iu, k])) + (b_c - b))
                g3[iu, k] = gv
                out[iu, j, one] = gv
            else:
                out[iu, j, one] = g1[iu, k]


@njit(cache=True, parallel=True)
def _refine_rb_at_rb(x, cmap, hmask, out):  # pragma: no cover - compiled
    """Refining step at R/B sites: mean of R - B over the site and its two green neighbours
    along the chosen direction (green-site values already refined)."""
    h, w = x.shape
    third = np.float32(1.0 / 3.0)
    one = np.uint64(1)
    for i in prange(h):
        si = np.int64(i)
        iu = np.uint64(i)
        im1 = umirror(si - 1, h)
        ip1 = umirror(si + 1, h)
        goff, nc = row_layout(cmap, si)
        oc = np.uint64(2) - nc
        for jj in range(1 - goff, w, 2):
            j = np.uint64(jj)
            k = j >> one
            horizontal = hmask[iu, k] != 0
            ra = iu if horizontal else im1
            rb = iu if horizontal else ip1
            ja = umirror(jj - 1, w) if horizontal else j
            jb = umirror(jj + 1, w) if horizontal else j
            v = x[iu, j]
            out[iu, j, oc] = v + third * (
                ((out[ra, ja, oc] - out[ra, ja, nc]) + (out[iu, j, oc] - v)) + (out[rb, jb, oc] - out[rb, jb, nc])
            )


def demosaicing_CFA_Bayer_Menon2007(CFA: np.typing.ArrayLike, pattern: str = "RGGB", refining_step: bool = True) -> np.ndarray:
    """Demosaic a Bayer mosaic with DDFAPD (Menon, Andriani and Calvagno 2007).

    Parameters
    ----------
    CFA : array_like, shape (H, W)
        Bayer mosaic, ``H, W >= 2`` (odd sizes allowed). Float input is used
        as is (any range: the result is not clipped); integer input (e.g.
        ``uint16`` DN) is converted to ``float32`` without scaling. Must be
        finite.
    pattern : {"RGGB", "BGGR", "GRBG", "GBRG"}
        Colour filters of the top-left 2x2 cell in reading order
        (case-insensitive).
    refining_step : bool
        Apply the paper's refining step (smoothing of the colour differences
        along the chosen direction) after the decision.

    Returns
    -------
    numpy.ndarray, float32, shape (H, W, 3)
        RGB image. Measured samples are copied through, except that the
        refining step also updates G at R/B sites (as in the paper).

    Raises
    ------
    InputError
        ``CFA`` not 2-D, smaller than 2x2, or not finite; unknown ``pattern``.
    InputTypeError
        ``CFA`` of a non-numeric dtype, ``pattern`` not a string, or
        ``refining_step`` not a bool.

    Notes
    -----
    The horizontal/vertical decision is computed in float64 (so that it
    follows colour-demosaicing's float64 reference even where the two
    classifier sums nearly tie); everything else in float32. Deterministic
    and bit-identical for any numba thread count.

    Border handling is colour-demosaicing's, so the two agree on the whole
    image: interpolation filters use whole-sample symmetric extension
    (SciPy ``mode="mirror"``; row -1 is row 1, which keeps the Bayer phase)
    and the classifier window of the gradients ``D_H``, ``D_V`` is zero
    outside the image (SciPy ``mode="constant"``). The classifier window is
    colour-demosaicing's: ``d_H(i, j)`` sums ``D_H`` with weight 3 at
    ``(i, j)`` and ``(i, j-2)`` and weight 1 at ``(i+-2, j)``,
    ``(i+-2, j-2)`` and ``(i+-1, j-1)``; ``d_V`` uses the transposed window.
    Ties (``d_V == d_H``, e.g. in flat areas) keep the horizontal estimate.

    Scratch memory: six half-width arrays (four float64, two float32) and
    a half-width byte mask, about 5x the size of the float32 mosaic.

    References
    ----------
    Menon, D., Andriani, S., & Calvagno, G. (2007). Demosaicing with
    directional filtering and a posteriori decision. IEEE Transactions on
    Image Processing, 16(1), 132-141. doi:10.1109/TIP.2006.884928

    Examples
    --------
    >>> import numpy as np
    >>> from isp_sim.demosaic import demosaicing_CFA_Bayer_Menon2007
    >>> CFA = np.full((4, 5), 0.4, dtype=np.float32)
    >>> CFA[:, 3:] = 0.8  # a vertical edge
    >>> RGB = demosaicing_CFA_Bayer_Menon2007(CFA, "BGGR")
    >>> RGB.shape, RGB.dtype
    ((4, 5, 3), dtype('float32'))
    >>> RGB[1, :, 1].astype(float).round(4).tolist()  # green along a row: the edge stays sharp
    [0.4, 0.4, 0.4, 0.8, 0.8]
    """
    x = as_cfa_float32(CFA)
    cmap = pattern_map(pattern)
    if not isinstance(refining_step, (bool, np.bool_)):
        raise InputTypeError(f"refining_step must be a bool, got {type(refining_step).__name__}")
    h, w = x.shape
    wc = (w + 1) // 2
    ch = np.empty((h, wc), dtype=np.float64)
    cv = np.empty((h, wc), dtype=np.float64)
    dh = np.zeros((h + 4, wc + 2), dtype=np.float64)
    dv = np.zeros((h + 4, wc + 2), dtype=np.float64)
    g1 = np.empty((h, wc), dtype=np.float32)
    hmask = np.empty((h, wc), dtype=np.uint8)
    out = np.empty((h, w, 3), dtype=np.float32)
    _directional_differences(x, cmap, ch, cv)
    _gradients(ch, cv, cmap, w, dh, dv)
    _decide(x, cmap, ch, cv, dh, dv, g1, hmask)
    del ch, cv, dh, dv
    _rb_at_green(x, cmap, g1, out)
    if refining_step:
        g3 = np.empty((h, wc), dtype=np.float32)
        _rb_at_rb(x, cmap, g1, hmask, True, out, g3)
        _rb_at_green(x, cmap, g3, out)
        _refine_rb_at_rb(x, cmap, hmask, out)
    else:
        _rb_at_rb(x, cmap, g1, hmask, False, out, g1)
    return out
