"""The picture of a validation: fixed crops of the validation set through the model, as one PNG grid.

Rows: the first ``n`` validation items (name order), each centre-cropped to ``crop`` px (the same crops at every
validation, so grids of successive epochs compare directly). Columns: long input, short input, DeblurNet's
output (at ``1/scale``, upsampled bilinearly as EnhanceNet receives it), EnhanceNet's output, ground truth; each
output column is titled with its PSNR (standard protocol). Written with matplotlib; the same rows are returned
as an ``(3, H, W)`` array for TensorBoard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

if TYPE_CHECKING:
    from .data.dataset import ValDataset
    from .models.pair import D2HNet

__all__ = ["COLUMNS", "save_image_grid", "validation_grid"]

COLUMNS = ("long", "short", "DeblurNet", "EnhanceNet", "ground truth")


def _centre(img: np.ndarray, crop: int) -> np.ndarray:
    h, w = img.shape[:2]
    c = min(crop, h, w) // 16 * 16
    y, x = (h - c) // 2, (w - c) // 2
    return img[y:y + c, x:x + c]


def save_image_grid(path: str | os.PathLike, cells: list[list[tuple[np.ndarray, str]]], *,
                    row_labels: list[str] | None = None, title: str = "", cell_size: tuple[float, float] = (2.2, 2.4)
                    ) -> Path:
    """A PNG of images in rows (``cells[r][c] = (image in [0, 1], title)``), with optional row labels and a title
    (matplotlib, Agg; written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_cols = max(len(r) for r in cells)
    fig = Figure(figsize=(cell_size[0] * n_cols, cell_size[1] * len(cells) + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(cells), n_cols, squeeze=False)
    for r, row in enumerate(cells):
        for c, (img, label) in enumerate(row):
            ax = axes[r][c]
            ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(label, fontsize=8)
            if c == 0 and row_labels:
                ax.set_ylabel(row_labels[r], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, out)
    return out


@torch.no_grad()
def validation_grid(model: "D2HNet", val: "ValDataset", out_png: str | os.PathLike, *, n: int = 4, crop: int = 256,
                    scale: int = 2, device: str | torch.device = "cpu", title: str = "") -> np.ndarray:
    """Write the grid (module docstring) to ``out_png``; return it as a float32 ``(3, H, W)`` array in [0, 1]."""
    from .metrics import psnr

    dev = torch.device(device)
    was = model.training
    model.eval()
    rows = []
    try:
        for i in range(min(n, len(val))):
            name, _split, long, short, gt = val[i]
            lg, sh, g = (_centre(a, crop) for a in (long, short, gt))
            to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float().to(dev)  # noqa: E731
            lt, st = to_t(lg), to_t(sh)
            t = model.deblurnet(F.avg_pool2d(lt, scale), F.avg_pool2d(st, scale)).float().clamp(0, 1)
            t = F.interpolate(t, size=lt.shape[-2:], mode="bilinear", align_corners=False)
            o = model.enhancenet(lt, st, t).float().clamp(0, 1)
            back = lambda x: x[0].permute(1, 2, 0).cpu().numpy()  # noqa: E731
            rows.append((name, [lg, sh, back(t), back(o), g]))
    finally:
        model.train(was)
    if not rows:
        raise InputError("validation_grid: the validation set is empty")
    cells = [[(img, COLUMNS[c] if c == 4 else f"{COLUMNS[c]}\n{psnr(img, imgs[4]):.2f} dB")
              for c, img in enumerate(imgs)] for _, imgs in rows]
    save_image_grid(out_png, cells, row_labels=[name for name, _ in rows], title=title)
    grid = np.concatenate([np.concatenate(imgs, axis=1) for _, imgs in rows], axis=0)
    return np.ascontiguousarray(np.clip(grid, 0, 1).transpose(2, 0, 1), dtype=np.float32)
