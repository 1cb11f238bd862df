"""Calibrate a camera's sensor noise from its own dark and flat raw frames.

Public API (docs/architecture.md, "Public surfaces"):

* :func:`read_raw` -> :class:`RawFrame`: one raw file (pixels, CFA, levels, ISO, exposure, DNG NoiseProfile).
* :func:`calibrate` -> :class:`CalibrationResult`: a session folder -> an :class:`isp_sim.NoiseProfile`
  with per-ISO/per-channel estimates, uncertainties, fit quality and warnings.
* :func:`write_report`: PNG plots and a markdown summary of a result.
* :func:`simulate_capture`: a synthetic dark/flat DNG session from a profile (with its truth).
* :func:`emva1288` -> :class:`EmvaResult`: EMVA 1288 results from a measurement descriptor (monochrome).

Units: DN of the raw data; K in DN per electron; per-channel arrays R, Gr, Gb, B.
Imports neither torch nor matplotlib (the report imports matplotlib when called).
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CalibrationError, CalibrationWarning, MissingMetadataError, NotSensorRawError, RawReadError
from .pipeline import CalibrationResult, IsoEstimate, calibrate
from .rawio import RawFrame, read_raw
from .simulate import SimulatedSession, loglinear_profile, simulate_capture

if TYPE_CHECKING:
    from .emva import EmvaResult


def write_report(result: CalibrationResult, out_dir: str | os.PathLike, *,
                 profile_path: str | os.PathLike | None = None) -> Path:
    """Write the calibration report (PNG plots + ``summary.md``) of ``result`` to ``out_dir``; returns the summary
    path (matplotlib is imported only here)."""
    from .report import write_report as _w

    return _w(result, out_dir, profile_path=profile_path)


def emva1288(descriptor: str | os.PathLike, *, saturation: str = "max") -> "EmvaResult":
    """EMVA 1288 results (:class:`calibration.emva.EmvaResult`) from a measurement descriptor file."""
    from .emva import emva1288 as _e

    return _e(descriptor, saturation=saturation)


__all__ = ["CalibrationError", "CalibrationResult", "CalibrationWarning", "IsoEstimate", "MissingMetadataError",
           "NotSensorRawError", "RawFrame", "RawReadError", "SimulatedSession", "calibrate", "emva1288",
           "loglinear_profile", "read_raw", "simulate_capture", "write_report"]
