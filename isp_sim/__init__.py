"""isp_sim: realistic phone-camera degradation (unprocess -> calibrated sensor noise -> forward ISP).

Public API (names fixed by DESIGN.md)::

    load_profile(name_or_path) -> NoiseProfile
    NoiseProfile.at_iso / at_k / sample / save / to_dict / from_dict
    degrade(img, profile, *, iso=None, k=None, wb=None, seed=None, params=None, ...) -> DegradeResult
    unprocess(...), add_noise(...), process(...)

Conventions: sRGB float32 in [0, 1]; Bayer patterns named in reading order; raw
values in DN with explicit black and white levels; K in DN per electron;
per-channel arrays in R, Gr, Gb, B order.
"""

import os as _os

# OpenMP threads of the numba kernels sleep instead of spinning when idle. libgomp's default (spin, then sleep)
# made two threads slower than one whenever another process used the second core (benchmarks/bench_degrade.py
# --threads-only: 130 vs 108 ms with a busy core; passive 89 ms), at a small cost in a quiet window. Set before the
# OpenMP runtime starts (numba loads it at the first parallel call); a value the caller set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cfa import PATTERNS, mosaic  # noqa: E402
from .degrade import DegradeParams, DegradeResult, degrade  # noqa: E402
from .errors import ImageIOError, InputError, InputTypeError, IspSimError, ProfileError  # noqa: E402
from .noise import add_noise  # noqa: E402
from .params import NoiseParams, tukey_lambda_std  # noqa: E402
from .pipeline import D2HNET, D2HNET_WB_RANGE, ISPSettings, process, unprocess  # noqa: E402
from .profile import NoiseProfile, SensorInfo, bundled_profiles, load_profile, profile_schema  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "PATTERNS", "mosaic", "DegradeParams", "DegradeResult", "degrade", "ImageIOError", "InputError",
    "InputTypeError", "IspSimError", "ProfileError", "add_noise", "NoiseParams", "tukey_lambda_std", "D2HNET",
    "D2HNET_WB_RANGE", "ISPSettings", "process", "unprocess", "NoiseProfile", "SensorInfo", "bundled_profiles",
    "load_profile", "profile_schema", "__version__",
]
