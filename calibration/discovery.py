"""Finding, classifying, grouping and streaming the frames of a capture session.

Layout: ``DIR/dark/**`` and ``DIR/flat/**`` (any depth); without those folders, every
raw file under ``DIR`` is classified by :data:`CLASSIFY_RULE`. Files are read in a
first pass (``--jobs`` threads; rawpy and the numba kernels release the GIL) that keeps
only a small :class:`FrameInfo` per file. Frames of ``dark/`` folders go straight to their ISO's dark statistics
(:class:`DarkScan`) and those of ``flat/`` folders to their pair's tiles (:class:`FlatScan`); the rest (photos,
classified frames, what those cannot hold) wait in a :class:`FrameCache` on disk, from which estimators stream
them a few at a time (:func:`iter_frames`). So each file is decoded once and a session never has to fit in
memory.

Problems are collected as warnings naming the file: unreadable/corrupt/non-raw
files, files without ISO (supply ``iso_from_name``, a regular expression whose
first group is the ISO, e.g. ``r"iso(\\d+)"``), frames of another camera, size,
pattern or levels than the session's majority. Files without a raw suffix are
listed as ignored.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import RawReadError
from ._kernels import frame_summary, plane_lut
from isp_sim.cfa import channel_sites
from .rawio import RawFrame, is_raw_candidate, read_raw

CLASSIFY_RULE = ("per ISO, m0 is the lowest frame level (largest CFA-channel mean above black); a frame is dark "
                 "when m0 is below max(2 DN, 1.5 x the temporal noise s estimated from same-channel neighbour "
                 "differences) and the frame's level is within max(1 DN, 0.25 s) of m0; otherwise it is a photo "
                 "when its scene structure (the green plane's block means, 16 x 16 blocks, less a smooth degree-4 "
                 "surface for lens shading, relative std) exceeds 2%, else a flat")
STRUCTURE_PHOTO = 0.02


def scene_structure(frame: RawFrame, noise: float) -> float:
    """Relative std of the Gr plane's block means around a smooth degree-4 surface (lens shading, a tilted
    target), less what the pixel noise ``noise`` (DN) leaves in a block mean: about 0 for a flat field, far
    above 2% for a photo of a scene."""
    (i, j) = channel_sites(frame.pattern)[1]
    g = np.asarray(frame.data[i::2, j::2], dtype=np.float32)
    n = max(2, min(g.shape) // 16)
    h, w = g.shape[0] // n * n, g.shape[1] // n * n
    if h < 2 * n or w < 2 * n:
        return 0.0
    m = g[:h, :w].reshape(h // n, n, w // n, n).mean(axis=(1, 3)).astype(np.float64) - float(frame.black_level[1])
    level = float(np.mean(m))
    if level <= 0:
        return 0.0
    yy, xx = np.meshgrid(np.linspace(-1, 1, m.shape[0]), np.linspace(-1, 1, m.shape[1]), indexing="ij")
    cols = [yy ** a * xx ** b for a in range(5) for b in range(5 - a)]
    A = np.stack([c.ravel() for c in cols], 1)
    coef, *_ = np.linalg.lstsq(A, m.ravel(), rcond=None)
    resid_var = float(np.var(m.ravel() - A @ coef)) - (2.0 * noise / n) ** 2  # block-mean noise, with margin
    return float(np.sqrt(max(resid_var, 0.0)) / level)


@dataclass
class FrameInfo:
    """Summary of one readable frame (no pixels)."""

    path: str
    kind: str  # "dark", "flat" or "photo" (a frame of a scene: bursts and single photos, calibration.labfree)
    kind_source: str  # "folder" or "classified"
    iso: float
    iso_source: str
    exposure_time: float | None
    camera: str
    shape: tuple
    pattern: str
    black_level: np.ndarray
    white_level: int
    channel_mean: np.ndarray  # (4,) mean above black
    noise_std: float  # neighbour-difference noise estimate (DN)
    saturated_fraction: float
    noise_profile: list | None
    notes: list = field(default_factory=list)
    mtime: float = 0.0
    digest: str = ""  # hash of the pixel data: identical frames (a copied file) share it
    constant: float | None = None  # the value of a frame whose pixels are all equal, else None
    structure: float = 0.0  # scene structure: relative residual of the G plane's block means after a smooth fit

    def key(self) -> tuple:
        return (self.camera, self.shape, self.pattern, self.white_level, tuple(np.round(self.black_level, 3)))


@dataclass
class Session:
    """The usable frames of a session, grouped by ISO, with what was skipped and why."""

    root: Path
    layout: str  # "split" or "mixed"
    frames: list  # FrameInfo used
    darks: dict  # iso -> [FrameInfo]
    flats: dict  # iso -> [FrameInfo]
    photos: dict  # iso -> [FrameInfo], name order
    ignored: list  # non-raw-suffix files
    skipped: list  # (path, reason)
    warnings: list
    classification: list  # (path, kind, mean above black, noise, scene structure) for mixed layouts


def _summary(frame: RawFrame) -> tuple[np.ndarray, float, float, str, float | None, tuple]:
    """(channel means above black, neighbour-difference noise std, saturated fraction, pixel-data digest, the
    constant value of a constant frame or None, the dark statistics' sums: per-row even/odd column sums (H, 2)
    and per-channel sums of squares), from one pass over the pixels (:func:`_kernels.frame_summary`).

    Noise: per channel, on every 4th row of the CFA plane, the std of horizontal same-channel neighbour
    differences / sqrt(2); the median over channels."""
    d = frame.data
    s, sq, n, rowsum, ds, ds2, dn, sat, lo, hi, h = frame_summary(
        np.ascontiguousarray(d), plane_lut(channel_sites(frame.pattern)), int(frame.white_level))
    means = s / np.maximum(n, 1) - np.asarray(frame.black_level, dtype=np.float64)
    noise = [math.sqrt(max(ds2[c] / dn[c] - (ds[c] / dn[c]) ** 2, 0.0)) / math.sqrt(2.0) for c in range(4) if dn[c]]
    digest = f"{int(h):016x}"
    return (means, float(np.median(noise)) if noise else 0.0, float(sat) / d.size, digest,
            float(lo) if lo == hi else None, (rowsum, sq))


class FrameCache:
    """Decoded frames kept on disk (``.npy``, the raw dtype) from the scan to the estimators, so that each raw
    file is decoded by LibRaw once per calibration while memory stays bounded (a frame is loaded back only when
    an estimator needs it; from the page cache that costs ~3 ms per 12 MP frame against ~70 ms to decode).

    A frame is not cached when the folder's free space would drop below ``reserve_bytes``; it is then decoded
    again later (``n_refused`` counts them; the calibration notes it). ``close()`` deletes the folder."""

    def __init__(self, directory: str | os.PathLike | None = None, *, reserve_bytes: int = 1 << 30) -> None:
        import tempfile
        import threading

        self.dir = Path(tempfile.mkdtemp(prefix="calibrate_cache_", dir=directory))
        self.reserve = int(reserve_bytes)
        self._files: dict[str, Path] = {}
        self._lock = threading.Lock()
        self.n_refused = 0

    def put(self, path: str, data: np.ndarray) -> bool:
        import shutil

        with self._lock:
            f = self.dir / f"{len(self._files)}.npy"
            if shutil.disk_usage(self.dir).free - data.nbytes < self.reserve:
                self.n_refused += 1
                return False
            self._files[str(path)] = f
        np.save(f, data)
        return True

    def get(self, path: str) -> np.ndarray | None:
        f = self._files.get(str(path))
        return None if f is None else np.load(f)

    def __contains__(self, path: str) -> bool:
        return str(path) in self._files

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)
        self._files.clear()


class DarkScan:
    """Dark statistics taken during the scan: each frame of a ``dark/`` folder goes to the
    :class:`calibration.estimators.DarkAccumulator` of its ISO and format as it is decoded, so dark frames are
    neither cached nor read again (a dark is the bulk of a session). ``make(pattern, black, shape)`` builds an
    accumulator. Live accumulators hold about 6 bytes per pixel each (their sum and, until the first pairs are
    taken, one frame); beyond ``budget_bytes`` a new ISO's darks go to the frame cache instead (``n_refused``)
    and are accumulated later from there, with the same results."""

    def __init__(self, make: Callable, *, budget_bytes: int = 768 << 20) -> None:
        self.make = make
        self.budget = int(budget_bytes)
        self._used = 0
        self._accs: dict = {}  # (iso, FrameInfo.key()) -> DarkAccumulator
        self._paths: dict = {}  # same keys -> the paths added, in order
        self.n_refused = 0

    def add(self, info: "FrameInfo", data: np.ndarray, sums: tuple) -> bool:
        """Add one dark frame; False when its ISO has no accumulator and the budget allows none."""
        k = (info.iso, info.key())
        acc = self._accs.get(k)
        if acc is None:
            need = 6 * data.size
            if self._used + need > self.budget:
                self.n_refused += 1
                return False
            acc = self._accs[k] = self.make(info.pattern, info.black_level, info.shape)
            self._paths[k] = []
            self._used += need
        acc.add(data, Path(info.path).name, sums)
        self._paths[k].append(str(info.path))
        return True

    def scanned(self, iso: float, key: tuple) -> list[str]:
        """The paths accumulated at this ISO and format, in order."""
        return list(self._paths.get((iso, key), []))

    def take(self, iso: float, key: tuple, paths: list):
        """The accumulator of exactly ``paths`` (in this order) at this ISO and format, released from the scan;
        None when the scan accumulated other frames (some were skipped after the scan, e.g. copies)."""
        k = (iso, key)
        acc = self._accs.pop(k, None)
        got = self._paths.pop(k, None)
        if acc is None or got != [str(p) for p in paths]:
            return None
        return acc


class FlatScan:
    """Flat-pair tile statistics taken during the scan: a frame of a ``flat/`` folder waits in memory for the next
    frame of its ISO, format and exposure time (:func:`pair_flats` pairs them the same way, in name order), and
    the pair's tiles are computed by ``tiles(a, b, info_a, info_b)`` as soon as it is complete, so flats are
    neither cached nor read again. At most ``max_pending`` frames wait; a group that finds no room (or a frame
    without exposure time) goes to the frame cache, with the same results later."""

    def __init__(self, tiles: Callable, *, max_pending: int = 8) -> None:
        self.tiles = tiles
        self.max_pending = int(max_pending)
        self._pending: dict = {}  # group -> (FrameInfo, data)
        self._cached: set = set()  # groups sent to the cache
        self.pairs: dict = {}  # (path_a, path_b) -> PairTiles

    def add(self, info: "FrameInfo", data: np.ndarray) -> bool:
        """Take one flat frame; False: the caller caches it."""
        if info.exposure_time is None:
            return False
        g = (info.iso, info.key(), round(info.exposure_time, 9))
        if g in self._cached:
            return False
        if g in self._pending:
            ia, a = self._pending.pop(g)
            self.pairs[(str(ia.path), str(info.path))] = self.tiles(a, data, ia, info)
            return True
        if len(self._pending) >= self.max_pending:
            self._cached.add(g)
            return False
        self._pending[g] = (info, data)
        return True

    def leftovers(self) -> Iterator[tuple["FrameInfo", np.ndarray]]:
        """The frames still waiting for a partner at the end of the scan (released)."""
        while self._pending:
            _, v = self._pending.popitem()
            yield v


def classify(levels: list[float], noises: list[float], structures: list[float] | None = None) -> list[str]:
    """'dark', 'flat' or 'photo' for frames of one ISO by :data:`CLASSIFY_RULE` (level = largest channel mean
    above black; ``structures`` from :func:`scene_structure`, none: no photos)."""
    if not levels:
        return []
    s = structures if structures is not None else [0.0] * len(levels)
    lit = lambda k: "photo" if s[k] > STRUCTURE_PHOTO else "flat"  # noqa: E731
    j = int(np.argmin(levels))
    m0 = levels[j]
    if m0 >= max(2.0, 1.5 * noises[j]):
        return [lit(k) for k in range(len(levels))]
    return ["dark" if lv - m0 <= max(1.0, 0.25 * n) else lit(k) for k, (lv, n) in enumerate(zip(levels, noises))]


def _iso_from_name(path: str, pattern: str | None) -> float | None:
    if not pattern:
        return None
    m = re.search(pattern, Path(path).name, flags=re.IGNORECASE)
    if not m:
        return None
    try:
        v = float(m.group(1) if m.groups() else m.group(0))
    except ValueError:
        return None
    return v if v > 0 else None


PHOTO_FOLDERS = ("photos", "bursts")


def list_files(root: Path, photos: Path | None = None) -> tuple[list[tuple[Path, str | None]], list[Path], str]:
    """([(file, kind or None)], ignored non-raw files, layout). ``root/dark``, ``root/flat`` and ``root/photos``
    (or ``root/bursts``) name their frames' kind; ``photos``: another folder whose raw files are photos."""
    if not root.is_dir():
        raise RawReadError(f"{root}: not a folder")
    dark, flat = root / "dark", root / "flat"
    out, ignored = [], []
    pdirs = [root / n for n in PHOTO_FOLDERS if (root / n).is_dir()]
    layout = "split" if dark.is_dir() or flat.is_dir() or pdirs else "mixed"

    def walk(d: Path):
        for p in sorted(d.rglob("*")):
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts):
                yield p

    if layout == "split":
        for kind, d in (("dark", dark), ("flat", flat), *(("photo", d) for d in pdirs)):
            if d.is_dir():
                for p in walk(d):
                    (out.append((p, kind)) if is_raw_candidate(p) else ignored.append(p))
        for p in walk(root):
            rel = p.relative_to(root).parts
            if rel[0] not in ("dark", "flat", *PHOTO_FOLDERS) and not (rel[0] == "report" and len(rel) > 1):
                ignored.append(p)  # outside dark/, flat/ and photos/ (listed in the report, raw or not)
    else:
        for p in walk(root):
            (out.append((p, None)) if is_raw_candidate(p) else ignored.append(p))
    if photos is not None:
        seen = {p for p, _ in out}
        for p in sorted(Path(photos).rglob("*")):
            if p.is_file() and p not in seen and is_raw_candidate(p):
                out.append((p, "photo"))
    return out, ignored, layout


def _map_ordered(fn: Callable, items: list, jobs: int) -> Iterator:
    """Apply ``fn`` with ``jobs`` threads, yielding results in order with at most ~2 * jobs in flight."""
    if jobs <= 1:
        for it in items:
            yield fn(it)
        return
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        pending = []
        it = iter(items)
        for x in it:
            pending.append(ex.submit(fn, x))
            if len(pending) >= 2 * jobs:
                break
        while pending:
            f = pending.pop(0)
            try:
                nxt = next(it)
                pending.append(ex.submit(fn, nxt))
            except StopIteration:
                pass
            yield f.result()


def scan(root: str | os.PathLike, *, jobs: int = 1, iso_from_name: str | None = None, progress=None,
         cache: FrameCache | None = None, photos: str | os.PathLike | None = None,
         darks: DarkScan | None = None, flats: FlatScan | None = None) -> Session:
    """First pass over a session folder (module docstring); with a ``cache``, each decoded frame is kept there for
    :func:`iter_frames`; with ``darks`` and ``flats``, the frames of ``dark/`` and ``flat/`` folders go to their
    accumulators instead (in scan order, on this thread)."""
    root = Path(root)
    files, ignored, layout = list_files(root, Path(photos) if photos is not None else None)
    warnings_: list[str] = []
    skipped: list[tuple[str, str]] = []
    infos: list[FrameInfo] = []

    def skip(path: str, reason: str) -> None:
        skipped.append((path, reason))
        warnings_.append(f"skipped {path}: {reason}")

    def one(item):
        p, kind = item
        try:
            fr = read_raw(p)
        except RawReadError as exc:
            return ("error", str(p), str(exc))
        keep = None
        try:
            means, noise, sat, digest, constant, sums = _summary(fr)
            structure = scene_structure(fr, noise) if kind is None else 0.0
            if constant is None and ((darks is not None and kind == "dark") or (flats is not None and kind == "flat")):
                keep = fr.data  # to the dark statistics or flat pairs, in order, by the loop below
            elif cache is not None:
                cache.put(str(p), fr.data)
        finally:
            data_shape = fr.data.shape
            fr.data = None
        return ("ok", fr, kind, means, noise, sat, data_shape, digest, constant, structure, keep, sums)

    bar = progress_bar(progress, len(files), "scan")
    for res in _map_ordered(one, files, jobs):
        bar.update(1)
        if res[0] == "error":
            skipped.append((res[1], res[2]))
            warnings_.append(f"skipped {res[2]}")
            continue
        _, fr, kind, means, noise, sat, shape, digest, constant, structure, keep, sums = res
        iso, src = fr.iso, fr.iso_source
        if iso is None:
            iso = _iso_from_name(fr.path, iso_from_name)
            src = "file name"
        if iso is None:
            reason = ("has no ISO in its metadata (rawpy, EXIF IFD, IFD0)"
                      + (f" and its name does not match {iso_from_name!r}" if iso_from_name else "")
                      + "; supply it with iso_from_name / --iso-from-name REGEX (first group = ISO, e.g. 'iso(\\d+)')")
            skip(fr.path, reason)
            continue
        k, ks = (kind, "folder") if kind else ("?", "classified")
        try:
            mtime = os.path.getmtime(fr.path)
        except OSError:
            mtime = 0.0
        infos.append(FrameInfo(path=fr.path, kind=k, kind_source=ks, iso=float(iso), iso_source=src,
                               exposure_time=fr.exposure_time, camera=fr.camera, shape=tuple(shape), pattern=fr.pattern,
                               black_level=fr.black_level, white_level=fr.white_level, channel_mean=means,
                               noise_std=noise, saturated_fraction=sat, noise_profile=fr.noise_profile,
                               structure=structure,
                               notes=list(fr.notes), mtime=mtime, digest=digest, constant=constant))
        if keep is not None:
            taken = darks.add(infos[-1], keep, sums) if kind == "dark" else flats.add(infos[-1], keep)
            if not taken and cache is not None:
                cache.put(fr.path, keep)
        res = keep = None  # release the frame before the next one is decoded
        for n in fr.notes:
            if "GainMap" in n:
                warnings_.append(f"{fr.path}: {n}")
            if n.startswith("LinearizationTable ("):
                warnings_.append(f"{fr.path}: {n}. The quantisation noise is then not the uniform 1/12 DN^2 of the "
                                 "model: shot-noise estimates hold where the signal's noise is well above the "
                                 f"table's step ({fr.linearization_max_step} DN), and the read noise of ISOs whose "
                                 "dark noise is comparable to the step is approximate")
    bar.close()
    if flats is not None:
        for info, data in flats.leftovers():
            if cache is not None:
                cache.put(info.path, data)
    # consistency: keep the majority camera/size/pattern/levels
    used = infos
    if infos:
        major, _ = Counter(f.key() for f in infos).most_common(1)[0]
        used = []
        for f in infos:
            if f.key() == major:
                used.append(f)
            else:
                diff = []
                names = ("camera", "size", "pattern", "white level", "black level")
                for name, a, b in zip(names, f.key(), major):
                    if a != b:
                        diff.append(f"{name} {a!r} (session: {b!r})")
                skip(f.path, "another camera or format than the session's majority: " + ", ".join(diff))
    # constant frames (stripped test files read as zeros, placeholders): no noise to measure
    for f in used:
        if f.constant is not None:
            skip(f.path, f"every pixel equals {f.constant:g} DN: no image data (a stripped or placeholder file?); "
                         "a constant frame has no noise to measure")
    used = [f for f in used if f.constant is None]
    # duplicated frames (a file copied over others): their differences are zero, so they would fake a
    # noiseless sensor; keep the first of each set (name order) and skip the copies
    first_of: dict[str, str] = {}
    copies: set[str] = set()
    for f in sorted(used, key=lambda f: f.path):
        if f.digest in first_of:
            a, b = _pixels(f.path, cache), _pixels(first_of[f.digest], cache)
            if a is not None and b is not None and not np.array_equal(a, b):
                continue  # a 64-bit hash collision, not a copy
        if f.digest in first_of:
            skip(f.path, f"identical pixel data to {Path(first_of[f.digest]).name} (a copied frame?): counted once")
            copies.add(f.path)
        else:
            first_of[f.digest] = f.path
    used = [f for f in used if f.path not in copies]
    by_iso = defaultdict(list)
    for f in used:
        if f.kind_source == "classified":
            by_iso[f.iso].append(f)
    for fs in by_iso.values():
        for f, k in zip(fs, classify([float(np.max(f.channel_mean)) for f in fs], [f.noise_std for f in fs],
                                     [f.structure for f in fs])):
            f.kind = k
    darks, flats, photo = defaultdict(list), defaultdict(list), defaultdict(list)
    classification = []
    for f in used:
        {"dark": darks, "photo": photo}.get(f.kind, flats)[f.iso].append(f)
        if f.kind == "dark" and np.min(f.channel_mean) < -max(2.0, 3.0 * f.noise_std):
            warnings_.append(f"{f.path}: dark frame {float(np.min(f.channel_mean)):.2f} DN below the black level "
                             f"{f.black_level.tolist()} (more than 3 noise std): the file's black level is probably "
                             "wrong, so bias and the shot-noise origin are off")
        if f.kind_source == "classified":
            classification.append((f.path, f.kind, float(np.max(f.channel_mean)), f.noise_std, f.structure))
    return Session(root=root, layout=layout, frames=used, darks=dict(darks), flats=dict(flats),
                   photos={k: sorted(v, key=lambda f: f.path) for k, v in photo.items()}, ignored=ignored,
                   skipped=skipped, warnings=warnings_, classification=classification)


def _pixels(path: str, cache: FrameCache | None) -> np.ndarray | None:
    """A frame's pixels to confirm a digest match: from the cache, else decoded again (only frames whose digest
    matches another's, i.e. copies); None when the file no longer reads."""
    data = cache.get(path) if cache is not None else None
    if data is None:
        try:
            data = read_raw(path).data
        except RawReadError:
            return None
    return data


def pair_flats(flats: list[FrameInfo]) -> tuple[list[tuple[FrameInfo, FrameInfo]], list[FrameInfo]]:
    """Pair flat frames of one ISO: same exposure time (or, without it, mean level within 3%), in name order.

    Returns (pairs, unpaired frames).
    """
    groups: dict = defaultdict(list)
    no_exp = [f for f in flats if f.exposure_time is None]
    for f in flats:
        if f.exposure_time is not None:
            groups[round(f.exposure_time, 9)].append(f)
    if no_exp:
        no_exp = sorted(no_exp, key=lambda f: float(np.mean(f.channel_mean)))
        cur = [no_exp[0]]
        for f in no_exp[1:]:
            ref = float(np.mean(cur[0].channel_mean))
            if abs(float(np.mean(f.channel_mean)) - ref) <= 0.03 * max(ref, 1.0):
                cur.append(f)
            else:
                groups[("level", len(groups))] = cur
                cur = [f]
        groups[("level", len(groups))] = cur
    pairs, left = [], []
    for key in groups:
        g = sorted(groups[key], key=lambda f: f.path)
        for i in range(0, len(g) - 1, 2):
            pairs.append((g[i], g[i + 1]))
        if len(g) % 2:
            left.append(g[-1])
    pairs.sort(key=lambda pr: float(np.mean(pr[0].channel_mean)))
    return pairs, left


def iter_frames(paths: Iterable[str], *, jobs: int = 1, on_error: Callable[[str, str], None] | None = None,
                bar=None, cache: FrameCache | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Stream (path, data) of the given files in order, from ``cache`` where the scan kept them, else decoding with
    ``jobs`` threads; bad files are reported to ``on_error``."""

    def one(p):
        try:
            data = cache.get(p) if cache is not None else None
            return p, (read_raw(p).data if data is None else data), None
        except RawReadError as exc:
            return p, None, str(exc)

    for p, data, err in _map_ordered(one, list(paths), jobs):
        if bar is not None:
            bar.update(1)
        if err is not None:
            if on_error:
                on_error(p, err)
            continue
        yield p, data


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def progress_bar(progress, total: int, desc: str):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False)
