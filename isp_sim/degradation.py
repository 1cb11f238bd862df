"""`degrade`: clean sRGB -> realistic noisy phone capture, replayable bit for bit.

``degrade(img, profile)`` = :func:`~isp_sim.pipeline.unprocess` ->
:func:`~isp_sim.noise.add_noise` -> :func:`~isp_sim.pipeline.process`, with
the noise parameters taken from a :class:`~isp_sim.profile.NoiseProfile`.

Randomness: ``seed`` (int, SeedSequence, Generator or None) becomes a
:class:`numpy.random.SeedSequence`; a batch spawns one child per image. Each
image's sequence spawns two children: one drives the parameter draws (ISO or
K, white balance), the other gives the 64-bit noise key. The resulting
:class:`DegradeParams` record (``result.params``) holds everything used, so
``degrade(img, profile, params=result.params)`` reproduces the result bit for
bit, on any numba thread count.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ._seed import SeedLike, seed_sequence
from .cfa import channel_map, check_pattern
from .errors import InputError, InputTypeError
from .noise import add_noise, add_noise_checked
from .params import NoiseParams
from .pipeline import D2HNET, D2HNET_WB_RANGE, ISPSettings, WBRange, as_srgb, check_wb, process_checked, unprocess_checked
from .profile import NoiseProfile, load_profile

PARAMS_FORMAT = "isp_sim.degrade_params"


@dataclass(frozen=True, eq=False)
class DegradeParams:
    """Everything one :func:`degrade` call used for one image (JSON-able via :meth:`to_dict`)."""

    noise: NoiseParams
    wb: tuple[float, float, float]
    settings: ISPSettings
    pattern: str
    noise_key: int
    profile: str
    seed: object = None

    @property
    def iso(self) -> float | None:
        return self.noise.iso

    @property
    def K(self) -> np.ndarray:
        return self.noise.K

    def to_dict(self) -> dict:
        """The record as JSON-able data (:meth:`from_dict` reads it back)."""
        return {"format": PARAMS_FORMAT, "version": 1, "profile": self.profile, "pattern": self.pattern,
                "noise": self.noise.to_dict(), "wb": list(self.wb), "settings": self.settings.to_dict(),
                "noise_key": int(self.noise_key), "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> "DegradeParams":
        if not isinstance(d, dict) or d.get("format") != PARAMS_FORMAT:
            raise InputError(f"not a degrade-params record (field 'format' must be {PARAMS_FORMAT!r})")
        if d.get("version") != 1:
            raise InputError(f"unsupported degrade-params version {d.get('version')!r}; this isp_sim reads version 1")
        return cls(noise=NoiseParams.from_dict(d["noise"]), wb=tuple(check_wb(d["wb"]).tolist()),
                   settings=ISPSettings.from_dict(d["settings"]), pattern=check_pattern(d["pattern"]),
                   noise_key=int(d["noise_key"]), profile=str(d["profile"]), seed=d.get("seed"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DegradeParams):
            return NotImplemented
        return self.to_dict() == other.to_dict()


@dataclass(frozen=True)
class DegradeResult:
    """Output of :func:`degrade`.

    ``image``: noisy sRGB float32, the input's shape. ``raw``: noisy Bayer DN, uint16, black level
    included, rounded, clipped to [0, white]. ``raw_clean``: the same before noise, float32, black
    included, unclipped. ``params``: a :class:`DegradeParams` (a list of them for a batch).
    """

    image: np.ndarray
    raw: np.ndarray
    raw_clean: np.ndarray
    params: DegradeParams | list[DegradeParams]

    def save_raw(self, dng_path: str | os.PathLike, params_path: str | os.PathLike | None = None) -> tuple[Path, Path]:
        """Write the noisy mosaic as a DNG (ISO, as-shot neutral and DNG NoiseProfile tags set) and
        the params as a JSON sidecar (default: ``<dng stem>_params.json``) that replays it. Single images only."""
        from .dng import write_dng

        if isinstance(self.params, list):
            raise InputError("save_raw writes one image; index the batch result's arrays and params instead")
        p, n = self.params, self.params.noise
        dng = write_dng(dng_path, self.raw, p.pattern, n.black_level, n.white_level, iso=p.iso, make="isp_sim",
                        model=p.profile, as_shot_neutral=[1 / g for g in p.wb], noise_profile=n.dng_noise_profile())
        side = Path(params_path) if params_path is not None else dng.with_name(dng.stem + "_params.json")
        side.write_text(json.dumps(p.to_dict(), indent=1) + "\n")
        return dng, side


def seed_record(ss: np.random.SeedSequence):
    ent = ss.entropy
    return {"entropy": int(ent) if np.isscalar(ent) else [int(e) for e in ent], "spawn_key": list(ss.spawn_key)}


def noise_params_for(profile: NoiseProfile, rng, iso, k, read_law, extrapolate) -> NoiseParams:
    if iso is not None and k is not None:
        raise InputError("give either iso or k, not both")
    if iso is not None:
        if isinstance(iso, (tuple, list)):
            if len(iso) != 2:
                raise InputError(f"iso range must be (low, high), got {iso!r}")
            return profile.sample(rng, iso_range=(float(iso[0]), float(iso[1])), read_law=read_law)
        return profile.at_iso(iso, extrapolate=extrapolate, read_law=read_law)
    if k is not None:
        if isinstance(k, (tuple, list)):
            raise InputError("k must be one number (DN per electron); K ranges come from the profile")
        return profile.at_k(k, extrapolate=extrapolate, read_law=read_law)
    return profile.sample(rng, read_law=read_law)


def sample_wb(rng: np.random.Generator, wb_range: WBRange = D2HNET_WB_RANGE) -> np.ndarray:
    """White-balance gains ``(w_r, 1, w_b)`` drawn uniformly from ``wb_range = ((r_lo, r_hi), (b_lo, b_hi))``
    (red first, then blue, from ``rng``); default the D2HNet ranges."""
    try:
        (rlo, rhi), (blo, bhi) = wb_range
    except (TypeError, ValueError):
        raise InputError(f"wb_range must be ((r_low, r_high), (b_low, b_high)), got {wb_range!r}") from None
    if not (0 < rlo <= rhi and 0 < blo <= bhi):
        raise InputError(f"wb_range bounds must be positive and ordered, got {wb_range!r}")
    return np.array([rng.uniform(rlo, rhi), 1.0, rng.uniform(blo, bhi)])


def _one(x: np.ndarray, p: DegradeParams, check_range: bool = False):
    """One checked float32 image through the three stages (the public functions' checks are done once);
    ``check_range``: its [0, 1] range is still to be checked (``as_srgb(..., defer_range=True)``)."""
    n = p.noise
    g = np.asarray(p.wb, dtype=np.float64)
    scale = n.white_level - n.black_level
    clean = unprocess_checked(x, p.pattern, g, p.settings, n.black_level, scale, check_range=check_range)
    if p.settings.ccm is not None:  # only an inverse CCM can push the clean signal below black
        raw = add_noise(clean, n, p.pattern, key=p.noise_key)
    else:
        raw = add_noise_checked(clean, n, channel_map(p.pattern), p.noise_key)
    img = process_checked(raw, p.pattern, g, p.settings, n.black_level, scale)
    return img, raw, clean


def degrade(img: np.ndarray, profile: NoiseProfile | str | os.PathLike, *,
            iso: float | tuple[float, float] | None = None, k: float | None = None,
            wb: Sequence[float] | None = None, seed: SeedLike = None, params: DegradeParams | Sequence[DegradeParams] | None = None,
            settings: ISPSettings = D2HNET, wb_range: WBRange = D2HNET_WB_RANGE, read_law: str | None = None,
            extrapolate: bool = False) -> DegradeResult:
    """Turn clean sRGB into a noisy capture of the profile's camera.

    Parameters
    ----------
    img : (H, W, 3) or (N, H, W, 3) sRGB, float in [0, 1] or uint8/uint16.
    profile : :class:`NoiseProfile` or a bundled name / path for :func:`load_profile`.
    iso : number, (low, high) to draw log-uniformly in, or None (drawn from the profile).
    k : system gain in DN per electron (instead of ``iso``).
    wb : shared white-balance gains ``(r, b)`` or ``(r, g, b)``; None draws them from ``wb_range``
        (D2HNet: w_r in [1.9, 2.4], w_b in [1.5, 1.9], w_g = 1).
    seed : int, SeedSequence, Generator or None.
    params : a previous result's ``params`` (a list for a batch): replays it exactly;
        every other random or parameter argument is then ignored.
    settings : :class:`ISPSettings` (transfer, gamma, tone curve, CCM, demosaic); default D2HNet recipe.
    read_law : override the profile's read-noise law ("tukey_lambda" or "gaussian").
    extrapolate : allow ISO/K outside the profile's range (with a warning).

    Returns
    -------
    DegradeResult

    Examples
    --------
    >>> img = np.full((8, 8, 3), 0.5, np.float32)
    >>> r = degrade(img, "mi_note10", iso=4000, seed=1)
    >>> r.image.shape, r.raw.dtype, round(r.params.iso)
    ((8, 8, 3), dtype('uint16'), 4000)
    >>> bool(np.array_equal(degrade(img, "mi_note10", params=r.params).raw, r.raw))
    True
    """
    profile = load_profile(profile)
    # a single float32 image's range is checked by the first pass over it (_one); a batch's up front, so that its
    # error describes the whole batch and comes before any work
    single = isinstance(img, np.ndarray) and img.ndim == 3
    x = as_srgb(img, allow_batch=True, defer_range=single)
    if not isinstance(settings, ISPSettings):
        raise InputTypeError(f"settings must be an ISPSettings, got {type(settings).__name__}")
    batch = x.ndim == 4
    xs = x if batch else x[None]
    n = xs.shape[0]
    if n == 0:
        raise InputError("img is an empty batch (0 images); give (H, W, 3) or (N, H, W, 3) with N >= 1")
    if params is not None:
        plist = list(params) if isinstance(params, (list, tuple)) else [params]
        if not all(isinstance(p, DegradeParams) for p in plist):
            raise InputTypeError("params must be DegradeParams (or a list of them for a batch)")
        if len(plist) != n:
            raise InputError(f"got {len(plist)} params record(s) for {n} image(s)")
    else:
        pattern = check_pattern(profile.sensor.pattern)
        fixed_wb = None if wb is None else tuple(check_wb(wb).tolist())
        root = seed_sequence(seed)
        children = root.spawn(n) if batch else [root]
        plist = []
        for ss in children:
            ss_par, ss_noise = ss.spawn(2)
            rng = np.random.default_rng(ss_par)
            noise = noise_params_for(profile, rng, iso, k, read_law, extrapolate)
            gains = fixed_wb if fixed_wb is not None else tuple(sample_wb(rng, wb_range).tolist())
            key = int(ss_noise.generate_state(1, dtype=np.uint64)[0])
            plist.append(DegradeParams(noise=noise, wb=gains, settings=settings, pattern=pattern, noise_key=key,
                                       profile=profile.name, seed=seed_record(ss)))
    outs = [_one(np.ascontiguousarray(xs[i]), plist[i], single) for i in range(n)]
    if not batch:
        img_o, raw, clean = outs[0]
        return DegradeResult(image=img_o, raw=raw, raw_clean=clean, params=plist[0])
    return DegradeResult(image=np.stack([o[0] for o in outs]), raw=np.stack([o[1] for o in outs]),
                         raw_clean=np.stack([o[2] for o in outs]), params=plist)
