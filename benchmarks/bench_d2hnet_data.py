"""How fast one DataLoader worker makes D2HNet training samples, and how many workers an H100 needs.

Measures :meth:`d2hnet.data.TrainDataset.sample` in one process set up as a
DataLoader worker (:func:`d2hnet.data.worker_init_fn`: one numba thread, one torch
thread, glibc keeping freed memory for reuse): read the
long and short PNG of a tuple, crop 1024x1024, IA, CA, two calls of
``isp_sim.degrade`` (long and short, ``mi_note10``), CutNoise; phase 1 adds
the x2 area downsampling. The tuple is a 1400x1400 upscaled bundled photo
(8-bit PNGs, as D2-Dataset's).

GPU side: NOT measured (no GPU in this run). The step time is an ESTIMATE
from the MAC counts in docs/d2hnet.md (DeblurNet ~346 GMAC at 512^2,
EnhanceNet ~67 GMAC per 256^2 crop), training = 3x forward, and an assumed
sustained H100 throughput (``--tflops``, default 250 TFLOP/s bf16, about
25% of the dense peak; the deformable convs run in float32 and lower it
further in phase 2, ``--tflops2``, default 120). Replace it with a measured
step time (``--gpu-step-ms1/2``) when a GPU is at hand.

With the decoded-image cache (``data.decoded_cache``, the trainer's default) the PNGs are decoded once,
then read as memory-mapped arrays; ``--no-cache`` measures decoding every sample. The same process times
``isp_sim.degrade`` of a 1024x1024 crop (one thread), so the last line relates the two:
``phase1_ms_per_sample=X degrade1024_ms=Y`` (a phase-1 sample degrades two such crops).

    python benchmarks/bench_d2hnet_data.py [--n 6] [--no-cache]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6, help="samples timed per phase (after one warm-up)")
    ap.add_argument("--tflops", type=float, default=250.0, help="assumed sustained TFLOP/s, phase 1")
    ap.add_argument("--tflops2", type=float, default=120.0, help="assumed sustained TFLOP/s, phase 2")
    ap.add_argument("--gpu-step-ms1", type=float, default=None, help="measured phase-1 step time (batch 2), ms")
    ap.add_argument("--gpu-step-ms2", type=float, default=None, help="measured phase-2 step time (batch 2), ms")
    ap.add_argument("--no-cache", action="store_true", help="decode the PNGs for every sample (no decoded cache)")
    args = ap.parse_args()

    import torch
    from PIL import Image

    import isp_sim
    from d2hnet.data import SampleSettings, TrainDataset, scan_dataset, worker_init_fn
    from d2hnet.data.decoded import DecodedCache
    from isp_sim.imageio import sample_image_path

    worker_init_fn(0)  # as a DataLoader worker: one numba and one torch thread, freed memory kept for reuse
    prof = isp_sim.load_profile("mi_note10")
    with tempfile.TemporaryDirectory() as tmp:
        big = Image.open(sample_image_path("astronaut")).convert("RGB").resize((1400, 1400), Image.BICUBIC)
        blur = big.resize((700, 700), Image.BILINEAR).resize((1400, 1400), Image.BILINEAR)
        for s, im in (("long8", blur), ("short", big)):
            im.save(Path(tmp) / f"bench_0000_{s}.png")
        recs = scan_dataset(tmp)
        rates = {}
        cache = None if args.no_cache else DecodedCache(Path(tmp) / "decoded")
        x = np.asarray(big, np.float32)[:1024, :1024] / 255
        isp_sim.degrade(x, prof, iso=1000, seed=0)  # warm-up (numba compile)
        deg = []
        for phase in (1, 2):
            ds = TrainDataset(recs, prof, SampleSettings(phase=phase), seed=0, decoded_cache=cache)
            ds.sample(0, 0)  # warm-up (numba compile, cache fill)
            per = []
            for e in range(args.n):
                # alternate: one sample, then one degrade of a 1024x1024 crop, so both see the same machine state
                t = time.perf_counter()
                ds.sample(0, e + 1)
                per.append(time.perf_counter() - t)
                t = time.perf_counter()
                isp_sim.degrade(x, prof, iso=1000, seed=e)
                deg.append(time.perf_counter() - t)
            rates[phase] = 1 / float(np.median(per))
            print(f"phase {phase}: one worker makes {rates[phase]:.2f} samples/s "
                  f"({1000 / rates[phase]:.0f} ms per sample, median; range {1000 * min(per):.0f}-{1000 * max(per):.0f}; "
                  f"two noisy 1024x1024 crops; decoded cache {'off' if cache is None else 'on'})")
        d_ms = 1000 * float(np.median(deg))
        print(f"  isp_sim.degrade 1024x1024 (1 thread), alternating with the samples: {d_ms:.0f} ms per image "
              f"(range {1000 * min(deg):.0f}-{1000 * max(deg):.0f}); a phase-1 sample = "
              f"{1000 / rates[1] / (2 * d_ms):.2f} x its two degrades")

    gmac1 = 346.0 * 3  # DeblurNet 512^2 fwd + bwd, per sample
    gmac2 = 346.0 + 2 * 67.0 * 3  # frozen DeblurNet fwd + two 256^2 EnhanceNet crops fwd + bwd
    est1 = args.gpu_step_ms1 or 2 * 2 * gmac1 / (args.tflops * 1e3) * 1e3
    est2 = args.gpu_step_ms2 or 2 * 2 * gmac2 / (args.tflops2 * 1e3) * 1e3
    for phase, ms, measured in ((1, est1, args.gpu_step_ms1), (2, est2, args.gpu_step_ms2)):
        need = 2 / (ms / 1000)  # batch 2
        label = "measured" if measured else "ESTIMATE from MACs"
        print(f"phase {phase}: H100 step (batch 2) {ms:.1f} ms [{label}] -> {need:.0f} samples/s -> "
              f"{int(np.ceil(need / rates[phase]))} CPU workers to keep it busy")
    print(f"phase1_ms_per_sample={1000 / rates[1]:.1f} degrade1024_ms={d_ms:.1f}")


if __name__ == "__main__":
    main()
