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

from .cfa import PATTERNS, mosaic
from .degrade import DegradeParams, DegradeResult, degrade
from .errors import ImageIOError, InputError, InputTypeError, IspSimError, ProfileError
from .noise import add_noise
from .params import NoiseParams, tukey_lambda_std
from .pipeline import D2HNET, D2HNET_WB_RANGE, ISPSettings, process, unprocess
from .profile import NoiseProfile, SensorInfo, bundled_profiles, load_profile, profile_schema

__version__ = "0.1.0"

__all__ = [
    "PATTERNS", "mosaic", "DegradeParams", "DegradeResult", "degrade", "ImageIOError", "InputError",
    "InputTypeError", "IspSimError", "ProfileError", "add_noise", "NoiseParams", "tukey_lambda_std", "D2HNET",
    "D2HNET_WB_RANGE", "ISPSettings", "process", "unprocess", "NoiseProfile", "SensorInfo", "bundled_profiles",
    "load_profile", "profile_schema", "__version__",
]
