"""Noise parameters without a lab: tripod bursts, single photos of any scene, and DNG NoiseProfile tags.

Three estimators of the shot-noise gain ``K`` (DN per electron) and the dark temporal variance ``c``
(read + row noise + 1/12 DN^2 of rounding; a single frame's excludes row noise) per CFA channel at one ISO;
each returns a :class:`LabFreeEstimate` naming its method.

``burst`` (:func:`burst_estimate`), two or more frames of a static scene at one ISO and exposure:
    per pixel the temporal sample variance across the frames; the scene and PRNU cancel (they are the same
    in every frame), so over a tile of ``t x t`` same-channel pixels ``E[var] = K * mean + c`` exactly,
    whatever the texture. Tiles with clipped pixels or above 70% of saturation are dropped. Motion between the
    frames (tripod jitter) adds scene structure to the temporal variance; per CFA plane it is taken out before
    the variance is computed: (1) each frame's deviation from the burst mean is regressed on the mean's first
    and second differences (a sub-pixel shift, and the blur of its interpolation), the mean and 1 (a gain or
    offset change), robustly, and the fit subtracted; (2) what the plane's derivatives cannot represent (each
    colour is sampled every 2 pixels) still follows the frames' common motion, so the directions in frame space
    that the residuals share over the image beyond what noise, exchangeable between the frames, gives are
    projected out, and the variance is taken over the degrees of freedom left (:func:`burst_estimate` gives the
    statistics). What motion remains adds a term proportional to the tile's gradient energy (of the burst mean,
    less its noise part), fitted alongside ``K mu + c`` (kept only when positive); tiles above the chi-square
    99.9% point of their predicted variance are rejected as moving (a leaf in the wind); weighted least squares
    over the tiles, refitted 4 times. ``K`` from 16-pixel tiles, ``c`` from 4-pixel tiles with ``K`` fixed.
``single`` (:func:`single_estimate`), one frame of any scene (a documented equivalent of Foi et al. 2008,
    "Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data", with Liu, Tanaka and
    Okutomi 2013's idea of keeping weakly textured patches): per CFA plane and tile, a ``(t + 2) x (t + 2)``
    pixel window (neighbouring windows share their edge rows) and the ``t x t`` fine-scale values computed
    inside it, (1) a fine-scale variance, the mean square of the mixed second difference
    ``[1,-2,1] x [1,-2,1] / 6`` (unit gain for white noise; blind to shading, to anything linear in x or y, to
    axis-aligned edges and to row noise), (2) a coarse-scale variance, the window's variance about its row and
    column means (its best ``f(x) + g(y)``: blind to the same things). White noise gives the same value at both
    scales; scene structure, whose spectrum falls with frequency, shows more at the coarse one (Foi's smoothness
    mask). Both scales see exactly the window's pixels: with tiles of ``t x t`` pixels the curvature of a tile's
    border pixels reached into the next tile, where an edge raised the fine variance unseen by the coarse one
    (on the benchmark's scenes 90-97% of the texture left in the tiles taken for noise came from there); a tile's
    mean weights each pixel as it enters the fine-scale noise variance, so that ``E[fine] = K mean + c``. (3) A
    channel's tiles are those that at least two of the OTHER three channels judge smooth (coarse / fine below
    the 80% point of pure noise's): scene structure is mostly shared between the channels and their noise is
    not, so the variances a channel is fitted on are not selected by its own noise; less those whose own coarse variance is above pure noise's 99% point at the noise a first fit
    predicts for them (structure of that channel alone; a test of the tile's coarse / fine ratio instead keeps the
    textured tiles whose fine-scale noise happened to be high: +1-2% in K). A frame where a channel keeps fewer
    than 30 tiles is retried with ``t - 2``. (4) Texture that survives only adds variance: the kept tiles' fine
    variances are fitted by maximum likelihood (EM) as a mixture of pure-noise tiles, gamma distributed around
    ``K mu + c`` with the shape that pure noise has (simulated once, fixed seed), and textured tiles,
    log-uniform above it. (5) The texture the tiles judged pure noise still hold is estimated from the other
    channels and subtracted before the final line fit: the tile mean of the product of two channels' fine-scale
    maps has no noise part and, for shared structure, measures the texture (:func:`_shared_texture`); it misses
    structure near the CFA plane's Nyquist frequency (the channels sample it at different phases) and
    colour-only structure. The tiles' scatter about the fit is checked against pure noise's: K's error is
    inflated by the square root of any excess, and above 3x (or without a positive K) a warning marks the
    channel unreliable (a calibration then combines the channel over the frames that trust it). K's error is
    otherwise statistical only: texture spread evenly over a channel at its finest scale (a grain that every
    tile carries alike) is, like PRNU, indistinguishable from noise in one frame; it biases K without a warning.
    Accuracy (BENCHMARKS.md): within 6% on smooth scenes; on the benchmark's dead-leaves scenes 1.2-7.3%
    (largest channel, two 6 MP frames combined; each frame within 7.7%, within 10% over other noise draws; no
    channel marked unreliable), 6-13% from two 0.4 MP frames. A calibration prefers bursts and the DNG tag. PRNU caveat: a single frame cannot
    separate the fixed pattern from temporal noise; a PRNU of ``p`` adds ``(p * mean)^2`` to the variance,
    biasing ``K`` up by about ``p^2`` times the electron count (1% PRNU at 1000 electrons: +10%), which the
    report states. The dark variance ``c`` excludes row noise.
``dng_tag`` (:func:`tag_estimate`), the vendor's DNG NoiseProfile (tag 51041, one ``(S, O)`` pair for all
    planes or one per plane): ``K = S (W - B)`` and ``c = O (W - B)^2`` (isp_sim's convention,
    :func:`isp_sim.params.dng_noise_profile`); marked as derived from the vendor's model.

Without dark frames the read noise is taken as Gaussian with ``std = sqrt(c - 1/12)`` (it then includes any
row noise, except from single frames) and no row noise or bias is modelled; the calibration says so in the
profile and the report.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from isp_sim.cfa import channel_sites

from .errors import CalibrationError

from .estimators import SATURATION_FRACTION

__all__ = ["LabFreeEstimate", "burst_estimate", "single_estimate", "tag_estimate", "same_scene", "METHODS"]

#: In the order a calibration prefers them for an ISO without flats: a measurement of the sensor's own temporal
#: noise, the vendor's model, then the single-frame estimate (the least accurate: see BENCHMARKS.md).
METHODS = ("burst", "dng_tag", "single")


@dataclass
class LabFreeEstimate:
    """``K`` (4,) DN/e-, ``dark_var`` (4,) DN^2 (read + row + 1/12; ``single``: read + 1/12), their standard errors,
    per channel R, Gr, Gb, B."""

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
    warnings: list = field(default_factory=list)  # what a user must see (the calibration passes them on)
    reliable: np.ndarray = field(default_factory=lambda: np.ones(4, bool))  # per channel: False = do not trust K


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
    """``(..., H, W)`` -> ``(..., H // t, t, W // t, t)`` (the edge remainder dropped)."""
    h, w = plane.shape[-2] // t * t, plane.shape[-1] // t * t
    p = plane[..., :h, :w]
    return p.reshape(p.shape[:-2] + (h // t, t, w // t, t))


def _raw_frame(frame, what: str) -> np.ndarray:
    """``frame`` as a 2-D array of finite raw values, or a :class:`CalibrationError` naming what is wrong."""
    a = np.asarray(frame)
    if a.ndim != 2 or min(a.shape) < 16:
        raise CalibrationError(f"{what}: expected a 2-D raw mosaic of at least 16 x 16 pixels, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise CalibrationError(f"{what}: expected integer or float raw values, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise CalibrationError(f"{what}: {int(np.size(a) - np.isfinite(a).sum())} non-finite pixel value(s)")
    return a


def _levels(black, white, bias=None) -> tuple[np.ndarray, np.ndarray, float]:
    """(black (4,), the offset black + bias (4,), white) checked: finite, one or four values each, white above
    every black level; else a :class:`CalibrationError` naming the problem."""
    def four(v, name):
        a = np.asarray(v, np.float64)
        a = np.full(4, float(a)) if a.ndim == 0 else a
        if a.shape != (4,) or not np.all(np.isfinite(a)):
            raise CalibrationError(f"{name} must be a finite number or 4 numbers (R, Gr, Gb, B), got {v!r}")
        return a

    b = four(black, "black")
    off = b + (np.zeros(4) if bias is None else four(bias, "bias"))
    w = float(white)
    if not np.isfinite(w) or w <= b.max():
        raise CalibrationError(f"white ({white!r}) must be finite and above every black level {b.tolist()}")
    return b, off, w


def _check_tile(t, name: str) -> int:
    if int(t) != t or t < 2:
        raise CalibrationError(f"{name} must be an integer >= 2 (pixels of one CFA plane), got {t!r}")
    return int(t)


def _binned_points(mu: np.ndarray, var: np.ndarray, hi: float, min_count: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The report's photon-transfer points: per signal bin (:func:`_bins` from the lowest signal to ``hi``) with
    at least ``min_count`` tiles, the mean signal and the mean variance."""
    b = _bins(mu, max(float(mu.min()), 0.5), hi)
    ks = [k for k in np.unique(b) if (b == k).sum() >= min_count]
    return np.array([mu[b == k].mean() for k in ks]), np.array([var[b == k].mean() for k in ks])


#: A global temporal pattern of the burst's residuals (a direction in frame space) is taken for motion and projected
#: out when its share of the residual energy, averaged over the tiles, is this many standard errors above pure
#: noise's (:func:`_motion_directions`).
MOTION_Z = 5.0


def _plane_derivatives(m: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The derivatives the frames' motion is regressed on, of one CFA plane ``m`` (h, w) -> (5, h, w) (into
    ``out`` when given): d/dx and d/dy (central differences), d2/dx2, d2/dy2 and d2/dxdy; the second-order terms
    absorb the blur that interpolating a sub-pixel shift adds, and a shift's curvature. The edges are mirrored
    oddly (``m[-1] = 2 m[0] - m[1]``: one-sided first differences and no curvature at the border)."""
    q = np.pad(m, 1, mode="reflect", reflect_type="odd")
    h, w = m.shape
    out = np.empty((5, h, w)) if out is None else out
    c, e, wst, n, s = q[1:-1, 1:-1], q[1:-1, 2:], q[1:-1, :-2], q[:-2, 1:-1], q[2:, 1:-1]
    np.subtract(e, wst, out=out[0])
    out[0] *= 0.5
    np.subtract(s, n, out=out[1])
    out[1] *= 0.5
    for i, (a, b) in ((2, (e, wst)), (3, (s, n))):
        np.add(a, b, out=out[i])
        out[i] -= c
        out[i] -= c
    np.subtract(q[2:, 2:], q[2:, :-2], out=out[4])
    out[4] -= q[:-2, 2:]
    out[4] += q[:-2, :-2]
    out[4] *= 0.25
    return out


@lru_cache(maxsize=1)
def _derivative_noise_gain() -> np.ndarray:
    """The covariance of :func:`_plane_derivatives` and of the plane itself (the gain regressor) for white noise of
    unit variance, ``Gamma[i, j] = sum_u h_i(u) h_j(u)`` over the filters' taps ``h`` (6, 6): from their responses
    to an impulse."""
    imp = np.zeros((5, 5))
    imp[2, 2] = 1.0
    h = np.concatenate([_plane_derivatives(imp), imp[None]]).reshape(6, -1)
    return h @ h.T


#: The most pixels per channel the motion coefficients are fitted on (evenly spaced over the fitted ones): 7
#: coefficients per frame from 2^18 pixels leave 3e-5 of the noise variance in the residuals.
MOTION_FIT_PIXELS = 1 << 18


def _motion_fit(p: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frames' deviations from the burst mean less what the mean's local structure explains of them, per
    frame (:func:`burst_estimate`): ``p`` (L, h, w) one channel's burst, ``fit`` (h, w) the pixels the
    coefficients are fitted on (at most :data:`MOTION_FIT_PIXELS` of them, evenly spaced). Least squares of
    ``r_k = p_k - mean`` on :func:`_plane_derivatives` of the mean, the mean itself (a gain change) and 1 (an
    offset), refitted once without the pixels whose corrected temporal variance is above the chi-square 99.9%
    point of the median at their signal (32 bins of equal count): local motion, clipping nearby, model misfit.
    Returns (the mean (h, w), the residuals (L, h * w), the coefficients (7, L): derivatives, gain, offset)."""
    from scipy import stats

    L = p.shape[0]
    m = p.mean(0)
    R = (p - m).reshape(L, -1)
    X = np.empty((7,) + m.shape)
    _plane_derivatives(m, out=X[:5])
    X[5], X[6] = m, 1.0
    X = X.reshape(7, -1)
    idx = np.flatnonzero(fit)
    idx = idx[::max(1, -(-idx.size // MOTION_FIT_PIXELS))]
    Xs, Rs, ms = X[:, idx], R[:, idx], m.ravel()[idx]

    def solve(w: np.ndarray) -> np.ndarray:
        Xw = Xs * w
        G, b = Xw @ Xs.T, Xw @ Rs.T
        d = np.sqrt(np.maximum(np.diag(G), 1e-300))
        return np.linalg.lstsq(G / np.outer(d, d), b / d[:, None], rcond=None)[0] / d[:, None]

    A = solve(np.ones(idx.size))
    n = idx.size // 32
    if n >= 8:
        Es = Rs - A.T @ Xs
        s = (Es * Es).sum(0)
        chunks = np.argsort(ms)[:n * 32].reshape(32, n)
        med = np.median(s[chunks], axis=1)
        bins = np.clip(np.searchsorted(ms[chunks[1:, 0]], ms, side="right"), 0, 31)
        A = solve((s <= stats.chi2.ppf(0.999, L - 1) / stats.chi2.ppf(0.5, L - 1) * med[bins]).astype(np.float64))
    R -= A.T @ X
    return m, R, A


def _motion_directions(E: np.ndarray, fit: np.ndarray, shape: tuple[int, int], t: int) -> tuple[np.ndarray, list]:
    """Directions in frame space (orthonormal, (L, q)) that the residuals ``E`` (L, h * w) share over the image: per
    ``t x t`` tile the residuals' scatter over the fitted pixels ``fit``, normalised to unit trace (each tile counts
    once: a moving leaf is a few tiles); pure noise, exchangeable across frames, has mean ``I / (L - 1)`` on the
    frames' centred space. The largest eigenvector of the tiles' sum is kept while its per-tile share is
    :data:`MOTION_Z` standard errors (over the tiles) above pure noise's; then the next, in what is left; at most
    ``L - 2`` (one degree of freedom stays). Returns (the directions, the z value of each tested)."""
    L = E.shape[0]
    d = L - 1
    h, w = shape
    th, tw = h // t, w // t
    if d < 2 or th * tw < 10:
        return np.zeros((L, 0)), []
    Et = (E * fit.ravel()).reshape(L, h, w)[:, :th * t, :tw * t].reshape(L, th, t, tw, t)
    Et = Et.transpose(1, 3, 0, 2, 4).reshape(th * tw, L, t * t)
    Q = np.linalg.qr(np.eye(L) - 1.0 / L)[0][:, :d]  # an orthonormal basis of the centred frame space
    S = Q.T @ (Et @ Et.transpose(0, 2, 1)) @ Q  # (tiles, d, d)
    S = S[np.trace(S, axis1=1, axis2=2) > 0]
    if S.shape[0] < 10:
        return np.zeros((L, 0)), []
    C = np.eye(d)  # the space not yet projected out, in Q's coordinates
    B, zs = [], []
    for _ in range(d - 1):
        Sc = C.T @ S @ C
        Sc = Sc / np.trace(Sc, axis1=1, axis2=2)[:, None, None]
        V = np.linalg.eigh(Sc.sum(0))[1]
        share = np.einsum("i,tij,j->t", V[:, -1], Sc, V[:, -1])
        z = (share.mean() - 1.0 / C.shape[1]) / max(share.std(ddof=1) / math.sqrt(share.size), 1e-300)
        zs.append(float(z))
        if not z > MOTION_Z:
            break
        B.append(Q @ C @ V[:, -1])
        C = C @ V[:, :-1]
    return (np.stack(B, 1) if B else np.zeros((L, 0))), zs


def _burst_variance(p: np.ndarray, clip: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """One channel's burst ``p`` (L, h, w) -> (the burst mean, the per-pixel temporal variance with the frames'
    motion taken out, the number of temporal directions projected out, the per-frame shifts (L, 2) in
    full-resolution pixels (x, y), frame k being the burst mean at ``x + shift``): :func:`_motion_fit`,
    :func:`_motion_directions`, the variance over the ``L - 1 - q`` degrees of freedom left, divided by
    ``1 + beta`` (:func:`burst_estimate`). The shifts are the first-derivative coefficients (a plane pixel is 2
    full-resolution pixels); central differences underestimate the slope of fine structure, so on the benchmark's
    scenes they read about 25% above the simulated jitter: a description of the motion, not a measurement."""
    from scipy.ndimage import binary_dilation

    L = p.shape[0]
    fit = ~binary_dilation(clip, np.ones((3, 3), bool))  # the pixels whose derivatives hold no clipped value
    m, E, A = _motion_fit(p, fit)
    B, _ = _motion_directions(E, fit, m.shape, t)
    q = B.shape[1]
    if q:
        E = E - B @ (B.T @ E)
    P = np.eye(L) - 1.0 / L - B @ B.T
    beta = float(np.trace(A[:6] @ P @ A[:6].T @ _derivative_noise_gain())) / (L * (L - 1 - q))
    v = (E * E).sum(0).reshape(m.shape) / ((L - 1 - q) * (1.0 + beta))
    return m, v, q, 2.0 * A[:2].T


def _burst_tiles(m: np.ndarray, v: np.ndarray, clip: np.ndarray, t: int, off: float, usable: float, L: int):
    """Per ``t x t`` tile of one channel's burst mean ``m`` and temporal variance ``v`` (:func:`_burst_variance`):
    (mean above black, mean temporal variance, scene gradient energy less its noise part), unclipped tiles below
    ``usable`` only."""
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
    # what motion the compensation leaves grows with the structure, |grad I|^2; the gradient energy of the burst
    # mean holds 4 v / L of noise
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
    used = A.shape[1]  # the columns of the model fitted: all, or all but the dropped motion term
    for _ in range(4):
        w = 1.0 / pred[keep]
        coef = np.linalg.lstsq(A[keep] * w[:, None], y[keep] * w, rcond=None)[0]
        used = A.shape[1]
        if coef[-1] < 0:
            used -= 1
            coef = np.append(np.linalg.lstsq(A[keep][:, :used] * w[:, None], y[keep] * w, rcond=None)[0], 0.0)
        pred = np.maximum(offset + A @ coef, 1e-9)
        keep = var <= pred * q
    # standard errors of the model that was fitted (a dropped motion term has none: 0)
    w = 1.0 / pred[keep]
    Aw = A[keep][:, :used] * w[:, None]
    res = (y[keep] - A[keep] @ coef) * w
    cov = np.linalg.pinv(Aw.T @ Aw) * float(res @ res) / max(keep.sum() - used, 1)
    err = np.zeros(A.shape[1])
    err[:used] = np.sqrt(np.maximum(np.diag(cov), 0.0))
    return coef, err, keep


def burst_estimate(frames: Sequence[np.ndarray], pattern: str, black: Sequence[float] | np.ndarray, white: float, *,
                   bias: Sequence[float] | np.ndarray | None = None, tile: int = 16, tile_dark: int = 4,
                   files: Sequence[str | os.PathLike] = ()) -> LabFreeEstimate:
    """``K`` and the dark variance per channel from a static burst (module docstring).

    ``K`` from ``tile``-pixel tiles (large tiles: the slope is steady); the dark variance from ``tile_dark``-pixel
    tiles with ``K`` fixed (small tiles reach the darkest parts of a scene, where the intercept is decided).

    Motion, per CFA plane, of the ``L`` frames ``f_k = s + d_k + n_k`` (``s`` the static scene with PRNU, ``d_k``
    frame k's motion term, ``n_k`` noise of variance ``sigma^2`` at each pixel, the same in every frame and
    independent between them):

    1. Regression (:func:`_motion_fit`): ``r_k = f_k - mean`` on ``X`` = the mean's derivatives
       (:func:`_plane_derivatives`), the mean and 1, least squares per frame over the pixels with no clipped
       neighbour, refitted once without the outliers; ``r_k - X a_k`` is kept. The regressors come from the noisy
       mean, but its noise is uncorrelated with ``r_k``'s at any two pixels: ``E[(n_k - nbar)(x) nbar(x)] =
       sigma^2 / L - sigma^2 / L = 0`` and pixels are independent (a row-noise term cancels the same way), so
       any linear filter of the mean is too (independent of it for Gaussian noise): the fit takes no more of the
       frames' noise than its 7 parameters' share of the N fitted pixels (7 / N: 3e-5 at 2^18 pixels). What it
       cannot take is the regressors' noise ``eps`` times the motion: the true term ``X0 a_k`` is
       ``X a_k - eps a_k``, and ``eps a_k`` (covariance ``Gamma sigma^2 / L``, ``Gamma`` the filters' noise
       gain, :func:`_derivative_noise_gain`) stays in the residual, uncorrelated with its noise: a bias of
       ``beta = tr(A P A^T Gamma) / (L (L - 1 - q))`` of the variance (``A`` the fitted coefficients, ``P`` the
       projection of step 2), divided out; below 1e-3 in the benchmark's bursts (0.05 px of jitter).
    2. Temporal projection (:func:`_motion_directions`): each colour is sampled every 2 pixels, so the plane's
       derivatives miss the structure near its Nyquist frequency and step 1 leaves part of the motion (at phone
       B's ISO 100 in the benchmark, noise-free: 12% of the motion variance; a demosaiced full-resolution
       gradient still leaves 5%). But a rigid motion moves every pixel with the frames' common shifts, whatever
       the local structure: the residual vectors over the frames share a few directions of the ``L - 1``
       dimensional centred frame space, where noise, exchangeable between the frames, scatters isotropically.
       The directions significantly above isotropy (:data:`MOTION_Z`) are projected out (``q`` of them, at most
       ``L - 2``); for a fixed projection ``E ||P r||^2 = (L - 1 - q) sigma^2`` whatever the spatial form of the
       motion in those directions, so the variance is ``||P r||^2 / (L - 1 - q) / (1 + beta)``. Choosing the
       directions from the same residuals lowers it by the chosen directions' excess noise share, at most
       ``O(1 / sqrt(tiles))`` (about 0.3% for a direction of pure noise at 400 tiles; the test projects such a
       direction rarely). The price: K's statistical error grows by ``sqrt((L - 1) / (L - 1 - q))``; a static
       burst projects nothing and keeps all its degrees of freedom; a two-frame burst has only step 1.
    3. What remains, and local motion (a moving leaf does not follow the frames' common pattern), is left to the
       tile fit: the gradient-energy term and the chi-square rejection (``t^2 (L - 1 - q)`` degrees of freedom).

    On the benchmark (BENCHMARKS.md, 0.05 px of jitter) step 1 alone leaves K 4% high at phone B's ISO 100, both
    steps within 1.5% at every ISO of both phones."""
    frames = list(frames)
    if len(frames) < 2:
        raise CalibrationError("a burst needs at least two frames")
    black, off, white = _levels(black, white, bias)
    tile, tile_dark = _check_tile(tile, "tile"), _check_tile(tile_dark, "tile_dark")
    usable = SATURATION_FRACTION * (white - float(black.max()))
    arrs = [_raw_frame(f, f"burst frame {k}") for k, f in enumerate(frames)]
    if len({a.shape for a in arrs}) > 1:
        raise CalibrationError(f"burst frames differ in shape: {sorted({a.shape for a in arrs})}")
    stack = np.stack(arrs)  # (L, H, W) integer DN
    L = stack.shape[0]
    Ks, cs, Kerr, cerr, ntiles, nrej, pts, motion, dirs, shifts = [], [], [], [], [], [], [], [], [], []
    for c, (i, j) in enumerate(channel_sites(pattern)):
        p = stack[:, i::2, j::2].astype(np.float64)
        clip = (stack[:, i::2, j::2] >= white).any(0)
        m, v, q, sh = _burst_variance(p, clip, tile)
        del p
        nu = L - 1 - q  # each pixel's degrees of freedom
        mu, var, g = _burst_tiles(m, v, clip, tile, off[c], usable, L)
        if mu.size < 20:
            raise CalibrationError(f"channel {c}: only {mu.size} unclipped tiles below "
                                   f"{100 * SATURATION_FRACTION:.0f}% of saturation in the burst")
        coef, err, keep = _robust_fit([mu, np.ones_like(mu), g], var, tile * tile * nu)
        K = float(coef[0])
        mu2, var2, g2 = _burst_tiles(m, v, clip, tile_dark, off[c], usable, L)
        coef2, err2, _ = _robust_fit([np.ones_like(mu2), g2], var2, tile_dark * tile_dark * nu, offset=K * mu2)
        Ks.append(K), cs.append(float(coef2[0])), Kerr.append(float(err[0])), cerr.append(float(err2[0]))
        ntiles.append(int(keep.sum())), nrej.append(int(mu.size - keep.sum()))
        motion.append(float(coef[2])), dirs.append(q), shifts.append(sh)
        pts.append(_binned_points(mu[keep], (var - coef[2] * g)[keep], usable))
    est = LabFreeEstimate("burst", np.array(Ks), np.array(cs), np.array(Kerr), np.array(cerr), ntiles, nrej,
                          [str(f) for f in files], [], pts)
    shift = np.median(shifts, axis=0)  # (L, 2): the channels see one motion
    if max(dirs) > 0 or max(motion) > 0 or np.abs(shift).max() >= 0.01:
        est.notes.append("motion between the frames: per-frame shifts (x, y) of "
                         + ", ".join(f"({x:+.3f}, {y:+.3f})" for x, y in shift) + " full-resolution px (frame = "
                         "burst mean at x + shift) fitted and subtracted; temporal patterns of what remained "
                         f"projected out: {', '.join(map(str, dirs))} per channel; a gradient-energy term of "
                         f"{', '.join(f'{x:.3g}' for x in motion)} per channel fitted alongside the noise")
    return est


_BORDER_GAIN = math.sqrt(6.0 / 8.0)


def _curvature(plane: np.ndarray) -> np.ndarray:
    """The mixed second difference ``[1, -2, 1] x [1, -2, 1] / 6`` of one CFA plane (mirrored edges): unit
    gain for white noise, zero for any signal linear in x or in y (and any ``f(x) + g(y)``), so a leaf's
    shading and axis-aligned edges leave nothing; its response to a scene frequency ``(fx, fy)`` is
    ``8/3 sin^2(fx/2) sin^2(fy/2)``. On the first and last row and column the mirrored difference is
    ``2 (x1 - x0)`` (noise gain 8 instead of 6): scaled by ``sqrt(6 / 8)`` there, so that every pixel has
    unit gain for white noise (else the border tiles read 4% high)."""
    q = np.pad(plane, 1, mode="reflect")
    d = q[:-2] - 2.0 * q[1:-1] + q[2:]
    d[[0, -1]] *= _BORDER_GAIN
    out = (d[:, :-2] - 2.0 * d[:, 1:-1] + d[:, 2:]) / 6.0
    out[:, [0, -1]] *= _BORDER_GAIN
    return out


def _flat_tiles(a: np.ndarray, t: int) -> np.ndarray:
    """``(H, W)`` -> ``(n_tiles, t * t)`` in row-major tile order (:func:`_tiles`, each tile's pixels in a row)."""
    return _tiles(a, t).transpose(0, 2, 1, 3).reshape(-1, t * t)


def _fine_tiles(curv: np.ndarray, t: int) -> np.ndarray:
    """A plane's :func:`_curvature` map (or a product of such maps) as ``(n_tiles, t * t)``: the single-frame
    tiles' fine-scale values, those at plane positions ``1 .. H - 2`` (whose 3 x 3 support lies in the plane),
    ``(H - 2) // t`` by ``(W - 2) // t`` tiles in row-major order; tile ``(a, b)``'s support is the pixel window
    :func:`_windows` gives it."""
    return _flat_tiles(curv[1:-1, 1:-1], t)


def _windows(a: np.ndarray, t: int) -> np.ndarray:
    """``(ny, nx, t + 2, t + 2)`` view of ``a``: per tile of :func:`_fine_tiles` the pixels its ``t x t``
    curvature values are computed from (neighbouring windows share their edge rows and columns)."""
    from numpy.lib.stride_tricks import sliding_window_view

    ny, nx = (a.shape[0] - 2) // t, (a.shape[1] - 2) // t
    return sliding_window_view(a, (t + 2, t + 2))[::t, ::t][:ny, :nx]


@lru_cache(maxsize=8)
def _window_weights(t: int) -> np.ndarray:
    """Per axis of a ``t + 2`` pixel window: the weight of each pixel in the tile's fine-scale noise variance
    (the squared curvature kernel ``[1, 4, 1] / 6`` summed over the ``t`` positions, over ``t``: ``[1, 5, 6, ...,
    6, 5, 1] / (6 t)``)."""
    return np.convolve(np.ones(t), [1.0, 4.0, 1.0]) / (6.0 * t)


def _single_tiles(plane: np.ndarray, t: int, curv: np.ndarray | None = None):
    """Per tile of :func:`_fine_tiles` (``t x t`` curvature values, a ``(t + 2) x (t + 2)`` pixel window):
    (mean, fine-scale variance = mean curvature^2, coarse variance = the variance left in the window after its row
    and column means are removed, i.e. around its best ``f(x) + g(y)``, ``(t + 1)^2`` degrees of freedom). Both
    scales are blind to the same things (shading and edges along an axis, row noise) and see the same pixels,
    so structure just outside a tile cannot reach its fine variance unseen by its coarse one (with ``t x t``
    pixel tiles, the curvature of their border rows reaching into the next tile, that leak was most of the
    texture left in the tiles taken for noise). The mean weights each pixel as it enters the fine-scale noise
    variance (:func:`_window_weights`), so that ``E[fine] = K mean + c`` for any signal in the window; ``curv``:
    the plane's :func:`_curvature`, if already computed."""
    te = _fine_tiles(_curvature(plane) if curv is None else curv, t)
    win = _windows(np.asarray(plane, np.float64), t)
    w = _window_weights(t)
    n = t + 2
    rows, cols = win.sum(3), win.sum(2)
    total = rows.sum(2)
    s2 = np.einsum("abij,abij->ab", win, win)
    coarse = np.maximum(s2 - ((rows**2).sum(2) + (cols**2).sum(2)) / n + total**2 / n**2, 0.0) / (n - 1) ** 2
    mean = np.einsum("abij,i,j->ab", win, w, w)
    return mean.ravel(), (te**2).mean(1), coarse.ravel()


def _neighbour_shifts(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
    """Plane-index shifts ``(sy, sx)`` that take a site of the channel at cell position ``a`` to the nearest sites
    of the channel at ``b`` (1, 2 or 4 of them: the same row/column, or the two / four diagonal neighbours)."""
    def axis(d):
        return [0] if d == 0 else [0, -1] if d > 0 else [0, 1]
    return [(sy, sx) for sy in axis(b[0] - a[0]) for sx in axis(b[1] - a[1])]


def _shifted(a: np.ndarray, sy: int, sx: int) -> np.ndarray:
    """``out[y, x] = a[y + sy, x + sx]`` with the edge row/column repeated where that falls outside."""
    q = np.pad(a, 1, mode="edge")
    return q[1 + sy:1 + sy + a.shape[0], 1 + sx:1 + sx + a.shape[1]]


def _shared_texture(curvs: list, noise: list, mus: list, sites: list, c: int, t: int,
                    clipped: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per tile, an estimate of the scene's own variance in channel ``c``'s fine-scale map (the texture that
    passes for noise), from the other channels ``b``: the tile mean ``C_cb`` of ``d_c * d_b`` (``d``: curvature
    maps, ``d_b`` at the nearest ``b`` sites) has no noise part (the channels' noise is independent) and, for
    structure that the channels share (shading, edges, surface texture), equals the texture energy times
    ``s_b / s_c``; so ``T_b = C_cb * mu_c / mu_b``, combined over the three other channels with weights
    ``mu_b^2 / noise_b`` (``noise``: each channel's predicted noise variance per tile; the inverse of each
    estimate's noise: a dark channel says little; a clipped tile of ``b`` none). Returns the estimate and its
    own noise variance, ``noise_c mu_c^2 sum_b w_b g_cb / (sum_b w_b)^2`` with ``g_cb`` the variance of ``C_cb``
    for independent unit white noise (:func:`_shared_gain`). Zero-mean noise on a pure-noise
    tile; it misses structure finer than the CFA's site offsets (whose phase differs between the channels) and
    colour-only structure."""
    num = np.zeros(mus[c].shape)
    den = np.zeros(mus[c].shape)
    var = np.zeros(mus[c].shape)
    for b in range(len(curvs)):
        if b == c:
            continue
        sh = _neighbour_shifts(sites[c], sites[b])
        cov = sum(_fine_tiles(curvs[c] * _shifted(curvs[b], sy, sx), t).mean(1) for sy, sx in sh) / len(sh)
        mb = np.maximum(mus[b], 0.0)
        wb = mb**2 / noise[b]
        if clipped is not None:
            wb = np.where(clipped[b], 0.0, wb)
        num += wb * cov * mus[c] / np.maximum(mb, 1e-12)
        den += wb
        var += wb * _shared_gain(tuple(sh), t)
    inv = np.where(den > 0, 1.0 / np.maximum(den, 1e-300), 0.0)
    return num * inv, noise[c] * mus[c] ** 2 * var * inv**2


@lru_cache(maxsize=32)
def _shared_gain(shifts: tuple, t: int) -> float:
    """The variance of a ``t x t`` tile mean of ``d_a * d_b`` averaged over ``shifts`` (:func:`_shared_texture`) for
    two independent planes of unit white noise (fixed seed): averaging ``d_b`` over neighbouring sites cancels much
    of its noise, which lies near the plane's Nyquist frequency (two shifts: about 1/20 of one shift's)."""
    rng = np.random.default_rng(0x5EED + len(shifts))
    da, db = (_curvature(rng.standard_normal((64 * t + 2, 64 * t + 2))) for _ in range(2))
    cov = sum(_fine_tiles(da * _shifted(db, sy, sx), t).mean(1) for sy, sx in shifts) / len(shifts)
    return float(cov.var())


#: A tile whose own coarse variance is above this quantile of pure noise's, at the noise a first fit predicts for
#: it, is dropped from its channel (structure of that channel alone, e.g. texture on a saturated colour the other
#: channels barely see). Against the predicted noise, not the tile's own fine variance: a test on coarse / fine
#: keeps the textured tiles whose fine-scale noise happened to be high (+1-2% in K); the reference's gamma law is
#: fitted under the same condition.
OWN_QUANTILE = 0.99
#: How many of the other three channels must judge a tile smooth for it to be used: two (all three left out a
#: fifth of the noise-free tiles, each channel's test by its own noise, for little less texture once a tile's
#: own structure is tested against the predicted noise; measured on the benchmark's scenes).
MIN_VOTES = 2
#: The kept tiles' variances scattering more than this many times pure noise's (gamma) variance: the fit rests
#: on texture, not noise (too little noise-free area at this ISO): a warning, and the channel is marked
#: unreliable. (K's error is inflated by the square root of any scatter above 1.)
MAX_DISPERSION = 3.0


@lru_cache(maxsize=8)
def _single_reference(t: int, quantile: float) -> tuple[float, float, float, float]:
    """White Gaussian noise of unit variance through :func:`_single_tiles` (fixed seed, four 64 x 64-tile planes):
    the smoothness threshold on coarse / fine (its ``quantile``), the own threshold on the coarse variance
    (:data:`OWN_QUANTILE`) and a gamma law (shape, scale) of the fine variance of the tiles below it: the
    distribution a pure-noise tile's variance has where it is used (a channel's tiles are otherwise selected by the
    other channels' tests, which its own noise does not enter)."""
    from scipy import stats

    rng = np.random.default_rng(0x5EED)
    vf, vc = np.concatenate([np.stack(_single_tiles(rng.standard_normal((64 * t + 2, 64 * t + 2)), t)[1:])
                             for _ in range(4)], axis=1)
    thr = float(np.quantile(vc / vf, quantile))
    own = float(np.quantile(vc, OWN_QUANTILE))
    shape, _, scale = stats.gamma.fit(vf[vc <= own], floc=0)
    return thr, float(shape), float(scale), own


def _mixture_fit(mu: np.ndarray, v: np.ndarray, shape: float, span: float = 1000.0, iters: int = 200):
    """Maximum likelihood (EM) of ``v`` (tile variances at signals ``mu``, unit mean for pure noise) as a mixture:
    a fraction ``w`` of pure-noise tiles, ``v / (K mu + c)`` gamma distributed with ``shape`` and mean 1, and
    textured ones, whose structure only adds variance: log-uniform on ``[1, span] x (K mu + c)``. The M-step
    for ``(K, c)`` is the gamma scale family's: weighted least squares of ``v`` on ``(mu, 1)`` with weights
    ``posterior / (K mu + c)^2``, iterated. Starts from a line through the lowest fifth of the tiles per signal
    bin (the structure only adds). Returns (K, c, w, clean-posterior per tile)."""
    from scipy import stats

    lspan = math.log(span)
    b = _bins(mu, max(float(mu.min()), 0.5), float(mu.max()) * 1.001, 12)
    m0, v0 = [], []
    for k in np.unique(b):
        s = b == k
        if s.sum() >= 5:
            m0.append(float(np.median(mu[s]))), v0.append(float(np.quantile(v[s], 0.2)))
    if len(m0) >= 2:
        K, c = np.polyfit(m0, v0, 1)
    else:
        K, c = float(np.median(v) / max(np.median(mu), 1e-9)), 0.0
    K, c, w = max(float(K), 1e-6), max(float(c), 1e-3), 0.5
    A = np.stack([mu, np.ones_like(mu)], 1)
    prev = None
    for _ in range(iters):
        s2 = np.maximum(K * mu + c, 1e-9)
        z = v / s2
        lg = math.log(w) + stats.gamma.logpdf(z, shape, scale=1.0 / shape) - np.log(s2)
        with np.errstate(divide="ignore"):
            lh = math.log1p(-w) + np.where((z >= 1.0) & (z <= span), -np.log(v * lspan), -np.inf)
        post = np.exp(lg - np.logaddexp(lg, lh))
        w = float(np.clip(post.mean(), 1e-3, 1 - 1e-3))
        for _ in range(3):
            wt = post / s2**2
            coef = np.linalg.lstsq(A * np.sqrt(wt)[:, None], v * np.sqrt(wt), rcond=None)[0]
            K, c = max(float(coef[0]), 1e-6), max(float(coef[1]), 1e-3)
            s2 = np.maximum(K * mu + c, 1e-9)
        if prev is not None and abs(K / prev[0] - 1) < 1e-7 and abs(c - prev[1]) < 1e-7 * max(abs(c), 1.0):
            break
        prev = (K, c)
    return K, c, w, post


def single_estimate(frame: np.ndarray, pattern: str, black: Sequence[float] | np.ndarray, white: float, *,
                    bias: Sequence[float] | np.ndarray | None = None, tile: int = 8, max_fraction: float = SATURATION_FRACTION,
                    smooth_quantile: float = 0.8, files: Sequence[str | os.PathLike] = ()) -> LabFreeEstimate:
    """``K`` and the dark variance per channel from one frame of any scene (module docstring). ``tile``: the
    side of a tile's block of fine-scale values (its pixel window is ``tile + 2``); a frame where some channel
    has fewer than 30 smooth tiles at that size (a small frame of a busy scene) is retried once with
    ``tile - 2`` (at least 4), which a note says."""
    x = _raw_frame(frame, "single frame")
    black, off, white = _levels(black, white, bias)
    tile = _check_tile(tile, "tile")
    if not (0 < smooth_quantile < 1) or not (0 < max_fraction <= 1):
        raise CalibrationError(f"smooth_quantile must be in (0, 1) and max_fraction in (0, 1], got "
                               f"{smooth_quantile!r}, {max_fraction!r}")
    args = (x, pattern, black, off, white, max_fraction, float(smooth_quantile), files)
    try:
        return _single_at(tile, *args)
    except _TooFewTiles as exc:
        if tile - 2 < 4:
            raise
        est = _single_at(tile - 2, *args)
        est.notes.append(f"single frame: tiles of {tile - 2} used ({tile}: {exc})")
        return est


class _TooFewTiles(CalibrationError):
    """A channel has too few smooth tiles for :func:`single_estimate` at the tile size tried."""


def _single_at(tile: int, x: np.ndarray, pattern: str, black: np.ndarray, off: np.ndarray, white: float,
               max_fraction: float, smooth_quantile: float, files) -> LabFreeEstimate:
    """:func:`single_estimate` at one tile size, on checked arguments."""
    top = max_fraction * (white - float(black.max()))
    thr, shape, scale, own = _single_reference(tile, smooth_quantile)
    sites = channel_sites(pattern)
    h = min(x[i::2, j::2].shape[0] for i, j in sites)
    w = min(x[i::2, j::2].shape[1] for i, j in sites)
    planes = [x[i::2, j::2][:h, :w].astype(np.float64) for i, j in sites]  # one tile grid for the four channels
    curvs = [_curvature(p) for p in planes]
    stats_ = [_single_tiles(p, tile, d) for p, d in zip(planes, curvs)]
    mus = [m - off[c] for c, (m, _, _) in enumerate(stats_)]
    clipped = [_windows(p >= white, tile).any((2, 3)).ravel() for p in planes]
    smooth = [~clipped[c] & (vc <= thr * vf) for c, (_, vf, vc) in enumerate(stats_)]
    warns: list[str] = []
    reliable = np.ones(4, bool)
    fits = []
    for c in range(4):
        _, vf, vc = stats_[c]
        mu = mus[c]
        usable = ~clipped[c] & (mu > 0) & (mu < top) & (vf > 0)
        # the tiles the OTHER channels judge smooth: the scene's structure is mostly shared between the channels,
        # their noise is not, so this channel's variances are not selected by its own noise (its own test would
        # keep the textured tiles whose noise happened to be high, biasing K up)
        votes = np.sum([smooth[b] for b in range(4) if b != c], 0)
        ok = usable & (votes >= MIN_VOTES)
        if ok.sum() < 30:
            raise _TooFewTiles(f"channel {c}: only {int(ok.sum())} smooth unclipped tiles below "
                               f"{100 * max_fraction:.0f}% of saturation in the frame (30 needed)")
        # a first fit predicts each tile's noise; tiles whose own coarse variance is far above it hold structure of
        # this channel alone (:data:`OWN_QUANTILE`): dropped, and the fit repeated
        K, cc, _, _ = _mixture_fit(mu[ok], vf[ok] / (shape * scale), shape)
        usable &= vc <= own * shape * scale * (K * np.maximum(mu, 0.0) + cc)
        ok &= usable
        if ok.sum() < 30:
            raise _TooFewTiles(f"channel {c}: only {int(ok.sum())} smooth unclipped tiles below "
                               f"{100 * max_fraction:.0f}% of saturation in the frame (30 needed)")
        m, v = mu[ok], vf[ok] / (shape * scale)  # unit mean for pure noise
        K, cc, wt, post = _mixture_fit(m, v, shape)
        sel = post > 0.5
        if sel.sum() < 3:
            raise CalibrationError(f"channel {c}: fewer than 3 tiles judged pure noise in the frame")
        fits.append((usable, ok, m, v, K, cc, wt, sel))
    # each channel's noise variance per tile as its mixture fit predicts it: the weights of the texture estimate
    noise = [np.maximum(f[4] * np.maximum(mus[c], 0.0) + f[5], 1e-12) for c, f in enumerate(fits)]
    Ks, cs, Kerr, cerr, ntiles, nrej, pts, clean = [], [], [], [], [], [], [], []
    for c, (usable, ok, m, v, K, cc, wt, sel) in enumerate(fits):
        # pure noise's v / (K mu + c) has variance 1 / shape; much more: the class holds texture
        disp = float(np.var(v[sel] / (K * m[sel] + cc)) * shape)
        # the texture the tiles share with the other channels, subtracted; shrunk where its own noise is above pure
        # noise's scatter (1 / shape): a tile whose other channels are dark keeps most of its texture rather than
        # take on the correction's noise
        t_hat, t_var = _shared_texture(curvs, noise, mus, sites, c, tile, clipped)
        r_all = t_var / (shape * scale * noise[c]) ** 2  # the correction's variance, in units of the tile's
        lam = 1.0 / (1.0 + r_all * shape)
        vt = (stats_[c][1] - lam * t_hat)[ok] / (shape * scale)
        # K and c from the tiles judged pure noise, so corrected: a weighted line, each tile's weight the inverse of
        # its variance (pure noise's 1 / shape plus the shrunk correction's); the report's points from their bins
        s2 = np.maximum(K * m[sel] + cc, 1e-12)
        r = (lam**2 * r_all)[ok][sel] * (noise[c][ok][sel] / s2) ** 2
        K2, c2, ke, ce = _line(m[sel], vt[sel], 1.0 / (s2**2 * (1.0 / shape + r)))
        if K2 > 0:
            K, cc = K2, max(c2, 1e-3)
            z = vt[sel] / np.maximum(K * m[sel] + cc, 1e-12)
            disp = max(disp, float(np.mean((z - 1.0) ** 2 / (1.0 / shape + r))))
        if not K2 > 0 or K <= 1.0000001e-6:
            warns.append(f"single frame: channel {c}: no positive K from the tiles (the texture-corrected line gave "
                         f"{K2:.3g}); K from the mixture fit, unreliable")
            reliable[c] = False
            ke, ce = max(ke, abs(K)), max(ce, abs(cc))
        elif disp > MAX_DISPERSION:
            warns.append(f"single frame: channel {c}: the tiles judged pure noise scatter {disp:.1f}x as much as "
                         "noise does: the scene has too little noise-free area at this level; K is unreliable "
                         "(its error inflated accordingly)")
            reliable[c] = False
        ke, ce = ke * math.sqrt(max(disp, 1.0)), ce * math.sqrt(max(disp, 1.0))
        Ks.append(K), cs.append(cc), Kerr.append(ke), cerr.append(ce)
        ntiles.append(int(sel.sum())), nrej.append(int(usable.sum() - sel.sum()))
        pts.append(_binned_points(m[sel], vt[sel], top, min_count=5))
        clean.append(wt)
    return LabFreeEstimate("single", np.array(Ks), np.array(cs), np.array(Kerr), np.array(cerr), ntiles, nrej,
                           [str(f) for f in files],
                           ["single frame: PRNU cannot be separated from temporal noise (K biased up by about "
                            f"PRNU^2 x electrons; signals above {100 * max_fraction:.0f}% of saturation not used); "
                            "scene texture that neither the smoothness test nor the cross-channel correction "
                            "removes biases K (BENCHMARKS.md)",
                            "single frame: the dark variance excludes row noise (the fine-scale filter cancels "
                            "anything constant along a row)",
                            "single frame: tiles judged pure noise per channel: "
                            + ", ".join(f"{100 * w:.0f}%" for w in clean)]
                           + warns, pts, warns, reliable)


def same_scene(a: np.ndarray, b: np.ndarray, pattern: str) -> bool:
    """Whether two raw frames show the same static scene (a burst), from their green planes binned 4 x 4: their
    difference is within 4x of what noise alone gives it (the plane's mixed second difference of ``a - b``, unit
    gain for white noise, sets the per-pixel noise variance; binning divides it by 16), or they correlate at
    0.95 or more. Two shots of different scenes at the same exposure and level (the 3% level rule alone took
    them for a burst, and a burst of two scenes puts the scene into the temporal variance: K off by 800x)
    fail both. Frames that are not finite 2-D raw mosaics of one shape get a :class:`CalibrationError`."""
    a, b = _raw_frame(a, "same_scene frame a"), _raw_frame(b, "same_scene frame b")
    if a.shape != b.shape:
        raise CalibrationError(f"same_scene: the frames differ in shape: {a.shape} and {b.shape}")
    i, j = channel_sites(pattern)[1]
    ga, gb = (np.asarray(x[i::2, j::2], np.float64) for x in (a, b))
    h, w = ga.shape[0] // 4 * 4, ga.shape[1] // 4 * 4
    if h == 0 or w == 0:
        return False
    bins = [g[:h, :w].reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3)) for g in (ga, gb)]
    noise = float(np.mean(_curvature(ga - gb) ** 2))
    if float(np.var(bins[0] - bins[1])) <= 4.0 * noise / 16.0:
        return True
    x, y = (v - v.mean() for v in bins)
    den = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return den > 0 and float((x * y).sum()) / den >= 0.95


def tag_estimate(noise_profile: Sequence[Sequence[float]], black: Sequence[float] | np.ndarray, white: float, *,
                 files: Sequence[str | os.PathLike] = ()) -> LabFreeEstimate:
    """``K`` and the dark variance from a DNG NoiseProfile: one ``(S, O)`` pair for all planes or one per R, G, B
    plane (Gr and Gb share G's)."""
    try:
        pairs = [tuple(map(float, p)) for p in noise_profile]
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"NoiseProfile must be a list of (S, O) number pairs, got {noise_profile!r}") from exc
    if len(pairs) == 1:
        pairs = pairs * 3
    if len(pairs) != 3:
        raise CalibrationError(f"NoiseProfile with {len(pairs)} pairs: expected 1 or 3 (R, G, B)")
    for s_, *o in pairs:
        if len(o) != 1 or not (np.isfinite(s_) and s_ > 0 and np.isfinite(o[0]) and o[0] >= 0):
            raise CalibrationError(f"NoiseProfile pairs must be (S, O) with S > 0 and O >= 0 (DNG 1.4), got "
                                   f"{list(noise_profile)!r}")
    black, _, white = _levels(black, white)
    rng = white - black
    per = [pairs[0], pairs[1], pairs[1], pairs[2]]
    S = np.array([s for s, _ in per])
    O = np.array([o for _, o in per])
    K = S * rng
    dv = O * rng**2
    return LabFreeEstimate("dng_tag", K, dv, np.zeros(4), np.zeros(4), [], [], [str(f) for f in files],
                           ["from the camera vendor's DNG NoiseProfile model (tag 51041), not measured"])
