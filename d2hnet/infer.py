"""Restore real long/short photo pairs at full resolution with a trained D2HNet.

Pipeline (docs/d2hnet.md, "Inference on real photos", with the release's
defects fixed):

1. DeblurNet runs on an area-downsampled copy of the pair that keeps the
   aspect ratio: long side ``deblur_size`` (default 1024, the paper's test
   setting) or every side times ``deblur_scale`` (0.5 as in training and the
   release's validation). Images already smaller are not upsampled. (The
   release squashes every photo to 1024x1024.)
2. Its output ``t`` is clamped to [0, 1] (as in training) and upsampled
   bilinearly (``align_corners=False``) to full resolution once, on the CPU.
3. EnhanceNet runs on ``(long, short, t_up)`` in overlapping tiles
   (default 1024 px, overlap at least ``min(128, tile/4)`` px; tiles evenly
   spaced, the outer ones flush with the image edges) blended with separable raised-cosine ramps
   over the overlap, normalised by the sum of weights: no seams. The release
   pastes tiles without blending. Device memory is bounded by the tile size:
   full-resolution arrays stay on the CPU and one tile at a time goes to the
   device. An image that fits in one tile is restored in one pass.
4. The result is clipped to [0, 1] (``clip=True``).

On CUDA the networks run under autocast (bfloat16 by default); on the CPU in
float32. ``torchvision.ops.deform_conv2d`` computes in float32 under autocast.

Images: float32 ``(H, W, 3)`` sRGB in [0, 1] (uint8/uint16 accepted and
converted as ``v / 255`` / ``v / 65535``); long and short of the same shape.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from isp_sim.imageio import read_rgb, to_float, write_image

from .errors import ImageIOError, InputError, InputTypeError
from .models.pair import D2HNet

__all__ = [
    "DEFAULT_DEBLUR_SIZE",
    "resolve_deblur",
    "DEFAULT_TILE_SIZE",
    "DEFAULT_TILE_OVERLAP",
    "AMP_MODES",
    "reduced_size",
    "tile_starts",
    "blend_ramp",
    "deblur",
    "enhance",
    "restore",
    "restore_files",
    "find_pairs",
    "RestoreOptions",
]

DEFAULT_DEBLUR_SIZE = 1024
DEFAULT_TILE_SIZE = 1024
DEFAULT_TILE_OVERLAP = 128
AMP_MODES = ("auto", "off", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# ----------------------------------------------------------------------------- sizes and tiles


def reduced_size(
    height: int, width: int, deblur_size: int | None = DEFAULT_DEBLUR_SIZE, deblur_scale: float | None = None
) -> tuple[int, int]:
    """Size ``(h, w)`` at which DeblurNet runs, keeping the aspect ratio.

    ``deblur_scale`` (in (0, 1]) wins when given: ``round(H * s), round(W * s)``.
    Otherwise the long side becomes ``deblur_size``: scale
    ``min(1, deblur_size / max(H, W))`` (never upsampled). Sides are at least 1.

    Examples
    --------
    >>> reduced_size(3472, 4624)
    (769, 1024)
    >>> reduced_size(3472, 4624, deblur_scale=0.5)
    (1736, 2312)
    >>> reduced_size(600, 800)
    (600, 800)
    """
    if deblur_scale is not None:
        if not (isinstance(deblur_scale, (int, float)) and 0 < deblur_scale <= 1):
            raise InputError(f"deblur_scale must be a number in (0, 1], got {deblur_scale!r}")
        s = float(deblur_scale)
    else:
        if not (isinstance(deblur_size, int) and not isinstance(deblur_size, bool) and deblur_size >= 4):
            raise InputError(f"deblur_size must be an integer >= 4 (pixels of the long side), got {deblur_size!r}")
        s = min(1.0, deblur_size / max(height, width))
    if s == 1.0:
        return height, width
    return max(1, round(height * s)), max(1, round(width * s))


def describe_deblur(height: int, width: int, deblur_size: int | None = DEFAULT_DEBLUR_SIZE,
                    deblur_scale: float | None = None) -> str:
    """One line saying at which size DeblurNet runs for a ``height`` x ``width`` input (printed by ``restore`` and
    ``validate``, which share this policy and its default: long side ``DEFAULT_DEBLUR_SIZE``)."""
    h, w = reduced_size(height, width, deblur_size, deblur_scale)
    how = f"scale {deblur_scale:g}" if deblur_scale is not None else f"long side {deblur_size} px, never upsampled"
    return f"DeblurNet at {w}x{h} for a {width}x{height} input ({how})"


def resolve_deblur(protocol: str, deblur_size: int | None, deblur_scale: float | None) -> tuple[int | None, float | None]:
    """The DeblurNet resolution: what was asked, else the protocol's default (``standard``: restore's default,
    long side 1024; ``paper``: x0.5, as the release's validation)."""
    if deblur_size is not None or deblur_scale is not None:
        return deblur_size, deblur_scale
    return (None, 0.5) if protocol == "paper" else (DEFAULT_DEBLUR_SIZE, None)


def add_deblur_args(parser) -> None:
    """``--deblur-size`` / ``--deblur-scale`` (mutually exclusive), as ``restore`` and ``validate`` share them."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--deblur-size", type=int, default=None,
                   help=f"long side in px at which DeblurNet runs, aspect ratio kept (default {DEFAULT_DEBLUR_SIZE}; "
                        "validate --protocol paper: scale 0.5)")
    g.add_argument("--deblur-scale", type=float, default=None,
                   help="run DeblurNet at this scale of the input instead, in (0, 1] (0.5 as in training)")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``, neighbours overlapping by >= ``overlap``.

    The fewest tiles that achieve the overlap, spaced evenly: the first starts
    at 0, the last ends at ``length``. One tile at 0 when ``length <= tile``.

    Examples
    --------
    >>> tile_starts(4624, 1024, 128)
    [0, 720, 1440, 2160, 2880, 3600]
    >>> tile_starts(3472, 1024, 128)
    [0, 816, 1632, 2448]
    >>> tile_starts(96, 64, 16)
    [0, 32]
    """
    if length <= tile:
        return [0]
    n = -(-(length - overlap) // (tile - overlap))  # ceil: n tiles overlapping by `overlap` span >= length
    return [(i * (length - tile)) // (n - 1) for i in range(n)]


def blend_ramp(length: int, ramp_before: int, ramp_after: int) -> torch.Tensor:
    """1-D blending weights of one tile: raised-cosine ramps at the ends that overlap a neighbour.

    ``w[i] = (1 - cos(pi * (i + 0.5) / r)) / 2`` for the ``r = ramp_before``
    first samples, mirrored for the ``ramp_after`` last ones, 1 elsewhere.
    All weights are > 0, and two ramps of the same length overlapping exactly
    sum to 1. Returns float32 ``(length,)``.
    """
    w = torch.ones(length, dtype=torch.float64)
    for r, flip in ((ramp_before, False), (ramp_after, True)):
        r = min(r, length)
        if r <= 0:
            continue
        ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(r, dtype=torch.float64) + 0.5) / r)
        if flip:
            w[length - r :] *= ramp.flip(0)
        else:
            w[:r] *= ramp
    return w.float()


def _check_tiling(tile_size: int, tile_overlap: int | None) -> int:
    """Validate the tiling; return the overlap (None -> ``min(DEFAULT_TILE_OVERLAP, tile_size // 4)``)."""
    if not (isinstance(tile_size, int) and not isinstance(tile_size, bool) and tile_size >= 16 and tile_size % 16 == 0):
        raise InputError(f"tile_size must be a multiple of 16 and >= 16, got {tile_size!r}")
    if tile_overlap is None:
        return min(DEFAULT_TILE_OVERLAP, tile_size // 4)
    if not (isinstance(tile_overlap, int) and not isinstance(tile_overlap, bool) and 0 <= tile_overlap <= tile_size // 2):
        raise InputError(f"tile_overlap must be an integer in [0, tile_size/2 = {tile_size // 2}], got {tile_overlap!r}")
    return tile_overlap


# ----------------------------------------------------------------------------- devices and precision


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {str(device)!r} requested but CUDA is not available; use device='cpu'")
    return dev


def autocast_context(device: torch.device, amp: str | None):
    """Autocast context for ``amp`` on ``device``; 'auto' = bf16 on CUDA, off on CPU."""
    amp = "off" if amp is None else amp
    if amp not in AMP_MODES:
        raise InputError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "off"
    if amp == "off":
        return nullcontext()
    if device.type != "cuda":
        raise InputError(f"amp={amp!r} is only supported on CUDA; on {device.type} use amp='off' (or 'auto')")
    return torch.autocast(device_type="cuda", dtype=_AMP_DTYPES[amp])


# ----------------------------------------------------------------------------- input checks


def _as_image(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name}: pass a numpy array (H, W, 3), got a torch.Tensor; use the networks directly for tensors")
    if not isinstance(x, np.ndarray):
        raise InputTypeError(f"{name} must be a numpy array of shape (H, W, 3), got {type(x).__name__}")
    if x.ndim != 3 or x.shape[2] != 3:
        what = " (grayscale)" if x.ndim == 2 or (x.ndim == 3 and x.shape[2] in (1, 2)) else (
            " (RGBA: drop the alpha channel)" if x.ndim == 3 and x.shape[2] == 4 else "")
        raise InputError(f"{name} must have shape (H, W, 3) (RGB), got {x.shape}{what}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"{name} is empty: shape {x.shape}")
    img = to_float(x)
    if not np.all(np.isfinite(img)):
        raise InputError(f"{name} contains NaN or inf")
    lo, hi = float(img.min()), float(img.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name}: float values must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    return img


def _to_batch(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0).float()


# ----------------------------------------------------------------------------- the two stages


@torch.no_grad()
def deblur(
    long: torch.Tensor,
    short: torch.Tensor,
    deblurnet: torch.nn.Module,
    *,
    deblur_size: int | None = DEFAULT_DEBLUR_SIZE,
    deblur_scale: float | None = None,
    device: str | torch.device | None = None,
    amp: str | None = "auto",
    clamp: bool = True,
) -> torch.Tensor:
    """Stage 1: DeblurNet at reduced resolution, upsampled to the input size.

    ``long, short``: CPU ``(1, 3, H, W)`` float32. Area downsampling to
    :func:`reduced_size`, DeblurNet on ``device``, clamp to [0, 1] (``clamp``),
    bilinear upsampling (``align_corners=False``) on the CPU. Returns
    ``t_up``, CPU float32 ``(1, 3, H, W)``.
    """
    dev = resolve_device(device)
    h, w = long.shape[-2:]
    rh, rw = reduced_size(h, w, deblur_size, deblur_scale)
    if (rh, rw) != (h, w):
        long_r = F.interpolate(long, size=(rh, rw), mode="area")
        short_r = F.interpolate(short, size=(rh, rw), mode="area")
    else:
        long_r, short_r = long, short
    with autocast_context(dev, amp):
        t = deblurnet(long_r.to(dev), short_r.to(dev))
    t = t.float().cpu()
    if clamp:
        t = t.clamp_(0.0, 1.0)
    if (rh, rw) != (h, w):
        t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    return t


@torch.no_grad()
def enhance(
    long: torch.Tensor,
    short: torch.Tensor,
    t_up: torch.Tensor,
    enhancenet: torch.nn.Module,
    *,
    tile_size: int = DEFAULT_TILE_SIZE,
    tile_overlap: int | None = None,
    device: str | torch.device | None = None,
    amp: str | None = "auto",
    progress: bool = False,
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Stage 2: EnhanceNet over overlapping, smoothly blended tiles.

    ``long, short, t_up``: CPU ``(1, 3, H, W)`` float32. Returns CPU float32
    ``(1, 3, H, W)``, unclipped. Tiles are ``tile_size`` square (smaller only
    where the image is); EnhanceNet pads each to a multiple of 16. A tqdm bar
    over tiles is shown when ``progress``; ``on_tile(i, n)`` is called after
    each tile.
    """
    tile_overlap = _check_tiling(tile_size, tile_overlap)
    dev = resolve_device(device)
    h, w = long.shape[-2:]
    ys, xs = tile_starts(h, tile_size, tile_overlap), tile_starts(w, tile_size, tile_overlap)
    th, tw = min(tile_size, h), min(tile_size, w)
    tiles = [(y, x) for y in ys for x in xs]
    if len(tiles) == 1:
        with autocast_context(dev, amp):
            out = enhancenet(long.to(dev), short.to(dev), t_up.to(dev))
        if on_tile is not None:
            on_tile(1, 1)
        return out.float().cpu()
    acc = torch.zeros(1, 3, h, w, dtype=torch.float32)
    wsum = torch.zeros(1, 1, h, w, dtype=torch.float32)
    bar = _progress(tiles, progress, "EnhanceNet tiles")
    for i, (y, x) in enumerate(bar):
        wy = blend_ramp(th, tile_overlap if y > 0 else 0, tile_overlap if y + th < h else 0)
        wx = blend_ramp(tw, tile_overlap if x > 0 else 0, tile_overlap if x + tw < w else 0)
        sl = (..., slice(y, y + th), slice(x, x + tw))
        with autocast_context(dev, amp):
            out = enhancenet(long[sl].to(dev), short[sl].to(dev), t_up[sl].to(dev))
        wt = (wy[:, None] * wx[None, :])[None, None]
        acc[sl] += out.float().cpu() * wt
        wsum[sl] += wt
        if on_tile is not None:
            on_tile(i + 1, len(tiles))
    return acc / wsum


def _progress(items: list, enabled: bool, desc: str) -> Any:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="tile", leave=False)


# ----------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class RestoreOptions:
    """Settings of :func:`restore` (see there); the CLI builds one from its flags."""

    deblur_size: int | None = DEFAULT_DEBLUR_SIZE
    deblur_scale: float | None = None
    tile_size: int = DEFAULT_TILE_SIZE
    tile_overlap: int | None = None
    device: str | None = None
    amp: str | None = "auto"
    progress: bool = False


def as_model(model: Any, device: torch.device) -> D2HNet:
    if isinstance(model, (str, os.PathLike)):
        from .checkpoint import load_checkpoint

        return load_checkpoint(model, device=device)
    if not isinstance(model, D2HNet):
        raise InputTypeError(
            f"model must be a d2hnet.models.D2HNet or a checkpoint path, got {type(model).__name__}"
        )
    return model


def restore(
    long: np.ndarray,
    short: np.ndarray,
    model: D2HNet | str | os.PathLike,
    *,
    deblur_size: int | None = DEFAULT_DEBLUR_SIZE,
    deblur_scale: float | None = None,
    tile_size: int = DEFAULT_TILE_SIZE,
    tile_overlap: int | None = None,
    device: str | torch.device | None = None,
    amp: str | None = "auto",
    progress: bool = False,
    clip: bool = True,
    return_deblurred: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Restore one long/short exposure pair at full resolution.

    Parameters
    ----------
    long, short
        ``(H, W, 3)`` sRGB, float in [0, 1] or uint8/uint16; same shape.
        Any size.
    model
        A :class:`~d2hnet.models.D2HNet` or the path of a d2hnet checkpoint.
        A module is moved to ``device`` and used in eval mode (its training
        flag is restored afterwards).
    deblur_size, deblur_scale
        DeblurNet resolution (:func:`reduced_size`): long side in pixels
        (default 1024), or a scale in (0, 1] that wins when given.
    tile_size, tile_overlap
        EnhanceNet tiles (multiple of 16, default 1024) and their overlap
        (<= tile_size/2; default ``min(128, tile_size // 4)``).
    device
        ``"cpu"``, ``"cuda"``, ...; default CUDA when available, else CPU.
    amp
        ``"auto"`` (bfloat16 autocast on CUDA, float32 on CPU), ``"off"``,
        ``"bf16"`` or ``"fp16"`` (CUDA only).
    progress
        Show a tqdm bar over the EnhanceNet tiles.
    clip
        Clip the result to [0, 1] (the networks' outputs are unbounded).
    return_deblurred
        Also return DeblurNet's upsampled output ``t_up``.

    Returns
    -------
    float32 ``(H, W, 3)`` restored image (and ``t_up`` ``(H, W, 3)`` in [0, 1]).
    """
    long_img = _as_image(long, "long")
    short_img = _as_image(short, "short")
    if long_img.shape != short_img.shape:
        raise InputError(
            f"long and short exposures must have the same size, got long {long_img.shape} and short {short_img.shape}"
        )
    dev = resolve_device(device)
    autocast_context(dev, amp)  # validate early
    tile_overlap = _check_tiling(tile_size, tile_overlap)
    reduced_size(long_img.shape[0], long_img.shape[1], deblur_size, deblur_scale)
    net = as_model(model, dev)
    was_training = net.training
    net.to(dev).eval()
    try:
        lt, st = _to_batch(long_img), _to_batch(short_img)
        t_up = deblur(lt, st, net.deblurnet, deblur_size=deblur_size, deblur_scale=deblur_scale, device=dev, amp=amp)
        out = enhance(
            lt, st, t_up, net.enhancenet, tile_size=tile_size, tile_overlap=tile_overlap,
            device=dev, amp=amp, progress=progress,
        )
    finally:
        net.train(was_training)
    if clip:
        out = out.clamp(0.0, 1.0)
    img = out[0].permute(1, 2, 0).contiguous().numpy()
    if return_deblurred:
        return img, t_up[0].permute(1, 2, 0).contiguous().numpy()
    return img


def restore_files(
    long_path: str | os.PathLike,
    short_path: str | os.PathLike,
    out_path: str | os.PathLike,
    model: D2HNet | str | os.PathLike,
    *,
    bit_depth: int | None = None,
    deblurred_path: str | os.PathLike | None = None,
    options: RestoreOptions = RestoreOptions(),
) -> Path:
    """Read a pair of PNG/TIFF files, restore it, write the result; return the path written.

    The output bit depth defaults to the inputs' (16 if either is 16-bit).
    ``deblurred_path``: also write DeblurNet's upsampled output there.
    """
    long_img, bd_l = read_rgb(long_path)
    short_img, bd_s = read_rgb(short_path)
    if long_img.shape != short_img.shape:
        raise InputError(
            f"long {long_path} is {long_img.shape[1]}x{long_img.shape[0]} but short {short_path} is "
            f"{short_img.shape[1]}x{short_img.shape[0]} (W x H); a pair must have the same size"
        )
    bd = bit_depth if bit_depth is not None else max(bd_l, bd_s)
    if bd not in (8, 16):
        raise InputError(f"bit_depth must be 8 or 16, got {bd!r}")
    _check_out_suffix(out_path)
    if deblurred_path is not None:
        _check_out_suffix(deblurred_path)
    res = restore(
        long_img, short_img, model,
        deblur_size=options.deblur_size, deblur_scale=options.deblur_scale,
        tile_size=options.tile_size, tile_overlap=options.tile_overlap,
        device=options.device, amp=options.amp, progress=options.progress,
        return_deblurred=deblurred_path is not None,
    )
    if deblurred_path is not None:
        out, t_up = res
        write_image(deblurred_path, t_up, bit_depth=bd)
    else:
        out = res
    return write_image(out_path, out, bit_depth=bd)


def _check_out_suffix(path: str | os.PathLike) -> None:
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".tif", ".tiff"):
        raise ImageIOError(f"{path}: unsupported output format {suffix!r}; use .png, .tif or .tiff")


_IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def find_pairs(folder: str | os.PathLike, long_suffix: str = "_long", short_suffix: str = "_short") -> list[tuple[str, Path, Path]]:
    """Find ``<name><long_suffix>.<ext>`` / ``<name><short_suffix>.<ext>`` pairs in ``folder``.

    Extensions: .png, .tif, .tiff (any case). Returns ``(name, long, short)``
    sorted by name. Files with only one half of a pair are reported in a
    warning, not dropped silently; no pair at all is an error.
    """
    d = Path(folder)
    if not d.is_dir():
        raise InputError(f"{d}: not a folder")
    if not long_suffix or not short_suffix or long_suffix == short_suffix:
        raise InputError(f"long and short suffixes must be different and non-empty, got {long_suffix!r} and {short_suffix!r}")
    longs: dict[str, Path] = {}
    shorts: dict[str, Path] = {}
    pat = re.compile(rf"^(.*)({re.escape(long_suffix)}|{re.escape(short_suffix)})$")
    for f in sorted(d.iterdir()):
        if not f.is_file() or f.suffix.lower() not in _IMAGE_SUFFIXES:
            continue
        m = pat.match(f.stem)
        if m is None:
            continue
        (longs if m.group(2) == long_suffix else shorts)[m.group(1)] = f
    names = sorted(set(longs) & set(shorts))
    lonely = sorted({p.name for n, p in longs.items() if n not in shorts} | {p.name for n, p in shorts.items() if n not in longs})
    if lonely:
        warnings.warn(f"{d}: {len(lonely)} file(s) without their pair, skipped: {lonely[:10]}", stacklevel=2)
    if not names:
        raise InputError(f"{d}: no <name>{long_suffix}.png / <name>{short_suffix}.png pairs found (.png, .tif, .tiff)")
    return [(n, longs[n], shorts[n]) for n in names]


def iter_folder(
    folder: str | os.PathLike, out_dir: str | os.PathLike, *, long_suffix: str = "_long",
    short_suffix: str = "_short", out_suffix: str = "_restored", out_ext: str = ".png",
) -> Iterator[tuple[str, Path, Path, Path]]:
    """``(name, long, short, output path)`` for every pair of :func:`find_pairs`."""
    out = Path(out_dir)
    for name, lp, sp in find_pairs(folder, long_suffix, short_suffix):
        yield name, lp, sp, out / f"{name}{out_suffix}{out_ext}"
