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


def _load_tbb() -> None:
    """Make the ``tbb`` wheel's library visible to numba, which then runs the kernels on its TBB threading layer.

    TBB hands out a parallel loop's chunks dynamically (a thread that is ahead takes the chunks of one that is
    not running; the kernels cut their loops into chunks of 16 rows, :mod:`isp_sim._parallel`), where numba's
    OpenMP layer splits them statically; with another process on one of two cores, two threads then took
    0.81-0.98x the one-thread time in ten runs, against 0.94-1.23x on OpenMP with the short spin count below, and
    about as OpenMP in a quiet window (``benchmarks/bench_degrade.py --threads-only``, BENCHMARKS.md). TBB is also
    fork-safe (GNU OpenMP is not).
    pip installs ``libtbb.so.12`` under the environment's ``lib/``, outside the loader's search path, so numba
    looks for it in vain: the file (there, else where the wheel's install record puts it) is loaded here by path,
    with global symbols, unless a ``libtbb.so.12`` is loaded already. This chooses no layer: ``NUMBA_THREADING_LAYER`` or
    ``numba.config.THREADING_LAYER`` still decide (``tbb`` and ``safe`` now find the library), and numba's
    default order tries TBB first. It has no effect in a process whose numba started its thread pool before
    ``import isp_sim``. Nothing is done off Linux or without the wheel.
    """
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libtbb.so.12", mode=ctypes.RTLD_GLOBAL | _os.RTLD_NOLOAD)
        return  # loaded already (a conda or system TBB, or an earlier import): numba finds that one
    except OSError:
        pass
    path = _os.path.join(sys.prefix, "lib", "libtbb.so.12")  # where pip puts it in a virtual environment
    if not _os.path.exists(path):
        from importlib import metadata

        try:
            files = metadata.distribution("tbb").files or []
        except metadata.PackageNotFoundError:
            return
        found = [f.locate() for f in files if f.name == "libtbb.so.12"]
        if not found:
            return
        path = str(found[0])
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        pass  # a broken or foreign library: numba picks another layer as usual


_load_tbb()

# Where numba runs on OpenMP instead (no TBB), idle threads spin only briefly (10,000 iterations, libgomp's
# default is 300,000) before they sleep: long spinning made two threads slower than one whenever another process
# held the second core, sleeping at once cost speed in a quiet window (BENCHMARKS.md, the thread table's OpenMP
# rows). Set before the OpenMP runtime starts (numba loads it at the first parallel call); the caller's
# OMP_WAIT_POLICY or GOMP_SPINCOUNT, when set, is kept.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "10000"

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
