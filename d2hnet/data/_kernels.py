"""Memory-speed numba loops of the training-sample pipeline (:mod:`d2hnet.data.dataset`).

Each equals the numpy expression it replaces bit for bit (same float32 operations in the same order);
the tests compare them. Single-threaded: a DataLoader worker runs with one numba thread. The rows are
taken as flat ``(W * C)`` vectors, so the inner loops run over contiguous memory (2-3x faster than
indexing ``[j, k]``).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def crop_lut(arr, y, x, h, w, lut):
    """``lut[arr[y:y+h, x:x+w]]`` as float32 ``(h, w, C)`` for a C-contiguous integer ``(H, W, C)`` ``arr``."""
    c = arr.shape[2]
    flat = arr.reshape(arr.shape[0], arr.shape[1] * c)
    n = w * c
    out = np.empty((h, n), np.float32)
    for i in range(h):
        src = flat[y + i, x * c:x * c + n]
        dst = out[i]
        for q in range(n):
            dst[q] = lut[src[q]]
    return out.reshape(h, w, c)


@njit(cache=True)
def area_down(x, s, scale):
    """The sum of the ``s * s`` strided views of a C-contiguous ``(H, W, C)`` ``x`` times ``scale``, float32.

    Each output adds its inputs in the order of the views (row offset, then column offset), starting from 0.
    """
    h, w, c = x.shape[0] // s, x.shape[1] // s, x.shape[2]
    flat = x.reshape(x.shape[0], x.shape[1] * c)
    out = np.empty((h, w * c), np.float32)
    for i in range(h):
        dst = out[i]
        if s == 2:  # training's x2, spelled out so the loop runs at memory speed
            r0 = flat[2 * i]
            r1 = flat[2 * i + 1]
            for j in range(w):
                b = 2 * c * j
                for k in range(c):
                    v = np.float32(0.0) + r0[b + k]  # from +0.0, as the sum it replaces (-0.0 inputs give +0.0)
                    v += r0[b + c + k]
                    v += r1[b + k]
                    v += r1[b + c + k]
                    dst[j * c + k] = v * scale
            continue
        for j in range(w):
            for k in range(c):
                v = np.float32(0.0)
                for di in range(s):
                    row = flat[i * s + di]
                    for dj in range(s):
                        v += row[(j * s + dj) * c + k]
                dst[j * c + k] = v * scale
    return out.reshape(h, w, c)
