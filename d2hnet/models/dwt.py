"""Haar discrete wavelet transform (one level) and its inverse, as used by DeblurNet.

With ``a = x[..., 0::2, 0::2]``, ``b = x[..., 1::2, 0::2]``,
``c = x[..., 0::2, 1::2]``, ``d = x[..., 1::2, 1::2]`` (rows first)::

    LL = ( a + b + c + d) / 2
    HL = (-a - b + c + d) / 2
    LH = (-a + b - c + d) / 2
    HH = ( a - b - c + d) / 2

concatenated on the channel axis as ``[LL | HL | LH | HH]``, each block
holding all ``C`` input channels in order. The transform is orthonormal (the
``/2`` factor), parameter free, and :func:`haar_iwt` is its exact inverse.

Functions plus thin ``nn.Module`` wrappers (kornia style).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError, InputTypeError

__all__ = ["haar_dwt", "haar_iwt", "HaarDWT", "HaarIWT"]


def _check(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name}: expected a torch.Tensor (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise InputError(f"{name}: expected a 4-D tensor (N, C, H, W), got shape {tuple(x.shape)}")
    return x


def haar_dwt(x: torch.Tensor) -> torch.Tensor:
    """One-level Haar DWT: ``(N, C, H, W) -> (N, 4C, H/2, W/2)``, bands ``[LL|HL|LH|HH]``.

    H and W must be even.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])   # a=1, b=3, c=2, d=4
    >>> haar_dwt(x).flatten().tolist()
    [5.0, 1.0, 2.0, 0.0]
    """
    _check(x, "haar_dwt")
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise InputError(f"haar_dwt: H and W must be even, got H={h}, W={w}")
    a = x[..., 0::2, 0::2]
    b = x[..., 1::2, 0::2]
    c = x[..., 0::2, 1::2]
    d = x[..., 1::2, 1::2]
    ll = (a + b + c + d) * 0.5
    hl = (-a - b + c + d) * 0.5
    lh = (-a + b - c + d) * 0.5
    hh = (a - b - c + d) * 0.5
    return torch.cat((ll, hl, lh, hh), dim=1)


def haar_iwt(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt`: ``(N, 4C, H, W) -> (N, C, 2H, 2W)``.

    The channel count must be a multiple of 4.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(32, dtype=torch.float64).reshape(1, 2, 4, 4)
    >>> bool(torch.equal(haar_iwt(haar_dwt(x)), x))
    True
    """
    _check(x, "haar_iwt")
    n, c4, h, w = x.shape
    if c4 % 4:
        raise InputError(f"haar_iwt: the channel count must be a multiple of 4, got {c4}")
    ll, hl, lh, hh = torch.chunk(x, 4, dim=1)
    a = (ll - hl - lh + hh) * 0.5
    b = (ll - hl + lh - hh) * 0.5
    c = (ll + hl - lh - hh) * 0.5
    d = (ll + hl + lh + hh) * 0.5
    c_out = c4 // 4
    top = torch.stack((a, c), dim=-1).reshape(n, c_out, h, 2 * w)  # even rows: a, c, a, c, ...
    bottom = torch.stack((b, d), dim=-1).reshape(n, c_out, h, 2 * w)  # odd rows: b, d, ...
    return torch.stack((top, bottom), dim=-2).reshape(n, c_out, 2 * h, 2 * w)


class HaarDWT(nn.Module):
    """Module wrapper of :func:`haar_dwt` (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The Haar transform (:func:`haar_dwt`)."""
        return haar_dwt(x)


class HaarIWT(nn.Module):
    """Module wrapper of :func:`haar_iwt` (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse transform (:func:`haar_iwt`)."""
        return haar_iwt(x)
