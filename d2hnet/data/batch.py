"""Tensor-side steps of a training batch: CutNoise boxes pasted on a batch, phase-2 patches cut from it.

The dataset draws every box and patch position (:mod:`d2hnet.data.dataset`, a pure function of seed, epoch
and index); these functions apply them to ``(N, 3, H, W)`` tensors on the training device.
"""

from __future__ import annotations

import torch

__all__ = ["paste_boxes", "phase2_patches"]


def paste_boxes(dst: torch.Tensor, src: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """A copy of ``dst`` with each item's box ``(y, x, h, w)`` (rows of ``boxes``, -1: none) taken from ``src``."""
    out = dst.clone()
    for b, (y, x, h, w) in enumerate(boxes.tolist()):
        if y >= 0:
            out[b, :, y:y + h, x:x + w] = src[b, :, y:y + h, x:x + w]
    return out


def phase2_patches(long: torch.Tensor, short: torch.Tensor, gt: torch.Tensor, t: torch.Tensor,
                   patch_yx: torch.Tensor, cut_short: torch.Tensor, cut_t: torch.Tensor, patch: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Phase 2's ``patch x patch`` sub-crops at ``patch_yx (N, P, 2)`` of every tensor, with CutNoise boxes
    ``(N, P, 4)`` (``y, x, h, w`` inside the patch; -1: none) pasted from the ground truth on the short input
    and on DeblurNet's output ``t``; returns ``(long, short, gt, t)`` patches stacked as ``(N * P, 3, patch, patch)``."""
    crops: dict[str, list[torch.Tensor]] = {"long": [], "short": [], "gt": [], "t": []}
    for b in range(long.shape[0]):
        for j in range(patch_yx.shape[1]):
            y, x = int(patch_yx[b, j, 0]), int(patch_yx[b, j, 1])
            sl = (slice(None), slice(y, y + patch), slice(x, x + patch))
            g = gt[b][sl]
            for key, src, cut in (("short", short[b], cut_short[b, j]), ("t", t[b], cut_t[b, j]), ("long", long[b], None)):
                c = src[sl]
                if cut is not None and int(cut[0]) >= 0:
                    cy, cx, ch, cw = (int(v) for v in cut)
                    c = c.clone()
                    c[:, cy:cy + ch, cx:cx + cw] = g[:, cy:cy + ch, cx:cx + cw]
                crops[key].append(c)
            crops["gt"].append(g)
    return tuple(torch.stack(crops[k]) for k in ("long", "short", "gt", "t"))  # type: ignore[return-value]
