"""PSNR/SSIM of a D2HNet model on a validation set made by ``d2hnet make-val``, per split (day / night / all).

Metrics: :mod:`d2hnet.metrics` (PSNR over all channels on [0, 1]; SSIM
Wang et al. 2004, Gaussian 11 / 1.5, averaged over RGB). The restored image
is clipped to [0, 1] before scoring. ``phase=1`` scores DeblurNet alone at
``1/scale`` resolution against the area-downsampled ground truth (what phase
1 trains); ``phase=2`` (default) scores the full pipeline at full resolution
(:func:`d2hnet.infer.restore`, DeblurNet at ``1/scale`` as in training).
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data.dataset import ValDataset
from .metrics import psnr, ssim

__all__ = ["evaluate", "evaluate_inputs", "format_results"]


def _summarise(rows: list[tuple[str, float, float]]) -> dict[str, dict[str, float]]:
    acc: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for split, p, s in rows:
        acc[split].append((p, s))
        if split != "all":
            acc["all"].append((p, s))
    return {k: {"psnr": float(np.mean([a for a, _ in v])), "ssim": float(np.mean([b for _, b in v])), "n": len(v)}
            for k, v in sorted(acc.items())}


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
def evaluate(model, val: ValDataset | str | os.PathLike, *, phase: int = 2, scale: int = 2, device: Any = "cpu",
             amp: str = "auto", tile_size: int = 1024, max_items: int = 0, progress: bool = False
             ) -> dict[str, dict[str, float]]:
    """``{split: {"psnr", "ssim", "n"}}`` of ``model`` (a D2HNet or a checkpoint path) on ``val``."""
    from .infer import _autocast, _as_model, _resolve_device, restore

    dev = _resolve_device(device)
    net = _as_model(model, dev)
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
                with _autocast(dev, amp):
                    out = net.deblurnet(_down(long, scale).to(dev), _down(short, scale).to(dev))
                out = out.float().clamp(0, 1).cpu()
                ref = _down(gt, scale)
            else:
                out = restore(long, short, net, deblur_scale=1.0 / scale, tile_size=tile_size, device=dev, amp=amp)
                ref = gt
            rows.append((split, psnr(out, ref), ssim(out, ref)))
    finally:
        net.train(was)
    return _summarise(rows)


def evaluate_inputs(val: ValDataset | str | os.PathLike, *, max_items: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Scores of the two noisy inputs themselves: ``{"long": {split: ...}, "short": {split: ...}, "best": ...}``.

    ``best`` takes, per image, the better (higher PSNR) of the two inputs.
    """
    rows: dict[str, list] = {"long": [], "short": [], "best": []}
    for _name, split, long, short, gt in _items(val, max_items):
        pl, ps = (psnr(long, gt), ssim(long, gt)), (psnr(short, gt), ssim(short, gt))
        rows["long"].append((split, *pl))
        rows["short"].append((split, *ps))
        rows["best"].append((split, *(pl if pl[0] >= ps[0] else ps)))
    return {k: _summarise(v) for k, v in rows.items()}


def format_results(results: dict[str, dict[str, float]], title: str = "") -> str:
    """A small text table: split, n, PSNR (dB), SSIM."""
    lines = [title] if title else []
    lines.append(f"{'split':<8}{'n':>5}{'PSNR dB':>10}{'SSIM':>9}")
    for split, r in results.items():
        lines.append(f"{split:<8}{r['n']:>5}{r['psnr']:>10.3f}{r['ssim']:>9.4f}")
    return "\n".join(lines)
