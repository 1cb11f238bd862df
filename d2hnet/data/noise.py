"""Noise for a long/short pair through :func:`isp_sim.degrade` with a calibrated profile, under a recipe.

``recipe = "paper"`` (default), D2HNet paper section 4 with the profile's own range:
    ISO x exposure is fixed: ``short ISO = ratio x long ISO`` (ratio 8); the long ISO is drawn log-uniformly
    from ``[lo, hi / ratio]`` of the profile's ISO range, so both lie inside it (Mi Note 10, ISO 800-12800:
    long in [800, 1600], short in [6400, 12800]). Both exposures share one draw of white-balance gains
    (``w_r ~ U(1.9, 2.4)``, ``w_b ~ U(1.5, 1.9)``), as one camera takes both. The raw is clipped at 0 DN
    absolute (below the black level: read noise below black survives, as on a sensor).
``recipe = "release"``, the official release's data path (zhaoyuzhi/D2HNet ``dataloader/augmentation.py:
    add_shot_noise``):
    integer ISOs drawn uniformly and independently from ``long_iso`` ([1000, 4000]) and ``short_iso``
    ([6400, 12800]) (``random.randint``); white balance drawn **per frame** (each ``add_shot_noise`` call draws
    its own gains); the raw clipped at the black level (the release works on black-subtracted values and clips
    at 0 after the read noise, which biases dark regions upwards), emulated here by a copy of the profile
    with black level 0 and the same range above black.
    Not reproduced: the release truncates to integers after re-applying white balance (``astype(uint16)``),
    where the engine rounds before it (a -0.5 DN difference at most); its scale of 1023 DN above black (the
    profile's own white level is used).
"""

from __future__ import annotations

import math

import numpy as np

import isp_sim
from isp_sim import sample_wb
from isp_sim.pipeline import D2HNET_WB_RANGE, WBRange

from ..errors import InputError

__all__ = ["RECIPES", "pair_isos", "draw_pair", "degrade_pair", "check_iso_setup", "release_profile"]

RECIPES = ("paper", "release")


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def check_iso_setup(profile, recipe: str, long_iso, short_iso, ratio: float) -> None:
    """Check the ISO settings against the profile's ISO range before any training starts."""
    if recipe not in RECIPES:
        raise InputError(f"noise.recipe must be one of {RECIPES}, got {recipe!r}")
    rng = profile.iso_range
    if rng is None:
        raise InputError(f"profile {profile.name!r} is K-indexed (no ISO range); d2hnet training needs an ISO-indexed profile")
    lo, hi = rng
    if recipe == "paper":
        if not (ratio >= 1 and lo * ratio <= hi):
            raise InputError(f"noise.iso_ratio {ratio} does not fit profile {profile.name!r}'s ISO range "
                             f"[{lo:g}, {hi:g}]: need 1 <= ratio <= {hi / lo:g}")
        return
    for key, r in (("long_iso", long_iso), ("short_iso", short_iso)):
        a, b = r
        if not (lo <= a <= b <= hi):
            raise InputError(f"noise.{key} {list(r)} must lie within profile {profile.name!r}'s ISO range [{lo:g}, {hi:g}]")


def pair_isos(rng: np.random.Generator, profile: isp_sim.NoiseProfile, recipe: str = "paper",
              long_iso: tuple[float, float] = (1000, 4000), short_iso: tuple[float, float] = (6400, 12800),
              ratio: float = 8.0) -> tuple[float, float]:
    """Draw ``(long ISO, short ISO)`` (see the module docstring)."""
    if recipe == "paper":
        lo, hi = profile.iso_range
        li = _log_uniform(rng, lo, hi / ratio)
        # min() guards the last ulp so that the short ISO never leaves the profile's range
        return li, min(li * ratio, hi)
    # the release: random.randint(lo, hi), both ends included, independently
    return (float(rng.integers(int(long_iso[0]), int(long_iso[1]) + 1)),
            float(rng.integers(int(short_iso[0]), int(short_iso[1]) + 1)))


def draw_pair(rng: np.random.Generator, profile: isp_sim.NoiseProfile, recipe: str = "paper",
              long_iso: tuple[float, float] = (1000, 4000), short_iso: tuple[float, float] = (6400, 12800),
              ratio: float = 8.0, wb_range: WBRange = D2HNET_WB_RANGE
              ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The pair's random parameters under ``recipe``: ``(long ISO, short ISO, long WB gains, short WB gains)``
    (the same gains for both under "paper", one draw per frame under "release"); both engines draw through it."""
    li, si = pair_isos(rng, profile, recipe, long_iso, short_iso, ratio)
    wl = sample_wb(rng, wb_range)
    ws = wl if recipe == "paper" else sample_wb(rng, wb_range)
    return li, si, wl, ws


_RELEASE_PROFILES: dict = {}


def release_profile(profile):
    """A copy of ``profile`` with black level 0 and white level ``white - black``: the same DN above black, so
    the engine's clip at 0 becomes the release's clip at the black level (module docstring)."""
    key = id(profile)
    hit = _RELEASE_PROFILES.get(key)
    if hit is not None and hit[0] is profile:
        return hit[1]
    d = profile.to_dict()
    sen = d["sensor"]
    black = sen["black_level"]
    bmax = max(black) if isinstance(black, list) else float(black)
    sen["white_level"] = int(round(sen["white_level"] - bmax))
    sen["black_level"] = [0.0] * len(black) if isinstance(black, list) else 0.0
    d["name"] = f"{d['name']}_release_clip"
    out = isp_sim.NoiseProfile.from_dict(d, source=f"{profile.name} with the release's clip at black")
    _RELEASE_PROFILES[key] = (profile, out)
    return out


def degrade_pair(long: np.ndarray, short: np.ndarray, profile: isp_sim.NoiseProfile, rng: np.random.Generator, *,
                 recipe: str = "paper", long_iso: tuple[float, float] = (1000, 4000),
                 short_iso: tuple[float, float] = (6400, 12800), ratio: float = 8.0,
                 wb_range: WBRange = D2HNET_WB_RANGE) -> tuple[np.ndarray, np.ndarray, dict]:
    """Noisy ``(long, short)`` sRGB float32 under ``recipe``; the third item records ISOs and gains.

    Deterministic given the state of ``rng`` (and independent of numba's thread count).
    """
    li, si, wl, ws = draw_pair(rng, profile, recipe, long_iso, short_iso, ratio, wb_range)
    seeds = rng.integers(0, 2**63, size=2, dtype=np.int64)
    prof = profile if recipe == "paper" else release_profile(profile)
    rl = isp_sim.degrade(long, prof, iso=li, wb=(wl[0], wl[2]), seed=int(seeds[0]))
    rs = isp_sim.degrade(short, prof, iso=si, wb=(ws[0], ws[2]), seed=int(seeds[1]))
    return rl.image, rs.image, {"long_iso": li, "short_iso": si, "wb": [float(wl[0]), float(wl[2])],
                                "wb_short": [float(ws[0]), float(ws[2])]}
