"""Shared pieces of the demosaicing kernels: input checks, border indexing, row layout.

Border handling used by every method here: *whole-sample symmetric* extension
(SciPy's ``mode="mirror"``, NumPy's ``np.pad(mode="reflect")``): the column
before column 0 is column 1, the one after ``W - 1`` is ``W - 2``. This keeps
the Bayer phase (a mirrored neighbour has the colour the pattern puts there),
so a flat mosaic stays flat up to the very edge. Images as small as 2 pixels
along an axis extend periodically, exactly as SciPy's ``mirror`` mode does.

Note for editors: the kernels inline the jitted helpers below, and numba's
on-disk cache (``cache=True``) only watches the file that defines each kernel.
After changing a helper here, touch the kernel modules (or delete their
``__pycache__``) so that they are recompiled.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._parallel import ROWS, chunked
from ..cfa import rgb_map
from ..errors import InputError, InputTypeError

__all__ = ["as_cfa_float32", "pattern_map", "mirror", "umirror", "row_layout"]


def as_cfa_float32(CFA, *, name: str = "CFA") -> np.ndarray:
    """Check a Bayer mosaic and return it as a C-contiguous ``float32`` ``(H, W)`` array.

    Floating-point input is converted (no copy when it already is C-contiguous
    ``float32``); unsigned/signed integer input (e.g. ``uint16`` DN) is converted
    to ``float32`` as is, without any scaling. Raises :class:`InputTypeError`
    for other dtypes and :class:`InputError` for a shape other than
    ``(H, W)`` with ``H, W >= 2`` or for NaN / infinite values.
    """
    arr = CFA if isinstance(CFA, np.ndarray) else np.asarray(CFA)
    kind = arr.dtype.kind
    if kind not in "fiu":
        raise InputTypeError(
            f"{name} must hold real numbers (float or integer dtype), got dtype {arr.dtype}"
        )
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be a 2-D (H, W) Bayer mosaic, got an array of shape {arr.shape}"
        )
    h, w = arr.shape
    if h < 2 or w < 2:
        raise InputError(f"{name} must be at least 2x2 (one full Bayer cell), got shape {arr.shape}")
    with np.errstate(over="ignore"):  # overflow to inf is reported below, with a clear message
        out = np.ascontiguousarray(arr, dtype=np.float32)
    if kind == "f" and not _all_finite(out):
        n_nan = int(np.count_nonzero(np.isnan(arr)))
        n_inf = int(np.count_nonzero(np.isinf(arr)))
        if n_nan or n_inf:
            first = tuple(int(v) for v in np.argwhere(~np.isfinite(arr))[0])
            raise InputError(
                f"{name} contains {n_nan} NaN and {n_inf} infinite values (first at {first}); "
                "demosaicing needs finite input"
            )
        raise InputError(
            f"{name} has values outside the float32 range (max |value| = {float(np.max(np.abs(arr)))!r}); "
            "demosaicing computes in float32"
        )
    return out


def pattern_map(pattern: str) -> np.ndarray:
    """2x2 ``int64`` RGB plane map of ``pattern`` (validated, case-insensitive)."""
    return np.ascontiguousarray(rgb_map(pattern), dtype=np.int64)


@chunked(ROWS)
@njit(cache=True, parallel=True)
def _all_finite_rows(x, ok):  # pragma: no cover - compiled
    h, w = x.shape
    for i in prange(h):
        good = True
        for j in range(w):
            v = x[i, j]
            # v - v is 0 for finite v and NaN for NaN and +-inf.
            if v - v != 0:
                good = False
        ok[i] = good


def _all_finite(x: np.ndarray) -> bool:
    ok = np.empty(x.shape[0], dtype=np.bool_)
    _all_finite_rows(x, ok)
    return bool(ok.all())


@njit(cache=True, inline="always")
def mirror(k, n):  # pragma: no cover - compiled
    """Index ``k`` folded into ``[0, n)`` by whole-sample symmetric extension (``n >= 2``)."""
    if k < 0 or k >= n:
        p = 2 * n - 2
        k = k % p
        if k >= n:
            k = p - k
    return k


@njit(cache=True, inline="always")
def umirror(k, n):  # pragma: no cover - compiled
    """:func:`mirror` as an unsigned index.

    Kernels index with unsigned integers: numba then skips its negative-index
    wraparound test on every access, worth 20-30% in these stencil loops.
    """
    return np.uint64(mirror(k, n))


@njit(cache=True, inline="always")
def row_layout(cmap, i):  # pragma: no cover - compiled
    """``(green_offset, other)`` of row ``i``: first green column (0 or 1) and the row's R/B plane.

    The plane is returned as an unsigned index, ready for ``out[i, j, plane]``.
    """
    c0 = cmap[i & 1, 0]
    if c0 == 1:
        return 0, np.uint64(cmap[i & 1, 1])
    return 1, np.uint64(c0)
