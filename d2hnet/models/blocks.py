"""Building blocks shared by DeblurNet and EnhanceNet.

All convolutions are 3x3 with zero padding 1 unless said otherwise; the
activation is LeakyReLU with slope 0.2; there is no normalisation layer
(docs/d2hnet.md, "Networks"). Tensors are ``(N, C, H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import InputError, InputTypeError

__all__ = [
    "LRELU_SLOPE",
    "RES_SCALE",
    "lrelu",
    "conv3x3",
    "ResBlock",
    "res_stack",
    "UpsampleConv",
    "init_weights",
    "INIT_TYPES",
    "pad_to_multiple",
    "check_image_batch",
]

LRELU_SLOPE = 0.2
RES_SCALE = 0.1


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU with negative slope 0.2 (the release's ``activ='lrelu'``)."""
    return F.leaky_relu(x, LRELU_SLOPE)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with zero padding 1 and a bias."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """Residual block: ``x + 0.1 * conv2(lrelu(conv1(x)))`` (no activation after ``conv2``).

    Shapes: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x + 0.1 * conv(lrelu(conv(x)))``."""
        return x + RES_SCALE * self.conv2(lrelu(self.conv1(x)))


def res_stack(channels: int, n: int) -> nn.Sequential:
    """``n`` ResBlocks of ``channels`` channels in a row (an empty ``Sequential`` is the identity)."""
    return nn.Sequential(*(ResBlock(channels) for _ in range(n)))


class UpsampleConv(nn.Module):
    """Decoder upsampler: nearest x2, spectrally normalised 3x3 conv, LeakyReLU.

    Shapes: ``(N, C_in, H, W) -> (N, C_out, 2H, 2W)``.

    The conv is wrapped in :func:`torch.nn.utils.parametrizations.spectral_norm`
    (one power iteration per forward in training mode, none in eval mode: the
    stored ``_u``/``_v`` give ``sigma = u . W v``). Its trainable parameter is
    ``conv.parametrizations.weight.original``; ``_u`` and ``_v`` are buffers.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = spectral_norm(conv3x3(in_channels, out_channels), n_power_iterations=1, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest-neighbour x2 upsampling, then conv + LeakyReLU."""
        return lrelu(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest")))


INIT_TYPES = ("xavier", "normal", "kaiming", "orthogonal", "default")


def _is_spectral_normed(m: nn.Module) -> bool:
    return hasattr(m, "parametrizations") and "weight" in getattr(m, "parametrizations")


@torch.no_grad()
def init_weights(module: nn.Module, init_type: str = "xavier", gain: float = 0.02) -> nn.Module:
    """Initialise the conv weights of ``module`` in place, as the release's ``weights_init`` does.

    Parameters
    ----------
    module
        Any module; every ``nn.Conv2d`` / ``nn.ConvTranspose2d`` and every
        module whose class name contains ``Conv`` and that owns a ``weight``
        parameter is initialised.
    init_type
        ``"xavier"`` (xavier normal, the release's choice), ``"normal"``
        (N(0, gain)), ``"kaiming"`` (kaiming normal, fan in; gain unused),
        ``"orthogonal"``, or ``"default"`` (leave PyTorch's defaults).
    gain
        Gain for xavier/orthogonal, standard deviation for normal. The release uses 0.02.

    Notes
    -----
    As in the release, biases are left as they are (PyTorch's defaults; zero
    for the deformable conv and its offset/mask conv), and spectrally
    normalised convs are skipped (in the release their weight is hidden from
    ``weights_init``; the normalisation removes any scale anyway, and
    re-initialising the weight would leave the stored power-iteration vectors
    stale).
    """
    if init_type not in INIT_TYPES:
        raise InputError(f"init_type must be one of {INIT_TYPES}, got {init_type!r}")
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
        raise InputError(f"gain must be a positive finite number, got {gain!r}")
    if init_type == "default":
        return module
    for m in module.modules():
        if "Conv" not in type(m).__name__ or _is_spectral_normed(m):
            continue
        w = m._parameters.get("weight")
        if w is None:
            continue
        if init_type == "xavier":
            nn.init.xavier_normal_(w, gain=gain)
        elif init_type == "normal":
            nn.init.normal_(w, 0.0, gain)
        elif init_type == "kaiming":
            nn.init.kaiming_normal_(w, a=0, mode="fan_in")
        else:
            nn.init.orthogonal_(w, gain=gain)
    return module


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(N, C, H, W)`` at the bottom and right so H and W are multiples of ``multiple``.

    Reflection padding where the image is large enough (pad < size), replicate
    padding otherwise. Returns the padded tensor and the original ``(H, W)``
    to crop back to. No copy when nothing needs padding.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def check_image_batch(x: object, name: str, channels: int = 3) -> torch.Tensor:
    """Check that ``x`` is a floating ``(N, channels, H, W)`` tensor; return it."""
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch.Tensor of shape (N, {channels}, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputTypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] != channels:
        raise InputError(f"{name} must have shape (N, {channels}, H, W), got {tuple(x.shape)}")
    if x.shape[-2] < 1 or x.shape[-1] < 1:
        raise InputError(f"{name} is empty: shape {tuple(x.shape)}")
    return x
