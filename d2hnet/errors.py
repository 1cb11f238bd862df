"""Errors raised by ``d2hnet``.

They join the package-wide hierarchy of :mod:`isp_sim.errors`: every one is an
:class:`~isp_sim.errors.IspSimError` and also a ``ValueError`` or ``TypeError``,
so callers can catch either. Messages name the bad value and say what is allowed.
"""

from __future__ import annotations

from isp_sim.errors import ImageIOError, InputError, InputTypeError, IspSimError

__all__ = [
    "IspSimError",
    "InputError",
    "InputTypeError",
    "ImageIOError",
    "CheckpointError",
    "ReleaseConversionError",
]


class CheckpointError(IspSimError, ValueError):
    """A checkpoint that cannot be read, is of an unknown format version, or does not fit the networks."""


class ReleaseConversionError(CheckpointError):
    """A file of the official D2HNet release whose keys or shapes are not the ones expected."""
