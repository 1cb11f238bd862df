"""Noise parameters without a lab: tripod bursts, single photos of any scene, and DNG NoiseProfile tags.

Three estimators of the shot-noise gain ``K`` (DN per electron) and the dark temporal variance ``c``
(read + row noise + 1/12 DN^2 of rounding) per CFA channel at one ISO; each returns a
:class:`LabFreeEstimate` naming its method.

``burst`` (:func:`burst_estimate`), two or more frames of a static scene at one ISO and exposure:
    per pixel the temporal sample variance across the frames; the scene and PRNU cancel (they are the same
    in every frame), so over a tile of ``t x t`` same-channel pixels ``E[var] = K * mean + c`` exactly,
    whatever the texture. Tiles with clipped pixels or above 70% of saturation are dropped. Motion
    (tripod jitter, a leaf in the wind) adds scene structure to the temporal variance: per signal bin the
    tile variances are chi-square distributed around the line, and tiles above their bin's 99.9% point
    (from the bin's median, chi-square corrected) are rejected as moving before the fit. ``K`` and ``c``
    from a weighted line through the bins' means.
``single`` (:func:`single_estimate`), one frame of any scene (a documented equivalent of Foi et al. 2008,
    "Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data"):
    per channel plane the residual ``r = x - mean of its 4 axial same-channel neighbours`` removes locally
    linear signal (``var(r) = 1.25 var(noise)`` for independent noise); per ``t x t`` tile a robust scale
    (1.4826 MAD, insensitive to an edge crossing the tile) and the tile mean; per signal bin the median over
    tiles (insensitive to the textured minority); then the weighted line. PRNU caveat: a single frame cannot
    separate the fixed pattern from temporal noise; a PRNU of p adds ``(p * mean)^2`` to the variance, so
    ``K`` is biased up by about ``p^2 * mean`` (1% PRNU at 10000 electrons: +1%), and high signal levels are
    excluded (bins above 50% of saturation) to keep the bias small.
``dng_tag`` (:func:`tag_estimate`), the vendor's DNG NoiseProfile (tag 51041, one ``(S, O)`` pair for all
    planes or one per plane): ``K = S (W - B)`` and ``c = O (W - B)^2`` (isp_sim's convention,
    :func:`isp_sim.params.dng_noise_profile`); marked as derived from the vendor's model.

Without dark frames the read noise is taken as Gaussian with ``std = sqrt(c - 1/12)`` (it then includes any
row noise) and no row noise or bias is modelled; the calibration says so in the profile and the report.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from isp_sim.cfa import channel_sites

from .errors import CalibrationError

from .estimators import SATURATION_FRACTION

__all__ = ["LabFreeEstimate", "burst_estimate", "single_estimate", "tag_estimate", "METHODS"]

#: In the order a calibration prefers them for an ISO without flats: a measurement of the sensor's own temporal
#: noise, the vendor's model, then the single-frame estimate (the least accurate: see BENCHMARKS.md).
METHODS = ("burst", "dng_tag", "single")
_MAD_TO_STD = 1.482602218505602


@dataclass
class LabFreeEstimate:
    """``K`` (4,) DN/e-, ``dark_var`` (4,) DN^2 (read + row + 1/12), their standard errors, per channel R, Gr, Gb, B."""

    method: str
    K: np.ndarray
    dark_var: np.ndarray
    K_err: np.ndarray
    dark_var_err: np.ndarray
    n_tiles: list = field(default_factory=list)
    n_rejected: list = field(default_factory=list)
    files: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    points: list = field(default_factory=list)  # per channel (bin means, bin variances) for the report


def _line(mu: np.ndarray, var: np.ndarray, weight: np.ndarray) -> tuple[float, float, float, float]:
    """Weighted least-squares ``var = K mu + c``: (K, c, K_err, c_err)."""
    A = np.stack([mu, np.ones_like(mu)], 1)
    w = np.sqrt(weight)
    coef, *_ = np.linalg.lstsq(A * w[:, None], var * w, rcond=None)
    res = (var - A @ coef) * w
    dof = max(len(mu) - 2, 1)
    s2 = float(res @ res) / dof
    cov = np.linalg.pinv((A * weight[:, None]).T @ A) * s2
    return float(coef[0]), float(coef[1]), float(math.sqrt(max(cov[0, 0], 0))), float(math.sqrt(max(cov[1, 1], 0)))


def _bins(mu: np.ndarray, lo: float, hi: float, n: int = 24) -> np.ndarray:
    edges = np.geomspace(max(lo, 1e-3), max(hi, lo * 1.01 + 1e-3), n + 1)
    return np.clip(np.searchsorted(edges, mu) - 1, -1, n)


def _tiles(plane: np.ndarray, t: int) -> np.ndarray:
    h, w = plane.shape[-2] // t * t, plane.shape[-1] // t * t
    p = plane[..., :h, :w]
    return p.reshape(p.shape[:-2] + (h // t, t, w // t, t))


def _burst_tiles(p: np.ndarray, clip: np.ndarray, t: int, off: float, usable: float):
    """Per ``t x t`` tile of one channel's burst ``p`` (L, h, w): (mean above black, mean temporal variance,
    scene gradient energy less its noise part), unclipped tiles below ``usable`` only."""
    L = p.shape[0]
    m = p.mean(0)
    v = p.var(0, ddof=1)
    gx = np.zeros_like(m)
    gy = np.zeros_like(m)
    gx[:, :-1] = np.diff(m, axis=1) ** 2
    gy[:-1, :] = np.diff(m, axis=0) ** 2
    tm, tv, tc, tg = (_tiles(a, t) for a in (m, v, clip, gx + gy))
    mu = tm.mean(axis=(1, 3)).ravel() - off
    var = tv.mean(axis=(1, 3)).ravel()
    grad = tg.mean(axis=(1, 3)).ravel()
    ok = ~tc.any(axis=(1, 3)).ravel() & (mu > 0) & (mu < usable)
    mu, var, grad = mu[ok], var[ok], grad[ok]
    # moving scene structure adds (jitter^2) |grad I|^2; the gradient energy of the burst mean holds 4 v / L of noise
    return mu, var, np.maximum(grad - 4.0 * var / L, 0.0)


def _robust_fit(cols: list, var: np.ndarray, nu: int, offset: np.ndarray | float = 0.0):
    """Weighted least squares ``var = offset + cols @ coef`` (weights 1 / predicted variance^2), refitted 4 times
    without the tiles above the chi-square 99.9% point of their prediction; a negative motion coefficient (the
    last column) is dropped. Returns (coef, standard errors, kept mask)."""
    from scipy import stats

    A = np.stack(cols, 1)
    y = var - offset
    keep = np.ones(var.size, bool)
    pred = np.maximum(var, 1e-9)
    q = stats.chi2.ppf(0.999, nu) / nu
    for _ in range(4):
        w = 1.0 / pred[keep]
        coef = np.linalg.lstsq(A[keep] * w[:, None], y[keep] * w, rcond=None)[0]
        if coef[-1] < 0:
            coef = np.append(np.linalg.lstsq(A[keep][:, :-1] * w[:, None], y[keep] * w, rcond=None)[0], 0.0)
        pred = np.maximum(offset + A @ coef, 1e-9)
        keep = var <= pred * q
    w = 1.0 / pred[keep]
    Aw = A[keep] * w[:, None]
    res = (y[keep] - A[keep] @ coef) * w
    cov = np.linalg.pinv(Aw.T @ Aw) * float(res @ res) / max(keep.sum() - A.shape[1], 1)
    return coef, np.sqrt(np.maximum(np.diag(cov), 0.0)), keep


def burst_estimate(frames: Sequence[np.ndarray], pattern: str, black: Sequence[float] | np.ndarray, white: float, *,
                   bias: Sequence[float] | np.ndarray | None = None, tile: int = 16, tile_dark: int = 4,
                   files: Sequence[str | os.PathLike] = ()) -> LabFreeEstimate:
    """``K`` and the dark variance per channel from a static burst (module docstring).

    ``K`` from ``tile``-pixel tiles (large tiles: the slope is steady); the dark variance from ``tile_dark``-pixel
    tiles with ``K`` fixed (small tiles reach the darkest parts of a scene, where the intercept is decided)."""
    if len(frames) < 2:
        raise CalibrationError("a burst needs at least two frames")
    black = np.asarray(black, np.float64)
    off = black + (np.zeros(4) if bias is None else np.asarray(bias, np.float64))
    usable = SATURATION_FRACTION * (white - float(black.max()))
    stack = np.stack([np.asarray(f) for f in frames])  # (L, H, W) integer DN
    L = stack.shape[0]
    Ks, cs, Kerr, cerr, ntiles, nrej, pts, motion = [], [], [], [], [], [], [], []
    for c, (i, j) in enumerate(channel_sites(pattern)):
        p = stack[:, i::2, j::2].astype(np.float64)
        clip = (stack[:, i::2, j::2] >= white).any(0)
        mu, var, g = _burst_tiles(p, clip, tile, off[c], usable)
        if mu.size < 20:
            raise CalibrationError(f"channel {c}: only {mu.size} unclipped tiles below 70% of saturation in the burst")
        coef, err, keep = _robust_fit([mu, np.ones_like(mu), g], var, tile * tile * (L - 1))
        K = float(coef[0])
        mu2, var2, g2 = _burst_tiles(p, clip, tile_dark, off[c], usable)
        coef2, err2, _ = _robust_fit([np.ones_like(mu2), g2], var2, tile_dark * tile_dark * (L - 1), offset=K * mu2)
        Ks.append(K), cs.append(float(coef2[0])), Kerr.append(float(err[0])), cerr.append(float(err2[0]))
        ntiles.append(int(keep.sum())), nrej.append(int(mu.size - keep.sum()))
        motion.append(float(coef[2]))
        bins_ = _bins(mu[keep], max(float(mu[keep].min()), 0.5), usable)
        corr = (var - coef[2] * g)[keep]
        pts.append((np.array([mu[keep][bins_ == k].mean() for k in np.unique(bins_)]),
                    np.array([corr[bins_ == k].mean() for k in np.unique(bins_)])))
    est = LabFreeEstimate("burst", np.array(Ks), np.array(cs), np.array(Kerr), np.array(cerr), ntiles, nrej,
                          [str(f) for f in files], [], pts)
    if max(motion) > 0:
        est.notes.append("motion between the frames: a term (gradient energy x jitter^2) was fitted alongside "
                         f"the noise ({', '.join(f'{m:.3g}' for m in motion)} per channel)")
    return est


def _residual(plane: np.ndarray) -> np.ndarray:
    """``x - mean of the 4 axial neighbours`` within one CFA plane (mirrored edges)."""
    q = np.pad(plane, 1, mode="reflect")
    return plane - 0.25 * ((q[:-2, 1:-1] + q[2:, 1:-1]) + (q[1:-1, :-2] + q[1:-1, 2:]))


def single_estimate(frame: np.ndarray, pattern: str, black: Sequence[float] | np.ndarray, white: float, *,
                    bias: Sequence[float] | np.ndarray | None = None, tile: int = 8, max_fraction: float = 0.5,
                    files: Sequence[str | os.PathLike] = ()) -> LabFreeEstimate:
    """``K`` and the dark variance per channel from one frame of any scene (module docstring)."""
    black = np.asarray(black, np.float64)
    off = black + (np.zeros(4) if bias is None else np.asarray(bias, np.float64))
    top = max_fraction * (white - float(black.max()))
    Ks, cs, Kerr, cerr, ntiles, pts = [], [], [], [], [], []
    x = np.asarray(frame)
    for c, (i, j) in enumerate(channel_sites(pattern)):
        p = x[i::2, j::2].astype(np.float64)
        r = _residual(p)
        clip = p >= white
        tp, tr, tc = (_tiles(a, tile) for a in (p, r, clip))
        mu = tp.mean(axis=(1, 3)).ravel() - off[c]
        flat = tr.transpose(0, 2, 1, 3).reshape(-1, tile * tile)
        med = np.median(flat, axis=1, keepdims=True)
        sd = _MAD_TO_STD * np.median(np.abs(flat - med), axis=1)
        ok = ~tc.any(axis=(1, 3)).ravel() & (mu > 0) & (mu < top)
        mu, var = mu[ok], (sd[ok] ** 2) / 1.25
        b = _bins(mu, max(float(mu.min()), 0.5) if mu.size else 1.0, top)
        bm, bv, bw = [], [], []
        for k in np.unique(b):
            sel = b == k
            if sel.sum() < 20:
                continue
            bm.append(float(np.median(mu[sel])))
            bv.append(float(np.median(var[sel])))
            bw.append(sel.sum() / max(bv[-1], 1e-12) ** 2)
        if len(bm) < 3:
            raise CalibrationError(f"channel {c}: fewer than 3 usable signal bins in the frame")
        K, cc, ke, ce = _line(np.array(bm), np.array(bv), np.array(bw))
        Ks.append(K), cs.append(cc), Kerr.append(ke), cerr.append(ce)
        ntiles.append(int(ok.sum()))
        pts.append((np.array(bm), np.array(bv)))
    return LabFreeEstimate("single", np.array(Ks), np.array(cs), np.array(Kerr), np.array(cerr), ntiles, [],
                           [str(f) for f in files],
                           ["single frame: PRNU cannot be separated from temporal noise (K biased up by about "
                            "PRNU^2 x signal; signals above 50% of saturation not used)"], pts)


def tag_estimate(noise_profile: Sequence[Sequence[float]], black: Sequence[float] | np.ndarray, white: float, *,
                 files: Sequence[str | os.PathLike] = ()) -> LabFreeEstimate:
    """``K`` and the dark variance from a DNG NoiseProfile: one ``(S, O)`` pair for all planes or one per R, G, B
    plane (Gr and Gb share G's)."""
    pairs = [tuple(map(float, p)) for p in noise_profile]
    if len(pairs) == 1:
        pairs = pairs * 3
    if len(pairs) != 3:
        raise CalibrationError(f"NoiseProfile with {len(pairs)} pairs: expected 1 or 3 (R, G, B)")
    rng = white - np.asarray(black, np.float64)
    per = [pairs[0], pairs[1], pairs[1], pairs[2]]
    S = np.array([s for s, _ in per])
    O = np.array([o for _, o in per])
    K = S * rng
    dv = O * rng**2
    return LabFreeEstimate("dng_tag", K, dv, np.zeros(4), np.zeros(4), [], [], [str(f) for f in files],
                           ["from the camera vendor's DNG NoiseProfile model (tag 51041), not measured"])
