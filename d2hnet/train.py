"""Two-phase D2HNet training with ``isp_sim`` + a calibrated noise profile as the degradation engine.

Phase 1 trains DeblurNet on ``crop`` (1024) crops area-downsampled by
``scale`` (2) to 512, L1 against the downsampled ground truth. Phase 2
trains EnhanceNet with DeblurNet frozen: DeblurNet runs on the downsampled
crop, its output is clamped to [0, 1] and upsampled bilinearly to the crop,
then ``patches`` (2) ``patch x patch`` (256) sub-crops at the same positions
in every tensor are cut out; CutNoise applies to the short input and to ``t``;
L1 against the full-resolution ground truth. Both phases: Adam (betas 0.5,
0.999), lr 1e-4 / 5e-5, halved every 50 epochs, batch 2 tuples, epoch = one
pass over the training tuples plus the VarmapSelection extra patches
(docs/d2hnet.md, "Training"). The release's GT sharpening is not applied.

Run folder (``run.out_dir``)::

    config.json / config.<ext>   validated config / the file as given
    varmap.json                  VarmapSelection threshold and extra patches (reused on resume)
    phase1/state.pt              full resume state (weights, Adam, schedule, epoch, step, RNG states, elapsed time)
    phase1/history/              kept epochs' states and models (run.keep_last, run.keep_every; ckpt_policy)
    phase1/best.pt, best_state.pt  best epoch by validation PSNR (run.keep_best)
    phase1/train.csv, val.csv    logs (TensorBoard events too when installed and run.tensorboard)
    phase2/val_images/           one PNG grid of fixed validation crops per validation (run.val_images)
    model_phase1.pt              d2hnet checkpoint after each phase-1 epoch (input of phase 2)
    phase2/...                   the same for phase 2
    model.pt                     final model (d2hnet checkpoint: DeblurNet + EnhanceNet)

Checkpoints are written atomically (temporary file + ``os.replace``).
Resume (``resume=True``) continues exactly where the state was saved: every
sample is a pure function of ``(seed, epoch, index)`` and the sampler skips
the batches already done, so on the CPU the next losses are bit-identical to
an uninterrupted run (``run.deterministic``). On CUDA they are not bit-exact:
the backward of ``torchvision.ops.deform_conv2d`` uses atomic adds and is
nondeterministic (PyTorch only warns about it in deterministic mode).

Distributed: start with ``torchrun --nproc_per_node N -m d2hnet.cli train ...``
(multi-node: torchrun's ``--nnodes/--rdzv-*``). Each rank takes a disjoint
shard of each epoch's permutation (the batch size is per process);
gradients are averaged by DistributedDataParallel; rank 0 writes files. The
backend is NCCL on CUDA and gloo on CPU.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler

import isp_sim
from isp_sim.cli_support import file_problem

from .checkpoint import atomic_torch_save, load_checkpoint, save_checkpoint, torch_load_weights
from .ckpt_policy import CheckpointPolicy
from .dist import barrier, init_from_env, mean_over_ranks
from .train_log import TrainLog
from .config import ConfigError, TrainConfig, load_config, validate_config
from .data.batch import paste_boxes, phase2_patches
from .data.dataset import SampleSettings, TrainDataset, ValDataset, worker_init_fn
from .data.layout import scan_dataset
from .data.noise import check_iso_setup
from .data.varmap import VarmapResult, varmap_selection
from .errors import CheckpointError
from .models.pair import D2HNet

__all__ = ["EpochSampler", "Trainer", "train", "STATE_FORMAT"]

STATE_FORMAT = "d2hnet-train-state"
_RESUME_FREE = {"num_workers", "progress", "device", "log_every", "tensorboard", "ckpt_every", "val_every", "amp",
                "keep_last", "keep_every", "keep_best", "val_images", "val_protocol"}


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` pairs: a permutation of ``range(n)`` drawn from ``(seed, epoch)``, sharded by rank.

    The permutation is padded (wrapping) to a multiple of ``world`` as
    :class:`torch.utils.data.DistributedSampler` does; ``rank`` takes every
    ``world``-th item. :meth:`set_start` skips the first items of this rank's
    shard (resume in the middle of an epoch).
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, int(seed), rank, world
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's permutation next."""
        self.epoch = int(epoch)

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` items of this rank's shard (resume within an epoch)."""
        self.start = int(start)

    def indices(self) -> list[int]:
        """This rank's indices of the current epoch (padded by wrapping to a multiple of the world size)."""
        perm = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, 0x5A])).permutation(self.n)
        total = math.ceil(self.n / self.world) * self.world
        perm = np.resize(perm, total)
        return perm[self.rank::self.world].tolist()

    def __iter__(self):
        return iter([(self.epoch, i) for i in self.indices()[self.start:]])

    def __len__(self) -> int:
        return max(0, math.ceil(self.n / self.world) - self.start)


class _EpochAware(torch.utils.data.Dataset):
    """Wraps a :class:`TrainDataset` so that items are requested as ``(epoch, index)`` (safe with any workers)."""

    def __init__(self, ds: TrainDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, key):
        epoch, index = key
        return self.ds.sample(index, epoch)


# ----------------------------------------------------------------------------- RNG state


def _rng_state() -> dict[str, Any]:
    st = np.random.get_state()
    out = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "python_version": random.getstate()[0],
           "numpy": [st[0], torch.from_numpy(st[1].astype(np.int64)), int(st[2]), int(st[3]), float(st[4])]}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate((s["python_version"], tuple(s["python"]), None))
    n = s["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """One phase of D2HNet training from a validated config (see :func:`d2hnet.config.validate_config`).

    Construction does every check (profile, ISO ranges, dataset non-empty
    and large enough, phase-2 DeblurNet weights, run folder vs ``resume``)
    before any training happens. :meth:`run` trains and returns the per-step
    losses of this process.
    """

    def __init__(self, cfg: dict[str, Any], phase: int, *, profile: isp_sim.NoiseProfile | str | os.PathLike | None = None,
                 resume: bool = False,
                 check_deblur: bool = True, resume_from: str | os.PathLike | None = None) -> None:
        if phase not in (1, 2):
            raise ConfigError(f"phase must be 1 or 2, got {phase!r}")
        self.cfg, self.phase = cfg, phase
        self.config = TrainConfig.from_dict(cfg)
        self.rank, self.world, local = init_from_env()
        run, pc = self.config.run, self.config.phase(phase)
        self.pc = pc
        self.out = Path(run.out_dir)
        self.dir = self.out / f"phase{phase}"
        self.device = self._device(run.device, local)
        self.amp = run.amp
        if self.amp == "auto":
            self.amp = "bf16" if self.device.type == "cuda" else "off"
        if self.amp != "off" and self.device.type != "cuda":
            raise ConfigError(f"config key run.amp: {self.amp!r} needs CUDA; the device is {self.device}")
        # --- profile and noise settings
        name = profile if profile is not None else self.config.noise.profile
        self.profile = isp_sim.load_profile(name)
        nz = self.config.noise
        check_iso_setup(self.profile, nz.recipe, nz.long_iso, nz.short_iso, nz.iso_ratio)
        # --- data
        self.records = scan_dataset(self.config.data.train_dir, self.config.data.layout)
        self._check_sizes(pc.crop)
        self.val = ValDataset(self.config.data.val_dir) if self.config.data.val_dir else None
        # --- run folder
        self.state_path = self.dir / "state.pt"
        self.resume_from = Path(resume_from) if resume_from is not None else None
        if self.resume_from is not None:
            why = file_problem(self.resume_from, "state")
            if why:
                raise ConfigError(f"--resume-from {self.resume_from}: {why} (kept states are in {self.dir / 'history'})")
            resume = True
        if self.state_path.exists() and not resume:
            raise ConfigError(f"{self.state_path} exists: this run folder already holds a phase-{phase} run; "
                              "pass --resume to continue it or choose another run.out_dir")
        if resume and self.resume_from is None and not self.state_path.exists():
            raise ConfigError(f"--resume: no phase-{phase} state at {self.state_path}")
        self.resume = resume
        self.deblur_ckpt = pc.deblur_checkpoint or str(self.out / "model_phase1.pt")
        if phase == 2 and check_deblur:
            self._check_deblur()
        a = self.config.augment
        self.settings = SampleSettings(
            phase=phase, crop=pc.crop, scale=pc.scale, patch=pc.patch, patches=pc.patches,
            long_suffixes=self.config.data.long_suffixes, ia_p=a.ia_p, ia_gammas=tuple(a.ia_gammas),
            ca_p=a.ca_p, ca_a=tuple(a.ca_a), ca_b=tuple(a.ca_b), cutnoise_p=a.cutnoise_p,
            cutnoise_t_p=a.cutnoise_t_p, cutnoise_size=a.cutnoise_size, recipe=nz.recipe, engine=nz.engine,
            long_iso=tuple(nz.long_iso), short_iso=tuple(nz.short_iso), iso_ratio=nz.iso_ratio,
            wb_r=tuple(nz.wb_r), wb_b=tuple(nz.wb_b))

    # --------------------------------------------------------------- checks and setup

    def _check_deblur(self) -> None:
        if not Path(self.deblur_ckpt).is_file():
            raise ConfigError(f"phase 2 needs trained DeblurNet weights: {self.deblur_ckpt} does not exist "
                              "(run phase 1 first, or set phase2.deblur_checkpoint)")

    @staticmethod
    def _device(name: str, local: int) -> torch.device:
        if name == "auto":
            return torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise ConfigError(f"config key run.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"config key run.device: {name!r} but CUDA is not available")
        return dev

    def _check_sizes(self, crop: int) -> None:
        from PIL import Image

        for rec in self.records:
            for p in (rec.short, *rec.longs.values()):
                try:
                    with Image.open(p) as im:
                        w, h = im.size
                except Exception:
                    continue  # unreadable headers are reported when the sample is read
                if min(w, h) < crop:
                    raise ConfigError(f"{p}: image {w}x{h} is smaller than the phase-{self.phase} crop {crop}; "
                                      "lower the crop in the config or remove the tuple")

    def _varmap(self) -> VarmapResult | None:
        v = self.config.varmap
        if not v.enabled:
            return None
        if not any(r.long_last is not None for r in self.records):
            warnings.warn("VarmapSelection skipped: no training tuple has a long_last frame", stacklevel=2)
            return None
        path = self.out / f"varmap_phase{self.phase}.json"
        if self.rank == 0 and not path.exists():
            n_extra = v.extra if v.extra >= 0 else int(round(v.extra_ratio * len(self.records)))
            res = varmap_selection(self.records, crop=self.pc.crop, n_extra=n_extra, window=v.window,
                                   percentile=v.percentile, squares_per_image=v.squares_per_image,
                                   seed=np.random.SeedSequence([self.config.run.seed, 0xBA5, self.phase]),
                                   progress=self.config.run.progress)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(res.to_dict()))
            os.replace(tmp, path)
        barrier(self.world)
        return VarmapResult.from_dict(json.loads(path.read_text()))

    def _write_config(self) -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        cj = self.out / "config.json"
        if cj.exists():
            old = json.loads(cj.read_text())
            diff = [f"{s}.{k}" for s in self.cfg for k in self.cfg[s]
                    if old.get(s, {}).get(k) != self.cfg[s][k] and not (s == "run" and k in _RESUME_FREE)]
            if diff and self.resume:
                raise ConfigError(f"--resume with a config that differs from the run's in {diff}; "
                                  "resume with the run's config (config.json in the run folder)")
        tmp = cj.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cfg, indent=1))
        os.replace(tmp, cj)

    # --------------------------------------------------------------- the loop

    def _build(self):
        seed = self.config.run.seed
        _seed_all(seed + self.phase)
        model = D2HNet(self.config.model)
        if self.phase == 2:
            self._check_deblur()
            prev = load_checkpoint(self.deblur_ckpt)
            if prev.config()["deblurnet"] != model.config()["deblurnet"]:
                raise ConfigError(f"{self.deblur_ckpt}: DeblurNet config {prev.config()['deblurnet']} differs from "
                                  f"[model].deblurnet {model.config()['deblurnet']}")
            model.deblurnet.load_state_dict(prev.deblurnet.state_dict())
            model.deblurnet.requires_grad_(False)
        model.to(self.device)
        net = model.deblurnet if self.phase == 1 else model.enhancenet
        opt = torch.optim.Adam(net.parameters(), lr=self.pc.lr, betas=tuple(self.pc.betas))
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.pc.lr_step, gamma=self.pc.lr_gamma)
        return model, net, opt, sched

    def _autocast(self):
        if self.amp == "off":
            return nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16)

    def _degrade_on_device(self, batch, long, short, gt):
        """``noise.engine = "torch"``: the workers sent clean crops; degrade them here with isp_sim.torch, the
        pair parameters drawn per item from its ``noise_seed`` as :func:`d2hnet.data.noise.degrade_pair` draws
        them (recipe, ISO ranges, white balance), then (phase 1) downsample and paste CutNoise."""
        import isp_sim.torch as ist

        from .data.noise import draw_pair, release_profile

        s = self.settings
        prof = self.profile if s.recipe == "paper" else release_profile(self.profile)
        lis, sis, wls, wss = [], [], [], []
        for seed in batch["noise_seed"].tolist():
            rng = np.random.default_rng(int(seed))
            li, si, wl, ws = draw_pair(rng, self.profile, s.recipe, s.long_iso, s.short_iso, s.iso_ratio,
                                       (s.wb_r, s.wb_b))
            lis.append(li), sis.append(si), wls.append(wl), wss.append(ws)
        long = ist.degrade(long, prof, iso=lis, wb=np.stack(wls), generator=self.gen).image
        short = ist.degrade(short, prof, iso=sis, wb=np.stack(wss), generator=self.gen).image
        if self.phase == 1:
            wide = s.recipe == "release"
            if wide:  # the release's box is pasted on the full-size short frame
                short = paste_boxes(short, gt, batch["cut_box"])
            long, short, gt = (F.avg_pool2d(x, s.scale) for x in (long, short, gt))
            if not wide:
                short = paste_boxes(short, gt, batch["cut_box"])
        return long, short, gt

    def _loss(self, model, net, batch) -> torch.Tensor:
        dev = self.device
        long, short, gt = (batch[k].to(dev, non_blocking=True) for k in ("long", "short", "gt"))
        if "noise_seed" in batch:
            long, short, gt = self._degrade_on_device(batch, long, short, gt)
        w = self.pc.l1_weight
        if self.phase == 1:
            with self._autocast():
                out = net(long, short)
            return w * F.l1_loss(out.float(), gt)
        s = self.pc.scale
        with torch.no_grad(), self._autocast():
            t = model.deblurnet(F.avg_pool2d(long, s), F.avg_pool2d(short, s))
        t = F.interpolate(t.float().clamp(0, 1), size=long.shape[-2:], mode="bilinear", align_corners=False)
        lc, sc, gc, tc = phase2_patches(long, short, gt, t, batch["patch_yx"], batch["cut_short"], batch["cut_t"],
                                        self.pc.patch)
        with self._autocast():
            out = net(lc, sc, tc)
        return w * F.l1_loss(out.float(), gc)

    def _state(self, model, opt, sched, scaler, epoch, step, gstep) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "version": 1, "phase": self.phase, "epoch": epoch, "step_in_epoch": step,
                "elapsed_s": time.time() - self._t0, "noise_generator": self.gen.get_state(),
                "global_step": gstep, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                "rng": _rng_state(), "world": self.world}

    def _load_state(self) -> dict[str, Any]:
        path = self.resume_from or self.state_path
        st = torch_load_weights(Path(path))
        if not isinstance(st, dict) or st.get("format") != STATE_FORMAT or st.get("version") != 1:
            raise CheckpointError(f"{path}: not a d2hnet training state of version 1")
        if st["phase"] != self.phase:
            raise CheckpointError(f"{path}: state of phase {st['phase']}, not {self.phase}")
        if st["world"] != self.world:
            raise CheckpointError(f"{path}: saved with {st['world']} processes, resumed with {self.world}; "
                                  "exact resume needs the same number")
        return st

    def run(self, *, max_steps: int | None = None) -> list[float]:
        """Train this phase (to its last epoch, or ``max_steps`` global steps); return this rank's step losses."""
        run = self.config.run
        det_before = torch.are_deterministic_algorithms_enabled()
        if run.deterministic:
            if self.device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.backends.cudnn.benchmark = False
            torch.use_deterministic_algorithms(True, warn_only=self.device.type == "cuda")
        try:
            return self._run(max_steps if max_steps is not None else (self.pc.max_steps or None))
        finally:
            torch.use_deterministic_algorithms(det_before)

    def _decoded_cache(self):
        """``data.decoded_cache``: "auto" = ``<train_dir>/.d2hnet_decoded`` (or, when that folder cannot be
        written, ``<out_dir>/decoded_cache``), "off", or a folder."""
        from .data.decoded import DecodedCache

        where = self.config.data.decoded_cache
        if where == "off":
            return None
        if where != "auto":
            return DecodedCache(where)
        for d in (Path(self.config.data.train_dir) / ".d2hnet_decoded", self.out / "decoded_cache"):
            try:
                d.mkdir(parents=True, exist_ok=True)
                probe = d / f".probe_{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
                return DecodedCache(d)
            except OSError:
                continue
        return None

    def _run(self, max_steps: int | None) -> list[float]:
        run, pc = self.config.run, self.pc
        self._write_config()
        vm = self._varmap()
        ds = TrainDataset(self.records, self.profile, self.settings, seed=run.seed,
                          blur_patches=vm.patches if vm else None, decoded_cache=self._decoded_cache())
        model, net, opt, sched = self._build()
        self.model = model
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")
        epoch = step = gstep = 0
        elapsed = 0.0
        if self.resume:
            st = self._load_state()
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            sched.load_state_dict(st["scheduler"])
            scaler.load_state_dict(st["scaler"])
            epoch, step, gstep = st["epoch"], st["step_in_epoch"], st["global_step"]
            elapsed = float(st.get("elapsed_s", 0.0))  # training time continues across resumes
            _set_rng_state(st["rng"])
        if self.phase == 2:
            model.deblurnet.eval()
        train_net = net
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            train_net = DDP(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        sampler = EpochSampler(len(ds), run.seed, self.rank, self.world)
        bs = pc.batch_size
        steps_per_epoch = len(sampler.indices()) // bs
        if steps_per_epoch == 0:
            raise ConfigError(f"phase{self.phase}.batch_size {bs} is larger than the {len(sampler.indices())} "
                              f"samples per process and epoch")
        log = TrainLog(self.dir, self.rank == 0, run.tensorboard, resume_step=gstep if self.resume else None)
        self.gen = torch.Generator(device=self.device).manual_seed(run.seed * 1000 + self.phase * 10 + self.rank)
        if self.resume and "noise_generator" in st:
            self.gen.set_state(st["noise_generator"])
        self.policy = CheckpointPolicy(self.dir, keep_last=run.keep_last, keep_every=run.keep_every,
                                       keep_best=run.keep_best)
        losses: list[float] = []
        self._t0 = t0 = time.time() - elapsed
        nw = run.num_workers
        # Workers are spawned, not forked: CUDA, and numba's OpenMP layer where TBB is missing, do not survive fork().
        # They persist across epochs; the sampler (in this process) carries the epoch.
        loader = DataLoader(_EpochAware(ds), batch_size=bs, sampler=sampler, drop_last=True, num_workers=nw,
                            worker_init_fn=worker_init_fn if nw else None, pin_memory=self.device.type == "cuda",
                            multiprocessing_context="spawn" if nw else None, persistent_workers=nw > 0)
        try:
            while epoch < pc.epochs:
                net.train()
                sampler.set_epoch(epoch)
                sampler.set_start(step * bs)
                bar = None
                if run.progress and self.rank == 0:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=steps_per_epoch, initial=step, desc=f"phase {self.phase} epoch {epoch + 1}/{pc.epochs}",
                               unit="step", leave=True)
                for batch in loader:
                    loss = self._loss(model, train_net, batch)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                    step += 1
                    gstep += 1
                    lv = float(loss.detach())
                    losses.append(lv)
                    if bar is not None:
                        bar.update(1)
                    if gstep % run.log_every == 0 or step == steps_per_epoch:
                        mean = self._mean_loss(lv)  # all-reduced over ranks (a collective: every rank calls it)
                        log.train(gstep, epoch, mean, opt.param_groups[0]["lr"], time.time() - t0)
                        if bar is not None:
                            bar.set_postfix(loss=f"{mean:.4f}")
                    done = max_steps is not None and gstep >= max_steps
                    if step == steps_per_epoch:
                        break
                    if done or (run.ckpt_every and gstep % run.ckpt_every == 0):
                        self._save(self._state(model, opt, sched, scaler, epoch, step, gstep))
                    if done:  # the models as they are now, so a bounded run leaves usable checkpoints
                        self._save_model(model, self.out / f"model_phase{self.phase}.pt", epoch, gstep)
                        if self.phase == 2:
                            self._save_model(model, self.out / "model.pt", epoch, gstep)
                        return losses
                if bar is not None:
                    bar.close()
                epoch += 1
                step = 0
                sched.step()
                self._save(self._state(model, opt, sched, scaler, epoch, step, gstep))
                self._save_model(model, self.out / f"model_phase{self.phase}.pt", epoch, gstep)
                if self.rank == 0:
                    self.policy.after_epoch(epoch, self.state_path, self.out / f"model_phase{self.phase}.pt")
                if self.val is not None and run.val_every and (epoch % run.val_every == 0 or epoch == pc.epochs):
                    self._validate(model, log, epoch, gstep)
                if max_steps is not None and gstep >= max_steps:
                    break
            if self.phase == 2:
                self._save_model(model, self.out / "model.pt", epoch, gstep)
            return losses
        finally:
            log.close()
            barrier(self.world)

    def _mean_loss(self, lv: float) -> float:
        return mean_over_ranks(lv, self.world, self.device)

    def _save(self, state: dict[str, Any]) -> None:
        if self.rank == 0:
            atomic_torch_save(state, self.state_path)

    def _save_model(self, model: D2HNet, path: Path, epoch: int, gstep: int) -> None:
        if self.rank == 0:
            save_checkpoint(path, model, meta={"trained_by": "d2hnet.train", "phase": self.phase, "epoch": epoch,
                                               "global_step": gstep, "profile": self.profile.name,
                                               "config": json.loads(json.dumps(self.cfg))})

    def _validate(self, model: D2HNet, log: "TrainLog", epoch: int, gstep: int) -> None:
        """Rank 0: score the validation set, print one persistent line, keep the best model, write the image grid."""
        if self.rank != 0:
            return
        from .validate import evaluate, val_line

        run = self.config.run
        res = evaluate(model, self.val, phase=self.phase, scale=self.pc.scale, device=self.device,
                       amp=self.amp, max_items=self.config.data.max_val, protocol=run.val_protocol)
        log.val(gstep, epoch, res)
        best = self.policy.after_validation(epoch, res)
        line = val_line(res, epoch=epoch, step=gstep) + (" (best so far: best.pt)" if best else "")
        from tqdm.auto import tqdm

        tqdm.write(f"phase {self.phase} {line}")
        if run.val_images and self.phase == 2:
            from .val_images import validation_grid

            png = self.dir / "val_images" / f"epoch_{epoch:04d}.png"
            grid = validation_grid(model, self.val, png, n=run.val_images, scale=self.pc.scale,
                                   device=self.device, title=f"phase 2, epoch {epoch}, step {gstep}")
            log.image("val/grid", grid, gstep)


def train(config: str | os.PathLike | dict[str, Any], *, profile: isp_sim.NoiseProfile | str | os.PathLike | None = None,
          phases: tuple[int, ...] = (1, 2),
          resume: bool = False, max_steps: int | None = None, resume_from: str | os.PathLike | None = None
          ) -> dict[int, list[float]]:
    """Validate the config (a file path or a dict), then train ``phases`` in order; returns ``{phase: losses}``.

    Everything is checked before the first step: the config, the profile
    (``profile`` wins over ``noise.profile``), the dataset, the run folder.
    The config file itself is copied into the run folder. With ``resume``,
    a phase whose state exists continues from it; a phase already finished
    is skipped. ``resume_from`` (a kept state, e.g. ``phase1/history/state_e0007.pt`` or ``best_state.pt``)
    continues the first phase of ``phases`` from that state instead.
    """
    if isinstance(config, dict):
        cfg, src = validate_config(config), None
    else:
        cfg, src = load_config(config), Path(config)
    if profile is not None:
        cfg["noise"]["profile"] = str(profile)
    # Every check of every phase runs before the first step (phase 2's DeblurNet weights come
    # from phase 1 when both run, so their presence is checked when phase 2 starts).
    trainers = []
    for ph in phases:
        state = Path(cfg["run"]["out_dir"]) / f"phase{ph}" / "state.pt"
        rf = resume_from if (resume_from is not None and ph == phases[0]) else None
        trainers.append(Trainer(cfg, ph, resume=(resume and state.exists()) or rf is not None,
                                check_deblur=not (ph == 2 and 1 in phases), resume_from=rf))
    if src is not None and int(os.environ.get("RANK", "0")) == 0:
        out = Path(cfg["run"]["out_dir"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / f"config{src.suffix.lower()}")
    result = {}
    for tr in trainers:
        result[tr.phase] = tr.run(max_steps=max_steps)
    return result
