"""The two colour stages: :func:`unprocess` (sRGB -> clean raw) and :func:`process` (raw -> sRGB).

Unprocess (Brooks et al. 2019, order reversed from the forward ISP): optional
inverse smoothstep tone curve, inverse transfer function (power-law gamma
2.2 by default, as D2HNet; sRGB as an option), optional inverse colour
correction matrix, inverse white balance, mosaic, scaling to DN
``x * (white - black) + black``.

Process (forward ISP): black subtraction and normalisation by
``white - black``, white balance (highlights clipped at 1 after it, as a
camera ISP saturates them), demosaic (:mod:`isp_sim.demosaic`), optional CCM,
clip to [0, 1], transfer function, optional tone curve. Negative values (noise
below black) are kept through demosaicing so dark regions are not biased, and
clipped only before the transfer function.

Without mosaicing, ``process(unprocess(x))`` returns ``x`` to float32
precision (>= 60 dB PSNR, tested) for colours the CCM's inverse keeps inside
[0, 1] (a colour it maps above 1 is clipped by the highlight clip, as a camera
would clip it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import _isp_kernels as K
from .cfa import channel_map, check_pattern, rgb_map
from .demosaic import DEMOSAIC_ALIASES as _DEMOSAIC_ALIASES
from .demosaic import DEMOSAICING_METHODS, demosaic
from ._scratch import scratch
from .demosaic._common import as_cfa_float32, pattern_map
from .demosaic.menon2007 import menon_finished, planar, planar_scratch
from .errors import InputError, InputTypeError
from .tone import TRANSFERS

_TRANSFER_CODES = {"gamma": 0, "srgb": 1, "linear": 2}

#: White-balance gain ranges ``((r_low, r_high), (b_low, b_high))``.
WBRange = tuple[tuple[float, float], tuple[float, float]]

#: D2HNet white-balance gain ranges (w_r, w_b; w_g = 1), paper section 4 / release.
D2HNET_WB_RANGE = ((1.9, 2.4), (1.5, 1.9))


@dataclass(frozen=True)
class ISPSettings:
    """Tone and colour settings shared by unprocess and process.

    ``ccm`` is the forward 3x3 colour-correction matrix (camera RGB -> linear
    sRGB, rows sum to 1 for a white-preserving matrix) or None. The defaults
    are the D2HNet recipe: gamma 2.2, no CCM, no tone curve, Menon 2007.
    """

    transfer: str = "gamma"
    gamma: float = 2.2
    tone_curve: bool = False
    ccm: tuple | None = None
    demosaic: str = "menon2007"

    def __post_init__(self) -> None:
        if self.transfer not in TRANSFERS:
            raise InputError(f"unknown transfer {self.transfer!r}; allowed: {', '.join(TRANSFERS)}")
        if not (isinstance(self.gamma, (int, float)) and np.isfinite(self.gamma) and self.gamma > 0):
            raise InputError(f"gamma must be a finite number > 0, got {self.gamma!r}")
        object.__setattr__(self, "gamma", float(self.gamma))
        if self.ccm is not None:
            m = np.asarray(self.ccm, dtype=np.float64)
            if m.shape != (3, 3) or not np.all(np.isfinite(m)):
                raise InputError(f"ccm must be a finite 3x3 matrix, got shape {m.shape}")
            if abs(np.linalg.det(m)) < 1e-9:
                raise InputError("ccm is singular; it must be invertible for unprocessing")
            object.__setattr__(self, "ccm", tuple(tuple(float(v) for v in row) for row in m))
        name = str(self.demosaic).lower()
        name = _DEMOSAIC_ALIASES.get(name, name)
        if name not in DEMOSAICING_METHODS:
            raise InputError(f"unknown demosaic method {self.demosaic!r}; allowed: {', '.join(sorted(DEMOSAICING_METHODS))}")
        object.__setattr__(self, "demosaic", name)
        object.__setattr__(self, "tone_curve", bool(self.tone_curve))

    def to_dict(self) -> dict:
        """The settings as JSON-able data; :meth:`from_dict` reads it back."""
        return {"transfer": self.transfer, "gamma": self.gamma, "tone_curve": self.tone_curve,
                "ccm": None if self.ccm is None else [list(r) for r in self.ccm], "demosaic": self.demosaic}

    @classmethod
    def from_dict(cls, d: dict) -> "ISPSettings":
        return cls(**{k: (tuple(tuple(r) for r in v) if k == "ccm" and v is not None else v) for k, v in d.items()})

    def _luts(self) -> tuple[np.ndarray, np.ndarray]:
        return _luts(_TRANSFER_CODES[self.transfer], self.gamma)

    def _ccm_arrays(self) -> tuple[np.ndarray, np.ndarray, bool]:
        if self.ccm is None:
            eye = np.eye(3)
            return eye, eye, False
        m = np.asarray(self.ccm, dtype=np.float64)
        return m, np.linalg.inv(m), True


D2HNET = ISPSettings()


@functools.lru_cache(maxsize=16)
def _luts(code: int, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    return K.decode_lut(code, gamma), K.encode_table(code, gamma)


def check_wb(wb) -> np.ndarray:
    """White-balance gains as float64 (3,) ``(r, g, b)``; a pair ``(r, b)`` means g = 1."""
    try:
        g = np.asarray(wb, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputTypeError(f"wb must be (w_r, w_b) or (w_r, w_g, w_b) numbers, got {wb!r}") from None
    if g.shape == (2,):
        g = np.array([g[0], 1.0, g[1]])
    if g.shape != (3,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise InputError(f"wb must be 2 or 3 finite gains > 0 ((w_r, w_b) or (w_r, w_g, w_b)), got {wb!r}")
    return g


def as_srgb(img, *, allow_batch: bool = False, name: str = "img", defer_range: bool = False) -> np.ndarray:
    """Check and convert an sRGB image to float32 in [0, 1] (uint8/uint16 scaled by 255/65535).

    ``defer_range``: a C-contiguous float32 image is returned without the range check, which the caller
    then owes (``unprocess_checked(..., check_range=True)`` makes it in its own pass over the image).
    """
    if not isinstance(img, np.ndarray):
        raise InputTypeError(f"{name} must be a numpy array, got {type(img).__name__}")
    shapes = "(H, W, 3) or (N, H, W, 3)" if allow_batch else "(H, W, 3)"
    if img.ndim not in ((3, 4) if allow_batch else (3,)) or img.shape[-1] != 3:
        raise InputError(f"{name} must have shape {shapes}, got {img.shape}")
    if img.shape[-2] < 2 or img.shape[-3] < 2:
        raise InputError(f"{name} must be at least 2x2 pixels, got {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(65535)
    if img.dtype == np.bool_ or not np.issubdtype(img.dtype, np.floating):
        raise InputTypeError(f"{name} dtype {img.dtype} not supported; use float32/float64 in [0, 1], uint8 or uint16")
    if img.dtype == np.float32 and img.flags.c_contiguous and (
            defer_range or K.count_outside_unit(img.reshape(-1).view(np.uint32)) == 0):
        return img  # the common case, checked in one parallel integer pass (or by the caller)
    if not np.all(np.isfinite(img)):
        raise InputError(f"{name} contains NaN or inf values")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name} float values must lie in [0, 1], got range [{lo:.6g}, {hi:.6g}]")
    return np.ascontiguousarray(img, dtype=np.float32)


def _levels(black_level, white_level) -> tuple[np.ndarray, np.ndarray]:
    black = np.asarray(black_level, dtype=np.float64)
    if black.ndim == 0:
        black = np.full(4, float(black))
    if black.shape != (4,) or not np.all(np.isfinite(black)):
        raise InputError(f"black_level must be a number or 4 numbers (R, Gr, Gb, B), got {black_level!r}")
    white = float(white_level)
    if not np.isfinite(white) or np.any(black >= white):
        raise InputError(f"white_level ({white_level!r}) must be finite and above every black level {black.tolist()}")
    return black, white - black


def _planes3(per_channel: np.ndarray) -> np.ndarray:
    """(4,) R, Gr, Gb, B -> (3,) R, G, B (green from Gr)."""
    return np.array([per_channel[0], per_channel[1], per_channel[3]], dtype=np.float64)


def unprocess(img: np.ndarray, *, pattern: str = "RGGB", wb: Sequence[float] = (1.0, 1.0, 1.0),
              settings: ISPSettings = D2HNET, black_level: float | Sequence[float] = 0.0, white_level: float = 1.0,
              mosaic: bool = True) -> np.ndarray:
    """sRGB -> clean raw in DN (black level included, unclipped).

    Parameters
    ----------
    img : (H, W, 3) float in [0, 1], or uint8 / uint16
    pattern : CFA pattern in reading order.
    wb : white-balance gains ``(r, g, b)`` or ``(r, b)`` the forward ISP will apply; here divided out.
    settings : :class:`ISPSettings` (transfer, gamma, tone curve, CCM).
    black_level, white_level : DN scale; the defaults give a [0, 1] normalised raw.
    mosaic : False returns the (H, W, 3) camera-RGB image instead of a Bayer mosaic
        (green uses the Gr black level).

    Returns
    -------
    float32 (H, W) mosaic, or (H, W, 3) when ``mosaic=False``.
    """
    black, scale = _levels(black_level, white_level)
    return unprocess_checked(as_srgb(img), check_pattern(pattern), check_wb(wb), settings, black, scale, mosaic)


def unprocess_checked(x, pattern, g, settings, black, scale, mosaic=True, check_range=False):
    """:func:`unprocess` on checked arguments (C-contiguous float32 image, canonical pattern, (3,) gains, (4,) levels).

    ``check_range``: ``x`` came from ``as_srgb(..., defer_range=True)``; values outside [0, 1] raise its error.
    """
    _, m_inv, use = settings._ccm_arrays()
    lut = settings._luts()[0]
    if not mosaic:
        if check_range:
            as_srgb(x)
        out = np.empty(x.shape, dtype=np.float32)
        K.unprocess_planes(x, 1.0 / g, m_inv, use, lut, settings.tone_curve, _planes3(black), _planes3(scale), out)
        return out
    out = np.empty(x.shape[:2], dtype=np.float32)
    bits = x.reshape(x.shape[0], -1).view(np.uint32) if check_range else None
    if K.unprocess_mosaic(x, rgb_map(pattern), channel_map(pattern), 1.0 / g, m_inv, use, lut, settings.tone_curve,
                          black, scale, out, bits):
        as_srgb(x)  # raises the error naming what is wrong
        raise AssertionError("unreachable: the range count and as_srgb disagree")
    return out


def process(raw: np.ndarray, *, pattern: str = "RGGB", wb: Sequence[float] = (1.0, 1.0, 1.0),
            settings: ISPSettings = D2HNET, black_level: float | Sequence[float] = 0.0, white_level: float = 1.0) -> np.ndarray:
    """Forward ISP: raw DN (Bayer ``(H, W)`` or camera RGB ``(H, W, 3)``) -> float32 sRGB ``(H, W, 3)`` in [0, 1].

    See the module docstring for the stages. ``raw`` may be uint16 or float (NaN/inf rejected).
    """
    if not isinstance(raw, np.ndarray):
        raise InputTypeError(f"raw must be a numpy array, got {type(raw).__name__}")
    if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[2] != 3):
        raise InputError(f"raw must be a Bayer mosaic (H, W) or camera RGB (H, W, 3), got shape {raw.shape}")
    if not (np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype, np.integer)) or raw.dtype == np.bool_:
        raise InputTypeError(f"raw dtype {raw.dtype} not supported; use uint16 or float DN")
    if np.issubdtype(raw.dtype, np.floating) and not np.all(np.isfinite(raw)):
        raise InputError("raw contains NaN or inf values")
    if min(raw.shape[:2]) < 2:
        raise InputError(f"raw must be at least 2x2 pixels, got {raw.shape}")
    black, scale = _levels(black_level, white_level)
    src = raw if raw.dtype in (np.float32, np.float64, np.uint16) else raw.astype(np.float64)
    return process_checked(np.ascontiguousarray(src), check_pattern(pattern), check_wb(wb), settings, black, scale)


def _normalized_mosaic(raw, pattern, g, black, scale):
    """The mosaic ``raw`` black-subtracted, normalised, white-balanced, clipped at 1: float32, in a reused scratch
    array."""
    cfa = scratch("process.cfa", raw.shape, np.float32)
    K.normalize_mosaic(raw, channel_map(pattern), rgb_map(pattern), black, 1.0 / scale, g, cfa)
    return cfa


def process_checked(raw, pattern, g, settings, black, scale):
    """:func:`process` on checked arguments (contiguous uint16/float32/float64 raw)."""
    src = raw
    if raw.ndim == 3:
        rgb = np.empty(raw.shape, dtype=np.float32)
        K.normalize_planes(src, _planes3(black), 1.0 / _planes3(scale), g, rgb)
    else:
        if settings.demosaic == "menon2007":  # CCM and display transform fused into its row output
            # a uint16 raw normalises within [-black / range * gain, 1] (above 1 is clipped): finite in float32
            # unless the gains are absurd; a finite float raw can still overflow float32
            if src.dtype == np.uint16 and float(np.max(black / scale)) * float(g.max()) < 1e38:
                xp = planar_scratch(*raw.shape)  # normalised straight into the half rows Menon reads
                K.normalize_planar(src, channel_map(pattern), rgb_map(pattern), black, 1.0 / scale, g, xp)
            else:  # as_cfa_float32 raises the error naming non-finite values
                xp = planar(as_cfa_float32(_normalized_mosaic(src, pattern, g, black, scale)))
            m, _, use = settings._ccm_arrays()
            return menon_finished(xp, raw.shape[1], pattern_map(pattern), m if use else None, settings._luts()[1],
                                  settings.tone_curve)
        rgb = demosaic(_normalized_mosaic(src, pattern, g, black, scale), pattern, method=settings.demosaic)
    m, _, use = settings._ccm_arrays()
    if use:
        K.apply_ccm(rgb, m, rgb)  # in place: each pixel's three values are read before it is written
    rgb = np.ascontiguousarray(rgb)
    K.finish(rgb, settings._luts()[1], settings.tone_curve, rgb)  # in place: rgb is ours, elementwise map
    return rgb
