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

Dark frames (:class:`DarkAccumulator`), each seen once, give what the textbook
two passes over N frames give: pass 1 sums the frames (per-pixel mean = bias +
fixed pattern); pass 2 takes each frame minus that mean (only when N >=
``min_dsnu_frames``; otherwise minus the per-channel mean, and the fixed pattern
stays in the read noise, with a warning), removes the mean of each physical row (row noise: one offset per row,
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
import zlib
from dataclasses import dataclass, field

import numpy as np

from isp_sim.cfa import channel_sites

from .ppcc import LawFit, ResidualModel, fit_read_law
from ._kernels import (add_frame, dark_sum_stats, frame_summary, gather_samples, pair_difference, pair_tiles,
                       plane_lut, sample_index)

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


def sample_stream(key: str, seed: int, c: int) -> int:
    """The 64-bit stream number of channel ``c`` of the frame named ``key`` (its positions:
    :func:`calibration._kernels.sample_index`)."""
    h = zlib.crc32(f"{int(seed)}:{c}:".encode("utf-8") + key.encode("utf-8"))
    return (h * 0x9E3779B97F4A7C15 + (int(seed) & 0xFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF


def sample_positions(key: str, seed: int, c: int, size: int, k: int) -> np.ndarray:
    """``k`` positions drawn with replacement from ``range(size)`` for channel ``c`` of the frame named ``key``.

    Each (seed, frame name, channel) has a stream of its own (a counter-based generator, SplitMix64's mixer; runs
    of 64 neighbouring pixels of one row, :func:`calibration._kernels.sample_index`), so a frame's sample depends
    neither on which other frames share its ISO nor on how many there are; and the first ``k`` of a longer draw
    are the draw of ``k``, so a scan can keep a longer draw and trim it when the number of frames, and with it
    the per-frame share of ``max_samples``, is known."""
    return sample_index(np.uint64(sample_stream(key, seed, c)), int(k), int(size))


def frame_sums(frame: np.ndarray, pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-row sums of even and odd columns ``(H, 2)`` and per-channel sums of squares ``(4,)`` (exact int64), the
    two statistics :meth:`DarkAccumulator.add` needs from a frame besides its pixels; the scan gets them from its
    frame summary for free."""
    out = frame_summary(np.ascontiguousarray(frame), plane_lut(channel_sites(pattern)), np.iinfo(np.int64).max)
    return out[3], out[1]


class DarkAccumulator:
    """Single-pass streaming dark statistics (module docstring): :meth:`add` each dark frame once, in a fixed order,
    then :meth:`finish`.

    Everything pass 2 of the textbook method needs is linear in the frame or kept small: the per-pixel sum (the
    mean frame), each frame's row sums (H x 2 integers: its row means against any reference follow from them),
    per-channel sums of squares (sum (f - ref)^2 = sum f^2 - 2 sum f ref + sum ref^2), the sampled pixel values
    of the law fit (their positions do not depend on the reference, :func:`sample_positions`) and the
    difference statistics of the first 8 consecutive pairs (the previous frame is kept until then). So the
    residual statistics equal the two-pass ones (the tests compare both) while each frame is seen once. Memory:
    the sum (4 bytes per pixel), one frame while pairs are taken, H x 16 bytes per frame and at most about
    4 x ``max_samples`` sampled values."""

    def __init__(self, pattern: str, black: np.ndarray, shape: tuple[int, int], *, min_dsnu_frames: int = 4,
                 max_samples: int = 400_000, seed: int = 0) -> None:
        self.pattern = pattern
        self.black = np.asarray(black, dtype=np.float64)
        self.shape = tuple(int(v) for v in shape)
        self.min_dsnu_frames = int(min_dsnu_frames)
        self.max_samples = max(1, int(max_samples))
        self.seed = int(seed)
        self.planes = channel_sites(pattern)
        self._lut = plane_lut(self.planes)
        self._wc = [(self.shape[1] - j + 1) // 2 for (_, j) in self.planes]
        self._size = [((self.shape[0] - i + 1) // 2) * wc for (i, _), wc in zip(self.planes, self._wc)]
        self._sum = None
        self.keys: list[str] = []
        self._rowsums: list[np.ndarray] = []
        self._sq = [0, 0, 0, 0]  # Python integers: exact for any number of frames
        self._vals: list[list] = [[] for _ in range(4)]  # per channel, per frame: sampled values (or the whole plane)
        self._prev = None
        self._pv = np.zeros(4)
        self._pn = 0

    @property
    def n_frames(self) -> int:
        return len(self.keys)

    def add(self, frame: np.ndarray, key: str, sums: tuple | None = None) -> None:
        """Add one dark frame; ``key`` names it (its file name: the seed of its sample positions); ``sums`` are
        its :func:`frame_sums` when already computed."""
        if frame.shape != self.shape:
            raise ValueError(f"dark frame shape {frame.shape} differs from {self.shape}")
        rowsum, sq = frame_sums(frame, self.pattern) if sums is None else sums
        if self._sum is None:
            small = frame.dtype.kind in "ub" and frame.dtype.itemsize <= 2
            self._sum = np.zeros(self.shape, dtype=np.uint32 if small else np.float64)
        elif self._sum.dtype == np.uint32 and self.n_frames >= 65535:
            self._sum = self._sum.astype(np.float64)  # a uint32 sum of 16-bit frames is exact up to 65537 frames
        add_frame(self._sum, frame)
        if self._prev is not None and self._pn < 8:
            ds, ds2, dn = pair_difference(frame, self._prev, self._lut)
            m = ds / dn
            self._pv += (ds2 / dn - m * m) / 2.0
            self._pn += 1
        self._prev = frame if self._pn < 8 else None
        self.keys.append(str(key))
        self._rowsums.append(np.asarray(rowsum, dtype=np.int64))
        for c in range(4):
            self._sq[c] += int(sq[c])
        cap = int(math.ceil(self.max_samples / self.n_frames))
        # every frame's sample is kept at the share of the frames so far (cap): the whole plane while it fits,
        # else the first cap positions of its stream; so after the last frame each holds exactly its final share
        for c, (i, j) in enumerate(self.planes):
            size = self._size[c]
            if cap >= size:
                self._vals[c].append(np.ascontiguousarray(frame[i::2, j::2]).ravel())
                continue
            stream = np.uint64(sample_stream(self.keys[-1], self.seed, c))
            self._vals[c].append(gather_samples(frame, i, j, self._wc[c], stream, cap, size))
            for t, v in enumerate(self._vals[c][:-1]):  # the earlier frames' share shrinks to cap
                if v.size == size:
                    self._vals[c][t] = v[sample_positions(self.keys[t], self.seed, c, size, cap)]
                elif v.size > cap:
                    self._vals[c][t] = v[:cap].copy()

    def finish(self, *, fit_laws: bool = True) -> DarkStats:
        """The dark statistics (module docstring) from everything added."""
        n = self.n_frames
        if n == 0:
            raise ValueError("no dark frames were added")
        H, W = self.shape
        remove_dsnu = n >= self.min_dsnu_frames
        npix = np.array(self._size, dtype=np.float64)
        msum, s2, fsum, fsq, rho = dark_sum_stats(self._sum, n, self._lut)
        chan_mean = msum / npix
        if remove_dsnu:  # against the mean frame: sum_t (f_t - S/n)^2 = sum_t f_t^2 - S^2 / n, pixel by pixel
            q = np.array(self._sq, dtype=np.float64) - s2 / n
            ref_at = lambda y, x: self._sum[y, x] / n  # noqa: E731
        else:  # against each channel's mean
            q = np.array([self._sq[c] - 2.0 * chan_mean[c] * msum[c] * n + n * npix[c] * chan_mean[c] ** 2
                          for c in range(4)])
            half = np.array([(W + 1) // 2, W // 2], dtype=np.float64)
            rho = np.stack([chan_mean[self._lut[np.arange(H) & 1, p]] * half[p] for p in (0, 1)], axis=1)
            ref_at = lambda y, x: chan_mean[self._lut[y & 1, x & 1]]  # noqa: E731
        # each frame's row means against the reference, and what removing them takes from each channel's sum of
        # squares: per row and channel, sum (v - m)^2 = sum v^2 - 2 m sum v + n m^2
        a = np.stack(self._rowsums).astype(np.float64) - rho[None]  # (n, H, 2): sums of (f - ref) per row/parity
        rows = a.sum(axis=2) / W  # (n, H)
        n_par = np.array([(W + 1) // 2, W // 2], dtype=np.float64)
        cross = -2.0 * rows[:, :, None] * a + n_par * rows[:, :, None] ** 2  # (n, H, 2)
        ss = q.copy()
        par = np.arange(H) & 1
        for p in (0, 1):
            for col in (0, 1):
                ss[self._lut[p, col]] += float(cross[:, par == p, col].sum())
        # residuals are taken against the mean of the n frames (when the DSNU is removed) and against each row's
        # mean of W pixels: both estimates remove a share of the variance, restored by these factors
        cnt = np.array([n * s for s in self._size], dtype=np.float64)
        frame_mean_factor = (n - 1) / n if remove_dsnu else 1.0
        row_mean_factor = 1.0 - 1.0 / W
        var_t = ss / np.maximum(cnt, 1) / (frame_mean_factor * row_mean_factor)  # temporal var, incl. 1/12
        read_var = np.maximum(var_t - 1.0 / 12.0, 0.0)
        read_std = np.sqrt(read_var)
        row_n = rows.size
        row_var = float(np.sum(rows**2)) / max(row_n, 1) / frame_mean_factor - float(np.mean(var_t)) / W
        row_std = math.sqrt(max(row_var, 0.0))
        row_std_err = math.sqrt(2.0 / max(row_n, 1)) * (row_var + float(np.mean(var_t)) / W) / max(2 * row_std, 1e-9)
        read_std_err = read_std * np.sqrt(2.0 / np.maximum(cnt, 1)) / 2 + 1e-12
        bias = chan_mean - self.black
        dsnu = None
        if remove_dsnu:  # the spatial variance of the mean frame's fixed pattern, less the temporal part left in it
            spatial_var = fsq / npix - (fsum / npix) ** 2 - var_t / n
            dsnu = np.sqrt(np.maximum(spatial_var, 0.0))
        dsnu_var = (dsnu**2 if dsnu is not None else 0.0)
        bias_err = np.sqrt(var_t / (npix * n) + dsnu_var / npix + row_var / (H * n) if row_var > 0
                           else var_t / (npix * n) + dsnu_var / npix)
        qd = read_std < QUANT_DOMINATED_STD
        laws = [None] * 4
        if fit_laws:
            per_frame = int(math.ceil(self.max_samples / n))
            rng = np.random.default_rng(self.seed)
            for c, (i, j) in enumerate(self.planes):
                size, wc = self._size[c], self._wc[c]
                parts = []
                for t, v in enumerate(self._vals[c]):  # already cut to per_frame by add()
                    idx = (np.arange(size) if per_frame >= size
                           else sample_positions(self.keys[t], self.seed, c, size, per_frame))
                    y, x = i + 2 * (idx // wc), j + 2 * (idx % wc)
                    parts.append(v - ref_at(y, x) - rows[t, y])
                res = np.concatenate(parts)
                res = res + rng.uniform(-0.5, 0.5, size=res.size)  # jitter breaks ties of integer data
                # what the residuals carry besides the read law: the frame-mean and row-mean estimates' noise
                gauss_std = math.sqrt(var_t[c] * ((n - 1) / n**2 if remove_dsnu else 0.0) + var_t[c] / W)
                residual_model = ResidualModel(a=frame_mean_factor, gauss_std=gauss_std, jitter=1.0, quant=1.0)
                try:
                    laws[c] = fit_read_law(res, float(read_std[c]), residual_model)
                except ValueError:
                    laws[c] = None
        return DarkStats(n_frames=n, n_pixels=cnt, bias=bias, bias_err=bias_err, read_std=read_std,
                         read_std_err=read_std_err, row_std=row_std, row_std_err=row_std_err, dsnu=dsnu,
                         dsnu_removed=remove_dsnu, quant_dominated=qd, laws=laws,
                         pair_var=self._pv / self._pn if self._pn else None,
                         row_means_sample=rows[:8].ravel().copy())


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
