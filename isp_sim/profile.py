"""Noise profiles: a camera's calibrated sensor noise, as versioned JSON.

A :class:`NoiseProfile` holds the sensor description (pattern, bit depth,
white level, per-channel black level), a table of measured (or tabulated)
points, fitted models, and provenance. It answers:

* :meth:`NoiseProfile.at_iso` / :meth:`NoiseProfile.at_k`: deterministic
  :class:`~isp_sim.params.NoiseParams`. ISO-indexed profiles reproduce their
  points exactly and interpolate between them piecewise-linearly in log-log
  space (``ln K``, ``ln sigma`` against ``ln ISO``; Tukey lambda and bias
  linearly in ``ln ISO``). This follows the profile's own points rather than a
  straight-line fit (the Mi Note 10's K is not linear in ISO).
* :meth:`NoiseProfile.sample`: random parameters for training. ISO-indexed:
  ISO log-uniform over ``iso_range``. K-indexed (ELD-style): ``ln K``
  uniform over ``k_range``; each sigma from its log-linear fit plus a Gaussian
  residual; Tukey lambda and bias drawn from the measured sets.

For an ISO-indexed profile, ``k`` means the geometric mean of the four
channels' K, which grows monotonically with ISO; :meth:`at_k` finds the ISO
with that mean K and returns :meth:`at_iso` there.

Format: JSON with ``"format": "isp_sim.noise_profile"``, ``"version": 1``,
validated on load against the JSON Schema in
``isp_sim/schema/noise_profile-1.schema.json`` (see :func:`profile_schema`)
plus semantic checks; every error names the offending field.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .cfa import check_pattern
from .errors import InputTypeError, ProfileError
from .params import GAUSSIAN_TUKEY_LAMBDA, READ_LAWS, NoiseParams, tukey_lambda_std

FORMAT = "isp_sim.noise_profile"
VERSION = 1


def profile_dict(*, name: str, description: str, sensor: dict, index: str, points: list, models: dict,
                 provenance: dict, iso_range: list | None = None, k_range: list | None = None,
                 default_read_law: str = "tukey_lambda") -> dict:
    """The one writer of the profile format: a profile dict of this format and version, fields in their order.

    Every producer (``calibration.calibrate``, ``calibration.simulate``, ``tools/make_bundled_profiles.py``)
    builds its profile here; :meth:`NoiseProfile.from_dict` validates it.
    """
    return {"format": FORMAT, "version": VERSION, "name": name, "description": description, "sensor": sensor,
            "index": index, "iso_range": iso_range, "k_range": k_range, "default_read_law": default_read_law,
            "points": points, "models": models, "provenance": provenance}
BUNDLED = ("mi_note10", "sony_a7s2", "nikon_d850", "canon_eos70d", "canon_eos700d", "canon_eos5d4")


def profile_schema() -> dict:
    """The published JSON Schema (draft 2020-12) of profile format version 1."""
    text = resources.files("isp_sim").joinpath("schema", f"noise_profile-{VERSION}.schema.json").read_text()
    return json.loads(text)


def bundled_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    names = sorted(p.name[:-5] for p in resources.files("isp_sim").joinpath("profiles").iterdir() if p.name.endswith(".json"))
    return names


@dataclass(frozen=True)
class SensorInfo:
    """Raw format of the sensor: CFA pattern (reading order), bit depth, white level and per-channel black level (DN)."""

    pattern: str
    bit_depth: int
    white_level: int
    black_level: np.ndarray
    camera: str = ""


def _path(err) -> str:
    out = ""
    for part in err.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<profile>"


def _fmt(v: float) -> str:
    return f"{v:.6g}"


class NoiseProfile:
    """A camera's noise profile (see module docstring). Build with :func:`load_profile` or :meth:`from_dict`."""

    def __init__(self, data: dict, *, source: str = "<dict>") -> None:
        self._setup(_validate(copy.deepcopy(data), source))

    @classmethod
    def _from_json(cls, text: str, source: str) -> "NoiseProfile":
        """A profile from JSON text; the validation of a given text is done once per process."""
        _check_json(text, source)
        obj = cls.__new__(cls)
        obj._setup(json.loads(text))  # a fresh parse is ~20x cheaper than a deep copy
        return obj

    def _setup(self, d: dict) -> None:
        self._data = d
        s = d["sensor"]
        self.name: str = d["name"]
        self.sensor = SensorInfo(pattern=s["pattern"], bit_depth=int(s["bit_depth"]), white_level=int(s["white_level"]),
                                 black_level=np.asarray(s["black_level"], dtype=np.float64), camera=s.get("camera", ""))
        self.index: str = d["index"]
        self.iso_range: tuple[float, float] | None = tuple(d["iso_range"]) if d.get("iso_range") else None
        self.k_range: tuple[float, float] = tuple(d["k_range"])
        self.default_read_law: str = d["default_read_law"]
        self.models: dict = d["models"]
        self.provenance: dict = d["provenance"]
        self.description: str = d.get("description", "")
        pts = d["points"]
        self._isos = np.array([p["iso"] for p in pts], dtype=np.float64) if self.index == "iso" else np.zeros(0)

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict:
        """The profile as a JSON-ready dict (a deep copy)."""
        return copy.deepcopy(self._data)

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "<dict>") -> "NoiseProfile":
        """Validate and build a profile from a dict; errors name the bad field."""
        return cls(data, source=source)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the profile as indented JSON (parent folders created). Returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self._data, indent=1) + "\n")
        os.replace(tmp, p)
        return p

    @property
    def points(self) -> list[dict]:
        """The measured/tabulated points (copies)."""
        return copy.deepcopy(self._data["points"])

    def __repr__(self) -> str:
        rng = f"iso_range={self.iso_range}" if self.iso_range else f"k_range=({_fmt(self.k_range[0])}, {_fmt(self.k_range[1])})"
        return f"NoiseProfile({self.name!r}, {self.sensor.pattern}, {self.sensor.bit_depth}-bit, {rng}, {len(self._data['points'])} points)"

    # ------------------------------------------------------------ queries
    def _params(self, *, iso, K, law, lam, scale, std, row, bias, **extra) -> NoiseParams:
        return NoiseParams(K=K, read_law=law, read_lambda=lam, read_scale=scale, read_std=std, row_std=row, bias=bias,
                           black_level=self.sensor.black_level, white_level=self.sensor.white_level, iso=iso,
                           extra={"profile": self.name, **extra})

    def _point_params(self, p: dict, read_law: str | None) -> NoiseParams:
        law = read_law or p["read_law"]
        lam = np.array([np.nan if v is None else v for v in p["read_lambda"]])
        scale = np.array([np.nan if v is None else v for v in p["read_scale"]])
        std = np.asarray(p["read_std"], dtype=np.float64)
        if law == "gaussian":
            lam = np.full(4, np.nan)
            scale = np.full(4, np.nan)
        elif p["read_law"] == "gaussian":
            raise ProfileError(f"profile {self.name!r}: the point at ISO {p.get('iso')} has only a Gaussian read-noise fit; "
                               "read_law='tukey_lambda' is not available there")
        return self._params(iso=p.get("iso"), K=p["K"], law=law, lam=lam, scale=scale, std=std, row=p["row_std"], bias=p["bias"])

    def _check_iso(self, iso: float, extrapolate: bool) -> float:
        if self.index != "iso":
            raise ProfileError(f"profile {self.name!r} is K-indexed (no ISO); use at_k(k) with k in "
                               f"[{_fmt(self.k_range[0])}, {_fmt(self.k_range[1])}] DN/e-")
        try:
            iso = float(iso)
        except (TypeError, ValueError):
            raise InputTypeError(f"iso must be a number, got {iso!r}") from None
        if not math.isfinite(iso) or iso <= 0:
            raise ProfileError(f"iso must be a finite number > 0, got {iso!r}")
        lo, hi = self.iso_range
        if not (lo * (1 - 1e-12) <= iso <= hi * (1 + 1e-12)):
            if not extrapolate:
                raise ProfileError(f"ISO {_fmt(iso)} is outside profile {self.name!r}'s range [{_fmt(lo)}, {_fmt(hi)}]; "
                                   "pass extrapolate=True to extrapolate (with a warning)")
            warnings.warn(f"ISO {_fmt(iso)} is outside profile {self.name!r}'s range [{_fmt(lo)}, {_fmt(hi)}]; "
                          "extrapolating its end segments in log-log space", RuntimeWarning, stacklevel=3)
        return iso

    def at_iso(self, iso: float, *, extrapolate: bool = False, read_law: str | None = None) -> NoiseParams:
        """Deterministic parameters at ``iso`` (points reproduced exactly, log-log interpolation between them).

        ``read_law`` overrides the points' law (``"gaussian"`` always works; it uses ``read_std``).
        """
        iso = self._check_iso(iso, extrapolate)
        if read_law is not None and read_law not in READ_LAWS:
            raise ProfileError(f"unknown read_law {read_law!r}; allowed: {', '.join(READ_LAWS)}")
        pts = self._data["points"]
        isos = self._isos
        j = int(np.searchsorted(isos, iso))
        if j < len(isos) and isos[j] == iso:
            return self._point_params(pts[j], read_law)
        if len(pts) == 1:
            p = self._point_params(pts[0], read_law)
            ratio = iso / isos[0]
            return self._params(iso=iso, K=p.K * ratio, law=p.read_law, lam=p.read_lambda, scale=p.read_scale,
                                std=p.read_std, row=p.row_std, bias=p.bias, note="single-point profile: K scaled with ISO")
        j = min(max(j, 1), len(isos) - 1)
        a, b = self._point_params(pts[j - 1], read_law), self._point_params(pts[j], read_law)
        if a.read_law != b.read_law:
            # a Gaussian point next to a Tukey-lambda one (e.g. a quantisation-dominated low ISO):
            # interpolate the Tukey law, writing the Gaussian as its nearest Tukey-lambda (shape 0.1349)
            a, b = (_as_tukey(a) if a.read_law == "gaussian" else a), (_as_tukey(b) if b.read_law == "gaussian" else b)
        t = (math.log(iso) - math.log(isos[j - 1])) / (math.log(isos[j]) - math.log(isos[j - 1]))

        def loglin(x, y):
            x = np.asarray(x, dtype=np.float64)
            y = np.asarray(y, dtype=np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                logv = np.exp((1 - t) * np.log(x) + t * np.log(y))
            lin = (1 - t) * x + t * y
            return np.where((x > 0) & (y > 0), logv, np.maximum(lin, 0.0))

        K = loglin(a.K, b.K)
        lam = (1 - t) * a.read_lambda + t * b.read_lambda
        if a.read_law == "tukey_lambda":
            if np.any(lam <= -0.5):
                raise ProfileError(f"profile {self.name!r}: Tukey lambda extrapolated to ISO {_fmt(iso)} is "
                                   f"{np.round(lam, 3).tolist()}, <= -0.5 (infinite variance); use read_law='gaussian'")
            scale = loglin(a.read_scale, b.read_scale)
            # the law's std follows from the interpolated shape and scale, so it matches what is drawn
            std = scale * np.array([tukey_lambda_std(v) for v in lam])
        else:
            scale = a.read_scale
            std = loglin(a.read_std, b.read_std)
        row = float(loglin(a.row_std, b.row_std))
        bias = (1 - t) * a.bias + t * b.bias
        return self._params(iso=iso, K=K, law=a.read_law, lam=lam, scale=scale, std=std, row=row, bias=bias)

    def mean_k(self, iso: float, *, extrapolate: bool = False) -> float:
        """Geometric mean over the four channels of K at ``iso`` (DN per electron)."""
        return float(np.exp(np.mean(np.log(self.at_iso(iso, extrapolate=extrapolate).K))))

    def iso_for_k(self, k: float) -> float:
        """ISO at which the geometric-mean K equals ``k`` (ISO-indexed profiles; inside iso_range)."""
        lo, hi = self.iso_range
        klo, khi = self.mean_k(lo), self.mean_k(hi)
        if not (min(klo, khi) * (1 - 1e-9) <= k <= max(klo, khi) * (1 + 1e-9)):
            raise ProfileError(f"K {_fmt(k)} is outside profile {self.name!r}'s k_range [{_fmt(klo)}, {_fmt(khi)}] DN/e-")
        a, b = math.log(lo), math.log(hi)
        for _ in range(200):
            m = 0.5 * (a + b)
            if (self.mean_k(math.exp(m)) < k) == (klo < khi):
                a = m
            else:
                b = m
            if b - a < 1e-13:
                break
        return math.exp(0.5 * (a + b))

    def _check_k(self, k: float, extrapolate: bool) -> float:
        try:
            k = float(k)
        except (TypeError, ValueError):
            raise InputTypeError(f"k must be a number (DN per electron), got {k!r}") from None
        if not math.isfinite(k) or k <= 0:
            raise ProfileError(f"k must be a finite number > 0 (DN per electron), got {k!r}")
        lo, hi = self.k_range
        if not (lo * (1 - 1e-9) <= k <= hi * (1 + 1e-9)):
            if not extrapolate:
                raise ProfileError(f"K {_fmt(k)} is outside profile {self.name!r}'s k_range [{_fmt(lo)}, {_fmt(hi)}] DN/e-; "
                                   "pass extrapolate=True to extrapolate (with a warning)")
            warnings.warn(f"K {_fmt(k)} is outside profile {self.name!r}'s k_range [{_fmt(lo)}, {_fmt(hi)}]; extrapolating",
                          RuntimeWarning, stacklevel=3)
        return k

    def _fit(self, name: str, k: float) -> float:
        f = self.models.get(name)
        if f is None:
            raise ProfileError(f"profile {self.name!r} has no models.{name} fit")
        return math.exp(f["slope"] * math.log(k) + f["bias"])

    def at_k(self, k: float, *, extrapolate: bool = False, read_law: str | None = None) -> NoiseParams:
        """Deterministic parameters at system gain ``k`` (DN per electron).

        K-indexed profiles: sigmas from the log-linear fits without residual, Tukey lambda the mean of the
        measured shapes, bias the mean of the measured offsets. ISO-indexed: :meth:`at_iso` at :meth:`iso_for_k`.
        """
        k = self._check_k(k, extrapolate)
        law = read_law or self.default_read_law
        if law not in READ_LAWS:
            raise ProfileError(f"unknown read_law {law!r}; allowed: {', '.join(READ_LAWS)}")
        if self.index == "iso":
            if extrapolate and not (self.k_range[0] <= k <= self.k_range[1]):
                raise ProfileError(f"profile {self.name!r} is ISO-indexed; at_k cannot extrapolate beyond k_range, "
                                   "use at_iso(..., extrapolate=True)")
            return self.at_iso(self.iso_for_k(k), read_law=read_law)
        lam = float(np.mean(self.models["read_lambdas"]))
        bias = np.mean(np.asarray(self.models["biases"], dtype=np.float64), axis=0)
        row = self._fit("row_std", k)
        return self._k_params(k, law, lam, None, row, bias)

    def _k_params(self, k, law, lam, read_scale_or_std, row, bias, *, residual=(0.0, 0.0)) -> NoiseParams:
        if law == "tukey_lambda":
            scale = read_scale_or_std if read_scale_or_std is not None else self._fit("read_scale", k) * math.exp(residual[0])
            std = scale * tukey_lambda_std(lam)
            return self._params(iso=None, K=np.full(4, k), law=law, lam=np.full(4, lam), scale=np.full(4, scale),
                                std=np.full(4, std), row=row, bias=bias)
        std = read_scale_or_std if read_scale_or_std is not None else self._fit("gaussian_read_std", k) * math.exp(residual[1])
        return self._params(iso=None, K=np.full(4, k), law=law, lam=np.full(4, np.nan), scale=np.full(4, np.nan),
                            std=np.full(4, std), row=row, bias=bias)

    def sample(self, rng: np.random.Generator | int | None = None, *, iso_range: tuple[float, float] | None = None,
               read_law: str | None = None) -> NoiseParams:
        """Draw random parameters (see module docstring). ``iso_range`` narrows the ISO range (inside the profile's)."""
        rng = np.random.default_rng(rng)
        law = read_law or self.default_read_law
        if law not in READ_LAWS:
            raise ProfileError(f"unknown read_law {law!r}; allowed: {', '.join(READ_LAWS)}")
        if self.index == "iso":
            lo, hi = self.iso_range if iso_range is None else iso_range
            self._check_iso(lo, False)
            self._check_iso(hi, False)
            if lo > hi:
                raise ProfileError(f"iso_range must be (low, high), got ({_fmt(lo)}, {_fmt(hi)})")
            iso = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            return self.at_iso(iso, read_law=read_law)
        if iso_range is not None:
            raise ProfileError(f"profile {self.name!r} is K-indexed (no ISO); iso_range is not available")
        k = math.exp(rng.uniform(math.log(self.k_range[0]), math.log(self.k_range[1])))
        m = self.models
        r_read = rng.normal(0.0, m["read_scale"]["sigma_residual"]) if "read_scale" in m else 0.0
        r_gauss = rng.normal(0.0, m["gaussian_read_std"]["sigma_residual"]) if "gaussian_read_std" in m else 0.0
        row = self._fit("row_std", k) * math.exp(rng.normal(0.0, m["row_std"]["sigma_residual"]))
        lam = float(rng.choice(np.asarray(m["read_lambdas"], dtype=np.float64)))
        biases = np.asarray(m["biases"], dtype=np.float64)
        bias = biases[rng.integers(len(biases))]
        return self._k_params(k, law, lam, None, row, bias, residual=(r_read, r_gauss))

    def table(self, values: Sequence[float] | None = None) -> list[NoiseParams]:
        """NoiseParams at a few ISOs (ISO-indexed) or K values (K-indexed), for display."""
        if self.index == "iso":
            lo, hi = self.iso_range
            vals = values if values is not None else np.geomspace(lo, hi, 6)
            return [self.at_iso(float(v)) for v in vals]
        lo, hi = self.k_range
        vals = values if values is not None else np.geomspace(lo, hi, 6)
        return [self.at_k(float(v)) for v in vals]


def _as_tukey(p: NoiseParams) -> NoiseParams:
    lam = np.full(4, GAUSSIAN_TUKEY_LAMBDA)
    scale = p.read_std / tukey_lambda_std(GAUSSIAN_TUKEY_LAMBDA)
    return NoiseParams(K=p.K, read_law="tukey_lambda", read_lambda=lam, read_scale=scale, read_std=p.read_std,
                       row_std=p.row_std, bias=p.bias, black_level=p.black_level, white_level=p.white_level,
                       iso=p.iso, extra=p.extra)


def _validate(d: Any, source: str) -> dict:
    import jsonschema

    if not isinstance(d, dict):
        raise ProfileError(f"{source}: a profile must be a JSON object, got {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise ProfileError(f"{source}: field 'format' must be {FORMAT!r}, got {d.get('format')!r}")
    if d.get("version") != VERSION:
        raise ProfileError(f"{source}: unsupported profile version {d.get('version')!r}; this isp_sim reads version {VERSION}")
    validator = jsonschema.Draft202012Validator(profile_schema())
    errors = sorted(validator.iter_errors(d), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ProfileError(f"{source}: field '{_path(e)}': {e.message}{more}")
    check_pattern(d["sensor"]["pattern"])
    s = d["sensor"]
    if any(b >= s["white_level"] for b in s["black_level"]) or any(b < 0 for b in s["black_level"]):
        raise ProfileError(f"{source}: field 'sensor.black_level' must lie in [0, white_level={s['white_level']}), got {s['black_level']}")
    if s["white_level"] > 2 ** s["bit_depth"] - 1:
        raise ProfileError(f"{source}: field 'sensor.white_level' {s['white_level']} exceeds the {s['bit_depth']}-bit maximum")
    kr = d["k_range"]
    if kr[0] > kr[1]:
        raise ProfileError(f"{source}: field 'k_range' must be [low, high], got {kr}")
    span = s["white_level"] - max(s["black_level"])
    _check_bounds(d, span, source)
    pts = d["points"]
    for i, p in enumerate(pts):
        if p["read_law"] == "tukey_lambda":
            for name in ("read_lambda", "read_scale"):
                if any(v is None for v in p[name]):
                    raise ProfileError(f"{source}: field 'points[{i}].{name}' needs 4 numbers for a tukey_lambda point")
            if any(v <= -0.5 for v in p["read_lambda"]):
                raise ProfileError(f"{source}: field 'points[{i}].read_lambda' must be > -0.5 (finite variance), got {p['read_lambda']}")
    if d["index"] == "iso":
        if not d.get("iso_range"):
            raise ProfileError(f"{source}: field 'iso_range' is required for an ISO-indexed profile")
        if not pts:
            raise ProfileError(f"{source}: field 'points' must hold at least one point for an ISO-indexed profile")
        isos = []
        for i, p in enumerate(pts):
            if "iso" not in p:
                raise ProfileError(f"{source}: field 'points[{i}].iso' is required for an ISO-indexed profile")
            isos.append(p["iso"])
        if any(b <= a for a, b in zip(isos, isos[1:])):
            raise ProfileError(f"{source}: field 'points' must be sorted by strictly increasing iso, got {isos}")
        lo, hi = d["iso_range"]
        if lo > hi or lo < isos[0] * (1 - 1e-12) or hi > isos[-1] * (1 + 1e-12):
            if len(isos) > 1 or lo != hi:
                raise ProfileError(f"{source}: field 'iso_range' {[lo, hi]} must lie within the points' ISOs [{isos[0]}, {isos[-1]}]")
    else:
        if d.get("iso_range") is not None:
            raise ProfileError(f"{source}: field 'iso_range' must be null for a K-indexed profile")
        m = d["models"]
        need = ["row_std", "read_lambdas", "biases", "read_scale" if d["default_read_law"] == "tukey_lambda" else "gaussian_read_std"]
        for name in need:
            if name not in m:
                raise ProfileError(f"{source}: field 'models.{name}' is required for a K-indexed profile")
        if not m["read_lambdas"] or not m["biases"]:
            raise ProfileError(f"{source}: fields 'models.read_lambdas' and 'models.biases' must not be empty")
    return d


#: Physically plausible bounds, relative to the signal range ``span = white - black`` (DN). They admit
#: every published phone and camera calibration (full well up to 10^7 e-, gains up to span / 2 DN/e-:
#: two electrons fill the range) and reject values no sensor has (K = 1e300, read noise larger than
#: the range): ``K in [1e-7 span, span / 2]``; read, row and bias magnitude ``<= span / 4``; Tukey
#: lambda in ``(-0.5, 1]``.
BOUNDS = {"K": (1e-7, 0.5), "read_std": (0.0, 0.25), "read_scale": (0.0, 0.25), "row_std": (0.0, 0.25),
          "bias": (-0.25, 0.25), "read_lambda": (-0.5, 1.0)}


def _check_bounds(d: dict, span: float, source: str) -> None:
    def check(where: str, name: str, values) -> None:
        lo, hi = BOUNDS[name]
        if name != "read_lambda":
            lo, hi = lo * span, hi * span
        for v in values if isinstance(values, list) else [values]:
            if v is None:
                continue
            # lambda's lower bound is open (-0.5: infinite variance); NaN fails both comparisons
            if not ((lo < v) if name == "read_lambda" else (lo <= v)) or not v <= hi:
                raise ProfileError(f"{source}: field '{where}' = {v!r} is outside the physically plausible range "
                                   f"[{lo:.4g}, {hi:.4g}] for this sensor (signal range {span:g} DN; bounds: "
                                   "isp_sim.profile.BOUNDS)")

    for i, p in enumerate(d["points"]):
        for name in ("K", "read_std", "read_scale", "row_std", "bias", "read_lambda"):
            if name in p:
                check(f"points[{i}].{name}", name, p[name])
    for j, v in enumerate(d["k_range"]):
        check(f"k_range[{j}]", "K", v)
    for j, v in enumerate(d.get("models", {}).get("read_lambdas", []) or []):
        check(f"models.read_lambdas[{j}]", "read_lambda", v)


def load_profile(name_or_path: str | os.PathLike | NoiseProfile) -> NoiseProfile:
    """Load a bundled profile by name (see :func:`bundled_profiles`) or a profile JSON file by path.

    >>> load_profile("mi_note10").sensor.pattern
    'RGGB'
    """
    if isinstance(name_or_path, NoiseProfile):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputTypeError(f"profile must be a bundled name or a path, got {type(name_or_path).__name__}")
    s = os.fspath(name_or_path)
    p = Path(s)
    # a path: by its form, or an existing file; or an existing folder that is not a bundled name (named as a
    # folder in the error; a session folder named after its phone must not hide the bundled profile)
    if p.suffix.lower() == ".json" or os.sep in s or p.is_file() or (p.exists() and s not in bundled_profiles()):
        if not p.is_file():
            from .cli_support import file_problem

            raise ProfileError(f"{s}: {file_problem(p, 'profile')}")
        try:
            text = p.read_text()
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{s}: not valid JSON ({exc})") from exc
        return NoiseProfile._from_json(text, s)
    names = bundled_profiles()
    if s not in names:
        raise ProfileError(f"unknown profile {s!r}; bundled profiles: {', '.join(names)} (or give a path to a .json profile)")
    text = resources.files("isp_sim").joinpath("profiles", f"{s}.json").read_text()
    return NoiseProfile._from_json(text, f"bundled:{s}")


_MAX_JSON_CHARS = 20_000_000


@functools.lru_cache(maxsize=64)
def _check_json(text: str, source: str) -> None:
    """Parse and validate a profile's JSON text (raises ProfileError). Cached by content: schema
    validation takes ~40 ms, and training loops pass a profile by name to every ``degrade`` call."""
    if len(text) > _MAX_JSON_CHARS:
        raise ProfileError(f"{source}: {len(text)} characters is far too large for a noise profile "
                           f"(at most {_MAX_JSON_CHARS}); is this the right file?")

    def no_constants(name: str):
        raise ProfileError(f"{source}: {name} is not allowed in a profile (JSON has no NaN or infinity; "
                           "write a finite number or null where the schema allows it)")

    try:
        data = json.loads(text, parse_constant=no_constants)
        _validate(data, source)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{source}: not valid JSON ({exc})") from exc
    except RecursionError:  # in the parser or the schema validator
        raise ProfileError(f"{source}: JSON nested too deeply to be a noise profile") from None
