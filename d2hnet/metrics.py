"""Image quality metrics for D2HNet results, under two named protocols (SSIM from scikit-image).

``standard``
    The image is clamped to [0, 1]. PSNR = ``10 log10(1 / MSE)``, MSE over all pixels and channels.
    SSIM: Wang et al. 2004 as scikit-image's ``structural_similarity`` with ``gaussian_weights=True``,
    ``sigma=1.5`` (an 11 x 11 window), ``use_sample_covariance=False``, ``data_range=1``, per channel and
    averaged over RGB. The protocol of the study (``d2hnet.study``) and the default.

``paper``
    What the D2HNet release computed (zhaoyuzhi/D2HNet, ``validation.py`` and ``util/utils.py``), so that a
    number is produced the way the paper's tables were. Pinned values, read from that code:

    * PSNR on the **unclamped** network output: ``20 log10(1 / RMSE)`` over all pixels and channels of the
      float image in [0, 1] (``utils.psnr(out, gt, 1)``; the output is never clamped before scoring).
    * SSIM: ``skimage.measure.compare_ssim(gt, out, multichannel=True)`` of scikit-image 0.17 on float32 arrays,
      i.e. its defaults: a **7 x 7 uniform** window (``win_size=7``, ``gaussian_weights=False``),
      ``use_sample_covariance=True``, K1 0.01, K2 0.03, and ``data_range = 2``: scikit-image 0.17 inferred the
      range from the dtype, and for floating-point images its ``dtype_range`` is (-1, 1). Also unclamped.
    * Ground truth: the MATLAB-sharpened frames (``val_sharp_path``) where the data set has them, resized with
      OpenCV's bilinear ``cv2.resize`` to 16:9 at the validation resolution (2560 x 1440 or 5120 x 2880). The
      sharpening itself is not in the release, so this package cannot make it; ``make-val`` writes the plain GT.

Only the protocol can match the paper: its D2-Dataset is not here, so figures computed here are not
comparable with the paper's numbers.

Both functions accept numpy ``(H, W, 3)`` / ``(N, H, W, 3)`` arrays or torch ``(N, 3, H, W)`` / ``(3, H, W)``
tensors (computed in float64) and return Python floats (mean over a batch).
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np
import torch

from .errors import InputError

#: What the metrics accept: numpy (H, W, 3) / (N, H, W, 3) or torch (3, H, W) / (N, 3, H, W).
ImageLike = Union[np.ndarray, torch.Tensor]

__all__ = ["PROTOCOLS", "psnr", "ssim", "score", "check_protocol"]

PROTOCOLS = ("standard", "paper")


def check_protocol(protocol: str) -> str:
    """``protocol`` when it is one of :data:`PROTOCOLS`, else :class:`~d2hnet.errors.InputError` naming them."""
    if protocol not in PROTOCOLS:
        raise InputError(f"metric protocol {protocol!r} is not one of {list(PROTOCOLS)} (see d2hnet.metrics)")
    return protocol


def _as_nhwc(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        t = x.detach().to(torch.float64).cpu()
        if t.ndim == 3:
            t = t[None]
        if t.ndim != 4 or t.shape[1] != 3:
            raise InputError(f"{name}: tensors must be (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")
        return t.permute(0, 2, 3, 1).numpy()
    if isinstance(x, np.ndarray):
        a = np.asarray(x, np.float64)
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[-1] != 3:
            raise InputError(f"{name}: numpy images must be (H, W, 3) or (N, H, W, 3), got {x.shape}")
        return a
    raise InputError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


def _pair(a: Any, b: Any, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    check_protocol(protocol)
    x, y = _as_nhwc(a, "image"), _as_nhwc(b, "reference")
    if x.shape != y.shape:
        raise InputError(f"image and reference differ in shape: {x.shape} vs {y.shape} (as N, H, W, 3)")
    if protocol == "standard":
        x = np.clip(x, 0.0, 1.0)
    return x, y


def psnr(img: ImageLike, ref: ImageLike, *, protocol: str = "standard") -> float:
    """PSNR in dB of ``img`` against ``ref`` (both in [0, 1]); ``inf`` when identical. Mean over a batch."""
    x, y = _pair(img, ref, protocol)
    vals = []
    for a, b in zip(x, y):
        mse = float(np.mean((a - b) ** 2))
        vals.append(math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse))
    return float(np.mean(vals))


def _ssim_one(a: np.ndarray, b: np.ndarray, protocol: str) -> float:
    from skimage.metrics import structural_similarity

    if protocol == "standard":
        if min(a.shape[:2]) < 11:
            raise InputError(f"SSIM needs images of at least 11x11 px, got {a.shape[:2]}")
        return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                           data_range=1.0, channel_axis=-1))
    if min(a.shape[:2]) < 7:
        raise InputError(f"SSIM needs images of at least 7x7 px, got {a.shape[:2]}")
    # scikit-image 0.17's compare_ssim defaults on float input (module docstring)
    return float(structural_similarity(b, a, win_size=7, gaussian_weights=False, use_sample_covariance=True,
                                       data_range=2.0, channel_axis=-1))


def ssim(img: ImageLike, ref: ImageLike, *, protocol: str = "standard") -> float:
    """Mean SSIM over the RGB channels under ``protocol`` (module docstring); mean over a batch."""
    x, y = _pair(img, ref, protocol)
    return float(np.mean([_ssim_one(a, b, protocol) for a, b in zip(x, y)]))


def score(img: ImageLike, ref: ImageLike, *, protocol: str = "standard") -> tuple[float, float]:
    """``(PSNR, SSIM)`` under ``protocol``."""
    return psnr(img, ref, protocol=protocol), ssim(img, ref, protocol=protocol)
