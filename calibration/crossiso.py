"""Cross-ISO models: K vs ISO (with a dual-conversion-gain break), ln sigma vs ln K lines, DNG NoiseProfile.

* :func:`fit_k_vs_iso`: weighted straight line ``K = a * ISO + b`` of the geometric-mean K,
  and the best split into two independent lines (each with >= 2 points). A break is
  reported (a dual-conversion-gain switch, or any change of the ISO-to-gain law)
  when the single line does not fit within the measurement errors (reduced
  chi-square > 4) and the split fits significantly better (F-test p < 0.01 where
  there are enough points; otherwise the split's chi-square < 25% of the line's).
* :func:`fit_loglinear`: ``ln sigma = slope * ln K + bias`` by least squares, with the
  residual std (ddof 2) as ELD defines ``sigma_residual``.
* :func:`compare_noise_profiles`: the measured DNG NoiseProfile (S, O), computed by
  :func:`isp_sim.params.dng_noise_profile`, against the tag the files carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class LineFit:
    slope: float
    bias: float
    sigma_residual: float
    n: int

    def to_model(self, k_of: str = "mean") -> dict:
        return {"slope": float(self.slope), "bias": float(self.bias), "sigma_residual": float(self.sigma_residual),
                "k_of": k_of}


def fit_loglinear(k: np.ndarray, sigma: np.ndarray) -> LineFit | None:
    """Least-squares line of ln(sigma) on ln(k); None with fewer than 2 positive points."""
    k, sigma = np.asarray(k, float), np.asarray(sigma, float)
    sel = (k > 0) & (sigma > 0) & np.isfinite(sigma)
    if sel.sum() < 2:
        return None
    x, y = np.log(k[sel]), np.log(sigma[sel])
    if np.ptp(x) == 0:
        return None
    slope, bias = np.polyfit(x, y, 1)
    res = y - (slope * x + bias)
    sr = float(np.sqrt(np.sum(res**2) / (x.size - 2))) if x.size > 2 else 0.0
    return LineFit(float(slope), float(bias), sr, int(x.size))


def _wline(x, y, e):
    w = 1.0 / np.maximum(e, 1e-12) ** 2
    X = np.stack([x, np.ones_like(x)], 1)
    A = X.T @ (X * w[:, None])
    beta = np.linalg.solve(A, X.T @ (w * y))
    chi2 = float(np.sum(w * (y - X @ beta) ** 2))
    return beta, chi2


def fit_k_vs_iso(iso: np.ndarray, k: np.ndarray, k_err: np.ndarray) -> dict:
    """K vs ISO line and break detection (module docstring). Returns a JSON-ready dict."""
    iso, k, e = (np.asarray(v, float) for v in (iso, k, k_err))
    n = iso.size
    out: dict = {"iso": iso.tolist(), "K": k.tolist(), "K_err": e.tolist(), "break": None}
    if n < 2:
        out["line"] = None
        return out
    e = np.maximum(e, 1e-3 * k)  # floor: 0.1% (the fits' systematic limit)
    beta, chi2 = _wline(iso, k, e)
    dof = max(n - 2, 1)
    out["line"] = {"slope": float(beta[0]), "intercept": float(beta[1]), "chi2_red": chi2 / dof,
                   "max_rel_residual": float(np.max(np.abs(k - (beta[0] * iso + beta[1])) / k))}
    prop = np.polyfit(iso, k, 1) if n >= 2 else None
    out["proportional_gain_per_iso"] = float(np.sum(iso * k / e**2) / np.sum(iso**2 / e**2))
    if n >= 4:
        best = None
        for s in range(2, n - 1):
            b1, c1 = _wline(iso[:s], k[:s], e[:s])
            b2, c2 = _wline(iso[s:], k[s:], e[s:])
            c = c1 + c2
            if best is None or c < best[0]:
                best = (c, s, b1, b2)
        c, s, b1, b2 = best
        chi_line = chi2 / dof
        split_dof = max(n - 4, 1)
        significant = False
        p = None
        if n >= 5 and c > 0:
            from scipy import stats

            F = ((chi2 - c) / 2) / (c / split_dof)
            p = float(stats.f.sf(F, 2, split_dof))
            significant = p < 0.01
        else:
            significant = c < 0.25 * chi2
        if chi_line > 4 and significant:
            out["break"] = {"iso_below": float(iso[s - 1]), "iso_above": float(iso[s]),
                            "low": {"slope": float(b1[0]), "intercept": float(b1[1])},
                            "high": {"slope": float(b2[0]), "intercept": float(b2[1])},
                            "chi2_red_split": c / split_dof, "p_value": p}
    return out


def compare_noise_profiles(measured: list, tag: list) -> dict:
    """Relative differences (tag / measured - 1) of S and O per plane."""
    out = {"measured": [list(p) for p in measured], "tag": [list(p) for p in tag]}
    if len(tag) == 1:
        tag = tag * 3
    if len(tag) != len(measured):
        out["note"] = f"tag has {len(tag)} planes, measured {len(measured)}: not compared"
        return out
    out["S_rel_diff"] = [float(t[0] / m[0] - 1) if m[0] else math.nan for m, t in zip(measured, tag)]
    out["O_rel_diff"] = [float(t[1] / m[1] - 1) if m[1] else math.nan for m, t in zip(measured, tag)]
    return out
