"""Bayer colour filter arrays: pattern names, channel maps, mosaicing.

Conventions (see docs/conventions.md):

* A Bayer mosaic is a 2-D array ``(H, W)``.
* Patterns are named in reading order from the top-left 2x2 cell: ``"RGGB"``,
  ``"BGGR"``, ``"GRBG"``, ``"GBRG"`` (the rawpy / colour-demosaicing naming,
  *not* OpenCV's).
* Per-channel arrays are ordered ``R, Gr, Gb, B`` whatever the pattern. ``Gr``
  is the green that shares its row with red, ``Gb`` the green on blue rows.

Rolling an image by one pixel is the same as switching pattern: the mosaic of
``np.roll(img, 1, axis=1)`` with ``"RGGB"`` equals ``np.roll`` of the mosaic of
``img`` with ``"GRBG"``.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError, InputTypeError

PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")

#: Index of each per-channel slot in the ``R, Gr, Gb, B`` order.
CHANNELS: tuple[str, ...] = ("R", "Gr", "Gb", "B")


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` upper-cased, or raise :class:`InputError` naming the valid ones."""
    if not isinstance(pattern, str):
        raise InputTypeError(f"CFA pattern must be a string such as 'RGGB', got {type(pattern).__name__}")
    p = pattern.upper()
    if p not in PATTERNS:
        raise InputError(f"unknown CFA pattern {pattern!r}; allowed: {', '.join(PATTERNS)}")
    return p


def channel_map(pattern: str) -> np.ndarray:
    """2x2 ``int64`` array: the ``R, Gr, Gb, B`` slot (0..3) of each cell of the pattern.

    >>> channel_map("RGGB").tolist()
    [[0, 1], [2, 3]]
    >>> channel_map("GBRG").tolist()
    [[2, 3], [0, 1]]
    """
    p = check_pattern(pattern)
    cells = [p[0:2], p[2:4]]
    out = np.empty((2, 2), dtype=np.int64)
    red_row = 0 if "R" in cells[0] else 1
    for i in range(2):
        for j in range(2):
            c = cells[i][j]
            if c == "R":
                out[i, j] = 0
            elif c == "B":
                out[i, j] = 3
            else:
                out[i, j] = 1 if i == red_row else 2
    return out


def channel_sites(pattern: str) -> list[tuple[int, int]]:
    """The inverse of :func:`channel_map`: ``[(row, col)]`` of the 2x2 cell for R, Gr, Gb, B, in that order
    (``mosaic[i::2, j::2]`` is that channel's plane)."""
    cm = channel_map(pattern)
    out: list = [None] * 4
    for i in range(2):
        for j in range(2):
            out[int(cm[i, j])] = (i, j)
    return out


def rgb_map(pattern: str) -> np.ndarray:
    """2x2 ``int64`` array: the RGB plane (0, 1, 2) each cell of the pattern samples.

    >>> rgb_map("BGGR").tolist()
    [[2, 1], [1, 0]]
    """
    return np.array([0, 1, 1, 2], dtype=np.int64)[channel_map(pattern)]


def channel_index_image(shape: tuple[int, int], pattern: str) -> np.ndarray:
    """``(H, W)`` ``uint8`` array holding each pixel's ``R, Gr, Gb, B`` slot."""
    h, w = shape
    cm = channel_map(pattern).astype(np.uint8)
    return np.tile(cm, ((h + 1) // 2, (w + 1) // 2))[:h, :w]


def shift_pattern(pattern: str, dy: int, dx: int) -> str:
    """Pattern seen by a window that starts ``(dy, dx)`` pixels into a mosaic of ``pattern``.

    >>> shift_pattern("RGGB", 0, 1)
    'GRBG'
    >>> shift_pattern("RGGB", 1, 1)
    'BGGR'
    """
    p = check_pattern(pattern)
    cells = [p[0:2], p[2:4]]
    return "".join(cells[(i + dy) % 2][(j + dx) % 2] for i in range(2) for j in range(2))


def mosaic(rgb: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Sample an ``(H, W, 3)`` image through a Bayer CFA, giving ``(H, W)`` of the same dtype.

    >>> rgb = np.zeros((2, 2, 3)); rgb[..., 0] = 1; rgb[..., 1] = 2; rgb[..., 2] = 3
    >>> mosaic(rgb, "GRBG").tolist()
    [[2.0, 1.0], [3.0, 2.0]]
    """
    if not isinstance(rgb, np.ndarray):
        raise InputTypeError(f"mosaic expects a numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"mosaic expects an (H, W, 3) image, got shape {rgb.shape}")
    planes = rgb_map(pattern)
    out = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    for i in range(2):
        for j in range(2):
            out[i::2, j::2] = rgb[i::2, j::2, planes[i, j]]
    return out


def per_channel_image(values, shape: tuple[int, int], pattern: str) -> np.ndarray:
    """Expand a per-channel ``(4,)`` array (``R, Gr, Gb, B``) to an ``(H, W)`` float64 image."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (4,):
        raise InputError(f"per-channel values must have shape (4,) in R, Gr, Gb, B order, got {v.shape}")
    return v[channel_index_image(shape, pattern)]
