"""Per-ISO estimators: system gain K from flat pairs (photon transfer), dark statistics from dark frames.

Units: DN of the raw data; K in DN per electron; per-channel arrays R, Gr, Gb, B.

Flat pairs (:func:`flat_pair_tiles`, :func:`fit_photon_transfer`): two frames A, B
of the same flat field at the same exposure. Per CFA channel, per tile of
``tile x tile`` channel pixels: the signal ``mean((A + B) / 2) - black`` and the
temporal variance ``var(A - B) / 2`` (the fixed pattern, PRNU and vignetting
cancel in the difference). Across tiles and exposure levels, up to 70% of
saturation, ``var = K * signal + c`` is fitted by weighted least squares
(weights ``(n - 1) / (2 var^2)``, the variance of a sample variance), giving K, its
standard error (scaled by the reduced chi-square when above 1), the intercept,
R^2, the reduced chi-square and the largest relative residual (linearity). Tiles
holding a clipped pixel are never used.

Dark frames (:class:`DarkAccumulator`), streamed in two passes over N frames:
pass 1 sums the frames (per-pixel mean = bias + fixed pattern); pass 2 takes
each frame minus that mean (only when N >= ``min_dsnu_frames``; otherwise minus
the per-channel mean, and the fixed pattern stays in the read noise, with a
warning), removes the mean of each physical row (row noise: one offset per row,
all channels), and accumulates variances and a sample of residuals. With W the
row length:

    var(residual) = (sigma_read^2 + 1/12) (N - 1)/N (1 - 1/W)
    var(row means) = (N - 1)/N (sigma_row^2 + (sigma_read^2 + 1/12) / W)

are solved for ``sigma_read`` (the law's std, quantisation 1/12 removed) and
``sigma_row``. The residual sample goes to :mod:`calibration.ppcc` for the law.
DSNU (std of the fixed dark pattern per channel) comes from the spatial variance
of the mean frame minus its temporal part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from isp_sim.cfa import channel_map, channel_sites

from .ppcc import LawFit, ResidualModel, fit_read_law
from ._kernels import add_frame, dark_residuals, pair_difference, pair_tiles, plane_lut

SATURATION_FRACTION = 0.7
QUANT_DOMINATED_STD = 1.0  # DN: below this read-noise std a Tukey-lambda shape is not meaningful


@dataclass
class PairTiles:
    """Tile statistics of one flat pair: per channel arrays (means above black, variances, pixel counts)."""

    files: tuple
    exposure_time: float | None
    mean: list  # 4 arrays of tile means above black (DN)
    var: list  # 4 arrays of temporal variances (DN^2)
    n: int  # pixels per tile
    clipped: list  # 4 bool arrays: tile holds a clipped pixel
    level: np.ndarray  # (4,) mean signal of the whole pair per channel (DN above black)
    saturated_fraction: float


def flat_pair_tiles(a: np.ndarray, b: np.ndarray, pattern: str, black: np.ndarray, white: int, *, tile: int = 32,
                    files=(), exposure_time=None) -> PairTiles:
    """Tile statistics of a flat pair (module docstring); ``a``/``b`` are (H, W) uint16 mosaics."""
    if a.shape != b.shape:
        raise ValueError(f"flat pair frames differ in shape: {a.shape} vs {b.shape}")
    means, vars_, clipped, level = [], [], [], np.zeros(4)
    n_clip = 0
    for c, (i, j) in enumerate(channel_sites(pattern)):
        h, w = (a.shape[0] - i + 1) // 2, (a.shape[1] - j + 1) // 2
        t = min(tile, max(8, min(h, w) // 4), h, w)  # at least ~4x4 tiles on small frames
        ty, tx = h // t, w // t
        ssum, dsum, dsq, clip = pair_tiles(a, b, i, j, t, ty, tx, white)
        tn = t * t
        m = ssum / tn / 2.0 - black[c]
        v = (dsq - dsum.astype(np.float64) ** 2 / tn) / (tn - 1) / 2.0
        n_clip += int(clip.sum())
        means.append(m.ravel())
        vars_.append(v.ravel())
        clipped.append(clip.ravel())
        level[c] = float(m.mean())
    total = sum(x.size for x in means)
    return PairTiles(files=tuple(files), exposure_time=exposure_time, mean=means, var=vars_, n=tn, clipped=clipped,
                     level=level, saturated_fraction=n_clip / max(total, 1))


@dataclass
class PtcFit:
    """Photon-transfer fit of one channel at one ISO."""

    K: float
    K_err: float
    intercept: float
    intercept_err: float
    r2: float
    chi2_red: float
    max_rel_residual: float
    n_tiles: int
    signal_range: tuple
    constrained: bool = False


def fit_photon_transfer(mean: np.ndarray, var: np.ndarray, n: int, *, usable_max: float,
                        fixed_intercept: float | None = None, dark_mean: float = 0.0) -> PtcFit:
    """Weighted fit of ``var = K * (mean - dark_mean) + c`` over tiles with ``0 < mean <= usable_max`` (module docstring).

    ``fixed_intercept`` pins ``c``: with the dark frames' pair variance and ``dark_mean`` their mean above black
    this is the EMVA 1288 zero-offset fit ``var - var_dark = K (mean - mean_dark)``.
    """
    sel = (mean > 0) & (mean <= usable_max) & np.isfinite(var) & (var > 0)
    x, y = mean[sel] - dark_mean, var[sel]
    if x.size < 3:
        raise ValueError(f"only {x.size} usable flat tiles (need >= 3 below {usable_max:.0f} DN above black)")
    w = (n - 1) / (2.0 * y**2)
    for _ in range(3):
        if fixed_intercept is None:
            X = np.stack([x, np.ones_like(x)], axis=1)
            A = X.T @ (X * w[:, None])
            beta = np.linalg.solve(A, X.T @ (w * y))
            cov = np.linalg.inv(A)
            K, c = float(beta[0]), float(beta[1])
        else:
            c = float(fixed_intercept)
            A = np.array([[np.sum(w * x * x)]])
            K = float(np.sum(w * x * (y - c)) / A[0, 0])
            cov = np.array([[1.0 / A[0, 0], 0.0], [0.0, 0.0]])
        model = np.maximum(K * x + c, 1e-6)
        w = (n - 1) / (2.0 * model**2)
    res = y - model
    dof = max(x.size - (1 if fixed_intercept is not None else 2), 1)
    chi2 = float(np.sum(w * res**2) / dof)
    infl = max(chi2, 1.0)
    ybar = np.sum(w * y) / np.sum(w)
    r2 = 1.0 - float(np.sum(w * res**2) / max(np.sum(w * (y - ybar) ** 2), 1e-300))
    return PtcFit(K=K, K_err=float(math.sqrt(cov[0, 0] * infl)), intercept=c,
                  intercept_err=float(math.sqrt(cov[1, 1] * infl)), r2=r2, chi2_red=chi2,
                  max_rel_residual=float(np.max(np.abs(res) / model)), n_tiles=int(x.size),
                  signal_range=(float(x.min()), float(x.max())), constrained=fixed_intercept is not None)


@dataclass
class DarkStats:
    """Dark-frame estimates of one ISO (DN)."""

    n_frames: int
    n_pixels: np.ndarray  # (4,) residual pixels per channel used for the variances
    bias: np.ndarray  # (4,) dark mean minus black level
    bias_err: np.ndarray
    read_std: np.ndarray  # (4,) std of the read-noise law (quantisation removed)
    read_std_err: np.ndarray
    row_std: float
    row_std_err: float
    dsnu: np.ndarray | None  # (4,) std of the fixed dark pattern; None when too few frames
    dsnu_removed: bool
    quant_dominated: np.ndarray  # (4,) bool
    laws: list  # 4 LawFit or None
    pair_var: np.ndarray | None = None  # (4,) var(D1 - D2) / 2 over consecutive dark pairs: the PTC's zero-signal variance
    row_means_sample: np.ndarray = field(repr=False, default=None)


class DarkAccumulator:
    """Two-pass streaming dark statistics (module docstring). Use :meth:`add_pass1` then :meth:`add_pass2` per frame."""

    def __init__(self, pattern: str, black: np.ndarray, shape: tuple[int, int], n_frames: int, *,
                 min_dsnu_frames: int = 4, max_samples: int = 400_000, seed: int = 0) -> None:
        self.pattern = pattern
        self.black = np.asarray(black, dtype=np.float64)
        self.shape = tuple(shape)
        self.n_frames = int(n_frames)
        self.remove_dsnu = self.n_frames >= min_dsnu_frames
        self.planes = channel_sites(pattern)
        self._sum = np.zeros(self.shape, dtype=np.float64)
        self._n1 = 0
        self._n2 = 0
        self._rng = np.random.default_rng(seed)
        self._per_frame = max(1, int(math.ceil(max_samples / max(self.n_frames, 1))))
        self._samples = [[] for _ in range(4)]
        self._ss = np.zeros(4)
        self._cnt = np.zeros(4)
        self._row_sq = 0.0
        self._row_n = 0
        self._row_keep = []
        self._mean = None
        self._chan_mean = None
        self._prev = None
        self._pv = np.zeros(4)
        self._pn = 0
        self._lut = plane_lut(self.planes)

    def add_pass1(self, frame: np.ndarray) -> None:
        if frame.shape != self.shape:
            raise ValueError(f"dark frame shape {frame.shape} differs from {self.shape}")
        add_frame(self._sum, frame)
        self._n1 += 1

    def _finish_pass1(self) -> None:
        if self._mean is None:
            self._mean = self._sum / max(self._n1, 1)
            self._chan_mean = np.array([self._mean[i::2, j::2].mean() for (i, j) in self.planes])
            if not self.remove_dsnu:
                ref = np.empty(self.shape)
                for c, (i, j) in enumerate(self.planes):
                    ref[i::2, j::2] = self._chan_mean[c]
                self._ref = ref
            else:
                self._ref = self._mean

    def add_pass2(self, frame: np.ndarray) -> None:
        self._finish_pass1()
        if self._prev is not None and self._pn < 8:
            ds, ds2, dn = pair_difference(frame, self._prev, self._lut)
            m = ds / dn
            self._pv += (ds2 / dn - m * m) / 2.0
            self._pn += 1
        self._prev = frame
        rows = np.empty(self.shape[0])
        ss = np.zeros(4)
        dark_residuals(frame, self._ref, self._lut, rows, ss)
        self._ss += ss
        self._row_sq += float(np.sum(rows**2))
        self._row_n += rows.size
        if len(self._row_keep) < 8:
            self._row_keep.append(rows.copy())
        for c, (i, j) in enumerate(self.planes):
            hc, wc = (self.shape[0] - i + 1) // 2, (self.shape[1] - j + 1) // 2
            size = hc * wc
            self._cnt[c] += size
            k = min(self._per_frame, size)
            if k >= size:
                idx = np.arange(size)
            else:
                idx = self._rng.integers(0, size, size=k)
            y, x = i + 2 * (idx // wc), j + 2 * (idx % wc)
            self._samples[c].append(frame[y, x] - self._ref[y, x] - rows[y])
        self._n2 += 1

    def finish(self, *, fit_laws: bool = True) -> DarkStats:
        """The dark statistics (module docstring) from everything added."""
        self._finish_pass1()
        n = max(self._n2, 1)
        W = self.shape[1]
        # residuals are taken against the mean of the n frames (when the DSNU is removed) and against each row's
        # mean of W pixels: both estimates remove a share of the variance, restored by these factors
        frame_mean_factor = (n - 1) / n if self.remove_dsnu else 1.0
        row_mean_factor = 1.0 - 1.0 / W
        var_t = self._ss / np.maximum(self._cnt, 1) / (frame_mean_factor * row_mean_factor)  # temporal var, incl. 1/12
        read_var = np.maximum(var_t - 1.0 / 12.0, 0.0)
        read_std = np.sqrt(read_var)
        row_var = self._row_sq / max(self._row_n, 1) / frame_mean_factor - float(np.mean(var_t)) / W
        row_std = math.sqrt(max(row_var, 0.0))
        n_rows = max(self._row_n, 1)
        row_std_err = math.sqrt(2.0 / n_rows) * (row_var + float(np.mean(var_t)) / W) / max(2 * row_std, 1e-9)
        read_std_err = read_std * np.sqrt(2.0 / np.maximum(self._cnt, 1)) / 2 + 1e-12
        bias = self._chan_mean - self.black
        npix = np.array([self._mean[i::2, j::2].size for (i, j) in self.planes], dtype=np.float64)
        H = self.shape[0]
        dsnu = None
        if self.remove_dsnu:
            dsnu = np.zeros(4)
            row_means = self._mean.mean(axis=1, keepdims=True)
            fixed_pattern = self._mean - row_means
            for c, (i, j) in enumerate(self.planes):
                spatial_var = float(fixed_pattern[i::2, j::2].var()) - var_t[c] / n  # less the temporal part left
                dsnu[c] = math.sqrt(max(spatial_var, 0.0))
        dsnu_var = (dsnu**2 if dsnu is not None else 0.0)
        bias_err = np.sqrt(var_t / (npix * n) + dsnu_var / npix + row_var / (H * n) if row_var > 0
                           else var_t / (npix * n) + dsnu_var / npix)
        qd = read_std < QUANT_DOMINATED_STD
        laws = [None] * 4
        if fit_laws:
            for c in range(4):
                res = np.concatenate(self._samples[c])
                res = res + self._rng.uniform(-0.5, 0.5, size=res.size)  # jitter breaks ties of integer data
                # what the residuals carry besides the read law: the frame-mean and row-mean estimates' noise
                gauss_std = math.sqrt(var_t[c] * ((n - 1) / n**2 if self.remove_dsnu else 0.0) + var_t[c] / W)
                residual_model = ResidualModel(a=frame_mean_factor, gauss_std=gauss_std, jitter=1.0, quant=1.0)
                try:
                    laws[c] = fit_read_law(res, float(read_std[c]), residual_model)
                except ValueError:
                    laws[c] = None
        return DarkStats(n_frames=n, n_pixels=self._cnt.copy(), bias=bias, bias_err=bias_err, read_std=read_std,
                         read_std_err=read_std_err, row_std=row_std, row_std_err=row_std_err, dsnu=dsnu,
                         dsnu_removed=self.remove_dsnu, quant_dominated=qd, laws=laws,
                         pair_var=self._pv / self._pn if self._pn else None,
                         row_means_sample=np.concatenate(self._row_keep) if self._row_keep else None)


def law_for_profile(stats: DarkStats) -> dict:
    """Per-point read-noise fields for the profile from the dark statistics.

    Quantisation-dominated channels (read std < 1 DN) get the Gaussian-equivalent Tukey shape
    (lambda 0.1349) with ``read_std`` from the moments, so that points of one profile share a law.
    """
    from isp_sim.params import tukey_lambda_std

    from isp_sim.params import GAUSSIAN_TUKEY_LAMBDA

    lam, scale, std = [], [], []
    for c in range(4):
        lf: LawFit | None = stats.laws[c]
        if stats.quant_dominated[c] or lf is None:
            s = float(stats.read_std[c])
            lam.append(GAUSSIAN_TUKEY_LAMBDA)
            scale.append(s / tukey_lambda_std(GAUSSIAN_TUKEY_LAMBDA))
            std.append(s)
        else:
            lam.append(lf.tukey_lambda)
            scale.append(lf.tukey_scale)
            std.append(lf.tukey_std)
    return {"read_lambda": lam, "read_scale": scale, "read_std": std}
