"""`NoiseParams`: the sensor-noise parameters of one capture, in DN.

Units and conventions (docs/conventions.md):

* ``K``: overall system gain in **DN per electron** (EMVA 1288 / ELD
  convention; grows with ISO). Shot noise variance in DN is ``K * D`` for a
  black-subtracted signal ``D``. Sources quoting electrons per DN (the D2HNet
  release's ``K_off``) are converted with ``K = 1 / K_off``.
* Per-channel arrays are float64 ``(4,)`` ordered ``R, Gr, Gb, B`` (Gr: the
  green on red rows), whatever the sensor's pattern.
* ``read_std`` is the standard deviation of the read-noise law in DN; for
  Tukey-lambda it is ``read_scale`` times the std of the standard law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError

READ_LAWS = ("tukey_lambda", "gaussian")

#: The Tukey-lambda shape closest to a normal law (Joiner & Rosenblatt 1971): how a Gaussian read
#: noise is written where a Tukey-lambda law is required.
GAUSSIAN_TUKEY_LAMBDA = 0.1349


def dng_noise_profile(K, dark_variance, black_level, white_level) -> list[tuple[float, float]]:
    """DNG NoiseProfile (tag 51041) pairs ``(S, O)`` per colour plane R, G, B.

    Noise std at normalised signal x is sqrt(S x + O) with S = K / (W - B) and
    O = dark_variance / (W - B)^2, where dark_variance = read_std^2 + row_std^2 + 1/12 (DN^2).
    Inputs are per channel R, Gr, Gb, B; the DNG tag has one pair per colour plane, so Gr and Gb
    are merged by averaging their S and O.
    """
    rng = white_level - np.asarray(black_level, dtype=np.float64)
    s = np.asarray(K, dtype=np.float64) / rng
    o = np.asarray(dark_variance, dtype=np.float64) / rng**2
    return [(float(s[0]), float(o[0])), (float((s[1] + s[2]) / 2), float((o[1] + o[2]) / 2)), (float(s[3]), float(o[3]))]


def tukey_lambda_std(lam: float) -> float:
    """Standard deviation of the standard Tukey-lambda law (shape ``lam``, scale 1).

    Var = 2/lam^2 * (1/(1+2 lam) - Gamma(lam+1)^2 / Gamma(2 lam+2)) for lam != 0,
    pi^2/3 (logistic) at lam = 0; infinite for lam <= -1/2.

    >>> round(tukey_lambda_std(0.0), 6) == round(math.pi / math.sqrt(3), 6)
    True
    >>> round(tukey_lambda_std(1.0), 6)  # uniform on [-1, 1]
    0.57735
    """
    lam = float(lam)
    if lam <= -0.5:
        return math.inf
    if abs(lam) < 1e-6:
        return math.pi / math.sqrt(3.0)
    lg = 2.0 * math.lgamma(lam + 1.0) - math.lgamma(2.0 * lam + 2.0)
    var = 2.0 / lam**2 * (1.0 / (1.0 + 2.0 * lam) - math.exp(lg))
    return math.sqrt(var)


def _vec4(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(4, float(arr))
    if arr.shape != (4,):
        raise InputError(f"NoiseParams.{name} must be a scalar or shape (4,) in R, Gr, Gb, B order, got shape {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class NoiseParams:
    """Noise parameters of one capture (see module docstring for units)."""

    K: np.ndarray
    read_law: str
    read_lambda: np.ndarray
    read_scale: np.ndarray
    read_std: np.ndarray
    row_std: float
    bias: np.ndarray
    black_level: np.ndarray
    white_level: int
    iso: float | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("K", "read_lambda", "read_scale", "read_std", "bias", "black_level"):
            object.__setattr__(self, name, _vec4(name, getattr(self, name)))
        if self.read_law not in READ_LAWS:
            raise InputError(f"NoiseParams.read_law must be one of {READ_LAWS}, got {self.read_law!r}")
        if not np.all(np.isfinite(self.K)) or np.any(self.K <= 0):
            raise InputError(f"NoiseParams.K must be finite and > 0 (DN per electron), got {self.K.tolist()}")
        if not np.all(np.isfinite(self.read_std)) or np.any(self.read_std < 0):
            raise InputError(f"NoiseParams.read_std must be finite and >= 0 DN, got {self.read_std.tolist()}")
        if self.read_law == "tukey_lambda":
            if not np.all(np.isfinite(self.read_lambda)) or np.any(self.read_lambda <= -0.5):
                raise InputError(f"NoiseParams.read_lambda must be finite and > -0.5 (finite variance), got {self.read_lambda.tolist()}")
            if not np.all(np.isfinite(self.read_scale)) or np.any(self.read_scale < 0):
                raise InputError(f"NoiseParams.read_scale must be finite and >= 0 DN, got {self.read_scale.tolist()}")
        row = float(self.row_std)
        if not math.isfinite(row) or row < 0:
            raise InputError(f"NoiseParams.row_std must be finite and >= 0 DN, got {self.row_std!r}")
        object.__setattr__(self, "row_std", row)
        if not np.all(np.isfinite(self.bias)):
            raise InputError(f"NoiseParams.bias must be finite, got {self.bias.tolist()}")
        wl = int(self.white_level)
        if wl != self.white_level or wl <= 0 or wl > 65535:
            raise InputError(f"NoiseParams.white_level must be an integer DN in 1..65535, got {self.white_level!r}")
        object.__setattr__(self, "white_level", wl)
        if np.any(self.black_level < 0) or np.any(self.black_level >= wl):
            raise InputError(f"NoiseParams.black_level must lie in [0, white_level={wl}), got {self.black_level.tolist()}")
        if self.iso is not None:
            object.__setattr__(self, "iso", float(self.iso))

    @property
    def total_dark_variance(self) -> np.ndarray:
        """Per-channel dark temporal variance in DN^2: read_std^2 + row_std^2 + 1/12 (quantisation)."""
        return self.read_std**2 + self.row_std**2 + 1.0 / 12.0

    def expected_variance(self, mean_above_black: float | np.ndarray) -> np.ndarray:
        """Var(D) = K * mean + read_std^2 + row_std^2 + 1/12, per channel (away from the clip points)."""
        return self.K * np.asarray(mean_above_black, dtype=np.float64) + self.total_dark_variance

    def dng_noise_profile(self) -> list[tuple[float, float]]:
        """DNG NoiseProfile pairs ``(S, O)`` for planes R, G, B (see :func:`dng_noise_profile`)."""
        return dng_noise_profile(self.K, self.total_dark_variance, self.black_level, self.white_level)

    def to_dict(self) -> dict:
        """The parameters as JSON-able data (NaN as None); :meth:`from_dict` reads it back."""
        d = {
            "iso": self.iso,
            "K": self.K.tolist(),
            "read_law": self.read_law,
            "read_lambda": [None if math.isnan(v) else v for v in self.read_lambda.tolist()],
            "read_scale": [None if math.isnan(v) else v for v in self.read_scale.tolist()],
            "read_std": self.read_std.tolist(),
            "row_std": self.row_std,
            "bias": self.bias.tolist(),
            "black_level": self.black_level.tolist(),
            "white_level": self.white_level,
        }
        if self.extra:
            d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseParams":
        def nanify(v):
            return [math.nan if x is None else x for x in v] if isinstance(v, list) else v

        missing = [k for k in ("K", "read_law", "read_std", "row_std", "bias", "black_level", "white_level") if k not in d]
        if missing:
            raise InputError(f"NoiseParams record lacks field(s) {missing}")
        return cls(
            K=d["K"],
            read_law=d["read_law"],
            read_lambda=nanify(d.get("read_lambda", [math.nan] * 4)),
            read_scale=nanify(d.get("read_scale", [math.nan] * 4)),
            read_std=d["read_std"],
            row_std=d["row_std"],
            bias=d["bias"],
            black_level=d["black_level"],
            white_level=d["white_level"],
            iso=d.get("iso"),
            extra=dict(d.get("extra", {})),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoiseParams):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        iso = "None" if self.iso is None else f"{self.iso:g}"
        return (f"NoiseParams(iso={iso}, K={np.round(self.K, 4).tolist()}, read_law={self.read_law!r}, "
                f"read_std={np.round(self.read_std, 3).tolist()}, row_std={self.row_std:.3g}, "
                f"bias={np.round(self.bias, 3).tolist()})")
