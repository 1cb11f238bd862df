"""Exception hierarchy shared by ``isp_sim``, ``calibration`` and ``d2hnet``.

Every user mistake raises a subclass of :class:`IspSimError` that is also a
``ValueError`` (or ``TypeError``), so callers can catch either the package base
or the builtin. Messages name the bad value and say what is allowed.
"""

from __future__ import annotations


class IspSimError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(IspSimError, ValueError):
    """A bad argument value: wrong shape, range, NaN, unknown name, ..."""


class InputTypeError(IspSimError, TypeError):
    """An argument of the wrong type or dtype."""


class ProfileError(IspSimError, ValueError):
    """A noise profile that cannot be found, parsed or validated, or a query outside its range."""


class ImageIOError(IspSimError, ValueError):
    """An image file that cannot be read or written as asked."""
