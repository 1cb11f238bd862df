"""PSNR/SSIM of a D2HNet model on a validation set made by ``d2hnet make-val``, per split (day / night / all).

Metrics under a named protocol (:mod:`d2hnet.metrics`): ``standard`` (clamped output, Gaussian-11 SSIM,
data range 1) or ``paper`` (what the D2HNet release computed: unclamped output, 7x7 uniform SSIM, data
range 2). ``phase=1`` scores DeblurNet alone at ``1/scale`` resolution against the area-downsampled ground
truth (what phase 1 trains); ``phase=2`` (default) scores the full pipeline at full resolution
(:func:`d2hnet.infer.restore`) with the DeblurNet resolution policy that ``d2hnet restore`` uses (the same
default: long side 1024), or, under the ``paper`` protocol, DeblurNet at x0.5 as the release validated.
Every result records its protocol and the DeblurNet resolution.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data.dataset import ValDataset
from .models.pair import D2HNet
from .infer import resolve_deblur
from .metrics import check_protocol, score

__all__ = ["evaluate", "evaluate_inputs", "format_results", "resolve_deblur", "val_line"]


def _summarise(rows: list[tuple[str, float, float]], **info) -> dict[str, dict[str, Any]]:
    acc: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for split, p, s in rows:
        acc[split].append((p, s))
        if split != "all":
            acc["all"].append((p, s))
    return {k: {"psnr": float(np.mean([a for a, _ in v])), "ssim": float(np.mean([b for _, b in v])), "n": len(v),
                **info} for k, v in sorted(acc.items())}


def _items(val: ValDataset | str | os.PathLike, max_items: int = 0):
    ds = val if isinstance(val, ValDataset) else ValDataset(val)
    n = len(ds) if not max_items else min(max_items, len(ds))
    return (ds[i] for i in range(n))


def _down(img: np.ndarray, scale: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    if scale == 1:
        return t
    h, w = (t.shape[-2] // scale) * scale, (t.shape[-1] // scale) * scale
    return F.avg_pool2d(t[..., :h, :w], scale)


@torch.no_grad()
def evaluate(model: D2HNet | str | os.PathLike, val: ValDataset | str | os.PathLike, *, phase: int = 2, scale: int = 2,
             device: str | torch.device | None = "cpu",
             amp: str = "auto", tile_size: int = 1024, max_items: int = 0, progress: bool = False,
             protocol: str = "standard", deblur_size: int | None = None, deblur_scale: float | None = None
             ) -> dict[str, dict[str, Any]]:
    """``{split: {"psnr", "ssim", "n", "protocol", "deblur"}}`` of ``model`` (a D2HNet or a checkpoint path) on
    ``val`` (module docstring)."""
    from .infer import autocast_context, as_model, resolve_device, describe_deblur, restore

    check_protocol(protocol)
    dsize, dscale = resolve_deblur(protocol, deblur_size, deblur_scale)
    deblur_info = f"x{1 / scale:g} (phase 1)" if phase == 1 else None

    dev = resolve_device(device)
    net = as_model(model, dev)
    was = net.training
    net.to(dev).eval()
    rows = []
    items = _items(val, max_items)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc=f"validate (phase {phase})", unit="img", leave=False)
    try:
        for _name, split, long, short, gt in items:
            if phase == 1:
                with autocast_context(dev, amp):
                    out = net.deblurnet(_down(long, scale).to(dev), _down(short, scale).to(dev))
                out = out.float().cpu()
                ref = _down(gt, scale)
            else:
                out = restore(long, short, net, deblur_size=dsize, deblur_scale=dscale, tile_size=tile_size,
                              device=dev, amp=amp, clip=protocol != "paper")
                ref = gt
                deblur_info = deblur_info or describe_deblur(long.shape[0], long.shape[1], dsize, dscale)
            rows.append((split, *score(out, ref, protocol=protocol)))
    finally:
        net.train(was)
    return _summarise(rows, protocol=protocol, deblur=deblur_info)


def evaluate_inputs(val: ValDataset | str | os.PathLike, *, max_items: int = 0, protocol: str = "standard"
                    ) -> dict[str, dict[str, dict[str, Any]]]:
    """Scores of the two noisy inputs themselves: ``{"long": {split: ...}, "short": {split: ...}, "best": ...}``.

    ``best`` takes, per image, the better (higher PSNR) of the two inputs.
    """
    rows: dict[str, list] = {"long": [], "short": [], "best": []}
    for _name, split, long, short, gt in _items(val, max_items):
        pl, ps = score(long, gt, protocol=protocol), score(short, gt, protocol=protocol)
        rows["long"].append((split, *pl))
        rows["short"].append((split, *ps))
        rows["best"].append((split, *(pl if pl[0] >= ps[0] else ps)))
    return {k: _summarise(v, protocol=protocol) for k, v in rows.items()}


def format_results(results: dict[str, dict[str, float]], title: str = "") -> str:
    """A small text table: split, n, PSNR (dB), SSIM."""
    lines = [title] if title else []
    first = next(iter(results.values()), {})
    if first.get("protocol"):
        lines.append(f"metric protocol: {first['protocol']}" + (f"; {first['deblur']}" if first.get("deblur") else ""))
    lines.append(f"{'split':<8}{'n':>5}{'PSNR dB':>10}{'SSIM':>9}")
    for split, r in results.items():
        lines.append(f"{split:<8}{r['n']:>5}{r['psnr']:>10.3f}{r['ssim']:>9.4f}")
    return "\n".join(lines)


def val_line(results: dict[str, dict[str, Any]], *, epoch: int, step: int) -> str:
    """The one console line per validation: epoch, step, PSNR/SSIM per split, protocol."""
    parts = [f"{k} {r['psnr']:.2f} dB / {r['ssim']:.4f} (n={r['n']})" for k, r in results.items()]
    proto = next(iter(results.values()), {}).get("protocol", "")
    return f"val epoch {epoch} step {step}: " + ", ".join(parts) + (f" [{proto}]" if proto else "")
