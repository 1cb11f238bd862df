"""Physically calibrated sensor noise on a Bayer mosaic (numba kernel).

Per CFA channel ``c``, in DN above black (docs/conventions.md):

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
a mean of 256, PTRS above); read noise (Tukey lambda or Gaussian) is the inverse
CDF of one uniform, tabulated over the uniform's floating-point bits
(:func:`isp_sim._rng.quantile_table`: within 4e-7 of the scale for |Q| < 10
standard units, 1e-7 relative beyond, shapes -0.15 .. 0.2).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from numba import njit, prange

from . import _rng
from ._parallel import BLOCKS, ROWS, chunked
from ._seed import SeedLike, seed_sequence
from .cfa import channel_map, check_pattern, per_channel_image
from .errors import InputError, InputTypeError
from .params import NoiseParams


@chunked(ROWS)
@njit(cache=True, parallel=True)
def _row_offsets(h, row_std, key):
    out = np.zeros(h, dtype=np.float64)
    if row_std > 0.0:
        for y in prange(h):
            out[y] = row_std * _rng.normal(key, np.uint64(y) << np.uint64(2))
    return out


_ROWS_PER_TASK = 16
#: the noise kernel's PTRS step runs over the whole row when at least 1 in this many pixels has a large mean
_PTRS_ROW_SHARE = 8


@njit(cache=True, inline="always")
def _list_flagged(flag, idx):
    """``idx[:n]``: the indices ``x`` with ``flag[x] == 1`` (flags 0 or 1), in order; returns ``n``. No branch: every
    index is written, and the count moves on only past a flagged one."""
    n = 0
    for x in range(flag.shape[0]):
        idx[n] = x
        n += flag[x]
    return n


@chunked(BLOCKS)
@njit(cache=True, parallel=True)
def _noise_kernel(clean, cmap, black, K, qtab, qrow, scale, rows, bias, white, key_shot, key_read, out):
    """The noise model of the module docstring, one image row at a time in separate passes.

    Per row: (1) the three uniforms of every pixel (shot: draws 0 and 1, read: draw 0) and the Poisson means, in
    vectorisable loops; (2) Poisson by table inversion (the guide table's answer for every pixel, then a search for
    the 7% listed whose guide cell holds a CDF value) plus the remainder draw (its first three steps for every
    pixel, the rest for the listed few) (means >= TABLE_MAX use the last table, result overwritten in 4); (3) read
    noise by the symmetric quantile table; (4) the pixels with large means by PTRS: its first try inline with the
    uniforms from (1), branch-free over the whole row where at least 1 pixel in ``_PTRS_ROW_SHARE`` has a large
    mean (so that it vectorises; at ISO 800-1000 of mi_note10 a third of the pixels do: degrade 5-8% faster), else
    over the listed pixels; the tries it does not accept are redone in :func:`_rng.poisson` from the same counters;
    (5) sum, round, clip. The passes keep the branchy work off the common path. The values are those of
    ``_rng.poisson`` and the quantile of one uniform per pixel, so the result
    is independent of how rows are split between threads.
    """
    h, w = clean.shape
    shift = np.uint64(_rng.DRAW_BITS)
    fwhite = float(white)
    tmax = _rng.TABLE_MAX
    # per-pixel constants of the two row phases (even / odd rows), so that the row loops stream
    ck = np.empty((2, w))
    cinv = np.empty((2, w))
    cblack = np.empty((2, w))
    cscale = np.empty((2, w))
    coff = np.empty((2, w))
    for py in range(2):
        for x in range(w):
            c = cmap[py, x & 1]
            ck[py, x] = K[c]
            cinv[py, x] = 1.0 / K[c]
            cblack[py, x] = black[c]
            cscale[py, x] = scale[c]
            coff[py, x] = bias[c] + black[c]
    for task in prange((h + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK):
        lam = np.empty(w)
        u_shot = np.empty(w)
        v_shot = np.empty(w)
        s_read = np.empty(w)
        s_bits = s_read.view(np.uint64)
        counts = np.empty(w)
        read = np.empty(w)
        delta = np.empty(w)
        extra = np.empty(w)
        e_idx = np.empty(w, np.int64)
        tidx = np.empty(w, np.int64)
        pend = np.empty(w, np.int64)
        search = np.empty(w, np.int64)
        large = np.empty(w, np.int64)
        for y in range(task * _ROWS_PER_TASK, min(h, (task + 1) * _ROWS_PER_TASK)):
            py = y & 1
            first = np.uint64(y * w)
            _rng.uniform_row(key_shot, first, 0, u_shot)
            _rng.uniform_row(key_shot, first, 1, v_shot)
            _rng.uniform_row(key_read, first, 0, s_read)
            src = clean[y]
            blk = cblack[py]
            inv = cinv[py]
            n_large = 0
            for x in range(w):
                lm = max(float(src[x]) - blk[x], 0.0) * inv[x]
                lam[x] = lm
                n_large += lm >= tmax
            # (2) Poisson(lam0) by the guide table with answers, lam0 = lam rounded down to the table grid: the
            # guide's count for every pixel (two loads, a vectorisable loop), then a search for the pixels whose
            # guide cell holds a CDF value (7%, listed)
            for x in range(w):
                lm = lam[x]
                m = _rng.table_index(lm)
                delta[x] = min(lm - _rng.table_mean(m), 1.0)  # < 1 below TABLE_MAX; clamped for the large ones
                tidx[x] = m  # the guide loads in a loop of their own, so that this one vectorises
            for x in range(w):
                c, more = _rng.guide_lookup(tidx[x], u_shot[x])
                counts[x] = float(c)
                pend[x] = more
            n_pend = _list_flagged(pend, search)
            for j in range(n_pend):
                x = search[j]
                counts[x] = float(_rng.table_search(tidx[x], np.int64(counts[x]), u_shot[x]))
            # ... plus Poisson(delta): the first three steps of its inversion for every pixel (vectorisable),
            # the rest for the few that need more (listed)
            for x in range(w):
                e_idx[x], extra[x] = _rng.exp_parts(delta[x])
            for x in range(w):  # the table load alone: the loops before and after it vectorise
                extra[x] *= _rng.exp_step(e_idx[x])
            for x in range(w):
                extra[x] = _rng.remainder_steps(delta[x], v_shot[x], extra[x])[0]
            for x in range(w):
                counts[x] += extra[x]
            n_pend = 0
            for x in range(w):
                search[n_pend] = x
                n_pend += extra[x] == 3.0
            for j in range(n_pend):
                x = search[j]
                counts[x] += _rng.remainder_draw(delta[x], v_shot[x]) - 3.0
            # (3) read noise: Q(u) = -sign * Q(min(u, 1 - u))
            for x in range(w):
                sign, s = _rng.fold(s_read[x])
                read[x] = sign
                s_read[x] = s
            for par in range(2):
                qt = qtab[qrow[cmap[py, par]]]
                for x in range(par, w, 2):
                    read[x] = -read[x] * _rng.quantile_at_bits(s_bits[x], qt)
            # (4) the large means: PTRS's immediate acceptance of its first try inline, the rest by _rng.poisson
            if n_large * _PTRS_ROW_SHARE >= w:  # many (bright pixels at low ISO): over the whole row, branch-free,
                # so that the loop vectorises (a listed loop gathers: 8.6 ns a pixel); then the rest listed
                for x in range(w):
                    lm = lam[x]
                    a, b, vr = _rng.ptrs_constants(lm)
                    uu = u_shot[x] - 0.5
                    us = 0.5 - abs(uu)
                    ok = (us >= 0.07) & (v_shot[x] <= vr)
                    # the candidate of a try not accepted here is not used: the clamp only keeps its division finite
                    cand = _rng.ptrs_candidate(lm, a, b, uu, max(us, 0.07))
                    big = lm >= tmax
                    counts[x] = cand if big & ok else counts[x]
                    pend[x] = big & (not ok)
                n_slow = _list_flagged(pend, search)
                for j in range(n_slow):
                    x = search[j]
                    counts[x] = _rng.poisson(lam[x], key_shot, (first + np.uint64(x)) << shift)
            elif n_large:
                n_large = 0
                for x in range(w):
                    large[n_large] = x
                    n_large += lam[x] >= tmax
                for j in range(n_large):
                    x = large[j]
                    lm = lam[x]
                    a, b, vr = _rng.ptrs_constants(lm)
                    uu = u_shot[x] - 0.5
                    us = 0.5 - abs(uu)
                    if us >= 0.07 and v_shot[x] <= vr:  # PTRS's immediate acceptance of its first try
                        counts[x] = _rng.ptrs_candidate(lm, a, b, uu, us)
                    else:
                        counts[x] = _rng.poisson(lm, key_shot, (first + np.uint64(x)) << shift)
            # (5) D = K * n + read + row + bias + black, rounded and clipped
            ry = rows[y]
            kk = ck[py]
            sc = cscale[py]
            co = coff[py]
            dst = out[y]
            for x in range(w):
                d = math.floor(kk[x] * counts[x] + sc[x] * read[x] + ry + co[x] + 0.5)
                dst[x] = np.uint16(min(max(d, 0.0), fwhite))


@functools.lru_cache(maxsize=32)
def _quantile_tables(law: str, shapes: tuple) -> tuple[np.ndarray, np.ndarray]:
    """One quantile table per distinct shape, and each channel's row in them."""
    distinct = sorted(set(shapes)) if law == "tukey_lambda" else [0.0]
    tables = np.stack([_rng.quantile_table(law, v) for v in distinct])
    rows = np.array([distinct.index(v) if law == "tukey_lambda" else 0 for v in shapes], dtype=np.int64)
    tables.setflags(write=False)
    return tables, rows


def noise_keys(key: int) -> tuple[np.uint64, np.uint64, np.uint64]:
    """Derive the shot, read and row sub-keys from one 64-bit noise key."""
    ss = np.random.SeedSequence(int(key))
    k = ss.generate_state(3, dtype=np.uint64)
    return k[0], k[1], k[2]


def check_key(key) -> int:
    """A noise key as an int in [0, 2**64), or InputError / InputTypeError naming what is allowed."""
    if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
        raise InputTypeError(f"key must be an integer in [0, 2**64) (a DegradeResult's params.noise_key), got {type(key).__name__}")
    if not 0 <= int(key) < 2**64:
        raise InputError(f"key must be an integer in [0, 2**64) (a DegradeResult's params.noise_key), got {int(key)}")
    return int(key)


def key_from_seed(seed) -> int:
    """A 64-bit noise key from an int, a SeedSequence, a Generator or None (fresh entropy)."""
    return int(seed_sequence(seed).generate_state(1, dtype=np.uint64)[0])


def add_noise(raw_clean: np.ndarray, params: NoiseParams, pattern: str = "RGGB", *, seed: SeedLike = None,
              key: int | None = None) -> np.ndarray:
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
    key = check_key(key)
    src = raw_clean if raw_clean.dtype in (np.float32, np.float64) else raw_clean.astype(np.float64)
    return add_noise_checked(np.ascontiguousarray(src), params, cmap, key)


def add_noise_checked(src: np.ndarray, params: NoiseParams, cmap: np.ndarray, key: int) -> np.ndarray:
    """:func:`add_noise` on checked arguments (contiguous float mosaic, 2x2 channel map, int key)."""
    k_shot, k_read, k_row = noise_keys(key)
    rows = _row_offsets(src.shape[0], params.row_std, k_row)
    if params.read_law == "tukey_lambda":
        tables, qrow = _quantile_tables("tukey_lambda", tuple(float(v) for v in params.read_lambda))
        scale = params.read_scale
    else:
        tables, qrow = _quantile_tables("gaussian", (0.0,) * 4)
        scale = params.read_std
    out = np.empty(src.shape, dtype=np.uint16)
    _noise_kernel(src, cmap, params.black_level, params.K, tables, qrow, np.ascontiguousarray(scale, dtype=np.float64),
                  rows, params.bias, params.white_level, k_shot, k_read, out)
    return out
