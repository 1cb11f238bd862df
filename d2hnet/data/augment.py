"""Training-time augmentations of D2HNet (docs/d2hnet.md, "Data processing", paper Fig. 4).

Each is a function of numpy float32 sRGB images ``(H, W, 3)`` in [0, 1] and a
:class:`numpy.random.Generator`; each returns new arrays (inputs untouched)
and whether it fired, so tests can count how often it fires.

- :func:`illumination_adjust` (IA, p = 0.3): ``u -> max(u, 1e-8) ** g`` for
  the short, long and ground truth alike, ``g`` from ``1/{0.6, 0.7, 0.75, 0.8, 0.9}``
  (darkens the scene; the release never applies it).
- :func:`color_adjust` (CA, p = 0.5, short only, before noise):
  ``s -> clip(a * s + b, 0, 1)``, ``a ~ U(0.3, 0.6)``, ``b ~ U(0.001, 0.01)``.
- :func:`cut_noise` (p = 0.3): a ``size x size`` square (120 in the paper;
  the release used 120x240 by mistake) of the noisy input replaced by the
  ground truth. Phase 2 applies it to DeblurNet's output ``t`` as well.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError

__all__ = ["IA_GAMMAS", "apply_ca", "apply_ia", "color_adjust", "cut_noise", "cut_noise_box", "draw_ca", "draw_ia",
           "illumination_adjust"]

IA_GAMMAS = (1 / 0.6, 1 / 0.7, 1 / 0.75, 1 / 0.8, 1 / 0.9)


def _fires(rng: np.random.Generator, p: float) -> bool:
    # Always draw, so the stream of later draws does not depend on earlier outcomes' branches.
    return bool(rng.random() < p)


def draw_ia(rng: np.random.Generator, p: float = 0.3, gammas: Sequence[float] = IA_GAMMAS) -> tuple[bool, float]:
    """IA's draws: whether it fires (probability ``p``) and its power ``g`` (both always drawn)."""
    fire = _fires(rng, p)
    return fire, float(gammas[int(rng.integers(len(gammas)))])


def apply_ia(u: np.ndarray, g: float) -> np.ndarray:
    """IA's map ``max(u, 1e-8) ** g`` in float32 (elementwise, so it also maps a lookup table of values)."""
    return np.power(np.maximum(u, 1e-8), g, dtype=np.float32)


def illumination_adjust(images: list[np.ndarray], rng: np.random.Generator, p: float = 0.3,
                        gammas: Sequence[float] = IA_GAMMAS) -> tuple[list[np.ndarray], bool]:
    """IA: with probability ``p`` raise every image in ``images`` to the same random power ``g`` from ``gammas``."""
    fire, g = draw_ia(rng, p, gammas)
    if not fire:
        return images, False
    return [apply_ia(u, g) for u in images], True


def draw_ca(rng: np.random.Generator, p: float = 0.5, a_range: tuple[float, float] = (0.3, 0.6),
            b_range: tuple[float, float] = (0.001, 0.01)) -> tuple[bool, float, float]:
    """CA's draws: whether it fires (probability ``p``), its gain ``a`` and offset ``b`` (all always drawn)."""
    fire = _fires(rng, p)
    a = rng.uniform(*a_range)
    b = rng.uniform(*b_range)
    return fire, float(a), float(b)


def apply_ca(s: np.ndarray, a: float, b: float) -> np.ndarray:
    """CA's map ``clip(a * s + b, 0, 1)`` in float32 (elementwise, so it also maps a lookup table of values)."""
    return np.clip(s * np.float32(a) + np.float32(b), 0.0, 1.0).astype(np.float32)


def color_adjust(short: np.ndarray, rng: np.random.Generator, p: float = 0.5,
                 a_range: tuple[float, float] = (0.3, 0.6), b_range: tuple[float, float] = (0.001, 0.01)) -> tuple[np.ndarray, bool]:
    """CA: with probability ``p`` map the (clean) short exposure to ``clip(a * s + b, 0, 1)``."""
    fire, a, b = draw_ca(rng, p, a_range, b_range)
    if not fire:
        return short, False
    return apply_ca(short, a, b), True


def cut_noise_box(rng: np.random.Generator, height: int, width: int, p: float = 0.3,
                  size: int = 120, wide: bool = False) -> tuple[int, int, int, int] | None:
    """Draw a CutNoise box ``(y, x, h, w)`` with probability ``p``, else None.

    Default: a ``size`` square inside the image (clipped to it when larger). ``wide``: the release's box
    (``dataloader/augmentation.py: cutnoise``): the position is drawn as for a square, then ``2 * size`` columns
    are replaced, cut at the image's right edge (``size`` x up to ``2 * size``).
    """
    if size < 1:
        raise InputError(f"cutnoise size must be >= 1, got {size}")
    fire = _fires(rng, p)
    sh, sw = min(size, height), min(size, width)
    y = int(rng.integers(0, height - sh + 1))
    x = int(rng.integers(0, width - sw + 1))
    if not fire:
        return None
    if wide:
        return y, x, sh, min(2 * size, width - x)
    s = min(sh, sw)
    return y, x, s, s


def cut_noise(noisy: np.ndarray, gt: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Replace ``box = (y, x, h, w)`` of ``noisy`` (``(H, W, C)``) by ``gt``."""
    if box is None:
        return noisy
    y, x, h, w = box
    out = noisy.copy()
    out[y:y + h, x:x + w] = gt[y:y + h, x:x + w]
    return out
