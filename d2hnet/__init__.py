"""d2hnet: D2HNet long/short-exposure night restoration (DeblurNet + EnhanceNet).

Needs PyTorch and torchvision (``pip install phonenoise[torch]``). The public
names below are imported lazily so that ``import d2hnet`` stays cheap and a
missing PyTorch gives an install hint instead of a bare ``ModuleNotFoundError``.

Conventions: images are float32 sRGB ``(H, W, 3)`` in [0, 1] (numpy) at the
public boundary and ``(N, 3, H, W)`` tensors inside the networks; the pair is
always passed long exposure first, then short exposure.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

_INSTALL_HINT = "d2hnet needs PyTorch and torchvision; install them with: pip install phonenoise[torch]"


def require_torch() -> None:
    """Raise ``ImportError`` with an install hint when torch or torchvision is missing."""
    missing = [m for m in ("torch", "torchvision") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"{_INSTALL_HINT} (missing: {', '.join(missing)})")


_LAZY = {
    "DeblurNet": "d2hnet.models",
    "EnhanceNet": "d2hnet.models",
    "D2HNet": "d2hnet.models",
    "restore": "d2hnet.infer",
    "restore_files": "d2hnet.infer",
    "save_checkpoint": "d2hnet.checkpoint",
    "load_checkpoint": "d2hnet.checkpoint",
    "convert_release": "d2hnet.convert",
}

__all__ = sorted(_LAZY) + ["require_torch"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        require_torch()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'd2hnet' has no attribute {name!r}")
