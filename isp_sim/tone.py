"""Transfer functions and tone curves, each with its exact inverse.

All functions take and return float arrays in [0, 1] (domain and range), and
are elementwise. Names follow the direction of the *forward* ISP:
``*_encode`` goes from linear to display (sRGB) values, ``*_decode`` back.

* Power-law gamma (D2HNet: ``x ** (1 / 2.2)`` forward, ``x ** 2.2`` inverse).
* The sRGB transfer function (IEC 61966-2-1).
* The smoothstep global tone curve ``3x^2 - 2x^3`` and its inverse
  ``0.5 - sin(asin(1 - 2y) / 3)``, as used for unprocessing by
  Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

TRANSFERS = ("gamma", "srgb", "linear")
SRGB_ENCODE_BREAK = 0.0031308
SRGB_DECODE_BREAK = 12.92 * SRGB_ENCODE_BREAK


def check_transfer(name: str) -> str:
    if name not in TRANSFERS:
        raise InputError(f"unknown transfer function {name!r}; allowed: {', '.join(TRANSFERS)}")
    return name


def gamma_encode(linear: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """Linear -> display by ``x ** (1 / gamma)`` (negative input clipped to 0).

    >>> float(gamma_encode(np.float64(0.25), 2.0))
    0.5
    """
    return np.power(np.maximum(linear, 0), 1.0 / gamma)


def gamma_decode(display: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """Display -> linear by ``x ** gamma``; the exact inverse of :func:`gamma_encode` on [0, 1]."""
    return np.power(np.maximum(display, 0), gamma)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear -> sRGB (IEC 61966-2-1 OETF: 12.92 x below 0.0031308, else 1.055 x^(1/2.4) - 0.055)."""
    x = np.maximum(linear, 0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def srgb_decode(display: np.ndarray) -> np.ndarray:
    """sRGB -> linear; the exact inverse of :func:`srgb_encode`.

    The standard's decode breakpoint 0.04045 is not exactly the image of the encode breakpoint
    (12.92 * 0.0031308 = 0.0404499); the image is used here so the pair inverts exactly.
    """
    y = np.maximum(display, 0)
    return np.where(y <= SRGB_DECODE_BREAK, y / 12.92, np.power((y + 0.055) / 1.055, 2.4))


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Global tone curve ``3x^2 - 2x^3`` on [0, 1] (Brooks et al. 2019)."""
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def smoothstep_inverse(y: np.ndarray) -> np.ndarray:
    """Exact inverse of :func:`smoothstep`: ``0.5 - sin(arcsin(1 - 2y) / 3)``.

    >>> bool(np.allclose(smoothstep_inverse(smoothstep(np.linspace(0, 1, 11))), np.linspace(0, 1, 11)))
    True
    """
    y = np.clip(y, 0, 1)
    return 0.5 - np.sin(np.arcsin(1 - 2 * y) / 3)


def encode(linear: np.ndarray, transfer: str = "gamma", gamma: float = 2.2) -> np.ndarray:
    """Apply the named transfer function (``"gamma"``, ``"srgb"`` or ``"linear"``)."""
    check_transfer(transfer)
    if transfer == "gamma":
        return gamma_encode(linear, gamma)
    if transfer == "srgb":
        return srgb_encode(linear)
    return np.asarray(linear)


def decode(display: np.ndarray, transfer: str = "gamma", gamma: float = 2.2) -> np.ndarray:
    """Invert the named transfer function."""
    check_transfer(transfer)
    if transfer == "gamma":
        return gamma_decode(display, gamma)
    if transfer == "srgb":
        return srgb_decode(display)
    return np.asarray(display)
