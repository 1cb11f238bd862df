"""Physically calibrated sensor noise on a Bayer mosaic (numba kernel).

Per CFA channel ``c``, in DN above black (DESIGN.md):

    D = K_c * Poisson(x_c / K_c) + read_c + row_y + bias_c

then the black level is added, the result rounded to integer DN and clipped
to ``[0, white_level]``. ``read`` follows a Tukey-lambda law (inverse-CDF
sampling, scale ``read_scale``) or a Gaussian (std ``read_std``); ``row_y`` is
one Gaussian offset (std ``row_std``) per physical sensor row, shared by all
channels on that row. Away from the clip points

    Var(D) = K_c * x_c + read_std_c^2 + row_std^2 + 1/12.

A clean signal below the black level (possible after an inverse colour matrix)
gets no shot noise (its Poisson mean is taken as 0); :func:`add_noise` warns
with the count of such pixels.

Randomness is counter-based (:mod:`isp_sim._rng`): same key, same bits,
whatever the numba thread count. Poisson draws are exact (table inversion below
a mean of 64, PTRS above); Tukey-lambda draws use the inverse CDF, tabulated on
u in [1/32, 31/32] (interpolation error < 5e-6 of the scale for shapes in [-0.15, 0.2]) and exact in the
tails.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from numba import njit, prange

from . import _rng
from ._seed import seed_sequence
from .cfa import channel_map, check_pattern, per_channel_image
from .errors import InputError, InputTypeError
from .params import NoiseParams

_LAW_CODES = {"tukey_lambda": 0, "gaussian": 1}


@njit(cache=True, parallel=True)
def _row_offsets(h, row_std, key):
    out = np.zeros(h, dtype=np.float64)
    if row_std > 0.0:
        for y in prange(h):
            out[y] = row_std * _rng.normal(key, np.uint64(y) << np.uint64(2))
    return out


@njit(cache=True, parallel=True)
def _noise_kernel(clean, cmap, black, K, law, lam, lut, scale, gstd, rows, bias, white, key_shot, key_read, out):
    h, w = clean.shape
    shift = np.uint64(_rng.DRAW_BITS)
    fwhite = float(white)
    inv_k = 1.0 / K
    offset = bias + black
    for y in prange(h):
        ry = rows[y]
        c_even = cmap[y & 1, 0]
        c_odd = cmap[y & 1, 1]
        base = np.uint64(y * w)
        for x in range(w):
            c = c_even if (x & 1) == 0 else c_odd
            idx = (base + np.uint64(x)) << shift
            v = float(clean[y, x]) - black[c]
            s = 0.0
            if v > 0.0:
                s = K[c] * _rng.poisson(v * inv_k[c], key_shot, idx)
            if law == 0:
                r = scale[c] * _rng.tukey_lambda_fast(_rng.uniform(key_read, idx), lam[c], lut, c)
            else:
                r = gstd[c] * _rng.normal(key_read, idx)
            d = math.floor(s + r + ry + offset[c] + 0.5)
            out[y, x] = np.uint16(min(max(d, 0.0), fwhite))


@functools.lru_cache(maxsize=64)
def _tukey_luts(lams: tuple) -> np.ndarray:
    return _rng.tukey_lambda_lut(lams)


def noise_keys(key: int) -> tuple[np.uint64, np.uint64, np.uint64]:
    """Derive the shot, read and row sub-keys from one 64-bit noise key."""
    ss = np.random.SeedSequence(int(key))
    k = ss.generate_state(3, dtype=np.uint64)
    return k[0], k[1], k[2]


def key_from_seed(seed) -> int:
    """A 64-bit noise key from an int, a SeedSequence, a Generator or None (fresh entropy)."""
    return int(seed_sequence(seed).generate_state(1, dtype=np.uint64)[0])


def add_noise(raw_clean: np.ndarray, params: NoiseParams, pattern: str = "RGGB", *, seed=None, key: int | None = None) -> np.ndarray:
    """Add sensor noise to a clean Bayer mosaic.

    Parameters
    ----------
    raw_clean : (H, W) float array
        Clean mosaic in DN, black level included (as :func:`isp_sim.unprocess` returns it).
    params : NoiseParams
        Noise parameters; ``params.black_level`` / ``white_level`` define the DN scale.
    pattern : str
        CFA pattern of ``raw_clean`` in reading order ("RGGB", "BGGR", "GRBG", "GBRG").
    seed : int, Generator, SeedSequence or None
        Source of the 64-bit noise key (ignored when ``key`` is given).
    key : int, optional
        The noise key itself (``DegradeResult.params.noise_key``), for exact replay.

    Returns
    -------
    (H, W) uint16 noisy mosaic: black level included, rounded, clipped to [0, white_level].

    Examples
    --------
    >>> from isp_sim import load_profile
    >>> p = load_profile("mi_note10").at_iso(1000)
    >>> raw = add_noise(np.full((4, 4), 164.0, np.float32), p, seed=0)
    >>> raw.dtype, raw.shape
    (dtype('uint16'), (4, 4))
    """
    if not isinstance(params, NoiseParams):
        raise InputTypeError(f"params must be NoiseParams, got {type(params).__name__}")
    if not isinstance(raw_clean, np.ndarray):
        raise InputTypeError(f"raw_clean must be a numpy array, got {type(raw_clean).__name__}")
    if raw_clean.ndim != 2:
        raise InputError(f"raw_clean must be a 2-D Bayer mosaic (H, W), got shape {raw_clean.shape}")
    if not np.issubdtype(raw_clean.dtype, np.floating) and not np.issubdtype(raw_clean.dtype, np.integer):
        raise InputTypeError(f"raw_clean dtype {raw_clean.dtype} not supported; use float or integer DN")
    if not np.all(np.isfinite(raw_clean)):
        raise InputError("raw_clean contains NaN or inf")
    pattern = check_pattern(pattern)
    cmap = channel_map(pattern)
    if float(raw_clean.min()) < float(params.black_level.max()) - 1e-3:
        nb = int(np.count_nonzero(raw_clean < per_channel_image(params.black_level, raw_clean.shape, pattern) - 1e-3))
        if nb:
            warnings.warn(f"add_noise: {nb} pixel(s) of the clean mosaic lie below the black level; "
                          "their shot noise is computed for a zero signal", RuntimeWarning, stacklevel=2)
    if key is None:
        key = key_from_seed(seed)
    src = raw_clean if raw_clean.dtype in (np.float32, np.float64) else raw_clean.astype(np.float64)
    return _add_noise(np.ascontiguousarray(src), params, cmap, key)


def _add_noise(src: np.ndarray, params: NoiseParams, cmap: np.ndarray, key: int) -> np.ndarray:
    """:func:`add_noise` on checked arguments (contiguous float mosaic, 2x2 channel map, int key)."""
    k_shot, k_read, k_row = noise_keys(key)
    rows = _row_offsets(src.shape[0], params.row_std, k_row)
    law = _LAW_CODES[params.read_law]
    lam = np.nan_to_num(params.read_lambda, nan=0.0)
    scale = np.nan_to_num(params.read_scale, nan=0.0)
    out = np.empty(src.shape, dtype=np.uint16)
    lut = _tukey_luts(tuple(lam.tolist())) if law == 0 else np.zeros((4, 2))
    _noise_kernel(src, cmap, params.black_level, params.K, law, lam, lut, scale,
                  params.read_std, rows, params.bias, params.white_level, k_shot, k_read, out)
    return out
