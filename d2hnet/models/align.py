"""EnhanceNet's alignment block: modulated deformable 3x3 conv driven by coarse-to-fine offset features.

The official release uses a CUDA-only compiled DCNv2 extension; this module
uses :func:`torchvision.ops.deform_conv2d` (CPU and CUDA) with the same
parameter layout, so the release's weights drop in unchanged.

Offset/mask layout (what ``deform_conv2d`` expects and what the release's
``conv_offset_mask`` produces): the 3x3 conv on the 32-ch offset feature
gives ``3 * G * 9`` channels (G = deformable groups, 9 kernel taps). The first
``2 * G * 9`` channels are the offsets: for group ``g`` and tap ``k`` (row-major
over the 3x3 kernel) channel ``2 * (g * 9 + k)`` is the row (y) offset and
channel ``2 * (g * 9 + k) + 1`` the column (x) offset, in pixels. The last
``G * 9`` channels pass through a sigmoid and are the modulation mask, channel
``g * 9 + k``. Deformable group ``g`` covers input channels
``[g * C / G, (g + 1) * C / G)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from ..errors import InputError
from .blocks import conv3x3, lrelu

__all__ = ["KERNEL_TAPS", "modulated_deform_conv", "ModulatedDeformConv", "AlignBlock"]

KERNEL_TAPS = 9  # 3x3


def modulated_deform_conv(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """Modulated deformable 3x3 conv, stride 1, padding 1 (DCNv2).

    Parameters
    ----------
    x
        ``(N, C_in, H, W)`` features to sample.
    offset
        ``(N, 2 * G * 9, H, W)``, ``(dy, dx)`` interleaved per tap, grouped by deformable group.
    mask
        ``(N, G * 9, H, W)`` modulation in [0, 1].
    weight, bias
        ``(C_out, C_in, 3, 3)`` and ``(C_out,)``.

    Returns
    -------
    ``(N, C_out, H, W)``. With zero offsets and a mask of ones this is
    ``F.conv2d(x, weight, bias, padding=1)``.
    """
    n, c, h, w = x.shape
    if offset.shape[0] != n or offset.shape[-2:] != (h, w) or offset.shape[1] % (2 * KERNEL_TAPS):
        raise InputError(f"offset must have shape ({n}, 2*G*9, {h}, {w}), got {tuple(offset.shape)}")
    groups = offset.shape[1] // (2 * KERNEL_TAPS)
    if tuple(mask.shape) != (n, groups * KERNEL_TAPS, h, w):
        raise InputError(f"mask must have shape {(n, groups * KERNEL_TAPS, h, w)}, got {tuple(mask.shape)}")
    if c % groups:
        raise InputError(f"input channels ({c}) must be divisible by the deformable groups ({groups})")
    if x.dtype in (torch.float16, torch.bfloat16) or offset.dtype in (torch.float16, torch.bfloat16):
        # under autocast: torchvision's deformable conv has no bfloat16 kernel on the CPU (and casts to float32
        # itself only on CUDA), so it runs in float32 here on every device and returns the input's dtype
        dt = x.dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = deform_conv2d(x.float(), offset.float(), weight.float(), None if bias is None else bias.float(),
                                stride=1, padding=1, dilation=1, mask=mask.float())
        return out.to(dt)
    return deform_conv2d(x, offset, weight, bias, stride=1, padding=1, dilation=1, mask=mask)


class ModulatedDeformConv(nn.Module):
    """Holds the deformable conv's ``weight (C, C, 3, 3)`` and ``bias (C,)``; forward is :func:`modulated_deform_conv`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Modulated deformable conv of ``x`` with ``offset`` and ``mask`` (:func:`modulated_deform_conv`)."""
        return modulated_deform_conv(x, offset, mask, self.weight, self.bias)


class AlignBlock(nn.Module):
    """Warp long-exposure features toward short-exposure features (one decoder level).

    Parameters
    ----------
    channels
        C, the feature width at this level; must be divisible by ``deformable_groups``.
    offset_channels
        Width of the offset feature passed between levels (32 in the paper).
    deformable_groups
        G (8 in the paper).
    has_coarser
        Whether a coarser level feeds its offset feature in (every level but the coarsest).

    Forward
    -------
    ``short_f, long_f``: ``(N, C, H, W)``; ``coarser``: the coarser level's
    offset feature ``(N, offset_channels, H/2, W/2)`` or None.
    Returns ``(aligned, offset_feat)``: ``lrelu(DCN(long_f))`` of shape
    ``(N, C, H, W)`` and this level's offset feature ``(N, offset_channels, H, W)``.

    Offset feature: ``lrelu(offset_conv1(offset_conv0(cat(short_f, long_f))))``
    (``offset_conv0`` is 1x1, no activation); with a coarser level, its
    feature is upsampled bilinearly x2 (align_corners=False), multiplied by 2
    (offsets double with the resolution), concatenated and merged by
    ``lrelu(offset_conv2(.))``; then ``lrelu(offset_conv3(.))``.
    ``offset_mask`` (3x3, no activation) maps it to offsets and mask logits.
    """

    def __init__(
        self,
        channels: int,
        offset_channels: int = 32,
        deformable_groups: int = 8,
        has_coarser: bool = True,
    ) -> None:
        super().__init__()
        if channels % deformable_groups:
            raise InputError(
                f"channels ({channels}) must be divisible by deformable_groups ({deformable_groups})"
            )
        self.channels = channels
        self.offset_channels = offset_channels
        self.deformable_groups = deformable_groups
        self.has_coarser = has_coarser
        self.offset_conv0 = nn.Conv2d(2 * channels, channels, 1)
        self.offset_conv1 = conv3x3(channels, offset_channels)
        self.offset_conv2 = conv3x3(2 * offset_channels, offset_channels) if has_coarser else None
        self.offset_conv3 = conv3x3(offset_channels, offset_channels)
        self.offset_mask = conv3x3(offset_channels, 3 * deformable_groups * KERNEL_TAPS)
        self.dcn = ModulatedDeformConv(channels)
        # The release zeroes the offset/mask conv (its weight is then overwritten by
        # weights_init; the bias stays zero): start from zero offsets, mask 0.5.
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)

    def offset_feature(
        self, short_f: torch.Tensor, long_f: torch.Tensor, coarser: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The ``(N, offset_channels, H, W)`` offset feature of this level (see the class docstring)."""
        feat = lrelu(self.offset_conv1(self.offset_conv0(torch.cat((short_f, long_f), dim=1))))
        if coarser is not None:
            if self.offset_conv2 is None:
                raise InputError("this AlignBlock was built with has_coarser=False; it takes no coarser offset feature")
            up = F.interpolate(coarser, scale_factor=2.0, mode="bilinear", align_corners=False)
            feat = lrelu(self.offset_conv2(torch.cat((feat, up * 2.0), dim=1)))
        elif self.offset_conv2 is not None:
            raise InputError("this AlignBlock expects the coarser level's offset feature (has_coarser=True)")
        return lrelu(self.offset_conv3(feat))

    def offsets_and_mask(self, offset_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets ``(N, 2*G*9, H, W)`` and sigmoid mask ``(N, G*9, H, W)`` from the offset feature."""
        om = self.offset_mask(offset_feat)
        n_off = 2 * self.deformable_groups * KERNEL_TAPS
        return om[:, :n_off], torch.sigmoid(om[:, n_off:])

    def deform(self, long_f: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``lrelu(DCN(long_f; offset, mask))``, ``(N, C, H, W)``."""
        return lrelu(self.dcn(long_f, offset, mask))

    def forward(
        self, short_f: torch.Tensor, long_f: torch.Tensor, coarser: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Align ``long_f`` onto ``short_f``: (aligned features, the 32-channel offset features passed to the next
        finer level; ``coarser``: those of the coarser level, or None at the coarsest)."""
        feat = self.offset_feature(short_f, long_f, coarser)
        offset, mask = self.offsets_and_mask(feat)
        return self.deform(long_f, offset, mask), feat
