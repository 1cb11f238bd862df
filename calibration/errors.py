"""Errors and warnings of the ``calibration`` package.

Every error is a subclass of :class:`isp_sim.errors.IspSimError` and of
``ValueError``, so callers can catch the project base or the builtin. Messages
name the file (or value) and the reason.
"""

from __future__ import annotations

from isp_sim.errors import IspSimError


class CalibrationError(IspSimError, ValueError):
    """Base class of the calibration package's errors (a calibration that cannot be done as asked)."""


class RawReadError(CalibrationError):
    """A file that cannot be read as a sensor raw frame (corrupt, truncated, not a raw file)."""


class NotSensorRawError(RawReadError):
    """A file that opens but does not hold sensor-raw Bayer data (demosaiced/linear DNG, non-identity linearisation, ...)."""


class MissingMetadataError(RawReadError):
    """A raw frame without a piece of metadata the calibration needs (ISO, usually)."""


class CalibrationWarning(UserWarning):
    """A problem the calibration worked around (a skipped file, a substituted estimator, ...); the message says what and why."""
