"""
Bilinear Bayer CFA demosaicing
==============================

Each missing colour is the mean of its nearest samples of that colour: the
two horizontal (or vertical) neighbours for R/B at a green site, the four
axial neighbours for G at R/B sites, the four diagonal ones for B at R and R
at B. Equivalent to colour-demosaicing's ``demosaicing_CFA_Bayer_bilinear``
(the kernels ``[[0,1,0],[1,4,1],[0,1,0]]/4`` and ``[[1,2,1],[2,4,2],[1,2,1]]/4``
on the masked planes) away from the border.

References
----------
Losson, O., Macaire, L., & Yang, Y. (2010). Comparison of Color Demosaicing
Methods. Advances in Imaging and Electron Physics, 162, 173-265.
doi:10.1016/S1076-5670(10)62005-8
"""

from __future__ import annotations

import numpy as np
import numpy.typing  # noqa: F401  (np.typing in the signatures)
from numba import njit, prange

from .._parallel import ROWS, chunked
from ._common import as_cfa_float32, pattern_map, row_layout, umirror

__all__ = ["demosaicing_CFA_Bayer_bilinear"]


@chunked(ROWS)
@njit(cache=True, parallel=True)
def _bilinear_kernel(x, cmap, out):  # pragma: no cover - compiled
    # Unsigned indices throughout (see _common.umirror).
    h, w = x.shape
    half = np.float32(0.5)
    quarter = np.float32(0.25)
    g = np.uint64(1)
    for i in prange(h):
        si = np.int64(i)
        iu = np.uint64(i)
        im1 = umirror(si - 1, h)
        ip1 = umirror(si + 1, h)
        goff, nc = row_layout(cmap, si)
        oc = np.uint64(2) - nc
        # Green sites: the row's own R/B horizontally, the other one vertically.
        for jj in range(goff, w, 2):
            j = np.uint64(jj)
            jm1 = umirror(jj - 1, w)
            jp1 = umirror(jj + 1, w)
            out[iu, j, g] = x[iu, j]
            out[iu, j, nc] = half * (x[iu, jm1] + x[iu, jp1])
            out[iu, j, oc] = half * (x[im1, j] + x[ip1, j])
        # R/B sites: G from the 4 axial neighbours, the other of R/B from the 4 diagonal ones.
        for jj in range(1 - goff, w, 2):
            j = np.uint64(jj)
            jm1 = umirror(jj - 1, w)
            jp1 = umirror(jj + 1, w)
            out[iu, j, nc] = x[iu, j]
            out[iu, j, g] = quarter * ((x[im1, j] + x[ip1, j]) + (x[iu, jm1] + x[iu, jp1]))
            out[iu, j, oc] = quarter * ((x[im1, jm1] + x[im1, jp1]) + (x[ip1, jm1] + x[ip1, jp1]))


def demosaicing_CFA_Bayer_bilinear(CFA: np.typing.ArrayLike, pattern: str = "RGGB") -> np.ndarray:
    """Demosaic a Bayer mosaic by bilinear interpolation.

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
    row 1), which keeps the Bayer phase so a flat mosaic stays flat at the
    edges. colour-demosaicing instead convolves the masked colour planes with
    SciPy's default ``mode="reflect"`` (row -1 is row 0), which breaks the
    phase: on its outermost 1-pixel ring it mixes in zeros from the masks or
    counts one sample twice (a flat 0.5 mosaic gives values from 0.125 to
    1.125 there). Inside that ring the two agree to float32 rounding.

    References
    ----------
    Losson, O., Macaire, L., & Yang, Y. (2010). Comparison of Color
    Demosaicing Methods. Advances in Imaging and Electron Physics, 162,
    173-265.

    Examples
    --------
    >>> import numpy as np
    >>> from isp_sim.demosaic import demosaicing_CFA_Bayer_bilinear
    >>> CFA = np.array([[0.2, 0.5, 0.4, 0.5],
    ...                 [0.5, 0.8, 0.5, 0.6]], dtype=np.float32)
    >>> RGB = demosaicing_CFA_Bayer_bilinear(CFA, "RGGB")
    >>> RGB.shape, RGB.dtype
    ((2, 4, 3), dtype('float32'))
    >>> RGB[0, 1].astype(float).round(4).tolist()  # green site: R from 0.2 and 0.4, B below
    [0.3, 0.5, 0.8]
    >>> bool(np.all(demosaicing_CFA_Bayer_bilinear(np.full((3, 5), 0.25)) == 0.25))
    True
    """
    x = as_cfa_float32(CFA)
    cmap = pattern_map(pattern)
    out = np.empty(x.shape + (3,), dtype=np.float32)
    _bilinear_kernel(x, cmap, out)
    return out
