"""Time full-resolution D2HNet restoration (DeblurNet + tiled EnhanceNet): seconds per megapixel.

Real widths (ngf 32: 19.5 M + 53.7 M parameters), random weights (xavier
0.02, seed 0) unless ``--checkpoint`` is given: the cost does not depend on
the weights. The pair is synthetic (blocky scene + noise, seeded).

Examples
--------
CPU (default 512x768, one timed run)::

    python benchmarks/bench_d2hnet_restore.py

H100, a Mi Note 10 sized pair (4624x3472), bfloat16 autocast::

    python benchmarks/bench_d2hnet_restore.py --device cuda --amp bf16 --size 3472x4624 --repeats 3

Prints one line per stage and a JSON summary (also written to ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from d2hnet.checkpoint import load_checkpoint  # noqa: E402
from d2hnet.infer import DEFAULT_DEBLUR_SIZE, DEFAULT_TILE_SIZE, deblur, enhance, reduced_size, tile_starts  # noqa: E402
from d2hnet.infer import _check_tiling  # noqa: E402
from d2hnet.models import D2HNet, count_parameters  # noqa: E402


def synthetic_pair(h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, 3, H, W)`` float32 long and short exposures of a blocky scene."""
    rng = np.random.default_rng(seed)
    base = rng.random((h // 16 + 1, w // 16 + 1, 3), dtype=np.float32)
    scene = np.kron(base, np.ones((16, 16, 1), np.float32))[:h, :w]
    long = np.clip(scene + 0.01 * rng.standard_normal((h, w, 3), dtype=np.float32), 0, 1)
    short = np.clip(0.8 * scene + 0.08 * rng.standard_normal((h, w, 3), dtype=np.float32), 0, 1)
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()  # noqa: E731
    return to_t(long), to_t(short)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    ap.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"),
                    help="autocast on CUDA (auto = bf16 on CUDA, float32 on CPU)")
    ap.add_argument("--size", default=None, help="HxW of the pair (default 512x768 on CPU, 3472x4624 on CUDA)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--deblur-size", type=int, default=DEFAULT_DEBLUR_SIZE)
    g.add_argument("--deblur-scale", type=float, default=None)
    ap.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE)
    ap.add_argument("--tile-overlap", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1, help="timed runs (median reported)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 0 on CPU, 1 on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="time a real checkpoint instead of random weights")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = ap.parse_args(argv)

    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    size = args.size or ("3472x4624" if dev.type == "cuda" else "512x768")
    h, w = (int(v) for v in size.lower().split("x"))
    warmup = args.warmup if args.warmup is not None else (1 if dev.type == "cuda" else 0)
    overlap = _check_tiling(args.tile_size, args.tile_overlap)

    if args.checkpoint is not None:
        model = load_checkpoint(args.checkpoint, device=dev)
    else:
        torch.manual_seed(0)
        model = D2HNet().eval().to(dev)
    long, short = synthetic_pair(h, w)
    rh, rw = reduced_size(h, w, args.deblur_size, args.deblur_scale)
    n_tiles = len(tile_starts(h, args.tile_size, overlap)) * len(tile_starts(w, args.tile_size, overlap))
    kw = dict(device=dev, amp=args.amp)

    runs = []
    for i in range(warmup + args.repeats):
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        _sync(dev)
        t0 = time.perf_counter()
        t_up = deblur(long, short, model.deblurnet, deblur_size=args.deblur_size, deblur_scale=args.deblur_scale, **kw)
        _sync(dev)
        t1 = time.perf_counter()
        out = enhance(long, short, t_up, model.enhancenet, tile_size=args.tile_size, tile_overlap=overlap, **kw)
        _sync(dev)
        t2 = time.perf_counter()
        assert out.shape == long.shape and torch.isfinite(out).all()
        rec = {"deblur_s": t1 - t0, "enhance_s": t2 - t1, "total_s": t2 - t0}
        if dev.type == "cuda":
            rec["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
        tag = "warmup" if i < warmup else f"run {i - warmup + 1}"
        print(f"{tag}: deblur {rec['deblur_s']:.2f} s, enhance {rec['enhance_s']:.2f} s, total {rec['total_s']:.2f} s", flush=True)
        if i >= warmup:
            runs.append(rec)

    mp = h * w / 1e6
    med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    summary = {
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {os.cpu_count()} cores visible",
        "torch": str(torch.__version__),
        "amp": args.amp if dev.type == "cuda" else "off (float32)",
        "size_hw": [h, w],
        "megapixels": mp,
        "deblur_size_hw": [rh, rw],
        "tiles": n_tiles,
        "tile_size": args.tile_size,
        "tile_overlap": overlap,
        "params": {"deblurnet": count_parameters(model.deblurnet), "enhancenet": count_parameters(model.enhancenet)},
        "repeats": args.repeats,
        **{f"median_{k}": v for k, v in med.items()},
        "seconds_per_megapixel": med["total_s"] / mp,
        "enhance_seconds_per_megapixel": med["enhance_s"] / mp,
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
    }
    print(json.dumps(summary, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
