#!/usr/bin/env python3
"""One prepared GPU check (at most ~5 minutes with warm-ups): run it once whenever a GPU is at hand.

    python benchmarks/gpu_check.py --out gpu_check.json            # on the GPU machine
    python benchmarks/gpu_check.py --smoke --out /tmp/smoke.json   # CPU, tiny sizes: checks the script itself

Sections (each timed, each failure recorded in the JSON instead of stopping the run):

1. ``env``: torch / CUDA / numba versions, device name and memory, CPU count.
2. ``nets``: forward and forward+backward of DeblurNet (batch 2, 512x512: the paper's phase-1 input) and
   EnhanceNet (batch 2, 256x256: its phase-2 crops), float32 and bf16 autocast; median ms of 5 after 2
   warm-ups, peak GPU memory.
3. ``restore_16mp``: :func:`d2hnet.restore` of a 3472x4624 pair (the Mi Note 10's 16 MP; random weights, the
   cost does not depend on them), bf16 autocast: seconds, peak memory.
4. ``degrade``: GPix/s of the tensor engine ``isp_sim.torch`` on the device when it exists (else recorded as
   absent), and the numba engine on one CPU thread for reference (ms per 1024x1024).
5. ``train_phase1`` / ``train_phase2``: training steps per second with the real input pipeline (TrainDataset
   with the decoded-image cache, DataLoader with ``--workers`` CPU workers, default all cores but one, batch 2)
   and the step (forward, L1, backward, Adam; bf16 autocast); the fraction of time the GPU waited for data, and
   how many workers it would need to wait < 5%; ``train_phase1_device_noise`` the same with the workers
   returning clean crops and the step degrading them with ``isp_sim.torch`` (``noise.engine = "torch"``).

Writes one JSON (``--out``) and prints a line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak(dev):
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 3) if dev.type == "cuda" else None


def _reset(dev):
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def _timed(fn, dev, n=5, warm=2):
    for _ in range(warm):
        fn()
    _sync(dev)
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        _sync(dev)
        ts.append(time.perf_counter() - t)
    return round(1000 * statistics.median(ts), 2), [round(1000 * x, 2) for x in ts]


def autocast_context(dev, amp):
    if amp == "bf16":
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
    import contextlib

    return contextlib.nullcontext()


def section_env(dev, a):
    import numba

    out = {"torch": torch.__version__, "cuda": torch.version.cuda, "numba": numba.__version__,
           "python": platform.python_version(), "cpus": os.cpu_count()}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        out.update(device=p.name, memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}")
    else:
        out["device"] = f"CPU {platform.machine()}"
    return out


def section_nets(dev, a):
    from d2hnet.models import D2HNet

    torch.manual_seed(0)
    model = D2HNet().to(dev)
    s1, s2 = (64, 32) if a.smoke else (512, 256)
    res = {}
    for amp in ("fp32", "bf16"):
        x1 = [torch.rand(2, 3, s1, s1, device=dev) for _ in range(3)]
        x2 = [torch.rand(2, 3, s2, s2, device=dev) for _ in range(4)]
        for name, net, xs in (("deblurnet", model.deblurnet, x1), ("enhancenet", model.enhancenet, x2)):
            inputs = xs[:2] if name == "deblurnet" else xs[:3]
            target = xs[-1]

            def fwd():
                with torch.no_grad(), autocast_context(dev, amp):
                    net(*inputs)

            def fwd_bwd():
                net.zero_grad(set_to_none=True)
                with autocast_context(dev, amp):
                    loss = torch.nn.functional.l1_loss(net(*inputs).float(), target)
                loss.backward()

            _reset(dev)
            f_ms, _ = _timed(fwd, dev, n=2 if a.smoke else 5, warm=1 if a.smoke else 2)
            _reset(dev)
            fb_ms, _ = _timed(fwd_bwd, dev, n=2 if a.smoke else 5, warm=1 if a.smoke else 2)
            res[f"{name}_{amp}"] = {"batch": 2, "size": s1 if name == "deblurnet" else s2, "forward_ms": f_ms,
                                    "forward_backward_ms": fb_ms, "peak_gib": _peak(dev)}
            print(f"nets: {name} {amp}: forward {f_ms} ms, forward+backward {fb_ms} ms, peak {_peak(dev)} GiB",
                  flush=True)
    return res


def section_restore(dev, a):
    from d2hnet.infer import restore
    from d2hnet.models import D2HNet

    torch.manual_seed(0)
    model = D2HNet().eval().to(dev)
    h, w = (256, 320) if a.smoke else (3472, 4624)
    rng = np.random.default_rng(0)
    long = rng.random((h, w, 3), dtype=np.float32)
    short = np.clip(long + 0.05 * rng.standard_normal((h, w, 3), dtype=np.float32), 0, 1)
    restore(long[:512, :512], short[:512, :512], model, device=dev, amp="bf16" if dev.type == "cuda" else "off")
    _reset(dev)
    _sync(dev)
    t = time.perf_counter()
    out = restore(long, short, model, device=dev, amp="bf16" if dev.type == "cuda" else "off")
    _sync(dev)
    s = time.perf_counter() - t
    assert out.shape == long.shape and np.isfinite(out).all()
    print(f"restore: {h}x{w} in {s:.2f} s, peak {_peak(dev)} GiB", flush=True)
    return {"size": [h, w], "seconds": round(s, 3), "megapixels_per_s": round(h * w / 1e6 / s, 3), "peak_gib": _peak(dev)}


def section_degrade(dev, a):
    import numba

    import isp_sim

    prof = isp_sim.load_profile("mi_note10")
    n = 256 if a.smoke else 1024
    x = np.random.default_rng(0).random((n, n, 3), dtype=np.float32) * 0.8 + 0.1
    numba.set_num_threads(1)
    cpu_ms, _ = _timed(lambda: isp_sim.degrade(x, prof, iso=3200, seed=1), torch.device("cpu"), n=3, warm=1)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    out = {"numba_cpu_1thread_ms_per_1024": cpu_ms if not a.smoke else None, "numba_cpu_ms": cpu_ms, "size": n}
    print(f"degrade: numba, one CPU thread, {n}x{n}: {cpu_ms} ms", flush=True)
    try:
        import isp_sim.torch as ist  # noqa: F401  (issue 12: the tensor engine)
    except ImportError as exc:
        out["torch_engine"] = f"absent ({exc})"
        print("degrade: isp_sim.torch absent: no GPU-side degradation to time", flush=True)
        return out
    batch = torch.from_numpy(np.stack([x] * 8)).permute(0, 3, 1, 2).contiguous().to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    ms, _ = _timed(lambda: ist.degrade(batch, prof, iso=3200, generator=gen), dev)
    out["torch_engine_gpix_per_s"] = round(batch.shape[0] * n * n / (ms / 1000) / 1e9, 3)
    print(f"degrade: isp_sim.torch on {dev}: {out['torch_engine_gpix_per_s']} GPix/s", flush=True)
    return out


def _tuples(root: Path, n: int, size: int) -> None:
    from PIL import Image

    from isp_sim.imageio import sample_image_path

    names = ["astronaut", "chelsea", "coffee"]
    for i in range(n):
        im = Image.open(sample_image_path(names[i % len(names)])).convert("RGB").resize((size, size), Image.BICUBIC)
        blur = im.resize((size // 2, size // 2), Image.BILINEAR).resize((size, size), Image.BILINEAR)
        im.save(root / f"gpu_{i:04d}_short.png")
        blur.save(root / f"gpu_{i:04d}_long8.png")


def _train(dev, a, phase, device_noise=False):
    from torch.utils.data import DataLoader

    import isp_sim
    from d2hnet.data import SampleSettings, TrainDataset, scan_dataset
    from d2hnet.data.dataset import worker_init_fn
    from d2hnet.data.decoded import DecodedCache
    from d2hnet.models import D2HNet
    from d2hnet.study.training import phase2_loss

    tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    crop = 128 if a.smoke else 1024
    _tuples(tmp, 4, crop + 64)
    recs = scan_dataset(tmp)
    st = SampleSettings(phase=phase, crop=crop, cutnoise_size=crop // 8, patch=crop // 4,
                        engine="torch" if device_noise else "numba")
    ds = TrainDataset(recs * 64, isp_sim.load_profile("mi_note10"), st, seed=0, decoded_cache=DecodedCache(tmp / "c"))
    for r in recs:  # fill the cache once, not in every worker
        ds.cache.get(r.short)
        for f in r.longs.values():
            ds.cache.get(f)
    workers = a.workers if a.workers is not None else max(1, (os.cpu_count() or 2) - 1)
    dl = DataLoader(ds, batch_size=2, shuffle=True, num_workers=workers, worker_init_fn=worker_init_fn,
                    persistent_workers=workers > 0, pin_memory=dev.type == "cuda", drop_last=True,
                    multiprocessing_context="spawn" if workers else None,  # as the Trainer: numba's OpenMP forbids fork
                    generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = D2HNet().to(dev)
    net = model.deblurnet if phase == 1 else model.enhancenet
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    gen = torch.Generator(device=dev).manual_seed(0)
    steps = 3 if a.smoke else a.steps
    warm = 1 if a.smoke else 5
    wait = comp = 0.0
    t_all = None
    it = iter(dl)
    for i in range(warm + steps):
        t0 = time.perf_counter()
        b = next(it)
        long, short, gt = (b[k].to(dev, non_blocking=True) for k in ("long", "short", "gt"))
        _sync(dev)
        t1 = time.perf_counter()
        if device_noise:  # the step degrades its clean crops (noise.engine = "torch"), then downsamples
            import isp_sim.torch as ist

            prof = ds.profile
            long = ist.degrade(long, prof, iso=(1000.0, 1600.0), generator=gen).image
            short = ist.degrade(short, prof, iso=(8000.0, 12800.0), generator=gen).image
            if phase == 1:
                long, short, gt = (torch.nn.functional.avg_pool2d(t, 2) for t in (long, short, gt))
        opt.zero_grad(set_to_none=True)
        with autocast_context(dev, "bf16" if dev.type == "cuda" else "fp32"):
            if phase == 1:
                loss = torch.nn.functional.l1_loss(net(long, short).float(), gt)
            else:
                loss = phase2_loss(model, long, short, gt, rng, patch=crop // 4)
        loss.backward()
        opt.step()
        _sync(dev)
        t2 = time.perf_counter()
        if i == warm:
            t_all = t0
            wait = comp = 0.0
        wait += t1 - t0
        comp += t2 - t1
    total = time.perf_counter() - t_all
    step_ms = 1000 * comp / steps
    sample_rate_needed = 2 / (step_ms / 1000)
    out = {"workers": workers, "batch": 2, "crop": crop, "steps": steps, "steps_per_s": round(steps / total, 3),
           "step_ms": round(step_ms, 2), "data_wait_fraction": round(wait / total, 3),
           "samples_per_s_delivered": round(2 * steps / total, 2), "samples_per_s_needed": round(sample_rate_needed, 1)}
    per_worker = out["samples_per_s_delivered"] / workers if wait / total > 0.05 else None
    out["workers_needed_for_5pct_wait"] = int(np.ceil(sample_rate_needed / per_worker)) if per_worker else workers
    out["degradation"] = "isp_sim.torch in the step" if device_noise else "numba in the workers"
    print(f"train phase {phase} ({out['degradation']}): {out['steps_per_s']} steps/s, step {out['step_ms']} ms, data wait "
          f"{100 * out['data_wait_fraction']:.0f}% with {workers} workers", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on any device: checks that the script runs")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: all cores but one)")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per phase")
    ap.add_argument("--only", nargs="+", default=None,
                    choices=("env", "nets", "restore_16mp", "degrade", "train_phase1", "train_phase2",
                             "train_phase1_device_noise"))
    a = ap.parse_args(argv)
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type != "cuda" and not a.smoke:
        print("no CUDA device: run with --smoke to check the script on the CPU", file=sys.stderr)
        return 2
    sections = {"env": section_env, "nets": section_nets, "restore_16mp": section_restore, "degrade": section_degrade,
                "train_phase1": lambda d, x: _train(d, x, 1), "train_phase2": lambda d, x: _train(d, x, 2),
                "train_phase1_device_noise": lambda d, x: _train(d, x, 1, device_noise=True)}
    result = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "smoke": a.smoke}
    t_start = time.perf_counter()
    for name, fn in sections.items():
        if a.only and name not in a.only:
            continue
        t = time.perf_counter()
        try:
            result[name] = fn(dev, a)
        except Exception as exc:  # noqa: BLE001 - record and go on: one run must bring back every section it can
            result[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
            print(f"{name}: FAILED {type(exc).__name__}: {exc}", flush=True)
        result.setdefault("seconds", {})[name] = round(time.perf_counter() - t, 1)
        Path(a.out).write_text(json.dumps(result, indent=2))
    result["seconds"]["total"] = round(time.perf_counter() - t_start, 1)
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {a.out} ({result['seconds']['total']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
