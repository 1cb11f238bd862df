"""DeblurNet: the first, low-resolution stage of D2HNet (docs/d2hnet.md, "DeblurNet").

It restores the structure of the blurry long exposure with help from the
noisy short one, in a Haar-wavelet U-shape::

    x = cat(short, long)                      6 ch, full res
    x = lrelu(down_conv(DWT(x)))              24 -> 24 ch at 1/2
    x = lrelu(fusion_conv(DWT(x)))            96 -> 16*ngf ch at 1/4
    x = x + res(x)                            4 ResBlocks
    x = lrelu(up_conv(IWT(x)))                4*ngf -> 4*ngf ch at 1/2
    x = IWT(x)                                ngf ch, full res
    x = x + res2(x)                           4 ResBlocks
    out = long + out_conv(x)                  ngf -> 3, no activation

With ``ngf = 32`` it has 19,548,987 parameters, as the release.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from .blocks import check_image_batch, conv3x3, init_weights, lrelu, pad_to_multiple, res_stack
from .dwt import haar_dwt, haar_iwt

__all__ = ["DeblurNet"]


class DeblurNet(nn.Module):
    """DeblurNet (the release's ``DeblurNet_v2``).

    Parameters
    ----------
    ngf
        Base width (32 in the paper); the bottleneck has ``16 * ngf`` channels.
        Smaller values give a structurally identical, smaller net (for tests).
    n_res, n_res2
        ResBlocks at 1/4 resolution and at full resolution (4 and 4).
    init_type, init_gain
        Weight initialisation (:func:`~d2hnet.models.blocks.init_weights`); the
        release uses xavier normal with gain 0.02.

    Forward
    -------
    ``long, short``: ``(N, 3, H, W)`` float sRGB in [0, 1], same shape. Any H, W:
    the input is padded to multiples of 4 (reflect, bottom/right) and the
    output cropped back. Returns ``(N, 3, H, W)``: ``long + residual``, unclamped.
    """

    multiple = 4

    def __init__(
        self,
        ngf: int = 32,
        n_res: int = 4,
        n_res2: int = 4,
        *,
        init_type: str = "xavier",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        for name, v, lo in (("ngf", ngf, 1), ("n_res", n_res, 0), ("n_res2", n_res2, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise InputError(f"{name} must be an integer >= {lo}, got {v!r}")
        self.ngf, self.n_res, self.n_res2 = ngf, n_res, n_res2
        c_in = 2 * 3  # short + long
        self.down_conv = conv3x3(4 * c_in, 4 * c_in)
        self.fusion_conv = conv3x3(16 * c_in, 16 * ngf)
        self.res = res_stack(16 * ngf, n_res)
        self.up_conv = conv3x3(4 * ngf, 4 * ngf)
        self.res2 = res_stack(ngf, n_res2)
        self.out_conv = conv3x3(ngf, 3)
        init_weights(self, init_type, init_gain)

    def config(self) -> dict[str, int]:
        """Constructor arguments that define the architecture (stored in checkpoints)."""
        return {"ngf": self.ngf, "n_res": self.n_res, "n_res2": self.n_res2}

    def forward(self, long: torch.Tensor, short: torch.Tensor) -> torch.Tensor:
        """Deblurred estimate ``(N, 3, H, W)`` = long + the predicted residual (inputs padded to a multiple of 4, cropped back)."""
        check_image_batch(long, "long")
        check_image_batch(short, "short")
        if long.shape != short.shape:
            raise InputError(f"long and short must have the same shape, got {tuple(long.shape)} and {tuple(short.shape)}")
        long_p, (h, w) = pad_to_multiple(long, self.multiple)
        short_p, _ = pad_to_multiple(short, self.multiple)
        x = torch.cat((short_p, long_p), dim=1)
        x = lrelu(self.down_conv(haar_dwt(x)))
        x = lrelu(self.fusion_conv(haar_dwt(x)))
        x = x + self.res(x)
        x = lrelu(self.up_conv(haar_iwt(x)))
        x = haar_iwt(x)
        x = x + self.res2(x)
        out = long_p + self.out_conv(x)
        return out[..., :h, :w]
