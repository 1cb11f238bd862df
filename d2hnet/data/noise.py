"""Noise for a long/short pair through :func:`isp_sim.degrade` with a calibrated profile.

Both exposures of a pair share one draw of white-balance gains (D2HNet
ranges: ``w_r ~ U(1.9, 2.4)``, ``w_b ~ U(1.5, 1.9)``), as one camera takes
both. ISO choice (``iso_mode``):

``"paper"``
    ISO x exposure is fixed (paper section 4): ``short ISO = ratio x long ISO``
    (ratio 8). The long ISO is drawn log-uniformly from
    ``[lo, hi / ratio]`` of the profile's ISO range, so both lie inside it
    (Mi Note 10, ISO 800-12800: long in [800, 1600], short in [6400, 12800]).
``"release"``
    independent log-uniform draws from ``long_iso`` (default [1000, 4000])
    and ``short_iso`` (default [6400, 12800]), as the official release does.
"""

from __future__ import annotations

import math

import numpy as np

import isp_sim
from isp_sim.degrade import sample_wb
from isp_sim.pipeline import D2HNET_WB_RANGE

from ..errors import InputError

__all__ = ["ISO_MODES", "pair_isos", "degrade_pair", "check_iso_setup"]

ISO_MODES = ("paper", "release")


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def check_iso_setup(profile, iso_mode: str, long_iso, short_iso, ratio: float) -> None:
    """Check the ISO settings against the profile's ISO range before any training starts."""
    if iso_mode not in ISO_MODES:
        raise InputError(f"noise.iso_mode must be one of {ISO_MODES}, got {iso_mode!r}")
    rng = profile.iso_range
    if rng is None:
        raise InputError(f"profile {profile.name!r} is K-indexed (no ISO range); d2hnet training needs an ISO-indexed profile")
    lo, hi = rng
    if iso_mode == "paper":
        if not (ratio >= 1 and lo * ratio <= hi):
            raise InputError(f"noise.iso_ratio {ratio} does not fit profile {profile.name!r}'s ISO range "
                             f"[{lo:g}, {hi:g}]: need 1 <= ratio <= {hi / lo:g}")
        return
    for key, r in (("long_iso", long_iso), ("short_iso", short_iso)):
        a, b = r
        if not (lo <= a <= b <= hi):
            raise InputError(f"noise.{key} {list(r)} must lie within profile {profile.name!r}'s ISO range [{lo:g}, {hi:g}]")


def pair_isos(rng: np.random.Generator, profile, iso_mode: str = "paper", long_iso=(1000, 4000),
              short_iso=(6400, 12800), ratio: float = 8.0) -> tuple[float, float]:
    """Draw ``(long ISO, short ISO)`` (see the module docstring)."""
    if iso_mode == "paper":
        lo, hi = profile.iso_range
        li = _log_uniform(rng, lo, hi / ratio)
        # min() guards the last ulp so that the short ISO never leaves the profile's range
        return li, min(li * ratio, hi)
    return _log_uniform(rng, *long_iso), _log_uniform(rng, *short_iso)


def degrade_pair(long: np.ndarray, short: np.ndarray, profile, rng: np.random.Generator, *, iso_mode: str = "paper",
                 long_iso=(1000, 4000), short_iso=(6400, 12800), ratio: float = 8.0,
                 wb_range=D2HNET_WB_RANGE) -> tuple[np.ndarray, np.ndarray, dict]:
    """Noisy ``(long, short)`` sRGB float32 with shared WB gains; the third item records ISOs and gains.

    Deterministic given the state of ``rng`` (and independent of numba's thread count).
    """
    li, si = pair_isos(rng, profile, iso_mode, long_iso, short_iso, ratio)
    wb = sample_wb(rng, wb_range)
    seeds = rng.integers(0, 2**63, size=2, dtype=np.int64)
    rl = isp_sim.degrade(long, profile, iso=li, wb=(wb[0], wb[2]), seed=int(seeds[0]))
    rs = isp_sim.degrade(short, profile, iso=si, wb=(wb[0], wb[2]), seed=int(seeds[1]))
    return rl.image, rs.image, {"long_iso": li, "short_iso": si, "wb": [float(wb[0]), float(wb[2])]}
