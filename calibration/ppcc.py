"""Read-noise law fits on dark residuals: Tukey-lambda shape by PPCC, scale by probability plot, Gaussian alternative.

The residuals handed in are what :class:`calibration.estimators.DarkAccumulator`
leaves of a dark frame after removing the per-pixel mean over N frames (the
fixed pattern, when enough frames) and the row means, plus a uniform jitter of
one DN that breaks the ties of integer data. Each residual is therefore, to a
very good approximation,

    r = a * X + a * U(-1/2, 1/2) + U(-1/2, 1/2) + G,        a = 1 - 1/N

where X is the read noise (shape lambda, scale s), the first uniform is the
quantisation by rounding, the second the jitter, and G a small Gaussian holding
the mean of the other frames and the row-mean estimate. Fitting the raw Tukey
law to r (as is common) would bias lambda toward the uniform's shape; here the
model quantiles are those of the full sum, computed numerically on a grid
(bin probabilities of a*s*T(lambda) convolved with the uniform and Gaussian
kernels). With ``a = 1`` and ``G = 0`` it reduces to a single-frame model.

* Shape: the lambda maximising the probability-plot correlation coefficient
  (PPCC, Filliben 1975) between the sorted residuals and the model quantiles.
* Scale: the slope of that probability plot times the trial scale
  (``read_std / std(T(lambda))`` with ``read_std`` from the moments).
* Gaussian: the same machinery with a normal law; goodness of fit of both as
  PPCC and as the KL divergence between the residual histogram and the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from isp_sim.params import tukey_lambda_std



def tukey_quantile(p: np.ndarray, lam: float) -> np.ndarray:
    """Quantile function of the standard Tukey-lambda law: (p^lam - (1-p)^lam) / lam (logistic at lam=0)."""
    if abs(lam) < 1e-8:
        return np.log(p) - np.log1p(-p)
    return (np.power(p, lam) - np.power(1.0 - p, lam)) / lam


_PGRID = None


def _pgrid() -> np.ndarray:
    global _PGRID
    if _PGRID is None:
        z = np.linspace(-16.0, 16.0, 6001)  # logistic-spaced probabilities: dense in both tails
        _PGRID = special.expit(z)
    return _PGRID


def _law_cdf(edges: np.ndarray, law: str, lam: float, scale: float) -> np.ndarray:
    if law == "gaussian":
        return special.ndtr(edges / scale)
    p = _pgrid()
    q = scale * tukey_quantile(p, lam)
    return np.interp(edges, q, p, left=0.0, right=1.0)


def _uniform_kernel(width: float, h: float) -> np.ndarray:
    if width <= 0:
        return np.ones(1)
    n = int(math.ceil(width / 2 / h)) + 1
    e = (np.arange(-n, n + 2) - 0.5) * h
    c = np.clip((e + width / 2) / width, 0.0, 1.0)
    k = np.diff(c)
    return k / k.sum()


def _gauss_kernel(std: float, h: float) -> np.ndarray:
    if std <= 0:
        return np.ones(1)
    n = int(math.ceil(6 * std / h)) + 1
    e = (np.arange(-n, n + 2) - 0.5) * h
    k = np.diff(special.ndtr(e / std))
    return k / k.sum()


@dataclass
class ResidualModel:
    """Quantisation/estimation structure of the residuals (see module docstring)."""

    a: float = 1.0  # factor on the read noise and the quantisation (1 - 1/N with per-pixel mean removed)
    gauss_std: float = 0.0  # std of the Gaussian part G (DN)
    jitter: float = 1.0  # width of the uniform jitter added (DN)
    quant: float = 1.0  # quantisation step (DN)

    def extra_variance(self) -> float:
        return (self.a * self.quant) ** 2 / 12 + self.jitter**2 / 12 + self.gauss_std**2


def model_cdf(law: str, lam: float, scale: float, rm: ResidualModel, lim: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """(edges, CDF at the edges) of the residual model on a grid of step ``h`` over [-lim, lim]."""
    n = int(math.ceil(lim / h))
    edges = (np.arange(-n, n + 2) - 0.5) * h
    cdf = _law_cdf(edges, law, lam, rm.a * scale)
    probs = np.diff(cdf)
    for k in (_uniform_kernel(rm.a * rm.quant, h), _uniform_kernel(rm.jitter, h), _gauss_kernel(rm.gauss_std, h)):
        if k.size > 1:
            probs = np.convolve(probs, k, mode="same")
    c = np.concatenate([[0.0], np.cumsum(probs)])
    c /= c[-1]
    return edges, c


def _model_quantiles(pp: np.ndarray, edges: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    # make the CDF strictly increasing for inversion
    c = cdf + np.linspace(0.0, 1e-12, cdf.size)
    return np.interp(pp, c, edges)


@dataclass
class LawFit:
    """Result of :func:`fit_read_law` (units DN)."""

    read_std: float  # moment estimate of the law's std
    tukey_lambda: float
    tukey_scale: float  # by probability plot
    tukey_std: float  # tukey_scale * std(T(lambda))
    ppcc_tukey: float
    ppcc_gauss: float
    pp_slope_gauss: float
    kl_tukey: float
    kl_gauss: float
    lambda_grid: np.ndarray = field(repr=False, default=None)
    ppcc_curve: np.ndarray = field(repr=False, default=None)
    n: int = 0
    hist_edges: np.ndarray = field(repr=False, default=None)
    hist_counts: np.ndarray = field(repr=False, default=None)
    hist_model_tukey: np.ndarray = field(repr=False, default=None)
    hist_model_gauss: np.ndarray = field(repr=False, default=None)


def _kl(counts: np.ndarray, model_p: np.ndarray) -> float:
    p = counts / counts.sum()
    q = np.maximum(model_p, 1e-12)
    q = q / q.sum()
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def fit_read_law(residuals: np.ndarray, read_std: float, rm: ResidualModel, *,
                 lambda_range: tuple[float, float] = (-0.3, 1.0), n_quantiles: int = 20000) -> LawFit:
    """Fit the Tukey-lambda and Gaussian laws to dark residuals (module docstring).

    ``read_std`` is the moment estimate of the law's std (DN); the residuals carry the extra terms of ``rm``.
    The probability plot uses ``n_quantiles`` evenly spaced order statistics (all when fewer).
    """
    x = np.sort(np.asarray(residuals, dtype=np.float64).ravel())
    n = x.size
    if n < 100:
        raise ValueError(f"need at least 100 residuals for a law fit, got {n}")
    m = min(n, n_quantiles)
    pos = (np.arange(m) + 0.5) / m  # plotting positions of the selected order statistics
    idx = np.minimum((pos * n).astype(np.int64), n - 1)
    xs = x[idx]
    sd = max(read_std, 0.05)
    h = min(sd / 40.0, 0.05)
    lim = max(abs(x[0]), abs(x[-1])) * 1.5 + 4 * sd + 2
    if lim / h > 200000:
        h = lim / 200000

    def ppcc_of(law, lam):
        scale = sd if law == "gaussian" else sd / tukey_lambda_std(lam)
        e, c = model_cdf(law, lam, scale, rm, lim, h)
        q = _model_quantiles(pos, e, c)
        r = np.corrcoef(xs, q)[0, 1]
        return (r if np.isfinite(r) else -1.0), q, scale, (e, c)

    grid = np.round(np.arange(lambda_range[0], lambda_range[1] + 1e-9, 0.02), 4)
    curve = np.array([ppcc_of("tukey", float(l))[0] for l in grid])
    j = int(np.argmax(curve))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(lambda l: -ppcc_of("tukey", float(l))[0], bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-4})
    lam = float(res.x)
    r_t, q_t, scale_t, (e_t, c_t) = ppcc_of("tukey", lam)
    qc = q_t - q_t.mean()
    slope = float(np.dot(qc, xs - xs.mean()) / np.dot(qc, qc))
    # the probability-plot slope rescales the whole residual model; solve for the law's own scale
    extra = rm.extra_variance()
    total = slope**2 * ((rm.a * sd) ** 2 + extra)
    law_var = max(total - extra, 1e-12) / rm.a**2
    tukey_std = math.sqrt(law_var)
    tukey_scale = tukey_std / tukey_lambda_std(lam)
    r_g, q_g, _, (e_g, c_g) = ppcc_of("gaussian", 0.0)
    qg = q_g - q_g.mean()
    slope_g = float(np.dot(qg, xs - xs.mean()) / np.dot(qg, qg))
    # histogram (unit bins) of the residuals vs both models, for KL and the report
    hb = max(0.25, min(1.0, sd / 4))
    hist_edges = np.arange(math.floor(x[0] / hb) * hb, x[-1] + hb, hb)
    if hist_edges.size > 4000:
        hist_edges = np.linspace(x[0], x[-1] + 1e-9, 4001)
    counts = np.histogram(x, bins=hist_edges)[0].astype(np.float64)
    pt = np.diff(np.interp(hist_edges, e_t, c_t))
    pg = np.diff(np.interp(hist_edges, e_g, c_g))
    return LawFit(read_std=read_std, tukey_lambda=lam, tukey_scale=tukey_scale, tukey_std=tukey_std,
                  ppcc_tukey=float(r_t), ppcc_gauss=float(r_g), pp_slope_gauss=slope_g,
                  kl_tukey=_kl(counts, pt), kl_gauss=_kl(counts, pg), lambda_grid=grid, ppcc_curve=curve, n=n,
                  hist_edges=hist_edges, hist_counts=counts, hist_model_tukey=pt * n, hist_model_gauss=pg * n)
