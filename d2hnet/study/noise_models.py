"""The noise models the study trains and tests with; each makes a noisy (long, short) pair through ``isp_sim``.

Every model draws, per pair, the raw-domain noise parameters of the long and
the short exposure (:class:`isp_sim.params.NoiseParams`) and the sensor it
mosaics for; :func:`degrade_pair` then runs :func:`isp_sim.degrade` for both
frames with one shared white-balance draw (D2HNet ranges), so every model
goes through the same unprocess -> raw noise -> forward ISP engine.

``ProfileRecipe`` ("paper")
    a calibrated (or true) ISO-indexed profile with the paper's recipe
    mapped to the phone's own range: long ISO log-uniform over
    ``[lo, hi / 8]`` of its ``iso_range``, short ISO = 8 x long ISO.
``ProfileRecipe`` ("release")
    the official release's draws: long and short ISO independent, log-uniform
    over [1000, 4000] and [6400, 12800] (``d2hnet.data.noise``), in the
    profile's own sensor. With ``mi_note10`` this is what users of the
    release train on today.
``OtherPhoneByK``
    another phone's noise *shape* at the target's noise *level*: the ISO pair
    and per-channel K come from the target profile (paper recipe), and read
    noise (law, Tukey lambda, scale), row noise and bias are the other
    phone's at the same system gain K (``at_k``), on the target's sensor
    (pattern, black and white level). Shot noise is then identical, so the
    comparison isolates read/shot ratio, tails and row noise. Where the
    target's K lies outside the other phone's ``k_range``, the other phone's
    parameters are taken at the nearest end of its range (counted in
    :attr:`OtherPhoneByK.clamped`).
``GenericGaussian``
    heteroscedastic Gaussian noise, the model of most learned-denoising
    papers (Brooks et al., "Unprocessing images for learned raw denoising",
    CVPR 2019, section 3.3): in raw units normalised to [0, 1], shot gain
    ``lambda_s`` log-uniform over [1e-4, 1.2e-2] and read variance
    ``log lambda_r = 2.18 log lambda_s + 1.20 + N(0, 0.26^2)``; no row noise,
    no bias, Gaussian read law. Here the short exposure's ``lambda_s`` is 8 x
    the long one's (the paper's ISO ratio), the long one log-uniform over
    [1e-4, 1.2e-2 / 8]. It is applied on the target's sensor geometry (CFA,
    black and white level), which can only favour it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import isp_sim
from isp_sim import DegradeParams, sample_wb
from isp_sim.params import NoiseParams
from isp_sim.pipeline import D2HNET

from ..data.noise import pair_isos
from ..errors import InputError

__all__ = ["NoiseModel", "ProfileRecipe", "OtherPhoneByK", "GenericGaussian", "degrade_pair", "BROOKS_SHOT_RANGE"]

#: Brooks et al. 2019: shot-noise gain range (normalised raw units)
BROOKS_SHOT_RANGE = (1e-4, 1.2e-2)
_BROOKS_READ = (2.18, 1.20, 0.26)  # slope, intercept, residual std of log(read variance) vs log(shot gain)


class NoiseModel:
    """A way to draw the raw noise of a (long, short) pair; see the module docstring."""

    name: str = "noise model"
    profile: isp_sim.NoiseProfile  # whose sensor the pair is mosaicked for

    def pair_params(self, rng: np.random.Generator) -> tuple[NoiseParams, NoiseParams]:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "sensor_profile": self.profile.name}


def _check_iso_profile(p: isp_sim.NoiseProfile, what: str) -> None:
    if p.iso_range is None:
        raise InputError(f"{what}: profile {p.name!r} is K-indexed (no ISO range); the study needs an ISO-indexed "
                         "profile (as `calibrate --raw-dir` writes)")


@dataclass
class ProfileRecipe(NoiseModel):
    """A profile with the paper's ("paper") or the release's ("release") ISO recipe."""

    profile: isp_sim.NoiseProfile
    recipe: str = "paper"
    ratio: float = 8.0
    long_iso: tuple[float, float] = (1000.0, 4000.0)
    short_iso: tuple[float, float] = (6400.0, 12800.0)
    name: str = ""
    band: tuple[int, int] | None = None  # (b, n): paper recipe with the long ISO in the b-th of n equal log bands

    def __post_init__(self) -> None:
        _check_iso_profile(self.profile, "ProfileRecipe")
        if self.recipe not in ("paper", "release"):
            raise InputError(f"recipe must be 'paper' or 'release', got {self.recipe!r}")
        lo, hi = self.profile.iso_range
        if self.recipe == "paper" and not lo * self.ratio <= hi:
            raise InputError(f"profile {self.profile.name!r}: ISO range [{lo:g}, {hi:g}] is narrower than the "
                             f"short/long ISO ratio {self.ratio:g} of the paper's recipe")
        self.name = self.name or f"{self.profile.name} ({self.recipe} recipe)"

    def isos(self, rng: np.random.Generator) -> tuple[float, float]:
        if self.band is not None and self.recipe == "paper":
            b, n = self.band
            lo, hi = self.profile.iso_range
            a, z = math.log(lo), math.log(hi / self.ratio)
            li = math.exp(rng.uniform(a + (z - a) * b / n, a + (z - a) * (b + 1) / n))
            return li, min(li * self.ratio, hi)
        return pair_isos(rng, self.profile, self.recipe, self.long_iso, self.short_iso, self.ratio)

    def pair_params(self, rng: np.random.Generator) -> tuple[NoiseParams, NoiseParams]:
        li, si = self.isos(rng)
        return self.profile.at_iso(li), self.profile.at_iso(si)

    def describe(self) -> dict:
        d = {**super().describe(), "recipe": self.recipe, "iso_range": list(self.profile.iso_range)}
        if self.recipe == "paper":
            lo, hi = self.profile.iso_range
            d.update(long_iso=[lo, hi / self.ratio], short_iso=[lo * self.ratio, hi], ratio=self.ratio)
        else:
            d.update(long_iso=list(self.long_iso), short_iso=list(self.short_iso))
        return d


@dataclass
class OtherPhoneByK(NoiseModel):
    """``other``'s noise shape at ``target``'s K (module docstring)."""

    target: isp_sim.NoiseProfile
    other: isp_sim.NoiseProfile
    ratio: float = 8.0
    name: str = ""
    clamped: int = field(default=0, init=False)
    drawn: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._recipe = ProfileRecipe(self.target, "paper", self.ratio)
        self.profile = self.target
        self.name = self.name or f"{self.other.name} at {self.target.name}'s K"

    def _at(self, t: NoiseParams) -> NoiseParams:
        k = float(np.exp(np.mean(np.log(t.K))))
        lo, hi = self.other.k_range
        kk = min(max(k, lo), hi)
        self.drawn += 1
        if kk != k:
            self.clamped += 1
        o = self.other.at_k(kk)
        return NoiseParams(K=t.K, read_law=o.read_law, read_lambda=o.read_lambda, read_scale=o.read_scale,
                           read_std=o.read_std, row_std=o.row_std, bias=o.bias, black_level=t.black_level,
                           white_level=t.white_level, iso=t.iso,
                           extra={"profile": self.other.name, "shape_at_k": kk, "target_k": k})

    def pair_params(self, rng: np.random.Generator) -> tuple[NoiseParams, NoiseParams]:
        a, b = self._recipe.pair_params(rng)
        return self._at(a), self._at(b)

    def describe(self) -> dict:
        return {**super().describe(), "other": self.other.name, "other_k_range": list(self.other.k_range),
                "mapping": "equal system gain K (other.at_k(target K)), target's sensor",
                "clamped_to_other_k_range": f"{self.clamped} of {self.drawn} frames"}


@dataclass
class GenericGaussian(NoiseModel):
    """Heteroscedastic Gaussian noise of Brooks et al. 2019 on ``sensor_profile``'s sensor (module docstring)."""

    sensor_profile: isp_sim.NoiseProfile
    ratio: float = 8.0
    shot_range: tuple[float, float] = BROOKS_SHOT_RANGE
    name: str = "generic heteroscedastic Gaussian (Brooks et al. 2019)"

    def __post_init__(self) -> None:
        self.profile = self.sensor_profile
        lo, hi = self.shot_range
        if not 0 < lo * self.ratio <= hi:
            raise InputError(f"shot_range {self.shot_range} must hold a ratio of {self.ratio}")

    def _params(self, lam_s: float, rng: np.random.Generator) -> NoiseParams:
        s = self.profile.sensor
        span = float(s.white_level - np.mean(s.black_level))
        a, b, sd = _BROOKS_READ
        lam_r = math.exp(a * math.log(lam_s) + b + rng.normal(0.0, sd))
        return NoiseParams(K=np.full(4, lam_s * span), read_law="gaussian", read_lambda=np.full(4, np.nan),
                           read_scale=np.full(4, np.nan), read_std=np.full(4, math.sqrt(lam_r) * span), row_std=0.0,
                           bias=np.zeros(4), black_level=s.black_level, white_level=s.white_level, iso=None,
                           extra={"model": "brooks2019", "lambda_shot": lam_s, "lambda_read": lam_r})

    def pair_params(self, rng: np.random.Generator) -> tuple[NoiseParams, NoiseParams]:
        lo, hi = self.shot_range
        lam_l = math.exp(rng.uniform(math.log(lo), math.log(hi / self.ratio)))
        return self._params(lam_l, rng), self._params(lam_l * self.ratio, rng)

    def describe(self) -> dict:
        return {**super().describe(), "shot_range": list(self.shot_range), "read_fit": list(_BROOKS_READ),
                "ratio": self.ratio, "row_noise": False, "read_law": "gaussian"}


def degrade_pair(long: np.ndarray, short: np.ndarray, model: NoiseModel, rng: np.random.Generator,
                 *, keep_raw: bool = False):
    """Noisy sRGB ``(long, short)`` float32 from clean ones with ``model``; shared WB; deterministic given ``rng``.

    Returns ``(long, short, info)``; ``info`` has the ISOs/K of both frames,
    the WB gains and, with ``keep_raw``, the short frame's
    :class:`~isp_sim.DegradeResult` (raw mosaic and parameters).
    """
    pl, ps = model.pair_params(rng)
    wb = tuple(float(g) for g in sample_wb(rng))
    keys = rng.integers(0, 2**63, size=2, dtype=np.int64)
    pattern = model.profile.sensor.pattern
    out = []
    for img, p, key in ((long, pl, keys[0]), (short, ps, keys[1])):
        dp = DegradeParams(noise=p, wb=wb, settings=D2HNET, pattern=pattern, noise_key=int(key),
                           profile=model.profile.name)
        out.append(isp_sim.degrade(img, model.profile, params=dp))
    info = {"long_iso": pl.iso, "short_iso": ps.iso, "long_k": float(np.exp(np.mean(np.log(pl.K)))),
            "short_k": float(np.exp(np.mean(np.log(ps.K)))), "wb": [wb[0], wb[2]]}
    if keep_raw:
        info["short_result"] = out[1]
    return out[0].image, out[1].image, info
