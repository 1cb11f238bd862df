"""isp_sim.torch: the degradation engine on torch tensors, so a GPU trainer degrades its own batches.

Importing this module imports torch; ``import isp_sim`` never does. The stages are those of the numba engine
(:mod:`isp_sim.pipeline`, :mod:`isp_sim.noise`, :mod:`isp_sim.demosaic`) as tensor operations on
``(N, 3, H, W)`` float images (sRGB in [0, 1]) and ``(N, H, W)`` mosaics, on any device, each image with its
own parameters:

* :func:`unprocess`: inverse tone curve (smoothstep), inverse transfer (power-law gamma or sRGB), inverse CCM,
  inverse white balance, mosaic (RGGB, BGGR, GRBG, GBRG), scaling to DN ``x * (white - black) + black``;
* :func:`add_noise`: ``D = K * Poisson(x / K) + read + row + bias + black`` with exact Poisson draws
  (``torch.poisson``), Tukey-lambda or Gaussian read noise by the inverse CDF of one uniform per pixel, one
  Gaussian offset per sensor row, then ``floor(D + 0.5)`` clipped to ``[0, white]`` (as the numba kernel);
* :func:`process`: black subtraction and normalisation, white balance with highlights clipped at 1,
  demosaicing (:func:`demosaic`: bilinear, Malvar 2004, Menon 2007, the numba kernels' formulas in the same
  order, whole-sample symmetric borders), CCM, clip, transfer, tone curve;
* :func:`degrade`: the three, with the same :class:`~isp_sim.NoiseProfile` s and the same parameter record
  (:class:`~isp_sim.DegradeParams`) as :func:`isp_sim.degrade`: records drawn here replay on the numba engine
  and back, **in distribution** (the noise bits differ: the numba engine uses counter-based draws, this one
  ``torch.Generator``).

Randomness: parameter draws (ISO, white balance) use NumPy generators seeded from ``generator`` (so they are
the numba engine's draws for that seed); pixel noise uses ``generator`` itself. Same generator state, same
output on the same device. No autograd: everything runs under ``torch.no_grad``.

Transfer functions are evaluated exactly here (the numba engine uses tables within 1e-6 of them).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .cfa import channel_map, check_pattern, rgb_map
from .demosaic import DEMOSAIC_ALIASES
from .demosaic import DEMOSAICING_METHODS as _NUMBA_DEMOSAICS
from .degradation import DegradeParams, noise_params_for, sample_wb, seed_record
from .errors import InputError, InputTypeError
from .params import NoiseParams
from .pipeline import D2HNET, D2HNET_WB_RANGE, ISPSettings, WBRange, check_wb
from .profile import NoiseProfile, load_profile

__all__ = ["unprocess", "add_noise", "process", "demosaic", "degrade", "TorchDegradeResult", "DEMOSAICING_METHODS"]

DEMOSAICING_METHODS = tuple(_NUMBA_DEMOSAICS)  # the same methods as isp_sim.demosaic
_SRGB_DECODE_BREAK = 12.92 * 0.0031308


# ----------------------------------------------------------------------------- checks


def _check_images(img, name: str = "img") -> torch.Tensor:
    """(N, 3, H, W) float tensor in [0, 1] (the numba API's rules, for tensors)."""
    if not isinstance(img, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch tensor, got {type(img).__name__}")
    if img.ndim != 4 or img.shape[1] != 3:
        raise InputError(f"{name} must have shape (N, 3, H, W), got {tuple(img.shape)}")
    if img.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (0 images); give (N, 3, H, W) with N >= 1")
    if img.shape[-1] < 2 or img.shape[-2] < 2:
        raise InputError(f"{name} must be at least 2x2 pixels, got {tuple(img.shape)}")
    if not img.dtype.is_floating_point:
        raise InputTypeError(f"{name} dtype {img.dtype} not supported; use a float tensor in [0, 1]")
    if not bool(torch.isfinite(img).all()):
        raise InputError(f"{name} contains NaN or inf values")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name} float values must lie in [0, 1], got range [{lo:.6g}, {hi:.6g}]")
    return img.to(torch.float32)


def _check_mosaic(raw, name: str = "raw") -> torch.Tensor:
    if not isinstance(raw, torch.Tensor):
        raise InputTypeError(f"{name} must be a torch tensor, got {type(raw).__name__}")
    if raw.ndim != 3:
        raise InputError(f"{name} must be a batch of Bayer mosaics (N, H, W), got shape {tuple(raw.shape)}")
    if raw.shape[0] == 0:
        raise InputError(f"{name} is an empty batch (0 mosaics)")
    if raw.shape[-1] < 2 or raw.shape[-2] < 2:
        raise InputError(f"{name} must be at least 2x2 pixels, got {tuple(raw.shape)}")
    if raw.dtype == torch.bool or raw.is_complex():
        raise InputTypeError(f"{name} dtype {raw.dtype} not supported; use float or integer DN")
    raw = raw.to(torch.float32) if not raw.dtype.is_floating_point else raw
    if not bool(torch.isfinite(raw).all()):
        raise InputError(f"{name} contains NaN or inf values")
    return raw


def _per_image(values, n: int, width: int, name: str, device) -> torch.Tensor:
    """(n, width) float64 tensor from one row (broadcast) or n rows."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = np.broadcast_to(a, (n, a.shape[0]))
    if a.shape != (n, width):
        raise InputError(f"{name} must have {width} values or ({n}, {width}), got shape {a.shape}")
    return torch.as_tensor(np.array(a, dtype=np.float64, copy=True), device=device)


def _wb_rows(wb, n: int, device) -> torch.Tensor:
    a = np.asarray(wb, dtype=np.float64)
    rows = [check_wb(r) for r in (a if a.ndim == 2 else [a])]
    return _per_image(np.stack(rows) if a.ndim == 2 else rows[0], n, 3, "wb", device)  # one row: every image


def _levels(black_level, white_level, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 4) black and (n, 4) range = white - black, float64."""
    b = np.asarray(black_level, dtype=np.float64)
    if b.ndim == 0:
        b = np.full(4, float(b))
    black = _per_image(b, n, 4, "black_level", device)
    w = np.asarray(white_level, dtype=np.float64)
    if w.ndim > 1 or (w.ndim == 1 and w.shape != (n,)):
        raise InputError(f"white_level must be a number or {n} numbers (one per image), got shape {w.shape}")
    white = torch.as_tensor(np.broadcast_to(w, (n,)).copy(), dtype=torch.float64, device=device)
    if (not bool(torch.isfinite(black).all()) or not bool(torch.isfinite(white).all())
            or bool((black >= white[:, None]).any())):
        raise InputError(f"white_level ({white_level!r}) must be finite and above every black level")
    return black, white[:, None] - black


# ----------------------------------------------------------------------------- CFA maps and shifts


def _maps(pattern: str, h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W) int64 maps: RGB plane (0, 1, 2) and channel (R, Gr, Gb, B = 0..3) of every site."""
    p = check_pattern(pattern)
    ys, xs = torch.arange(h, device=device) & 1, torch.arange(w, device=device) & 1
    pm = torch.as_tensor(rgb_map(p), dtype=torch.int64, device=device)[ys[:, None], xs[None, :]]
    cm = torch.as_tensor(channel_map(p), dtype=torch.int64, device=device)[ys[:, None], xs[None, :]]
    return pm, cm


def _mirror_index(n: int, d: int, device) -> torch.Tensor:
    """``mirror(k + d)`` for k in 0..n-1: whole-sample symmetric extension (SciPy ``mirror``; periodic below 3)."""
    k = torch.arange(n, device=device) + d
    p = 2 * n - 2
    k = torch.remainder(k, p) if p > 0 else torch.zeros_like(k)
    return torch.where(k >= n, p - k, k)


class _Shifter:
    """``s(x, dy, dx)[..., i, j] = x[..., mirror(i + dy), mirror(j + dx)]`` with cached index vectors."""

    def __init__(self, h: int, w: int, device) -> None:
        self.h, self.w, self.device = h, w, device
        self._rows: dict = {}
        self._cols: dict = {}

    def __call__(self, x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        if dy:
            iy = self._rows.get(dy)
            if iy is None:
                iy = self._rows[dy] = _mirror_index(self.h, dy, self.device)
            x = x.index_select(-2, iy)
        if dx:
            ix = self._cols.get(dx)
            if ix is None:
                ix = self._cols[dx] = _mirror_index(self.w, dx, self.device)
            x = x.index_select(-1, ix)
        return x


def _zshift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x[..., i + dy, j + dx]``, zero outside the image (SciPy ``mode="constant"``)."""
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    xp = torch.nn.functional.pad(x, (p, p, p, p))
    return xp[..., p + dy:p + dy + h, p + dx:p + dx + w]


def _site_masks(pattern: str, h: int, w: int, device):
    """Boolean (H, W) masks: green sites, red sites, blue sites, and rows whose R/B sites are red."""
    pm, _ = _maps(pattern, h, w, device)
    green, red, blue = pm == 1, pm == 0, pm == 2
    red_row = red.any(dim=1, keepdim=True).expand(h, w)
    return green, red, blue, red_row


# ----------------------------------------------------------------------------- demosaicing


def _bilinear(x: torch.Tensor, pattern: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = _Shifter(h, w, x.device)
    green, red, blue, red_row = _site_masks(pattern, h, w, x.device)
    L, R, U, D = s(x, 0, -1), s(x, 0, 1), s(x, -1, 0), s(x, 1, 0)
    h2 = 0.5 * (L + R)
    v2 = 0.5 * (U + D)
    a4 = 0.25 * ((U + D) + (L + R))
    d4 = 0.25 * ((s(x, -1, -1) + s(x, -1, 1)) + (s(x, 1, -1) + s(x, 1, 1)))
    r = torch.where(red, x, torch.where(blue, d4, torch.where(red_row, h2, v2)))
    g = torch.where(green, x, a4)
    b = torch.where(blue, x, torch.where(red, d4, torch.where(red_row, v2, h2)))
    return torch.stack([r, g, b], 1)


def _malvar(x: torch.Tensor, pattern: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = _Shifter(h, w, x.device)
    green, red, blue, red_row = _site_masks(pattern, h, w, x.device)
    c = x
    diag = (s(x, -1, -1) + s(x, -1, 1)) + (s(x, 1, -1) + s(x, 1, 1))
    h2 = s(x, 0, -2) + s(x, 0, 2)
    v2 = s(x, -2, 0) + s(x, 2, 0)
    L, R, U, D = s(x, 0, -1), s(x, 0, 1), s(x, -1, 0), s(x, 1, 0)
    # green sites: the row's R/B colour from the horizontal neighbours, the other from the vertical ones
    base = 4.0 * c - diag
    lap_h = (base + (2.0 * c - h2)) + (0.5 * v2 - c)
    lap_v = (base + (2.0 * c - v2)) + (0.5 * h2 - c)
    g_row = (4.0 * (L + R) + lap_h) * 0.125  # the row's R/B colour at a green site
    g_col = (4.0 * (U + D) + lap_v) * 0.125  # the other colour
    # R/B sites
    axial1 = (U + D) + (L + R)
    axial2 = v2 + h2
    lap = 4.0 * c - axial2
    g_rb = (2.0 * axial1 + lap) * 0.125
    o_rb = (2.0 * diag + 1.5 * lap) * 0.125
    r = torch.where(red, c, torch.where(blue, o_rb, torch.where(red_row, g_row, g_col)))
    g = torch.where(green, c, g_rb)
    b = torch.where(blue, c, torch.where(red, o_rb, torch.where(red_row, g_col, g_row)))
    return torch.stack([r, g, b], 1)


def _menon(x: torch.Tensor, pattern: str, refining_step: bool = True) -> torch.Tensor:
    """Menon 2007 as :mod:`isp_sim.demosaic.menon2007` computes it (decision in float64, the rest float32)."""
    h, w = x.shape[-2:]
    s = _Shifter(h, w, x.device)
    green, red, blue, red_row = _site_masks(pattern, h, w, x.device)
    rb = ~green
    x64 = x.double()
    c = x64
    g_h = 0.5 * (s(x64, 0, -1) + s(x64, 0, 1)) + 0.25 * ((c - s(x64, 0, -2)) + (c - s(x64, 0, 2)))
    g_v = 0.5 * (s(x64, -1, 0) + s(x64, 1, 0)) + 0.25 * ((c - s(x64, -2, 0)) + (c - s(x64, 2, 0)))
    zero = torch.zeros((), dtype=torch.float64, device=x.device)
    ch = torch.where(rb, c - g_h, zero)
    cv = torch.where(rb, c - g_v, zero)
    dh = torch.where(rb, (ch - s(ch, 0, 2)).abs(), zero)
    dv = torch.where(rb, (cv - s(cv, 2, 0)).abs(), zero)
    z = _zshift
    d_h = (3.0 * (dh + z(dh, 0, -2)) + ((z(dh, -2, 0) + z(dh, 2, 0)) + (z(dh, -2, -2) + z(dh, 2, -2)))
           + (z(dh, -1, -1) + z(dh, 1, -1)))
    d_v = (3.0 * (dv + z(dv, -2, 0)) + ((z(dv, 0, -2) + z(dv, 0, 2)) + (z(dv, -2, -2) + z(dv, -2, 2)))
           + (z(dv, -1, -1) + z(dv, -1, 1)))
    keep_h = d_v >= d_h
    g1 = (c - torch.where(keep_h, ch, cv)).float()  # green at R/B sites

    def rb_at_green(gr):
        """R and B at green sites from the colour differences of the neighbours (green ``gr`` at R/B sites)."""
        dd = x - gr  # meaningful at R/B sites, which are a green site's four axial neighbours
        row = x + 0.5 * (s(dd, 0, -1) + s(dd, 0, 1))
        col = x + 0.5 * (s(dd, -1, 0) + s(dd, 1, 0))
        return row, col

    row, col = rb_at_green(g1)
    # planes after the first pass: R, G, B (float32)
    R = torch.where(red, x, torch.where(green & red_row, row, torch.where(green, col, x)))
    B = torch.where(blue, x, torch.where(green & ~red_row, row, torch.where(green, col, x)))
    hm = keep_h
    # neighbours along the chosen direction: a (left / up), b (right / down)
    def along(t):
        return torch.where(hm, s(t, 0, -1), s(t, -1, 0)), torch.where(hm, s(t, 0, 1), s(t, 1, 0))

    Ra, Rb = along(R)
    Ba, Bb = along(B)
    a_c, b_c = torch.where(red, Ra, Ba), torch.where(red, Rb, Bb)  # own colour at the green neighbours
    a_o, b_o = torch.where(red, Ba, Ra), torch.where(red, Bb, Rb)
    o_val = x + 0.5 * ((a_o - a_c) + (b_o - b_c))  # the other of R/B at the site
    R = torch.where(blue, o_val, R)
    B = torch.where(red, o_val, B)
    if refining_step:
        xa, xb = along(x)
        third = 1.0 / 3.0
        g3 = x - third * (((a_c - xa) + (x - g1)) + (b_c - xb))
        G = torch.where(green, x, g3)
        row, col = rb_at_green(g3)
        R = torch.where(green & red_row, row, torch.where(green & ~red_row, col, R))
        B = torch.where(green & ~red_row, row, torch.where(green & red_row, col, B))
        Ra, Rb = along(R)
        Ba, Bb = along(B)
        # at an R/B site: other = v + (((other_a - own_a) + (other_s - v)) + (other_b - own_b)) / 3
        oa = torch.where(red, Ba - Ra, Ra - Ba)
        ob = torch.where(red, Bb - Rb, Rb - Bb)
        osite = torch.where(red, B, R)
        refined = x + third * ((oa + (osite - x)) + ob)
        R = torch.where(blue, refined, R)
        B = torch.where(red, refined, B)
    else:
        G = torch.where(green, x, g1)
    return torch.stack([R, G, B], 1)


_DEMOSAIC = {"bilinear": _bilinear, "malvar2004": _malvar, "menon2007": _menon}


@torch.no_grad()
def demosaic(cfa: torch.Tensor, pattern: str = "RGGB", method: str = "menon2007", **kwargs) -> torch.Tensor:
    """Demosaic ``(N, H, W)`` mosaics into ``(N, 3, H, W)`` float32 RGB (units of the input, not clipped).

    Methods and border handling as :func:`isp_sim.demosaic.demosaic` (equal to it within float32 rounding,
    Menon's decision in float64 as there); ``refining_step`` for Menon 2007.
    """
    x = _check_mosaic(cfa, "CFA").to(torch.float32)
    if not isinstance(method, str):
        raise InputTypeError(f"demosaicing method must be a string, got {type(method).__name__}")
    key = DEMOSAIC_ALIASES.get(method.lower(), method.lower())
    if key not in _DEMOSAIC:
        raise InputError(f"unknown demosaicing method {method!r}; valid: {', '.join([*_DEMOSAIC, *DEMOSAIC_ALIASES])}")
    check_pattern(pattern)
    return _DEMOSAIC[key](x, pattern, **kwargs)


# ----------------------------------------------------------------------------- transfer functions


def _decode(v: torch.Tensor, settings: ISPSettings) -> torch.Tensor:
    v = v.clamp(0.0, 1.0)
    if settings.tone_curve:
        v = 0.5 - torch.sin(torch.asin(1.0 - 2.0 * v) / 3.0)
    if settings.transfer == "gamma":
        return v.pow(settings.gamma)
    if settings.transfer == "srgb":
        return torch.where(v <= _SRGB_DECODE_BREAK, v / 12.92, ((v + 0.055) / 1.055).pow(2.4))
    return v


def _encode(v: torch.Tensor, settings: ISPSettings) -> torch.Tensor:
    v = v.clamp(0.0, 1.0)
    if settings.transfer == "gamma":
        v = v.pow(1.0 / settings.gamma)
    elif settings.transfer == "srgb":
        v = torch.where(v <= 0.0031308, 12.92 * v, 1.055 * v.pow(1 / 2.4) - 0.055)
    if settings.tone_curve:
        v = v * v * (3.0 - 2.0 * v)
    return v


def _ccm(settings: ISPSettings, device, inverse: bool):
    m, m_inv, use = settings._ccm_arrays()
    if not use:
        return None
    return torch.as_tensor(m_inv if inverse else m, dtype=torch.float32, device=device)


# ----------------------------------------------------------------------------- the three stages


@torch.no_grad()
def unprocess(img: torch.Tensor, *, pattern: str = "RGGB", wb: Sequence[float] | np.ndarray = (1.0, 1.0, 1.0),
              settings: ISPSettings = D2HNET, black_level: float | Sequence[float] | np.ndarray = 0.0,
              white_level: float | Sequence[float] = 1.0) -> torch.Tensor:
    """sRGB ``(N, 3, H, W)`` -> clean mosaics ``(N, H, W)`` float32 in DN (black included, unclipped).

    ``wb``: gains ``(r, b)`` / ``(r, g, b)`` or one row per image; ``black_level`` a number, 4 numbers or
    ``(N, 4)``; ``white_level`` a number or N numbers.
    """
    x = _check_images(img)
    if not isinstance(settings, ISPSettings):
        raise InputTypeError(f"settings must be an ISPSettings, got {type(settings).__name__}")
    n, _, h, w = x.shape
    g = _wb_rows(wb, n, x.device)
    black, scale = _levels(black_level, white_level, n, x.device)
    return _unprocess(x, check_pattern(pattern), g, settings, black, scale)


def _unprocess(x, pattern, g, settings, black, scale):
    n, _, h, w = x.shape
    lin = _decode(x, settings)
    m_inv = _ccm(settings, x.device, inverse=True)
    if m_inv is not None:
        lin = torch.einsum("pj,njhw->nphw", m_inv, lin)
    pm, cm = _maps(pattern, h, w, x.device)
    v = lin.gather(1, pm.expand(n, 1, h, w)).squeeze(1)
    inv_wb = (1.0 / g).float()  # (n, 3)
    gain = inv_wb[:, pm] * scale.float()[:, cm]
    return v * gain + black.float()[:, cm]


def _param_maps(params: Sequence[NoiseParams], cm: torch.Tensor, name: str, device) -> torch.Tensor:
    vals = torch.as_tensor(np.stack([np.asarray(getattr(p, name), np.float64) for p in params]), device=device)
    return vals[:, cm]  # (n, H, W)


def _tukey_quantile(u: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Tukey lambda quantile in its expm1 form, ``(expm1(lam ln u) - expm1(lam ln(1 - u))) / lam`` (the numba
    engine's, :func:`isp_sim._rng.quantile_table`): no cancellation for tiny ``|lam|``; the logistic at 0."""
    zero = lam == 0
    safe = torch.where(zero, torch.ones_like(lam), lam)
    lu, lv = torch.log(u), torch.log1p(-u)
    q = (torch.expm1(safe * lu) - torch.expm1(safe * lv)) / safe
    return torch.where(zero, lu - lv, q)


@torch.no_grad()
def add_noise(raw_clean: torch.Tensor, params: NoiseParams | Sequence[NoiseParams], pattern: str = "RGGB", *,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Noisy mosaics ``(N, H, W)`` float32 (integer DN, black included, clipped to ``[0, white]``) from clean
    ones, each with its own :class:`~isp_sim.NoiseParams` (one for all, or one per image). Model of
    :func:`isp_sim.add_noise`; the draws come from ``generator``."""
    raw = _check_mosaic(raw_clean, "raw_clean")
    n = raw.shape[0]
    plist = [params] * n if isinstance(params, NoiseParams) else list(params)
    if len(plist) != n or not all(isinstance(p, NoiseParams) for p in plist):
        raise InputTypeError(f"params must be NoiseParams or a list of {n} of them")
    return _add_noise(raw, plist, pattern, generator)


def _add_noise(raw: torch.Tensor, plist: list, pattern: str, generator) -> torch.Tensor:
    """:func:`add_noise` of a checked mosaic batch with one NoiseParams per image (:func:`degrade` calls it on the
    mosaic it has just built, without a second finiteness pass)."""
    n, h, w = raw.shape
    if len({p.read_law for p in plist}) > 1:
        return torch.cat([_add_noise(raw[i:i + 1], plist[i:i + 1], pattern, generator) for i in range(n)])
    _, cm = _maps(pattern, h, w, raw.device)
    dev, f64 = raw.device, torch.float64
    black = _param_maps(plist, cm, "black_level", dev)
    K = _param_maps(plist, cm, "K", dev)
    lam = (raw.to(f64) - black).clamp_min(0.0) / K
    counts = torch.poisson(lam, generator=generator)
    u = torch.rand((n, h, w), generator=generator, device=dev, dtype=f64)
    u = u.clamp(2.0**-53, 1.0 - 2.0**-53)
    if plist[0].read_law == "tukey_lambda":
        read = _param_maps(plist, cm, "read_scale", dev) * _tukey_quantile(u, _param_maps(plist, cm, "read_lambda", dev))
    else:
        read = _param_maps(plist, cm, "read_std", dev) * torch.special.ndtri(u)
    row_std = torch.as_tensor([p.row_std for p in plist], dtype=f64, device=dev)
    rows = torch.randn((n, h), generator=generator, device=dev, dtype=f64) * row_std[:, None]
    d = K * counts + read + rows[:, :, None] + _param_maps(plist, cm, "bias", dev) + black
    white = torch.as_tensor([float(p.white_level) for p in plist], dtype=f64, device=dev)
    d = torch.floor(d + 0.5).clamp_min(0.0)
    return torch.minimum(d, white[:, None, None]).to(torch.float32)


@torch.no_grad()
def process(raw: torch.Tensor, *, pattern: str = "RGGB", wb: Sequence[float] | np.ndarray = (1.0, 1.0, 1.0),
            settings: ISPSettings = D2HNET, black_level: float | Sequence[float] | np.ndarray = 0.0,
            white_level: float | Sequence[float] = 1.0) -> torch.Tensor:
    """Forward ISP: mosaics ``(N, H, W)`` in DN -> sRGB ``(N, 3, H, W)`` float32 in [0, 1] (stages of
    :func:`isp_sim.process`)."""
    r = _check_mosaic(raw)
    if not isinstance(settings, ISPSettings):
        raise InputTypeError(f"settings must be an ISPSettings, got {type(settings).__name__}")
    n = r.shape[0]
    g = _wb_rows(wb, n, r.device)
    black, scale = _levels(black_level, white_level, n, r.device)
    return _process(r, check_pattern(pattern), g, settings, black, scale)


def _process(r, pattern, g, settings, black, scale):
    n, h, w = r.shape
    pm, cm = _maps(pattern, h, w, r.device)
    v = ((r.to(torch.float64) - black[:, cm]) * (1.0 / scale)[:, cm] * g[:, pm]).clamp_max(1.0).float()
    rgb = _DEMOSAIC[settings.demosaic](v, pattern)
    m = _ccm(settings, r.device, inverse=False)
    if m is not None:
        rgb = torch.einsum("pj,njhw->nphw", m, rgb)
    return _encode(rgb, settings)


# ----------------------------------------------------------------------------- degrade


@dataclass
class TorchDegradeResult:
    """``image`` (N, 3, H, W) float32 sRGB, ``raw`` (N, H, W) noisy DN, ``raw_clean`` (N, H, W) clean DN, and the
    :class:`~isp_sim.DegradeParams` of every image (replayable, in distribution, by :func:`isp_sim.degrade`)."""

    image: torch.Tensor
    raw: torch.Tensor
    raw_clean: torch.Tensor
    params: list


def _param_seed(generator: torch.Generator | None) -> int:
    dev = generator.device if generator is not None else "cpu"
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=dev).item())


@torch.no_grad()
def degrade(img: torch.Tensor, profile: NoiseProfile | str | os.PathLike, *,
            iso: float | tuple[float, float] | Sequence[float] | None = None, k: float | None = None,
            wb: Sequence[float] | np.ndarray | None = None,
            generator: torch.Generator | None = None, params: Sequence[DegradeParams] | None = None,
            settings: ISPSettings = D2HNET, wb_range: WBRange = D2HNET_WB_RANGE, read_law: str | None = None,
            extrapolate: bool = False) -> TorchDegradeResult:
    """Degrade a batch ``(N, 3, H, W)`` of clean sRGB images (arguments as :func:`isp_sim.degrade`).

    ``iso``: a number, a ``(low, high)`` range drawn log-uniformly per image, a list of N numbers, or None
    (drawn from the profile); ``wb``: shared gains, one row per image ``(N, 2 or 3)``, or None (drawn from
    ``wb_range``); ``params``: N records to replay (in distribution).
    """
    x = _check_images(img)
    prof = load_profile(profile)
    n = x.shape[0]
    if params is not None:
        plist = list(params)
        if not all(isinstance(p, DegradeParams) for p in plist):
            raise InputTypeError("params must be DegradeParams (one per image)")
        if len(plist) != n:
            raise InputError(f"got {len(plist)} params record(s) for {n} image(s)")
    else:
        if not isinstance(settings, ISPSettings):
            raise InputTypeError(f"settings must be an ISPSettings, got {type(settings).__name__}")
        pattern = check_pattern(prof.sensor.pattern)
        per_iso = list(iso) if isinstance(iso, (list, np.ndarray, torch.Tensor)) else None
        if per_iso is not None and len(per_iso) != n:
            raise InputError(f"iso as a list needs one value per image ({n}), got {len(per_iso)}")
        wbs = None
        if wb is not None:
            a = np.asarray(wb, dtype=np.float64)
            wbs = [tuple(check_wb(r).tolist()) for r in (a if a.ndim == 2 else [a] * n)]
            if len(wbs) != n:
                raise InputError(f"wb rows must be one per image ({n}), got {len(wbs)}")
        root = np.random.SeedSequence(_param_seed(generator))
        plist = []
        for i, ss in enumerate(root.spawn(n)):
            ss_par, ss_noise = ss.spawn(2)
            rng = np.random.default_rng(ss_par)
            it = float(per_iso[i]) if per_iso is not None else iso
            noise = noise_params_for(prof, rng, it, k, read_law, extrapolate)
            gains = wbs[i] if wbs is not None else tuple(sample_wb(rng, wb_range).tolist())
            key = int(ss_noise.generate_state(1, dtype=np.uint64)[0])
            plist.append(DegradeParams(noise=noise, wb=gains, settings=settings, pattern=pattern, noise_key=key,
                                       profile=prof.name, seed=seed_record(ss)))
    groups: dict = {}
    for i, p in enumerate(plist):
        groups.setdefault((p.pattern, p.settings), []).append(i)
    image = torch.empty_like(x)
    raw = torch.empty((n,) + x.shape[2:], dtype=torch.float32, device=x.device)
    clean = torch.empty_like(raw)
    for (pattern, st), idx in groups.items():
        sel = torch.as_tensor(idx, device=x.device)
        ps = [plist[i] for i in idx]
        g = torch.as_tensor(np.array([p.wb for p in ps], dtype=np.float64), device=x.device)
        black = torch.as_tensor(np.stack([p.noise.black_level for p in ps]), dtype=torch.float64, device=x.device)
        white = torch.as_tensor([float(p.noise.white_level) for p in ps], dtype=torch.float64, device=x.device)
        scale = white[:, None] - black
        c = _unprocess(x.index_select(0, sel), pattern, g, st, black, scale)
        r = _add_noise(c, [p.noise for p in ps], pattern, generator)
        image[sel] = _process(r, pattern, g, st, black, scale)
        raw[sel], clean[sel] = r, c
    return TorchDegradeResult(image=image, raw=raw, raw_clean=clean, params=plist)
