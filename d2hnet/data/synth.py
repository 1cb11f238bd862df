"""Make D2HNet training tuples without D2-Dataset: from video frames, or from sharp still photos.

Both write D2-Dataset-style files ``<name>_<tuple>_<suffix>.png`` (suffixes
``long2 long4 long6 long8 long_last short``), readable by
:func:`d2hnet.data.layout.scan_dataset`. All four long exposures of a tuple
end on the same frame ``long_last``; a read-out gap follows; ``short`` is the
first frame after the gap (as D2-Dataset was made, docs/d2hnet.md).

From video frames (:func:`synth_from_frames`)
    a folder of consecutive frames (any high frame rate; D2-Dataset used 60
    fps interpolated x16 to ~960 fps). Exposure and gap are given in
    milliseconds and converted with ``fps``; ``long = mean of the frames over
    the exposure`` (in sRGB, as D2-Dataset).

From still photos (:func:`synth_from_stills`)
    a random smooth camera-shake trajectory (a 2-D random walk of the
    velocity with momentum, sub-pixel, rescaled to a random extent up to
    ``max_shake_px`` over the longest exposure) is sampled at ``sim_fps``;
    each frame is the photo translated to that position (bilinear); the
    trajectory continues through the gap, and the short frame gets an extra
    random offset of up to ``short_offset_px`` (camera motion the trajectory
    does not explain). A margin as wide as the largest excursion is cropped
    away so no frame shows invented border pixels.

Randomness: ``seed`` (int) makes every output reproducible; tuple ``i`` of
image ``j`` uses its own stream spawned from ``(seed, j, i)``.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from isp_sim.imageio import read_rgb, write_image

from ..errors import InputError, IspSimError
from .layout import LONG_SUFFIXES, IMAGE_SUFFIXES

__all__ = ["DEFAULT_LONG_MS", "DEFAULT_GAP_MS", "shake_trajectory", "render_tuple_from_still", "synth_from_frames",
           "synth_from_stills", "tuple_from_frames"]

#: Long exposures of D2-Dataset in ms (long2, long4, long6, long8) and the read-out gap.
DEFAULT_LONG_MS = (20.0, 40.0, 60.0, 80.0)
DEFAULT_GAP_MS = 35.0


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _n_frames(ms: float, fps: float) -> int:
    return max(1, int(round(ms * fps / 1000.0)))


def tuple_from_frames(frames: Sequence[np.ndarray], long_frames: Sequence[int], gap_frames: int) -> dict[str, np.ndarray]:
    """Build one tuple from consecutive frames: the longs end on ``frames[max(long_frames) - 1]``.

    ``len(frames)`` must be ``max(long_frames) + gap_frames + 1``. Returns
    ``{"long2": ..., ..., "long_last": ..., "short": ...}`` float32.
    """
    n = max(long_frames)
    if len(frames) != n + gap_frames + 1:
        raise InputError(f"need {n + gap_frames + 1} frames, got {len(frames)}")
    out = {}
    # running sums backwards from the last long frame
    acc = np.zeros_like(frames[0], dtype=np.float64)
    want = {k: s for s, k in zip(LONG_SUFFIXES, long_frames)}
    for j in range(1, n + 1):
        acc += frames[n - j]
        if j in want:
            out[want[j]] = (acc / j).astype(np.float32)
    out["long_last"] = np.asarray(frames[n - 1], np.float32)
    out["short"] = np.asarray(frames[n + gap_frames], np.float32)
    return out


def _write_tuple(out_dir: Path, name: str, tup: dict[str, np.ndarray], bit_depth: int) -> None:
    for suffix, img in tup.items():
        write_image(out_dir / f"{name}_{suffix}.png", np.clip(img, 0.0, 1.0), bit_depth)


def synth_from_frames(frames_dir: str | os.PathLike, out_dir: str | os.PathLike, *, fps: float,
                      long_ms: Sequence[float] = DEFAULT_LONG_MS, gap_ms: float = DEFAULT_GAP_MS,
                      stride: int | None = None, name: str | None = None, bit_depth: int = 8) -> list[str]:
    """Tuples from a folder of consecutive video frames (sorted by natural name order).

    ``fps``: the frames' rate. ``stride``: frames between tuple starts
    (default: one tuple span, so tuples do not share frames). Returns the
    tuple names written.
    """
    src = Path(frames_dir)
    if not src.is_dir():
        raise InputError(f"frames folder {str(src)!r} does not exist")
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    if len(long_ms) != len(LONG_SUFFIXES):
        raise InputError(f"long_ms needs {len(LONG_SUFFIXES)} values (for {LONG_SUFFIXES}), got {list(long_ms)}")
    files = sorted((f for f in src.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    lf = [_n_frames(ms, fps) for ms in long_ms]
    if len(set(lf)) < len(lf):
        raise InputError(f"at {fps} fps the long exposures {list(long_ms)} ms give equal frame counts {lf}; "
                         "use frames of a higher frame rate")
    gap = _n_frames(gap_ms, fps) if gap_ms > 0 else 0
    span = max(lf) + gap + 1
    if len(files) < span:
        raise InputError(f"{src}: {len(files)} frames, but one tuple needs {span} at {fps} fps "
                         f"({max(long_ms)} ms exposure + {gap_ms} ms gap + 1 short frame)")
    stride = span if stride is None else int(stride)
    if stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    out = Path(out_dir)
    name = name or src.name
    written = []
    for k, start in enumerate(range(0, len(files) - span + 1, stride)):
        frames = [read_rgb(f)[0] for f in files[start:start + span]]
        tname = f"{name}_{k:04d}"
        _write_tuple(out, tname, tuple_from_frames(frames, lf, gap), bit_depth)
        written.append(tname)
    return written


def shake_trajectory(rng: np.random.Generator, n: int, extent_px: float, momentum: float = 0.9) -> np.ndarray:
    """A smooth random 2-D camera-shake path ``(n, 2)`` (dy, dx) in pixels, starting at 0.

    Velocity follows an AR(1) random walk with ``momentum``; the path is
    scaled so that its largest distance from the start is ``extent_px``.
    """
    v = np.zeros(2)
    pos = np.zeros((n, 2))
    for i in range(1, n):
        v = momentum * v + rng.normal(size=2)
        pos[i] = pos[i - 1] + v
    r = np.abs(pos).max()
    return pos * (extent_px / r) if r > 0 else pos


def render_tuple_from_still(img: np.ndarray, rng: np.random.Generator, *, max_shake_px: float = 12.0,
                            short_offset_px: float = 3.0, sim_fps: float = 480.0,
                            long_ms: Sequence[float] = DEFAULT_LONG_MS, gap_ms: float = DEFAULT_GAP_MS
                            ) -> dict[str, np.ndarray]:
    """One synthetic tuple from a sharp photo (see the module docstring); outputs are cropped by the margin."""
    lf = [_n_frames(ms, sim_fps) for ms in long_ms]
    gap = _n_frames(gap_ms, sim_fps) if gap_ms > 0 else 0
    n = max(lf) + gap + 1
    extent = rng.uniform(0.1, 1.0) * max_shake_px
    traj = shake_trajectory(rng, n, extent)
    traj[-1] += rng.uniform(-short_offset_px, short_offset_px, size=2)
    margin = int(math.ceil(np.abs(traj).max())) + 1
    h, w = img.shape[:2]
    if h <= 2 * margin + 16 or w <= 2 * margin + 16:
        raise InputError(f"image {img.shape[:2]} too small for a shake of {margin} px; lower max_shake_px")
    x = np.asarray(img, np.float32)
    frames = [_translate_crop(x, dy, dx, margin) for dy, dx in traj]
    return tuple_from_frames(frames, lf, gap)


def _translate_crop(img: np.ndarray, dy: float, dx: float, margin: int) -> np.ndarray:
    """``img`` translated by ``(dy, dx)`` pixels (bilinear), cropped by ``margin`` on every side (``|d| < margin``)."""
    h, w = img.shape[0] - 2 * margin, img.shape[1] - 2 * margin
    py, px = margin - dy, margin - dx
    iy, ix = int(np.floor(py)), int(np.floor(px))
    fy, fx = np.float32(py - iy), np.float32(px - ix)
    rows = (1 - fy) * img[iy:iy + h] + fy * img[iy + 1:iy + 1 + h]
    return (1 - fx) * rows[:, ix:ix + w] + fx * rows[:, ix + 1:ix + 1 + w]


def _still_files(stills: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(stills, (str, os.PathLike)):
        p = Path(stills)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files = [p]
        else:
            raise InputError(f"still images: {str(p)!r} is neither a folder nor a file")
    else:
        files = [Path(f) for f in stills]
        for f in files:
            if not f.is_file():
                raise InputError(f"still image {str(f)!r} does not exist")
    if not files:
        raise InputError(f"no PNG/TIFF images in {stills!s}")
    return files


def synth_from_stills(stills: Sequence[str | os.PathLike | np.ndarray], out_dir: str | os.PathLike, *, tuples_per_image: int = 1, seed: int = 0,
                      max_shake_px: float = 12.0, short_offset_px: float = 3.0, sim_fps: float = 480.0,
                      long_ms: Sequence[float] = DEFAULT_LONG_MS, gap_ms: float = DEFAULT_GAP_MS,
                      bit_depth: int = 8, progress: bool = False, skipped: list[str] | None = None) -> list[str]:
    """Tuples from sharp photos (a folder, one file or a list of files) with random camera shake.

    Returns the tuple names written (``<stem>_<k>``). A photo that cannot be read or is too small
    for the shake is skipped with a warning naming it; pass a list as ``skipped`` to receive
    ``(file, reason)`` for each (without one, a bad photo is an error).
    """
    files = _still_files(stills)
    if tuples_per_image < 1:
        raise InputError(f"tuples_per_image must be >= 1, got {tuples_per_image}")
    out = Path(out_dir)
    jobs = [(j, f, k) for j, f in enumerate(files) for k in range(tuples_per_image)]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="synth", unit="tuple")
    written = []
    cache: dict[int, np.ndarray] = {}
    bad: set[int] = set()
    for j, f, k in jobs:
        if j in bad:
            continue
        try:
            if j not in cache:
                cache.clear()
                cache[j] = read_rgb(f)[0]
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), j, k]))
            tup = render_tuple_from_still(cache[j], rng, max_shake_px=max_shake_px, short_offset_px=short_offset_px,
                                          sim_fps=sim_fps, long_ms=long_ms, gap_ms=gap_ms)
        except IspSimError as exc:
            if skipped is None:
                raise
            bad.add(j)
            skipped.append((str(f), str(exc)))
            warnings.warn(f"skipping {f}: {exc}", stacklevel=2)
            continue
        tname = f"{f.stem.replace('_', '-')}_{k:04d}"
        _write_tuple(out, tname, tup, bit_depth)
        written.append(tname)
    return written
