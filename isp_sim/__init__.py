"""isp_sim: realistic phone-camera degradation (unprocess -> calibrated sensor noise -> forward ISP).

Public API (docs/architecture.md)::

    load_profile(name_or_path) -> NoiseProfile
    NoiseProfile.at_iso / at_k / sample / save / to_dict / from_dict
    degrade(img, profile, *, iso=None, k=None, wb=None, seed=None, params=None, ...) -> DegradeResult
    unprocess(...), add_noise(...), process(...)

Conventions: sRGB float32 in [0, 1]; Bayer patterns named in reading order; raw
values in DN with explicit black and white levels; K in DN per electron;
per-channel arrays in R, Gr, Gb, B order.

The names below load on first use (PEP 562), so ``import isp_sim.errors`` or ``import isp_sim.cfa`` costs
no numba: the networks of ``d2hnet.models`` share the error classes without loading the ISP.
"""

from __future__ import annotations

import importlib
import os as _os

# OpenMP threads of the numba kernels sleep instead of spinning when idle. libgomp's default (spin, then sleep)
# made two threads slower than one whenever another process used the second core (benchmarks/bench_degrade.py
# --threads-only: 123 vs 72 ms with a busy core; passive 90 vs 107 ms), at a cost in a quiet window. Set before
# the OpenMP runtime starts (numba loads it at the first parallel call); a value the caller set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_EXPORTS = {
    "PATTERNS": "cfa", "mosaic": "cfa",
    "DegradeParams": "degradation", "DegradeResult": "degradation", "degrade": "degradation",
    "sample_wb": "degradation",
    "ImageIOError": "errors", "InputError": "errors", "InputTypeError": "errors", "IspSimError": "errors",
    "ProfileError": "errors",
    "add_noise": "noise",
    "NoiseParams": "params", "tukey_lambda_std": "params",
    "D2HNET": "pipeline", "D2HNET_WB_RANGE": "pipeline", "ISPSettings": "pipeline", "process": "pipeline",
    "unprocess": "pipeline",
    "NoiseProfile": "profile", "SensorInfo": "profile", "bundled_profiles": "profile", "load_profile": "profile",
    "profile_schema": "profile",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'isp_sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
