"""Training and evaluation of the study's models from fixed, pre-degraded caches (one process per model).

The recipe is the project's two phases (``d2hnet.train``) on small crops:
phase 1 trains DeblurNet on ``crop`` crops area-downsampled x2, L1 against
the downsampled ground truth, CutNoise on the short input; phase 2 trains
EnhanceNet with DeblurNet frozen (its output clamped and upsampled
bilinearly), on one ``patch`` sub-crop per tuple at the same position in
every tensor, CutNoise on the short input and on ``t``. Adam (betas 0.5,
0.999), the learning rate halved at 1/2 and 3/4 of each phase. A model trained from scratch starts phase 2 with EnhanceNet's last
convolution at zero (``zero_out_conv``), so that the pipeline starts at
DeblurNet's output instead of that output plus a random residual (the
release's xavier-0.02 initialisation costs about 4 dB there), as
zero-initialised residual branches do (Goyal et al. 2017). CutNoise
squares keep the paper's size relative to the network input (120 px of a
512 DeblurNet input; 120 px of a 256 EnhanceNet patch). Each batch draws
tuples with replacement and one of the 8 flips/transposes per tuple from
``numpy.random.default_rng([seed, phase, step])``, so a job is a pure
function of its inputs and seed (one torch thread per job: CPU float
reductions depend on the thread count).

Curves: ``eval_points`` times per phase (and at the start and the end of each
phase) the model is scored on the test crops: in phase 1 the DeblurNet
output upsampled to full resolution (the pipeline without EnhanceNet), in
phase 2 the full pipeline. The curve is reported, never used to select a
model: every model is its weights after the last step.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TrainJob", "run_job", "restore_crops", "score_crops", "phase1_loss", "phase2_loss"]


@dataclass
class TrainJob:
    """One model to train (or only to evaluate, with zero steps); paths point into the study's cache."""

    name: str
    out: str                      # checkpoint written here
    cache: str                    # folder with <noise>_long.npy, <noise>_short.npy, gt.npy
    noise: str                    # cache prefix of the noise model
    test: str                     # test arrays: test_long.npy, test_short.npy, test_gt.npy
    arch: dict
    init: str | None = None       # checkpoint to start from (None: fresh init with `seed`)
    init_enhancenet: str | None = None  # take EnhanceNet's weights from this checkpoint instead
    step_offset: int = 0          # curve steps continue from here (a phase trained by an earlier job)
    steps1: int = 0
    steps2: int = 0
    lr1: float = 2e-4
    lr2: float = 1e-4
    batch1: int = 8
    batch2: int = 4
    patch: int = 64
    seed: int = 0
    eval_points: int = 0          # curve points inside each phase (besides its start and end)
    threads: int = 1
    cutnoise_p: float = 0.3
    device: str = "cpu"           # torch device of the networks ("cuda" for --full-width runs)
    zero_out_conv: bool = False   # phase 2 starts with EnhanceNet's last conv at zero: output = DeblurNet's
    extra: dict = field(default_factory=dict)


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(n)))


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/transposes of ``(H, W, C)`` (k in 0..7)."""
    if k & 4:
        x = x.transpose(1, 0, 2)
    if k & 2:
        x = x[::-1]
    if k & 1:
        x = x[:, ::-1]
    return x


def _batch(arrays: list[np.ndarray], idx: np.ndarray, flips: np.ndarray):
    import torch

    out = []
    for a in arrays:
        b = np.stack([_dihedral(np.asarray(a[i], np.float32), int(k)) for i, k in zip(idx, flips)])
        out.append(torch.from_numpy(np.ascontiguousarray(b.transpose(0, 3, 1, 2))))
    return out


def _cut(x, gt, rng: np.random.Generator, p: float, size: int):
    """CutNoise per batch item: with probability p a size x size square of x replaced by gt (new tensor)."""
    n, _, h, w = x.shape
    out = x.clone()
    for b in range(n):
        fire = rng.random() < p
        y, xx = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        if fire:
            out[b, :, y:y + size, xx:xx + size] = gt[b, :, y:y + size, xx:xx + size]
    return out


def phase1_loss(model, long, short, gt, rng: np.random.Generator, cutnoise_p: float = 0.3):
    """Phase-1 L1 loss of DeblurNet on ``(N, 3, H, W)`` crops downsampled x2 (CutNoise on the short input)."""
    import torch.nn.functional as F

    l2, s2, g2 = (F.avg_pool2d(x, 2) for x in (long, short, gt))
    s2 = _cut(s2, g2, rng, cutnoise_p, max(1, round(120 * l2.shape[-1] / 512)))
    return F.l1_loss(model.deblurnet(l2, s2), g2)


def phase2_loss(model, long, short, gt, rng: np.random.Generator, patch: int, cutnoise_p: float = 0.3):
    """Phase-2 L1 loss of EnhanceNet on one ``patch`` sub-crop per item, DeblurNet frozen (module docstring)."""
    import torch
    import torch.nn.functional as F

    model.deblurnet.eval()
    with torch.no_grad():
        t = model.deblurnet(F.avg_pool2d(long, 2), F.avg_pool2d(short, 2)).clamp_(0, 1)
        t = F.interpolate(t, size=long.shape[-2:], mode="bilinear", align_corners=False)
    y, x = (int(v) for v in rng.integers(0, long.shape[-1] - patch + 1, size=2))
    sl = (slice(None), slice(None), slice(y, y + patch), slice(x, x + patch))
    lp, sp, tp, gp = long[sl], short[sl], t[sl], gt[sl]
    size = max(1, round(120 * patch / 256))
    sp = _cut(sp, gp, rng, cutnoise_p, size)
    tp = _cut(tp, gp, rng, cutnoise_p, size)
    return F.l1_loss(model.enhancenet(lp, sp, tp), gp)


def restore_crops(model, long, short, batch: int = 16, device="cpu"):
    """Full pipeline on ``(N, 3, H, W)`` CPU tensors: DeblurNet at x0.5 (:func:`d2hnet.infer.deblur`), EnhanceNet;
    clamped; the networks run on ``device``, the result is on the CPU."""
    import torch

    from ..infer import deblur

    dev = torch.device(device)
    outs = []
    with torch.no_grad():
        for i in range(0, long.shape[0], batch):
            lo, sh = long[i:i + batch], short[i:i + batch]
            t = deblur(lo, sh, model.deblurnet, deblur_scale=0.5, device=dev, amp="off")
            outs.append(model.enhancenet(lo.to(dev), sh.to(dev), t.to(dev)).clamp_(0, 1).cpu())
    return torch.cat(outs)


def _deblur_only(model, long, short, batch: int = 16, device="cpu"):
    import torch

    from ..infer import deblur

    with torch.no_grad():
        return torch.cat([deblur(long[i:i + batch], short[i:i + batch], model.deblurnet, deblur_scale=0.5,
                                 device=torch.device(device), amp="off") for i in range(0, long.shape[0], batch)])


def score_crops(out: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-crop PSNR and SSIM (the ``standard`` protocol) of ``(N, H, W, 3)`` images against ``gt``."""
    from .stats import psnr_ssim

    vals = [psnr_ssim(o, g) for o, g in zip(out, gt)]
    return np.array([v[0] for v in vals]), np.array([v[1] for v in vals])


def _nhwc(t) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


def _load(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")


def run_job(job: TrainJob | dict, progress=None) -> dict[str, Any]:
    """Train (phases 1 then 2) and evaluate one model; return its curve, per-crop scores, timing.

    ``progress``: an optional queue that receives ``(job name, phase, steps done since the last message)``.
    """
    import torch

    from ..checkpoint import load_checkpoint, save_checkpoint
    from ..errors import CheckpointError
    from ..models.pair import D2HNet

    if isinstance(job, dict):
        job = TrainJob(**job)
    _set_threads(job.threads)
    torch.manual_seed(job.seed)
    cache, test = Path(job.cache), Path(job.test)
    if job.init:
        model = load_checkpoint(job.init)
        if model.config() != D2HNet(job.arch).config():
            raise CheckpointError(f"{job.init}: architecture {model.config()} differs from the study's {job.arch}")
    else:
        model = D2HNet(job.arch)
    if job.init_enhancenet:
        model.enhancenet.load_state_dict(load_checkpoint(job.init_enhancenet).enhancenet.state_dict())
    dev = torch.device(job.device)
    model.to(dev)
    tl, ts, tg = (torch.from_numpy(np.ascontiguousarray(np.asarray(_load(test / f"test_{k}.npy"), np.float32)
                                                           .transpose(0, 3, 1, 2))) for k in ("long", "short", "gt"))
    gt_np = np.asarray(_load(test / "test_gt.npy"), np.float32)
    curve: list[dict[str, Any]] = []
    timing: dict[str, float] = {}

    def evaluate(step: int, phase: int) -> None:
        model.eval()
        o = _deblur_only(model, tl, ts, device=dev) if phase == 1 else restore_crops(model, tl, ts, device=dev)
        p, _ = score_crops(_nhwc(o.clamp(0, 1)), gt_np) if phase == 1 else score_crops(_nhwc(o), gt_np)
        curve.append({"step": step, "phase": phase, "psnr": float(np.mean(p))})

    arrays = None
    if job.steps1 or job.steps2:
        arrays = [_load(cache / f"{job.noise}_long.npy"), _load(cache / f"{job.noise}_short.npy"), _load(cache / "gt.npy")]
        n = arrays[0].shape[0]
    gstep = job.step_offset
    for phase, steps, lr, bs in ((1, job.steps1, job.lr1, job.batch1), (2, job.steps2, job.lr2, job.batch2)):
        if not steps:
            continue
        net = model.deblurnet if phase == 1 else model.enhancenet
        if phase == 2 and job.zero_out_conv:
            from ..models.enhancenet import EnhanceNet

            model.enhancenet = EnhanceNet(**model.enhancenet.config(), init_type="default").to(dev)
            net = model.enhancenet
            with torch.no_grad():
                model.enhancenet.out_conv.weight.zero_()
                if model.enhancenet.out_conv.bias is not None:
                    model.enhancenet.out_conv.bias.zero_()
        model.deblurnet.requires_grad_(phase == 1)
        model.enhancenet.requires_grad_(phase == 2)
        opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
        milestones = sorted({max(1, steps // 2), max(1, (3 * steps) // 4)})
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.5)
        t0 = time.perf_counter()
        evaluate(gstep, phase)
        for step in range(steps):
            rng = np.random.default_rng(np.random.SeedSequence([job.seed, phase, step]))
            idx = rng.integers(0, n, size=bs)
            flips = rng.integers(0, 8, size=bs)
            long, short, gt = (x.to(dev, non_blocking=True) for x in _batch(arrays, idx, flips))
            net.train()
            if phase == 1:
                loss = phase1_loss(model, long, short, gt, rng, job.cutnoise_p)
            else:
                loss = phase2_loss(model, long, short, gt, rng, job.patch, job.cutnoise_p)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"{job.name}: loss became {float(loss.detach())} at phase {phase} step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            gstep += 1
            if progress is not None:
                progress.put((job.name, phase, 1))
            every = max(1, steps // (job.eval_points + 1)) if job.eval_points else 0
            if every and (step + 1) % every == 0 and step + 1 < steps:
                evaluate(gstep, phase)
        timing[f"phase{phase}_s"] = time.perf_counter() - t0
        timing[f"phase{phase}_ms_per_step"] = 1000 * timing[f"phase{phase}_s"] / steps
        evaluate(gstep, phase)
    model.deblurnet.requires_grad_(True)
    model.enhancenet.requires_grad_(True)
    model.eval()
    t0 = time.perf_counter()
    out = _nhwc(restore_crops(model, tl, ts, device=dev))
    timing["test_restore_s"] = time.perf_counter() - t0
    psnr, ssim = score_crops(out, gt_np)
    if not curve or curve[-1]["phase"] != 2:
        curve.append({"step": gstep, "phase": 2, "psnr": float(np.mean(psnr))})
    if job.steps1 and not job.steps2:  # a phase-1 job: its full-pipeline score is not a point of the curve
        curve = [c for c in curve if c["phase"] == 1]
    save_checkpoint(job.out, model, meta={"trained_by": "d2hnet.study", "job": json.loads(json.dumps(asdict(job)))})
    np.save(Path(job.out).with_suffix(".outputs.npy"), out.astype(np.float16))
    result = {"name": job.name, "psnr": psnr.tolist(), "ssim": ssim.tolist(), "curve": curve, "timing": timing,
              "steps": [job.steps1, job.steps2], "checkpoint": job.out}
    if job.extra.get("ablation_no_long"):
        o = _nhwc(restore_crops(model, ts, ts, device=dev))
        p2, s2 = score_crops(o, gt_np)
        np.save(Path(job.out).with_name(Path(job.out).stem + "_ablation.outputs.npy"), o.astype(np.float16))
        result["ablation_no_long"] = {"psnr": p2.tolist(), "ssim": s2.tolist()}
    return result
