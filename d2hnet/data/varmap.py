"""VarmapSelection (paper section 4): find strongly blurred training patches and add more of them.

For a long exposure ``l`` and the sharp frame at the end of its exposure
``l_last``, the *variance map* is

    l_varmap = min(Var_k(l) / Var_k(l_last), 1)

with ``Var_k`` the variance of the luminance (mean of R, G, B) over
non-overlapping ``k x k`` windows (stride ``k``), upsampled nearest. Blur
removes local detail, so a low value means a strongly blurred region.
The paper does not give ``k``; we use **k = 16** by default
(``varmap.window``): large enough for a stable variance, small against the
1024 crops. A tiny ``eps = 1e-6`` is added to both variances so that flat
regions (both ~0) give ~1 ("not blurred"), not 0/0.

Selection: average the map over random ``crop x crop`` squares
(``squares_per_image`` per long exposure, default 1000; positions on the
``k`` grid so the average is exact), take the ``percentile``-th percentile
(5) of all averages over the user's training set as the threshold (the
paper's 182.82 has no stated unit and cannot be reproduced), then draw
``n_extra`` patches among the squares below it (without replacement while
there are enough). Each becomes an extra training sample at that position
and exposure, processed like any other (noise, CA, CutNoise: the release
skipped them for its blur patches).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from isp_sim.imageio import read_rgb

from ..errors import InputError
from .layout import TupleRecord

__all__ = ["DEFAULT_WINDOW", "BlurPatch", "VarmapResult", "variance_map", "varmap_ratio", "varmap_selection"]

DEFAULT_WINDOW = 16
_EPS = 1e-6


@dataclass(frozen=True)
class BlurPatch:
    """An extra training sample: tuple index, long-exposure suffix, top-left corner (pixels)."""

    record: int
    long: str
    y: int
    x: int


@dataclass
class VarmapResult:
    """Threshold, the selected patches and how many squares were scored."""

    threshold: float
    patches: list[BlurPatch]
    window: int
    crop: int
    percentile: float
    n_scored: int

    def to_dict(self) -> dict:
        """The selection as JSON-able data (the threshold and the extra patches); :meth:`from_dict` reads it back."""
        return {"threshold": self.threshold, "window": self.window, "crop": self.crop, "percentile": self.percentile,
                "n_scored": self.n_scored, "patches": [asdict(p) for p in self.patches]}

    @classmethod
    def from_dict(cls, d: dict) -> "VarmapResult":
        return cls(float(d["threshold"]), [BlurPatch(**p) for p in d["patches"]], int(d["window"]), int(d["crop"]),
                   float(d["percentile"]), int(d["n_scored"]))


def variance_map(img: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """Luminance variance over non-overlapping ``window x window`` blocks: ``(H // window, W // window)`` float64."""
    if window < 2:
        raise InputError(f"varmap window must be >= 2, got {window}")
    lum = np.asarray(img, np.float64).mean(axis=-1)
    h, w = (lum.shape[0] // window) * window, (lum.shape[1] // window) * window
    if h == 0 or w == 0:
        raise InputError(f"image {lum.shape} smaller than the varmap window {window}")
    blocks = lum[:h, :w].reshape(h // window, window, w // window, window)
    return blocks.var(axis=(1, 3))


def varmap_ratio(long: np.ndarray, long_last: np.ndarray, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """``min((Var(l) + eps) / (Var(l_last) + eps), 1)`` per block (see the module docstring)."""
    if long.shape != long_last.shape:
        raise InputError(f"long {long.shape} and long_last {long_last.shape} differ in shape")
    return np.minimum((variance_map(long, window) + _EPS) / (variance_map(long_last, window) + _EPS), 1.0)


def _square_means(ratio: np.ndarray, nb: int, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means of ``n`` random ``nb x nb``-block squares of ``ratio``; returns (means, block y, block x)."""
    gh, gw = ratio.shape[0] - nb + 1, ratio.shape[1] - nb + 1
    ii = np.zeros((ratio.shape[0] + 1, ratio.shape[1] + 1))
    ii[1:, 1:] = ratio.cumsum(0).cumsum(1)
    by = rng.integers(0, gh, size=n)
    bx = rng.integers(0, gw, size=n)
    s = ii[by + nb, bx + nb] - ii[by, bx + nb] - ii[by + nb, bx] + ii[by, bx]
    return s / (nb * nb), by, bx


def varmap_selection(records: list[TupleRecord], *, crop: int, n_extra: int, window: int = DEFAULT_WINDOW,
                     percentile: float = 5.0, squares_per_image: int = 1000,
                     seed: int | np.random.Generator = 0, progress: bool = False) -> VarmapResult:
    """Score random squares of every (tuple, long exposure) that has a ``long_last``; pick ``n_extra`` blurred ones.

    Tuples without ``long_last`` are not scored (a warning counts them); if no
    tuple has one, this is an error naming the fix.
    """
    import warnings

    if not 0 < percentile < 100:
        raise InputError(f"varmap percentile must lie in (0, 100), got {percentile}")
    rng = np.random.default_rng(seed)
    usable = [i for i, r in enumerate(records) if r.long_last is not None]
    if not usable:
        raise InputError("VarmapSelection needs long_last frames, and no training tuple has one; "
                         "set varmap.enabled = false or add <name>_long_last.png files")
    if len(usable) < len(records):
        warnings.warn(f"VarmapSelection: {len(records) - len(usable)} tuple(s) without long_last are not scored",
                      stacklevel=2)
    nb = max(1, crop // window)
    scores, cands = [], []
    items = [(i, s) for i in usable for s in sorted(records[i].longs)]
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="VarmapSelection", unit="img")
    for i, suffix in items:
        rec = records[i]
        last, _ = read_rgb(rec.long_last)
        long, _ = read_rgb(rec.longs[suffix])
        ratio = varmap_ratio(long, last, window)
        if ratio.shape[0] < nb or ratio.shape[1] < nb:
            raise InputError(f"{rec.longs[suffix]}: image {long.shape[:2]} smaller than the crop {crop}")
        m, by, bx = _square_means(ratio, nb, rng, squares_per_image)
        scores.append(m)
        cands.append(np.stack([np.full_like(by, i), np.full_like(by, sorted(records[i].longs).index(suffix)),
                               by * window, bx * window], axis=1))
    allm = np.concatenate(scores)
    allc = np.concatenate(cands)
    thr = float(np.percentile(allm, percentile))
    below = np.flatnonzero(allm <= thr)
    if n_extra > 0:
        pick = rng.choice(below, size=n_extra, replace=n_extra > len(below))
    else:
        pick = np.zeros(0, np.int64)
    patches = [BlurPatch(int(allc[j, 0]), sorted(records[int(allc[j, 0])].longs)[int(allc[j, 1])],
                         int(allc[j, 2]), int(allc[j, 3])) for j in pick]
    return VarmapResult(thr, patches, window, crop, percentile, int(len(allm)))


def save_varmap(result: VarmapResult, path: str | os.PathLike) -> None:
    """Write the selection as JSON (the trainer keeps it in the run folder so a resumed run reuses it)."""
    import json

    from pathlib import Path

    Path(path).write_text(json.dumps(result.to_dict()))
