"""One normalisation of the ``seed`` arguments of isp_sim: int, SeedSequence, Generator or None."""

from __future__ import annotations

from typing import Union

import numpy as _np

#: What every seeded function accepts: an int, a SeedSequence, a Generator, or None (fresh entropy).
SeedLike = Union[int, _np.random.SeedSequence, _np.random.Generator, None]

import numpy as np

from .errors import InputError, InputTypeError


def seed_sequence(seed) -> np.random.SeedSequence:
    """A fresh :class:`numpy.random.SeedSequence` for ``seed`` (never the caller's object: spawning mutates it)."""
    if isinstance(seed, np.random.SeedSequence):
        # a copy: spawning mutates a SeedSequence, and the same seed must give the same result twice
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63, size=4, dtype=np.int64).tolist())
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        if seed is not None and seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed}")
        return np.random.SeedSequence(None if seed is None else int(seed))
    raise InputTypeError(f"seed must be an int, numpy Generator, SeedSequence or None, got {type(seed).__name__}")
