"""Classical restoration baselines of the study, each with its parameters tuned on the tuning split.

Every baseline is tuned per ISO band (the band of a test crop is known
from its metadata, as a camera knows its ISO): each parameter value on a
small grid is scored on the tuning crops of that band and the best mean
PSNR wins. Tuning uses noise from the *calibrated* profile (what a user
has), never the truth.

``gaussian_blur_short``
    the short frame blurred with a Gaussian of tuned sigma.
``nlm_short``
    scikit-image non-local means (``fast_mode``, 5x5 patches, distance 6)
    on the short frame with ``sigma`` estimated from the image
    (``estimate_sigma``) and ``h = c x sigma``, ``c`` tuned.
``bm3d_short``
    the better, on the tuning split, of two BM3D uses (Dabov et al. 2007;
    the ``bm3d`` package of Tampere University, Makinen et al. 2020):
    ``srgb``: ``bm3d_rgb`` on the short frame with ``sigma_psd`` tuned;
    ``raw``: BM3D on each of the short frame's four Bayer planes after the
    generalised Anscombe transform with the calibrated profile's K and
    dark variance at the frame's ISO (so the noise is ~unit Gaussian),
    ``sigma = c`` tuned, the closed-form unbiased inverse (Makitalo and Foi
    2013), then the same forward ISP as the camera (``isp_sim.process``).
``classical_fusion``
    long/short fusion in the Fourier domain after global registration, in
    the spirit of Tico and Pulli ("Image enhancement method via blur and
    noisy image fusion", ICIP 2009): the long frame is registered to the
    short one (phase correlation, 1/10 px); per frequency, the two are
    combined with weights inversely proportional to their estimated error:
    the short frame's error is its noise power ``sigma^2`` (estimated), the
    long frame's is the locally averaged power of ``L - S`` less the noise,
    ``w_long = b sigma^2 / (b sigma^2 + E_long)``; the fused image is then
    denoised with non-local means (``h = c x sigma_fused``). ``b`` and ``c``
    are tuned.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

__all__ = ["BASELINES", "GRIDS", "COST_S", "grid", "work_seconds", "gat", "gat_inverse", "register", "gaussian_blur", "nlm", "bm3d_srgb", "bm3d_raw", "fusion",
           "run_baselines"]

BASELINES = ("gaussian_blur_short", "nlm_short", "bm3d_short", "classical_fusion")


def gaussian_blur(short: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.clip(gaussian_filter(short, sigma=(sigma, sigma, 0.0), mode="reflect"), 0, 1).astype(np.float32)


def _sigma(img: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma

    return float(np.mean(estimate_sigma(img, channel_axis=-1)))


def nlm(img: np.ndarray, c: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    s = _sigma(img)
    out = denoise_nl_means(img, h=c * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1)
    return np.clip(out, 0, 1).astype(np.float32)


def _bm3d_profile():
    """The package's default profile on one thread: its default (0 = every core) fights the study's other
    worker for the CPU, and its documentation warns that more than one thread may change the result slightly."""
    import bm3d

    pro = bm3d.BM3DProfile()
    pro.num_threads = 1
    return pro


def bm3d_srgb(short: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return np.clip(bm3d.bm3d_rgb(short.astype(np.float64), sigma_psd=sigma, profile=_bm3d_profile()), 0, 1
                   ).astype(np.float32)


def _gat_inverse(y: np.ndarray) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of the Anscombe transform (Makitalo and Foi 2011/2013)."""
    y = np.maximum(y, 0.8)
    r = math.sqrt(1.5)
    return 0.25 * y**2 + 0.25 * r / y - 11.0 / 8.0 / y**2 + 0.625 * r / y**3 - 0.125


def gat(plane: np.ndarray, k: float, dark_var: float, offset: float) -> tuple[np.ndarray, float]:
    """Generalised Anscombe transform of one raw plane (DN) with gain ``k`` (DN/e-), dark variance (DN^2) and
    offset (black + bias, DN): ``2 sqrt(x + 3/8 + s2)`` with ``x`` in electrons and ``s2 = dark_var / k^2``;
    the result has unit noise variance where the Poisson-Gaussian model holds. Returns it and ``s2``."""
    x = (np.asarray(plane, np.float64) - offset) / k
    s2 = dark_var / k**2
    return 2.0 * np.sqrt(np.maximum(x + 3.0 / 8.0 + s2, 0.0)), s2


def gat_inverse(z: np.ndarray, k: float, s2: float, offset: float) -> np.ndarray:
    """Inverse of :func:`gat` for a denoised ``z`` (the closed-form unbiased inverse), back to DN."""
    return (_gat_inverse(z) - s2) * k + offset


def bm3d_raw(raw: np.ndarray, meta: dict, profile, c: float) -> np.ndarray:
    """BM3D per Bayer plane in the GAT domain (module docstring) -> sRGB through ``isp_sim.process``."""
    import bm3d

    import isp_sim
    from isp_sim.cfa import channel_map

    p = profile.at_iso(meta["short_iso"])
    cmap = channel_map(profile.sensor.pattern)
    black = profile.sensor.black_level
    out = np.asarray(raw, np.float64).copy()
    for i in range(2):
        for j in range(2):
            ch = int(cmap[i, j])
            k = float(p.K[ch])
            var = float(p.read_std[ch] ** 2 + p.row_std**2 + 1.0 / 12.0)
            off = float(black[ch] + p.bias[ch])
            z, s2 = gat(out[i::2, j::2], k, var, off)
            out[i::2, j::2] = gat_inverse(bm3d.bm3d(z, sigma_psd=c, profile=_bm3d_profile()), k, s2, off)
    out = np.clip(out, 0, profile.sensor.white_level)
    wb = (meta["wb"][0], 1.0, meta["wb"][1])
    return isp_sim.process(out, pattern=profile.sensor.pattern, wb=wb, black_level=black,
                           white_level=profile.sensor.white_level)


def register(long: np.ndarray, short: np.ndarray) -> np.ndarray:
    """``long`` shifted onto ``short`` by the global translation that phase correlation finds (1/10 px, luma)."""
    from scipy.ndimage import shift
    from skimage.registration import phase_cross_correlation

    lum = lambda a: a @ np.array([0.299, 0.587, 0.114], np.float32)  # noqa: E731
    d, _, _ = phase_cross_correlation(lum(short), lum(long), upsample_factor=10, normalization=None)
    return shift(long, (d[0], d[1], 0.0), order=1, mode="nearest").astype(np.float32)


def fusion(long: np.ndarray, short: np.ndarray, b: float, c: float, smooth: float = 2.0) -> np.ndarray:
    """Classical long/short fusion (module docstring)."""
    from scipy.ndimage import gaussian_filter

    la = register(long, short)
    h, w, _ = short.shape
    pad = ((h // 2, h // 2), (w // 2, w // 2), (0, 0))
    lp, sp = np.pad(la, pad, mode="reflect"), np.pad(short, pad, mode="reflect")
    L = np.fft.fft2(lp, axes=(0, 1))
    S = np.fft.fft2(sp, axes=(0, 1))
    n = lp.shape[0] * lp.shape[1]
    d = (np.abs(L - S) ** 2).mean(axis=2) / n
    d = np.fft.ifftshift(gaussian_filter(np.fft.fftshift(d), smooth, mode="wrap"))
    s2 = _sigma(short) ** 2
    e_long = np.maximum(d - s2, 0.0)
    wl = (b * s2 / (b * s2 + e_long + 1e-12))[..., None]
    f = np.real(np.fft.ifft2(wl * L + (1 - wl) * S, axes=(0, 1)))[h // 2:h // 2 + h, w // 2:w // 2 + w]
    f = np.clip(f, 0, 1).astype(np.float32)
    return nlm(f, c) if c > 0 else f


#: grids of the tuned parameters (quick runs use every other value)
GRIDS: dict[str, list] = {
    "gaussian_blur_short": [0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5],
    "nlm_short": [0.4, 0.6, 0.8, 1.0, 1.2, 1.5],
    "bm3d_srgb": [0.03, 0.05, 0.07, 0.1, 0.14, 0.2],
    "bm3d_raw": [0.7, 0.85, 1.0, 1.2, 1.5],
    "classical_fusion": [(b, c) for b in (0.5, 1.0, 2.0, 4.0) for c in (0.0, 0.6, 1.0)],
}


def _apply(name: str, param, i: int, split: dict, profile) -> np.ndarray:
    s, l = split["short"][i], split["long"][i]
    if name == "gaussian_blur_short":
        return gaussian_blur(s, param)
    if name == "nlm_short":
        return nlm(s, param)
    if name == "bm3d_srgb":
        return bm3d_srgb(s, param)
    if name == "bm3d_raw":
        return bm3d_raw(split["raw"][i], split["meta"][i], profile, param)
    if name == "classical_fusion":
        return fusion(l, s, *param)
    raise KeyError(name)


def grid(name: str, mode: str = "full") -> list:
    """The tuning grid of ``name``: ``full``, ``quick`` (every other value) or ``tiny`` (the middle value only)."""
    g = GRIDS[name]
    if mode == "quick":
        return g[::2]
    if mode == "tiny":
        return [g[len(g) // 2]]
    return g


def run_baselines(tune: dict, test: dict, profile, *, mode: str = "full", progress=None) -> dict[str, Any]:
    """Tune every baseline per ISO band on ``tune``, apply to ``test``; per-crop PSNR/SSIM and outputs.

    ``tune``/``test``: dicts of ``long``, ``short``, ``gt`` (N, H, W, 3) float32, ``raw`` (N, H, W) mosaics of
    the short frames, ``meta`` (per crop: ``short_iso``, ``wb``) and ``band`` (N,) ints.
    """
    from .stats import psnr_ssim

    t0 = time.perf_counter()
    bands = sorted(set(np.asarray(test["band"]).tolist()))
    res: dict[str, Any] = {"tuned": {}, "methods": {}, "timing": {}}
    candidates = ("gaussian_blur_short", "nlm_short", "bm3d_srgb", "bm3d_raw", "classical_fusion")
    tune_score: dict[str, float] = {}
    for name in candidates:
        values = grid(name, mode)
        t1 = time.perf_counter()
        best: dict[int, Any] = {}
        total = 0.0
        for band in bands:
            idx = [i for i, b in enumerate(tune["band"]) if b == band]
            scores = []
            for prm in values:
                scores.append(np.mean([psnr_ssim(_apply(name, prm, i, tune, profile), tune["gt"][i])[0] for i in idx]))
                if progress is not None:
                    progress.put((name, 0, len(idx)))
            k = int(np.argmax(scores))
            best[band] = values[k]
            total += scores[k] * len(idx)
        tune_score[name] = float(total / len(tune["band"]))
        out = np.stack([_apply(name, best[int(b)], i, test, profile) for i, b in enumerate(test["band"])])
        if progress is not None:
            progress.put((name, 0, len(test["band"])))
        sc = [psnr_ssim(o, g) for o, g in zip(out, test["gt"])]
        res["methods"][name] = {"psnr": [float(v[0]) for v in sc], "ssim": [float(v[1]) for v in sc], "outputs": out}
        res["tuned"][name] = {str(b): (list(v) if isinstance(v, tuple) else float(v)) for b, v in best.items()}
        res["timing"][name + "_s"] = time.perf_counter() - t1
    # bm3d_short: the variant that scored better on the tuning split
    pick = "bm3d_raw" if tune_score["bm3d_raw"] >= tune_score["bm3d_srgb"] else "bm3d_srgb"
    res["methods"]["bm3d_short"] = dict(res["methods"][pick], variant=pick.split("_")[1])
    res["tuned"]["bm3d_short"] = {"variant": pick.split("_")[1], "tune_psnr": {k: tune_score[k] for k in ("bm3d_srgb", "bm3d_raw")}}
    res["tune_psnr"] = tune_score
    res["timing"]["total_s"] = time.perf_counter() - t0
    return res


#: rough single-core seconds per crop (128 px) of each baseline, to weight progress bars
COST_S = {"gaussian_blur_short": 0.002, "nlm_short": 0.03, "bm3d_srgb": 2.8, "bm3d_raw": 2.5, "classical_fusion": 0.05}


def work_seconds(mode: str, n_tune: int, n_test: int, crop: int = 128) -> float:
    """Estimated single-core seconds of :func:`run_baselines` (progress bars)."""
    a = (crop / 128) ** 2
    return sum(COST_S[k] * a * (len(grid(k, mode)) * n_tune + n_test) for k in GRIDS)
