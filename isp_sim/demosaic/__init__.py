"""Bayer CFA demosaicing: bilinear, Malvar (2004) and Menon (2007), numba-compiled.

One algorithm per module, named after its paper, with colour-demosaicing's
function names and argument order; :func:`demosaic` picks one by name.

Conventions: the mosaic is a 2-D ``(H, W)`` array (float, or integer DN
converted to float32 without scaling), ``H, W >= 2``; the pattern names the
top-left 2x2 cell in reading order (``"RGGB"``, ``"BGGR"``, ``"GRBG"``,
``"GBRG"``); the result is a float32 ``(H, W, 3)`` RGB image in the input's
units, not clipped. All kernels run in parallel over rows with numba (compiled
on first use, then cached on disk) and give bit-identical results for any
thread count.

Forked workers (e.g. a PyTorch ``DataLoader`` with the default ``fork`` start
method on Linux): with numba's GNU OpenMP threading layer, a child forked
after the parent has run any of these functions is killed on its first call
("fork() called from a process already using GNU OpenMP"). Either keep the
parent from demosaicing before the workers start, use the ``spawn`` start
method, or select a fork-safe layer (``NUMBA_THREADING_LAYER=workqueue`` or
``tbb``) before the first call.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import numpy.typing  # noqa: F401  (np.typing in the signatures)

from ..errors import InputError, InputTypeError
from .bilinear import demosaicing_CFA_Bayer_bilinear
from .malvar2004 import demosaicing_CFA_Bayer_Malvar2004
from .menon2007 import demosaicing_CFA_Bayer_Menon2007

__all__ = [
    "demosaicing_CFA_Bayer_bilinear",
    "demosaicing_CFA_Bayer_Malvar2004",
    "demosaicing_CFA_Bayer_Menon2007",
    "DEMOSAICING_METHODS",
    "demosaic",
]

#: Demosaicing methods by canonical name. :func:`demosaic` also accepts the
#: aliases ``"malvar"`` and ``"menon"`` and any letter case.
DEMOSAICING_METHODS: dict[str, Callable[..., np.ndarray]] = {
    "bilinear": demosaicing_CFA_Bayer_bilinear,
    "malvar2004": demosaicing_CFA_Bayer_Malvar2004,
    "menon2007": demosaicing_CFA_Bayer_Menon2007,
}

#: Accepted aliases of method names (any letter case).
DEMOSAIC_ALIASES = {"malvar": "malvar2004", "menon": "menon2007"}
_ALIASES = DEMOSAIC_ALIASES


def demosaic(CFA: np.typing.ArrayLike, pattern: str = "RGGB", method: str = "menon2007", **kwargs: object) -> np.ndarray:
    """Demosaic a Bayer mosaic with the named method.

    Parameters
    ----------
    CFA : array_like, shape (H, W)
        Bayer mosaic, ``H, W >= 2``, finite; float, or integer converted to
        float32 without scaling.
    pattern : {"RGGB", "BGGR", "GRBG", "GBRG"}
        Colour filters of the top-left 2x2 cell in reading order.
    method : {"menon2007", "malvar2004", "bilinear"}
        Case-insensitive; ``"menon"`` and ``"malvar"`` are aliases.
    **kwargs
        Passed to the method (``refining_step`` for Menon 2007).

    Returns
    -------
    numpy.ndarray, float32, shape (H, W, 3)
        RGB image in the units of ``CFA``, not clipped.

    Raises
    ------
    InputError
        Unknown ``method`` (the message lists the valid ones), or a bad
        ``CFA`` / ``pattern`` (see the methods).
    InputTypeError
        ``method`` not a string, or a bad argument type.

    Examples
    --------
    >>> import numpy as np
    >>> from isp_sim.demosaic import demosaic
    >>> CFA = np.full((4, 4), 100, dtype=np.uint16)
    >>> RGB = demosaic(CFA, "GBRG", method="Malvar")
    >>> RGB.dtype, RGB.shape, float(RGB.min()), float(RGB.max())
    (dtype('float32'), (4, 4, 3), 100.0, 100.0)
    """
    if not isinstance(method, str):
        raise InputTypeError(f"demosaicing method must be a string, got {type(method).__name__}")
    key = method.lower()
    key = _ALIASES.get(key, key)
    if key not in DEMOSAICING_METHODS:
        valid = ", ".join([*DEMOSAICING_METHODS, *_ALIASES])
        raise InputError(f"unknown demosaicing method {method!r}; valid: {valid}")
    return DEMOSAICING_METHODS[key](CFA, pattern, **kwargs)
