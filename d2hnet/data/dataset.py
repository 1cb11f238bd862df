"""PyTorch datasets: on-the-fly D2HNet training samples, and noisy validation sets made by :func:`make_val`.

Training sample ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``:
its random stream is ``numpy.random.default_rng(SeedSequence([seed, e, i]))``
and every draw (long exposure, crop, IA, CA, ISO, WB, noise, CutNoise)
comes from it in a fixed order. So DataLoader workers, their number and a
resumed run all see exactly the same samples. Call :meth:`TrainDataset.set_epoch`
(the trainer's sampler does) before iterating an epoch.

Processing order (paper Fig. 4): random crop (same position for long,
short, GT) -> IA (long, short, GT) -> CA (short) -> noise
(:func:`~d2hnet.data.noise.degrade_pair`, shared WB) -> phase-specific:

phase 1 (DeblurNet)
    long, short and GT area-downsampled by ``scale`` (1024 -> 512); CutNoise
    on the short input at the network's resolution (a ``cutnoise_size``
    square of the 512 input).
phase 2 (EnhanceNet)
    full-resolution crops (the trainer runs the frozen DeblurNet on their
    ``scale`` downsampled copy) plus ``patches`` positions of
    ``patch x patch`` sub-crops and, per sub-crop, a CutNoise square for the
    short input and one for DeblurNet's output ``t`` (``-1`` rows = not fired).

Items are dicts of float32 CHW tensors ``long``, ``short``, ``gt`` and, in
phase 2, int64 ``patch_yx (P, 2)``, ``cut_short (P, 4)``, ``cut_t (P, 4)`` (boxes ``y, x, h, w``; -1: none);
``fired`` (float32 ``[ia, ca, cut_short, cut_t]``) says which augmentations fired.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

import isp_sim
from isp_sim.imageio import read_image_raw, read_rgb, to_float, write_image

from ..errors import InputError
from .decoded import DecodedCache, crop_to_float
from . import _kernels
from .augment import IA_GAMMAS, apply_ca, apply_ia, cut_noise, cut_noise_box, draw_ca, draw_ia
from .layout import TupleRecord, scan_dataset
from .noise import degrade_pair
from .varmap import BlurPatch

__all__ = ["SampleSettings", "TrainDataset", "ValDataset", "make_val", "area_down", "worker_init_fn",
           "keep_freed_memory"]


@dataclass(frozen=True)
class SampleSettings:
    """How training samples are made (the trainer builds one from the config; defaults = paper)."""

    phase: int = 1
    crop: int = 1024
    scale: int = 2
    patch: int = 256
    patches: int = 2
    long_suffixes: tuple[str, ...] = ("long2", "long4", "long6", "long8")
    ia_p: float = 0.3
    ia_gammas: tuple[float, ...] = IA_GAMMAS
    ca_p: float = 0.5
    ca_a: tuple[float, float] = (0.3, 0.6)
    ca_b: tuple[float, float] = (0.001, 0.01)
    cutnoise_p: float = 0.3
    cutnoise_t_p: float = 0.3
    cutnoise_size: int = 120
    recipe: str = "paper"
    long_iso: tuple[float, float] = (1000.0, 4000.0)
    short_iso: tuple[float, float] = (6400.0, 12800.0)
    iso_ratio: float = 8.0
    wb_r: tuple[float, float] = (1.9, 2.4)
    wb_b: tuple[float, float] = (1.5, 1.9)
    noise: bool = True
    engine: str = "numba"  # "torch": samples stay clean; the training step degrades them on its device


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one numba thread per worker (workers already run in parallel), and freed memory
    kept for reuse (:func:`keep_freed_memory`)."""
    import numba

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    keep_freed_memory()


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for the next allocation instead of returning it to the kernel.

    A sample allocates about 90 MB of fresh arrays (crops, two degradations' outputs, downsampled copies); by
    default glibc maps each large one anew and unmaps it when freed, so every sample pays a page fault and a
    zeroed page per 4 KB: 10,000 faults and 17-20 ms of system time in an 82-90 ms phase-1 sample
    (``benchmarks/bench_d2hnet_data.py``). With allocations below 32 MB served from the heap and up to 256 MB of
    freed heap kept before it is trimmed, the same sample takes 67 ms with 33 faults; a worker holds that much more
    memory at most (its peak heap stays mapped up to the trim threshold). Returns False off Linux or where there
    is no glibc ``mallopt`` (other C libraries): nothing is changed.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))


def area_down(x: np.ndarray, s: int) -> np.ndarray:
    """Area (box) downsampling of ``(H, W, C)`` by the integer ``s`` (H, W multiples of ``s``).

    The sum of the ``s * s`` strided views times ``1 / s**2`` in float32 (equal to a reshaped ``mean``
    within float32 rounding); for float32 input one numba loop (:func:`._kernels.area_down`, same sums in the
    same order, so the same bits as the numpy sum it replaced: 1.5 vs 7-9 ms at 1024x1024).
    """
    if s == 1:
        return x
    scale = np.float32(1.0 / (s * s))
    if x.dtype == np.float32 and x.ndim == 3:
        return _kernels.area_down(np.ascontiguousarray(x), s, scale)
    acc = np.zeros((x.shape[0] // s, x.shape[1] // s) + x.shape[2:], np.float32)
    for i in range(s):
        for j in range(s):
            acc += x[i::s, j::s]
    acc *= scale
    return acc


def _value_table(dtype: np.dtype) -> np.ndarray:
    """:func:`isp_sim.imageio.to_float` of every value of an integer image dtype (uint8 / uint16)."""
    return to_float(np.arange(np.iinfo(dtype).max + 1, dtype=dtype))


def _chw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))


class TrainDataset(Dataset):
    """Training samples from ``records`` (+ VarmapSelection ``blur_patches``), degraded with ``profile``."""

    def __init__(self, records: list[TupleRecord], profile: isp_sim.NoiseProfile, settings: SampleSettings, *, seed: int = 0,
                 blur_patches: list[BlurPatch] | None = None, decoded_cache: DecodedCache | None = None) -> None:
        if not records:
            raise InputError("training dataset is empty (no tuples)")
        s = settings
        if s.phase not in (1, 2):
            raise InputError(f"phase must be 1 or 2, got {s.phase}")
        if s.crop % (4 * s.scale):
            raise InputError(f"crop {s.crop} must be a multiple of 4 x scale = {4 * s.scale}")
        if s.phase == 2 and (s.patch > s.crop or s.patch % 16):
            raise InputError(f"patch {s.patch} must be a multiple of 16 and <= crop {s.crop}")
        self.records = list(records)
        self.profile = profile
        self.s = settings
        self.seed = int(seed)
        self.blur_patches = list(blur_patches or [])
        self.epoch = 0
        self.cache = decoded_cache

    def set_epoch(self, epoch: int) -> None:
        """The epoch :meth:`sample` uses when none is given."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records) + len(self.blur_patches)

    def rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator of item ``index`` in ``epoch``: a pure function of (seed, epoch, index)."""
        e = self.epoch if epoch is None else epoch
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(e), int(index)]))

    def _read(self, path: Path) -> np.ndarray:
        """An image as stored (uint8/uint16 (H, W, 3)): from the decoded cache (memory-mapped) or decoded now."""
        arr = self.cache.get(path) if self.cache is not None else read_image_raw(path)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(f"{path}: image of shape {arr.shape} is not RGB (H, W, 3)")
        return arr

    def _load(self, rec: TupleRecord, suffix: str) -> tuple[np.ndarray, np.ndarray]:
        long = self._read(rec.longs[suffix])
        short = self._read(rec.short)
        if long.shape != short.shape:
            raise InputError(f"tuple {rec.name!r}: long {long.shape} and short {short.shape} differ in size")
        if min(long.shape[:2]) < self.s.crop:
            raise InputError(f"tuple {rec.name!r}: image {long.shape[:2]} is smaller than the crop {self.s.crop}; "
                             "lower the crop size or drop the tuple")
        return long, short

    def _crop_adjust(self, long: np.ndarray, short: np.ndarray, y: int, x: int, rng: np.random.Generator):
        """The crops at ``(y, x)`` as float32, IA on all three, CA on the short: ``long, short, gt, ia, ca``.

        Equal bit for bit to :func:`~.decoded.crop_to_float`, :func:`~.augment.illumination_adjust` and
        :func:`~.augment.color_adjust` in turn (the test suite checks it). For integer images (every PNG) the
        three maps are elementwise, so they are applied to a table of the dtype's values and each crop is one
        gather from it (:func:`._kernels.crop_lut`, 1.1 ms per 1024 crop) instead of a conversion and up to three
        float32 passes (IA's ``pow`` alone 10 ms per crop).
        """
        s, c = self.s, self.s.crop
        ia, g = draw_ia(rng, s.ia_p, s.ia_gammas)
        ca, a, b = draw_ca(rng, s.ca_p, s.ca_a, s.ca_b)
        if long.dtype in (np.uint8, np.uint16) and short.dtype == long.dtype:
            table = _value_table(long.dtype)
            if ia:
                table = apply_ia(table, g)
            long, short = np.ascontiguousarray(long), np.ascontiguousarray(short)  # views of the memory maps
            long = _kernels.crop_lut(long, y, x, c, c, table)
            gt = _kernels.crop_lut(short, y, x, c, c, table)
            short = _kernels.crop_lut(short, y, x, c, c, apply_ca(table, a, b)) if ca else gt
            return long, short, gt, ia, ca
        long, gt = crop_to_float(long, y, x, c, c), crop_to_float(short, y, x, c, c)
        if ia:
            long, gt = apply_ia(long, g), apply_ia(gt, g)
        return long, apply_ca(gt, a, b) if ca else gt, gt, ia, ca

    def sample(self, index: int, epoch: int | None = None) -> dict[str, torch.Tensor]:
        """Item ``index`` of ``epoch`` (default the current one); see the module docstring."""
        s, rng = self.s, self.rng(index, epoch)
        c = s.crop
        if index < len(self.records):
            rec = self.records[index]
            avail = [k for k in rec.longs if k in s.long_suffixes] or sorted(rec.longs)
            suffix = avail[int(rng.integers(len(avail)))]
            long, short = self._load(rec, suffix)
            y = int(rng.integers(0, long.shape[0] - c + 1))
            x = int(rng.integers(0, long.shape[1] - c + 1))
        else:
            bp = self.blur_patches[index - len(self.records)]
            rec = self.records[bp.record]
            long, short = self._load(rec, bp.long)
            y = min(bp.y, long.shape[0] - c)
            x = min(bp.x, long.shape[1] - c)
        long, short, gt, ia, ca = self._crop_adjust(long, short, y, x, rng)
        out: dict[str, torch.Tensor] = {}
        on_device = s.noise and s.engine == "torch"
        if on_device:  # the training step degrades (isp_sim.torch) with parameters drawn from this seed
            out["noise_seed"] = torch.tensor(int(rng.integers(0, 2**62)), dtype=torch.int64)
        elif s.noise:
            long, short, _ = degrade_pair(long, short, self.profile, rng, recipe=s.recipe, long_iso=s.long_iso,
                                          short_iso=s.short_iso, ratio=s.iso_ratio, wb_range=(s.wb_r, s.wb_b))
        wide = s.recipe == "release"
        if s.phase == 1:
            if wide:  # the release pastes its 120 x 240 box on the full-size short frame, before the x2 downsampling
                box = cut_noise_box(rng, short.shape[0], short.shape[1], s.cutnoise_p, s.cutnoise_size, wide=True)
                if not on_device:
                    short = cut_noise(short, gt, box)
            if not on_device:
                long, short, gt = (area_down(a, s.scale) for a in (long, short, gt))
            if not wide:  # the paper's square, at the DeblurNet input
                box = cut_noise_box(rng, c // s.scale, c // s.scale, s.cutnoise_p, s.cutnoise_size)
                if not on_device:
                    short = cut_noise(short, gt, box)
            if on_device:  # applied by the step after degrading (full-size box for release, else downsampled)
                out["cut_box"] = torch.tensor(box if box is not None else (-1, -1, -1, -1), dtype=torch.int64)
            fired = [ia, ca, box is not None, False]
        else:
            yx = np.stack([rng.integers(0, c - s.patch + 1, size=2) for _ in range(s.patches)])
            cut = np.full((s.patches, 2, 4), -1, np.int64)
            for p in range(s.patches):
                for j, prob in enumerate((s.cutnoise_p, s.cutnoise_t_p)):
                    b = cut_noise_box(rng, s.patch, s.patch, prob, s.cutnoise_size, wide=wide)
                    if b is not None:
                        cut[p, j] = b
            out["patch_yx"] = torch.from_numpy(yx.astype(np.int64))
            out["cut_short"] = torch.from_numpy(cut[:, 0].copy())
            out["cut_t"] = torch.from_numpy(cut[:, 1].copy())
            fired = [ia, ca, bool((cut[:, 0, 0] >= 0).any()), bool((cut[:, 1, 0] >= 0).any())]
        out.update(long=_chw(long), short=_chw(short), gt=_chw(gt), fired=torch.tensor(fired, dtype=torch.float32))
        return out

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.sample(index)


# ----------------------------------------------------------------------------- validation sets

_VAL_SUFFIXES = ("long", "short", "gt")


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float RGB resized to ``size = (W, H)`` bilinearly (Pillow, per channel in float32)."""
    from PIL import Image

    if img.shape[1::-1] == size:
        return img
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c]), mode="F").resize(size, Image.BILINEAR))
             for c in range(3)]
    return np.clip(np.stack(chans, -1), 0.0, 1.0).astype(np.float32)


def _name_seed(seed: int, name: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))])


def make_val(src_dir: str | os.PathLike, out_dir: str | os.PathLike, profile: isp_sim.NoiseProfile | str | os.PathLike,
             *, seed: int = 0,
             layout: str = "auto", long_suffix: str = "long8", crop: int | None = None, recipe: str = "paper",
             long_iso: tuple[float, float] = (1000.0, 4000.0), short_iso: tuple[float, float] = (6400.0, 12800.0),
             iso_ratio: float = 8.0, progress: bool = False, resolution: str | None = None) -> Path:
    """Write a deterministic noisy validation set: ``<out>/[<split>/]<name>_{long,short,gt}.png`` + ``manifest.json``.

    Each tuple's noise comes from ``SeedSequence([seed, crc32(name)])``, so
    the same seed and the same source files give the same files, whatever
    the order or subset. ``long_suffix`` picks the long exposure (``long8`` as
    in the paper's validation; the longest available when a tuple lacks it).
    ``crop``: optional centre crop (multiple of 16) for quick validation.
    ``resolution``: ``"1440p"`` or ``"2880p"``, the paper's two validation sets: every frame is first resized to
    2560 x 1440 or 5120 x 2880 (16:9, bilinear, as the release's ``cv2.resize`` of its ground truth), then
    degraded. No IA, CA or CutNoise: noise only. Returns the manifest path.
    """
    from .noise import check_iso_setup

    prof = isp_sim.load_profile(profile)
    check_iso_setup(prof, recipe, long_iso, short_iso, iso_ratio)
    recs = scan_dataset(src_dir, layout)
    if crop is not None and (crop < 16 or crop % 16):
        raise InputError(f"crop must be a multiple of 16, got {crop}")
    sizes = {"1440p": (2560, 1440), "2880p": (5120, 2880)}
    if resolution is not None and resolution not in sizes:
        raise InputError(f"resolution {resolution!r}: use 1440p or 2880p (the paper's validation sets)")
    out = Path(out_dir)
    entries = []
    items = recs
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(recs, desc="make-val", unit="tuple")
    for rec in items:
        lp = rec.longs.get(long_suffix) or rec.long_path()
        long, _ = read_rgb(lp)
        gt, _ = read_rgb(rec.short)
        if resolution is not None:
            long, gt = (_resize(a, sizes[resolution]) for a in (long, gt))
        if crop is not None:
            if min(long.shape[:2]) < crop:
                raise InputError(f"tuple {rec.name!r}: image {long.shape[:2]} smaller than crop {crop}")
            y0, x0 = (long.shape[0] - crop) // 2, (long.shape[1] - crop) // 2
            long, gt = long[y0:y0 + crop, x0:x0 + crop], gt[y0:y0 + crop, x0:x0 + crop]
        rng = np.random.default_rng(_name_seed(seed, rec.name))
        nl, ns, info = degrade_pair(long, gt, prof, rng, recipe=recipe, long_iso=long_iso, short_iso=short_iso,
                                    ratio=iso_ratio)
        name = rec.name.replace("/", "_")
        folder = out / rec.split if rec.split else out
        for suffix, img in zip(_VAL_SUFFIXES, (nl, ns, gt)):
            write_image(folder / f"{name}_{suffix}.png", np.clip(img, 0, 1), 8)
        entries.append({"name": name, "split": rec.split, "source_long": str(lp), "source_short": str(rec.short), **info})
    manifest = out / "manifest.json"
    manifest.write_text(json.dumps({"format": "d2hnet-valset", "version": 1, "profile": prof.name, "seed": int(seed),
                                    "recipe": recipe, "long_suffix": long_suffix, "crop": crop,
                                    "resolution": resolution,
                                    "tuples": entries}, indent=1))
    return manifest


@dataclass
class ValItem:
    name: str
    split: str
    long: Path
    short: Path
    gt: Path


@dataclass
class ValDataset(Dataset):
    """A validation set written by :func:`make_val` (``<name>_long/_short/_gt.png``; ``day``/``night`` subfolders = splits).

    Items: ``(name, split, long, short, gt)`` with float32 ``(H, W, 3)`` numpy images.
    """

    root: Path
    items: list[ValItem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise InputError(f"validation folder {str(self.root)!r} does not exist (make one with `d2hnet make-val`)")
        for gt in sorted(self.root.rglob("*_gt.png")):
            stem = gt.name[: -len("_gt.png")]
            lp, sp = gt.with_name(f"{stem}_long.png"), gt.with_name(f"{stem}_short.png")
            if lp.is_file() and sp.is_file():
                rel = gt.parent.relative_to(self.root).parts
                split = next((p.lower() for p in rel if p.lower() in ("day", "night")), "all")
                self.items.append(ValItem(stem, split, lp, sp, gt))
        if not self.items:
            raise InputError(f"validation folder {str(self.root)!r} holds no <name>_long/_short/_gt.png triples "
                             "(make one with `d2hnet make-val`)")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        return it.name, it.split, read_rgb(it.long)[0], read_rgb(it.short)[0], read_rgb(it.gt)[0]
