"""D2HNet networks: DeblurNet, EnhanceNet and their blocks (docs/d2hnet.md, "Networks")."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from .. import require_torch

require_torch()

from .align import AlignBlock, modulated_deform_conv  # noqa: E402
from .blocks import ResBlock, UpsampleConv, init_weights  # noqa: E402
from .deblurnet import DeblurNet  # noqa: E402
from .dwt import HaarDWT, HaarIWT, haar_dwt, haar_iwt  # noqa: E402
from .enhancenet import EnhanceNet  # noqa: E402
from .pair import DEFAULT_CONFIG, D2HNet, validate_config  # noqa: E402

__all__ = [
    "AlignBlock",
    "D2HNet",
    "DEFAULT_CONFIG",
    "DeblurNet",
    "EnhanceNet",
    "HaarDWT",
    "HaarIWT",
    "ResBlock",
    "UpsampleConv",
    "count_parameters",
    "haar_dwt",
    "haar_iwt",
    "init_weights",
    "modulated_deform_conv",
    "validate_config",
]


def count_parameters(module: "torch.nn.Module", trainable_only: bool = True) -> int:
    """Number of parameter elements of ``module`` (trainable ones only by default; buffers never)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
