"""Image quality metrics used to report D2HNet results (DESIGN.md conventions).

PSNR
    ``10 log10(1 / MSE)`` on images in [0, 1], MSE over all pixels and all
    three channels (one number per image).
SSIM
    Wang et al. 2004: Gaussian window 11x11, sigma 1.5, ``K1 = 0.01``,
    ``K2 = 0.03``, dynamic range ``L = 1``, computed per RGB channel over
    the "valid" region (no padding, as the authors' MATLAB code) and averaged
    over the three channels.

Both accept numpy ``(H, W, 3)`` / ``(N, H, W, 3)`` arrays or torch ``(N, 3,
H, W)`` / ``(3, H, W)`` tensors (any float dtype; computed in float64) and
return Python floats (mean over a batch).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

__all__ = ["psnr", "ssim", "gaussian_window"]


def _as_nchw(x: Any, name: str, channels_last: bool | None = None) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.asarray(x, np.float64))
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[-1] != 3:
            raise InputError(f"{name}: numpy images must be (H, W, 3) or (N, H, W, 3), got {x.shape}")
        return t.permute(0, 3, 1, 2)
    if isinstance(x, torch.Tensor):
        t = x.detach().to(torch.float64)
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != 3:
            raise InputError(f"{name}: tensors must be (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")
        return t.cpu()
    raise InputError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


def _pair(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _as_nchw(a, "image"), _as_nchw(b, "reference")
    if x.shape != y.shape:
        raise InputError(f"image and reference differ in shape: {tuple(x.shape)} vs {tuple(y.shape)} (as N, 3, H, W)")
    return x, y


def psnr(img: Any, ref: Any) -> float:
    """PSNR in dB of ``img`` against ``ref`` (both in [0, 1]); ``inf`` when identical. Mean over a batch."""
    x, y = _pair(img, ref)
    mse = ((x - y) ** 2).flatten(1).mean(1)
    vals = [math.inf if m == 0 else 10.0 * math.log10(1.0 / float(m)) for m in mse]
    return float(np.mean(vals))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 2-D Gaussian window ``(size, size)``, float64."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(img: Any, ref: Any, *, window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM (Wang et al. 2004) over the valid region and the RGB channels; mean over a batch."""
    x, y = _pair(img, ref)
    if min(x.shape[-2:]) < window:
        raise InputError(f"SSIM needs images of at least {window}x{window} px, got {tuple(x.shape[-2:])}")
    w = gaussian_window(window, sigma)[None, None].repeat(3, 1, 1, 1)
    c1, c2 = k1**2, k2**2

    def f(t):
        return F.conv2d(t, w, groups=3)

    mx, my = f(x), f(y)
    sxx = f(x * x) - mx * mx
    syy = f(y * y) - my * my
    sxy = f(x * y) - mx * my
    smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(smap.mean(dim=(1, 2, 3)).mean())
