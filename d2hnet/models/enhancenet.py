"""EnhanceNet: the second, full-resolution stage of D2HNet (the release's ``DenoiseNet_v2``).

Two encoders (weights not shared) of five levels each, widths
``ngf * (1, 2, 4, 8, 16)`` at scales ``1, 1/2, 1/4, 1/8, 1/16``: a 3x3 conv
(stride 1 at level 1, 2 after) + LeakyReLU, then one ResBlock. The short
encoder reads ``cat(short, t_up)`` (6 ch), the long encoder reads ``long``.

Decoder, level L = 5 down to 1 (C = width of level L)::

    aligned, off_L = align[L](short_L, long_L, off_{L+1})     # DCN warp of long_L
    fused = fuse_res[L](lrelu(merge[L](cat(aligned, short_L))))  # 4 ResBlocks, none at L=1
    stream = fused                                   (L = 5)
    stream = cat(up[L](stream), fused)               (L < 5; up = nearest x2 + SN conv + lrelu)

then ``x = lrelu(tail_conv(stream))`` (2 ngf -> ngf), ``x = x + tail_res(x)``,
``out = t_up + out_conv(x)``. With ``ngf = 32`` it has 53,682,779 trainable
parameters (the release's modules that are never used in its forward are not built).

Module index ``i`` of the ``ModuleList`` s is level ``i + 1``; ``up[i]``
produces level ``i + 1`` from level ``i + 2``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from .align import AlignBlock
from .blocks import ResBlock, UpsampleConv, check_image_batch, conv3x3, init_weights, lrelu, pad_to_multiple, res_stack

__all__ = ["EnhanceNet", "LEVELS"]

LEVELS = 5


class EncoderLevel(nn.Module):
    """conv3x3 (stride 1 or 2) + LeakyReLU, then one ResBlock."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = conv3x3(in_channels, out_channels, stride=stride)
        self.res = ResBlock(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One level: conv + LeakyReLU, then a residual block."""
        return self.res(lrelu(self.conv(x)))


class Encoder(nn.Module):
    """Five :class:`EncoderLevel` s; returns the list of level features, finest first."""

    def __init__(self, in_channels: int, widths: list[int]) -> None:
        super().__init__()
        ins = [in_channels] + widths[:-1]
        self.levels = nn.ModuleList(
            EncoderLevel(ci, co, 1 if i == 0 else 2) for i, (ci, co) in enumerate(zip(ins, widths))
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of the five levels, finest first."""
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats


class EnhanceNet(nn.Module):
    """EnhanceNet (the release's ``DenoiseNet_v2``).

    Parameters
    ----------
    ngf
        Base width (32 in the paper); must be divisible by ``deformable_groups``.
    n_res
        ResBlocks after the fusion conv at levels 5..2 (4).
    n_res2
        ResBlocks of the full-resolution tail (4).
    deformable_groups
        Deformable groups of every alignment block (8).
    offset_channels
        Width of the offset features passed from coarse to fine (32).
    init_type, init_gain
        Weight initialisation; the release uses xavier normal with gain 0.02.

    Forward
    -------
    ``long, short, t_up``: ``(N, 3, H, W)`` float sRGB in [0, 1], all the same
    shape; ``t_up`` is DeblurNet's output at this resolution. Any H, W: inputs
    are padded to multiples of 16 (reflect, bottom/right) and the output is
    cropped back. Returns ``(N, 3, H, W)``: ``t_up + residual``, unclamped.
    """

    multiple = 2 ** (LEVELS - 1)

    def __init__(
        self,
        ngf: int = 32,
        n_res: int = 4,
        n_res2: int = 4,
        deformable_groups: int = 8,
        offset_channels: int = 32,
        *,
        init_type: str = "xavier",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        for name, v, lo in (
            ("ngf", ngf, 1),
            ("n_res", n_res, 0),
            ("n_res2", n_res2, 0),
            ("deformable_groups", deformable_groups, 1),
            ("offset_channels", offset_channels, 1),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise InputError(f"{name} must be an integer >= {lo}, got {v!r}")
        if ngf % deformable_groups:
            raise InputError(f"ngf ({ngf}) must be divisible by deformable_groups ({deformable_groups})")
        self.ngf, self.n_res, self.n_res2 = ngf, n_res, n_res2
        self.deformable_groups, self.offset_channels = deformable_groups, offset_channels
        widths = [ngf * 2**i for i in range(LEVELS)]
        self.short_enc = Encoder(6, widths)
        self.long_enc = Encoder(3, widths)
        self.align = nn.ModuleList(
            AlignBlock(c, offset_channels, deformable_groups, has_coarser=i < LEVELS - 1)
            for i, c in enumerate(widths)
        )
        self.merge = nn.ModuleList(conv3x3(2 * c, c) for c in widths)
        self.fuse_res = nn.ModuleList(res_stack(c, 0 if i == 0 else n_res) for i, c in enumerate(widths))
        # up[i]: level i+2 stream -> level i+1. The level-5 stream is 16 ngf wide;
        # finer streams are cat(up, fused) = 2 * width of their level.
        stream_widths = [2 * c for c in widths[:-1]] + [widths[-1]]
        self.up = nn.ModuleList(UpsampleConv(stream_widths[i + 1], widths[i]) for i in range(LEVELS - 1))
        self.tail_conv = conv3x3(2 * ngf, ngf)
        self.tail_res = res_stack(ngf, n_res2)
        self.out_conv = conv3x3(ngf, 3)
        init_weights(self, init_type, init_gain)

    def config(self) -> dict[str, int]:
        """Constructor arguments that define the architecture (stored in checkpoints)."""
        return {
            "ngf": self.ngf,
            "n_res": self.n_res,
            "n_res2": self.n_res2,
            "deformable_groups": self.deformable_groups,
            "offset_channels": self.offset_channels,
        }

    def forward(self, long: torch.Tensor, short: torch.Tensor, t_up: torch.Tensor) -> torch.Tensor:
        """Restored image ``(N, 3, H, W)`` = ``t_up`` + the predicted residual (sides multiples of 16)."""
        for name, x in (("long", long), ("short", short), ("t_up", t_up)):
            check_image_batch(x, name)
        if not (long.shape == short.shape == t_up.shape):
            raise InputError(
                "long, short and t_up must have the same shape, got "
                f"{tuple(long.shape)}, {tuple(short.shape)} and {tuple(t_up.shape)}"
            )
        long_p, (h, w) = pad_to_multiple(long, self.multiple)
        short_p, _ = pad_to_multiple(short, self.multiple)
        t_p, _ = pad_to_multiple(t_up, self.multiple)
        s = self.short_enc(torch.cat((short_p, t_p), dim=1))
        lf = self.long_enc(long_p)
        stream = None
        off = None
        for i in reversed(range(LEVELS)):
            aligned, off = self.align[i](s[i], lf[i], off)
            fused = self.fuse_res[i](lrelu(self.merge[i](torch.cat((aligned, s[i]), dim=1))))
            stream = fused if stream is None else torch.cat((self.up[i](stream), fused), dim=1)
        x = lrelu(self.tail_conv(stream))
        x = x + self.tail_res(x)
        out = t_p + self.out_conv(x)
        return out[..., :h, :w]
