"""The trainer's logs: ``train.csv`` and ``val.csv`` per phase, TensorBoard scalars and images when installed."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TrainLog"]


class TrainLog:
    """CSV logs (``train.csv``, ``val.csv``) and, when available, TensorBoard; only on rank 0. A context manager
    (the TensorBoard writer is closed on exit)."""

    def __init__(self, folder: Path, active: bool, tensorboard: bool, resume_step: int | None) -> None:
        self.active, self.folder, self.tb = active, folder, None
        if not active:
            return
        folder.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:  # drop rows logged after the state we resume from
            for name in ("train.csv", "val.csv"):
                p = folder / name
                if p.exists():
                    with p.open(newline="") as f:
                        rows = list(csv.reader(f))
                    keep = rows[:1] + [r for r in rows[1:] if int(r[0]) <= resume_step]
                    with p.open("w", newline="") as f:
                        csv.writer(f).writerows(keep)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(folder / "tb"))
            except ImportError:
                self.tb = None
                print("d2hnet train: TensorBoard is not installed: logging to train.csv / val.csv only "
                      "(pip install 'phonenoise[tensorboard]', or set run.tensorboard = false)", flush=True)

    def _append(self, name: str, header: list[str], row: list[Any]) -> None:
        p = self.folder / name
        new = not p.exists()
        with p.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(header)
            w.writerow(row)

    def train(self, step: int, epoch: int, loss: float, lr: float, elapsed: float) -> None:
        if not self.active:
            return
        self._append("train.csv", ["step", "epoch", "loss", "lr", "elapsed_s"],
                     [step, epoch, f"{loss:.6g}", f"{lr:.3g}", f"{elapsed:.1f}"])
        if self.tb is not None:
            self.tb.add_scalar("train/loss", loss, step)
            self.tb.add_scalar("train/lr", lr, step)

    def val(self, step: int, epoch: int, res: dict[str, dict[str, float]]) -> None:
        if not self.active:
            return
        for split, r in res.items():
            self._append("val.csv", ["step", "epoch", "split", "n", "psnr", "ssim"],
                         [step, epoch + 0, split, r["n"], f"{r['psnr']:.4f}", f"{r['ssim']:.5f}"])
            if self.tb is not None:
                self.tb.add_scalar(f"val_{split}/psnr", r["psnr"], step)
                self.tb.add_scalar(f"val_{split}/ssim", r["ssim"], step)

    def image(self, tag: str, img: np.ndarray, step: int) -> None:
        if self.active and self.tb is not None:
            self.tb.add_image(tag, img, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()

    def __enter__(self) -> "TrainLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
