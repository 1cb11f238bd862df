"""Which training checkpoints are kept: the last N epochs, every K-th epoch, and the best by validation PSNR.

Layout under a phase folder (``run.out_dir/phaseP/``)::

    history/state_e0007.pt   full resume state after epoch 7 (weights, Adam, schedule, RNG, elapsed time)
    history/model_e0007.pt   the d2hnet checkpoint of that epoch (what ``restore``/``validate`` read)
    best.pt, best_state.pt   the model and state of the epoch with the highest validation PSNR
    history/index.json       kept epochs, best epoch, its PSNR, split and metric protocol

``state.pt`` beside them is always the latest state (``--resume``); ``--resume-from PATH`` continues from
any kept state. Files are hard-linked when the file system allows it (copied otherwise), so a kept epoch costs
no extra disk until the latest one moves on.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["CheckpointPolicy"]


def _place(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class CheckpointPolicy:
    """Keeps ``keep_last`` most recent epochs, every ``keep_every``-th epoch (0: none) and, with ``keep_best``,
    the best epoch by validation PSNR of ``best_split`` (module docstring). Only rank 0 should call it."""

    def __init__(self, folder: str | os.PathLike, *, keep_last: int = 3, keep_every: int = 0, keep_best: bool = True,
                 best_split: str = "all") -> None:
        self.folder = Path(folder)
        self.hist = self.folder / "history"
        self.keep_last, self.keep_every, self.keep_best, self.best_split = keep_last, keep_every, keep_best, best_split
        self.index: dict[str, Any] = {"epochs": [], "best": None}
        p = self.hist / "index.json"
        if p.exists():
            self.index = json.loads(p.read_text())

    def state_path(self, epoch: int) -> Path:
        """Where epoch ``epoch``'s resume state is kept."""
        return self.hist / f"state_e{epoch:04d}.pt"

    def model_path(self, epoch: int) -> Path:
        """Where epoch ``epoch``'s model checkpoint is kept."""
        return self.hist / f"model_e{epoch:04d}.pt"

    def _write_index(self) -> None:
        self.hist.mkdir(parents=True, exist_ok=True)
        tmp = self.hist / ".index.json.tmp"
        tmp.write_text(json.dumps(self.index, indent=1))
        os.replace(tmp, self.hist / "index.json")

    def _kept(self, eps: list[int]) -> set[int]:
        """The epochs of ``eps`` the policy keeps: the last ``keep_last``, every ``keep_every``-th, the best."""
        keep = set(eps[-self.keep_last:]) if self.keep_last > 0 else set()
        if self.keep_every:
            keep |= {e for e in eps if e % self.keep_every == 0}
        best = (self.index["best"] or {}).get("epoch")
        if best is not None:
            keep.add(best)
        return keep

    def _prune(self, keep: set[int]) -> None:
        """Delete the history files of the recorded epochs not in ``keep`` and record ``keep``."""
        for e in self.index["epochs"]:
            if e not in keep:
                for p in (self.state_path(e), self.model_path(e)):
                    if p.exists():
                        p.unlink()
        self.index["epochs"] = sorted(keep)
        self._write_index()

    def after_epoch(self, epoch: int, state: Path, model: Path) -> None:
        """Record epoch ``epoch``'s state and model files, then drop the epochs the policy no longer keeps. The
        newest epoch stays until :meth:`after_validation` has decided whether it is the best (with
        ``keep_last = 0`` it would otherwise be gone before its validation)."""
        self.hist.mkdir(parents=True, exist_ok=True)
        _place(state, self.state_path(epoch))
        _place(model, self.model_path(epoch))
        self.index["epochs"] = sorted(set(self.index["epochs"]) | {epoch})
        self._prune(self._kept(self.index["epochs"]) | {epoch})

    def after_validation(self, epoch: int, results: dict[str, dict[str, Any]]) -> bool:
        """Make ``epoch`` the best when its PSNR on ``best_split`` beats the best so far (True when it did), then
        drop what the policy no longer keeps (this epoch if it is neither best nor kept, a former best)."""
        better = self._better(epoch, results)
        self._prune(self._kept(self.index["epochs"]))
        return better

    def _better(self, epoch: int, results: dict[str, dict[str, Any]]) -> bool:
        if not self.keep_best or self.best_split not in results:
            return False
        psnr = float(results[self.best_split]["psnr"])
        best = self.index["best"]
        if best is not None and psnr <= best["psnr"]:
            return False
        if not self.model_path(epoch).exists():
            return False
        _place(self.model_path(epoch), self.folder / "best.pt")
        _place(self.state_path(epoch), self.folder / "best_state.pt")
        self.index["best"] = {"epoch": epoch, "psnr": psnr, "split": self.best_split,
                              "protocol": results[self.best_split].get("protocol")}
        return True
