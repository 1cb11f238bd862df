"""Metrics and statistics of the study.

Metrics, the ``standard`` protocol: both images clamped to [0, 1]; PSNR
``10 log10(1 / MSE)`` over all pixels and channels; SSIM of Wang et al.
2004 as scikit-image's ``structural_similarity`` computes it with a
Gaussian window (sigma 1.5, truncated at 3.5 sigma: 11x11), population
covariances, ``K1 = 0.01``, ``K2 = 0.03``, data range 1, averaged over the
RGB channels.

Statistics: the unit is the test *image*: a method's score for an image is
the mean over its crops. Confidence intervals are percentile bootstrap
intervals over images (``n_boot`` resamples with replacement, fixed seed);
model comparisons bootstrap the per-image *paired* differences. With 6-8
images such intervals are wide and somewhat too narrow (the bootstrap
under-covers for small samples): read them as a guide, not a test.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["psnr_ssim", "per_image", "bootstrap_ci", "summarise", "paired"]


def psnr_ssim(img: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``(H, W, 3)`` ``img`` against ``ref`` under the standard protocol (:mod:`d2hnet.metrics`)."""
    from ..metrics import score

    return score(img, ref, protocol="standard")


def per_image(values, groups) -> tuple[list[str], np.ndarray]:
    """Mean of per-crop ``values`` within each image of ``groups`` (image names, in first-seen order)."""
    names = list(dict.fromkeys(groups))
    v = np.asarray(values, np.float64)
    g = np.asarray(groups)
    return names, np.array([v[g == n].mean() for n in names])


def bootstrap_ci(values, *, n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return [math.nan, math.nan]
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return [float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))]


def summarise(psnr_img, ssim_img, *, n_boot: int = 10_000, seed: int = 0) -> dict:
    """``{"psnr": [...], "ssim": [...], "psnr_mean", "ssim_mean", "psnr_ci95", "ssim_ci95"}`` from per-image values."""
    p, s = np.asarray(psnr_img, np.float64), np.asarray(ssim_img, np.float64)
    return {"psnr": p.tolist(), "ssim": s.tolist(), "psnr_mean": float(p.mean()), "ssim_mean": float(s.mean()),
            "psnr_ci95": bootstrap_ci(p, n_boot=n_boot, seed=seed), "ssim_ci95": bootstrap_ci(s, n_boot=n_boot, seed=seed)}


def paired(a_img, b_img, *, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Mean and bootstrap interval of the per-image differences ``a - b`` (dB), and how many images favour ``a``."""
    d = np.asarray(a_img, np.float64) - np.asarray(b_img, np.float64)
    return {"mean": float(d.mean()), "ci95": bootstrap_ci(d, n_boot=n_boot, seed=seed), "per_image": d.tolist(),
            "wins": int((d > 0).sum()), "n": int(d.size)}
