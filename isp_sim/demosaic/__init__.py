"""INTERIM placeholder (lead): delegates to colour-demosaicing until the numba implementations land.

The numba module (bilinear.py, malvar2004.py, menon2007.py) replaces this file.
"""

from __future__ import annotations

import numpy as np

from ..cfa import check_pattern
from ..errors import InputError


def _cd(name):
    def run(CFA, pattern="RGGB"):
        import colour_demosaicing

        return getattr(colour_demosaicing, name)(np.asarray(CFA, dtype=np.float64), check_pattern(pattern)).astype(np.float32)

    return run


demosaicing_CFA_Bayer_bilinear = _cd("demosaicing_CFA_Bayer_bilinear")
demosaicing_CFA_Bayer_Malvar2004 = _cd("demosaicing_CFA_Bayer_Malvar2004")
demosaicing_CFA_Bayer_Menon2007 = _cd("demosaicing_CFA_Bayer_Menon2007")

DEMOSAICING_METHODS = {
    "bilinear": demosaicing_CFA_Bayer_bilinear,
    "malvar2004": demosaicing_CFA_Bayer_Malvar2004,
    "menon2007": demosaicing_CFA_Bayer_Menon2007,
}


def demosaic(CFA, pattern="RGGB", method="menon2007"):
    key = str(method).lower()
    if key not in DEMOSAICING_METHODS:
        raise InputError(f"unknown demosaic method {method!r}; allowed: {', '.join(DEMOSAICING_METHODS)}")
    return DEMOSAICING_METHODS[key](CFA, pattern)
