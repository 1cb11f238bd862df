"""
Malvar (2004) Bayer CFA demosaicing
===================================

Bilinear interpolation corrected by a scaled Laplacian of the colour that was
measured at the site ("high-quality linear interpolation"): eight fixed 5x5
kernels, the gains 1/2, 5/8 and 3/4 of the paper. Equivalent to
colour-demosaicing's ``demosaicing_CFA_Bayer_Malvar2004`` away from the border.

References
----------
Malvar, H. S., He, L.-W., & Cutler, R. (2004). High-quality linear
interpolation for demosaicing of Bayer-patterned color images. IEEE
International Conference on Acoustics, Speech, and Signal Processing
(ICASSP 2004), vol. 3, pp. 485-488. doi:10.1109/ICASSP.2004.1326587
"""

from __future__ import annotations

import numpy as np
import numpy.typing  # noqa: F401  (np.typing in the signatures)
from numba import njit, prange

from .._parallel import ROWS, chunked
from ._common import as_cfa_float32, pattern_map, row_layout, umirror

__all__ = ["demosaicing_CFA_Bayer_Malvar2004"]


@chunked(ROWS)
@njit(cache=True, parallel=True)
def _malvar_kernel(x, cmap, out):  # pragma: no cover - compiled
    # Each sum is written as (neighbour mean) + (Laplacian terms that are
    # differences of equal-weight sums), so a flat mosaic gives exactly its
    # value back in float32. Unsigned indices throughout (see _common.umirror).
    h, w = x.shape
    f_half = np.float32(0.5)
    f_2 = np.float32(2.0)
    f_4 = np.float32(4.0)
    f_1_5 = np.float32(1.5)
    f_8th = np.float32(0.125)
    g = np.uint64(1)
    for i in prange(h):
        si = np.int64(i)
        iu = np.uint64(i)
        im2 = umirror(si - 2, h)
        im1 = umirror(si - 1, h)
        ip1 = umirror(si + 1, h)
        ip2 = umirror(si + 2, h)
        goff, nc = row_layout(cmap, si)
        oc = np.uint64(2) - nc
        for jj in range(goff, w, 2):  # green sites
            j = np.uint64(jj)
            jm2 = umirror(jj - 2, w)
            jm1 = umirror(jj - 1, w)
            jp1 = umirror(jj + 1, w)
            jp2 = umirror(jj + 2, w)
            c = x[iu, j]
            diag = (x[im1, jm1] + x[im1, jp1]) + (x[ip1, jm1] + x[ip1, jp1])
            h2 = x[iu, jm2] + x[iu, jp2]
            v2 = x[im2, j] + x[ip2, j]
            base = f_4 * c - diag
            # [-1 4 5 4 -1] along the row, -1 diagonals, +1/2 two rows up/down (and transposed).
            lap_h = (base + (f_2 * c - h2)) + (f_half * v2 - c)
            lap_v = (base + (f_2 * c - v2)) + (f_half * h2 - c)
            out[iu, j, g] = c
            out[iu, j, nc] = (f_4 * (x[iu, jm1] + x[iu, jp1]) + lap_h) * f_8th
            out[iu, j, oc] = (f_4 * (x[im1, j] + x[ip1, j]) + lap_v) * f_8th
        for jj in range(1 - goff, w, 2):  # R/B sites
            j = np.uint64(jj)
            jm2 = umirror(jj - 2, w)
            jm1 = umirror(jj - 1, w)
            jp1 = umirror(jj + 1, w)
            jp2 = umirror(jj + 2, w)
            c = x[iu, j]
            axial1 = (x[im1, j] + x[ip1, j]) + (x[iu, jm1] + x[iu, jp1])
            axial2 = (x[im2, j] + x[ip2, j]) + (x[iu, jm2] + x[iu, jp2])
            diag = (x[im1, jm1] + x[im1, jp1]) + (x[ip1, jm1] + x[ip1, jp1])
            lap = f_4 * c - axial2
            out[iu, j, nc] = c
            out[iu, j, g] = (f_2 * axial1 + lap) * f_8th
            out[iu, j, oc] = (f_2 * diag + f_1_5 * lap) * f_8th


def demosaicing_CFA_Bayer_Malvar2004(CFA: np.typing.ArrayLike, pattern: str = "RGGB") -> np.ndarray:
    """Demosaic a Bayer mosaic with Malvar, He and Cutler's gradient-corrected linear filters.

    Parameters
    ----------
    CFA : array_like, shape (H, W)
        Bayer mosaic, ``H, W >= 2`` (odd sizes allowed). Float input is used
        as is (any range: the result is not clipped and may overshoot near
        edges); integer input (e.g. ``uint16`` DN) is converted to
        ``float32`` without scaling. Must be finite.
    pattern : {"RGGB", "BGGR", "GRBG", "GBRG"}
        Colour filters of the top-left 2x2 cell in reading order
        (case-insensitive).

    Returns
    -------
    numpy.ndarray, float32, shape (H, W, 3)
        RGB image; measured samples are copied through unchanged.

    Raises
    ------
    InputError
        ``CFA`` not 2-D, smaller than 2x2, or not finite; unknown ``pattern``.
    InputTypeError
        ``CFA`` of a non-numeric dtype, or ``pattern`` not a string.

    Notes
    -----
    Computed in float32; deterministic and bit-identical for any numba
    thread count. Border: whole-sample symmetric extension (row -1 is
    row 1, row -2 is row 2), which keeps the Bayer phase, so a flat mosaic of
    any single colour comes back as that colour up to the edge.
    colour-demosaicing convolves with SciPy's default ``mode="reflect"`` (row
    -1 is row 0), which swaps colours in the mirrored part of its 5x5 kernels:
    the outermost 2-pixel ring then differs from this implementation (and has
    colour errors there, e.g. green 0.375 on a pure red field). Inside that
    ring the two agree to float32 rounding.

    References
    ----------
    Malvar, H. S., He, L.-W., & Cutler, R. (2004). High-quality linear
    interpolation for demosaicing of Bayer-patterned color images. IEEE
    ICASSP 2004, vol. 3, pp. 485-488.

    Examples
    --------
    >>> import numpy as np
    >>> from isp_sim.demosaic import demosaicing_CFA_Bayer_Malvar2004
    >>> ramp = np.tile(np.linspace(0.0, 0.7, 8, dtype=np.float32), (6, 1))
    >>> RGB = demosaicing_CFA_Bayer_Malvar2004(ramp, "GRBG")
    >>> RGB.shape, RGB.dtype
    ((6, 8, 3), dtype('float32'))
    >>> RGB[2, 3].astype(float).round(4).tolist()  # a grey ramp stays grey
    [0.3, 0.3, 0.3]
    """
    x = as_cfa_float32(CFA)
    cmap = pattern_map(pattern)
    out = np.empty(x.shape + (3,), dtype=np.float32)
    _malvar_kernel(x, cmap, out)
    return out
