"""isp_sim.torch on the CPU against the numba engine, 1024x1024, side by side (alternating rounds).

    python benchmarks/bench_torch_engine.py [--rounds 5] [--threads 1] [--device cpu]

Both engines degrade the same natural photo (bundled astronaut upsampled) at ISO 3200 with mi_note10 and
the same parameter record; the torch engine on ``--device`` (CPU here; GPix/s on a GPU are in
``benchmarks/gpu_check.py``). Prints the medians, the ratio of each round and a last line
``numba_ms=X torch_ms=Y``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(a.threads))
    import numba
    import numpy as np
    import torch
    from scipy import ndimage

    import isp_sim
    import isp_sim.torch as ist
    from isp_sim.imageio import read_rgb, sample_image_path

    numba.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    photo, _ = read_rgb(sample_image_path("astronaut"))
    photo = np.clip(ndimage.zoom(photo, (1024 / photo.shape[0], 1024 / photo.shape[1], 1), order=1), 0, 1)
    photo = photo.astype(np.float32)
    prof = isp_sim.load_profile("mi_note10")
    dev = torch.device(a.device)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].contiguous().to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    r = isp_sim.degrade(photo, prof, iso=3200, seed=0)
    ist.degrade(x, prof, params=[r.params], generator=gen)  # warm-up
    tn, tt = [], []
    for i in range(a.rounds):
        t = time.perf_counter()
        isp_sim.degrade(photo, prof, params=r.params)
        tn.append(time.perf_counter() - t)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        ist.degrade(x, prof, params=[r.params], generator=gen)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        tt.append(time.perf_counter() - t)
        print(f"round {i + 1}: numba {1000 * tn[-1]:.0f} ms, torch ({dev}) {1000 * tt[-1]:.0f} ms, "
              f"ratio {tt[-1] / tn[-1]:.1f}", flush=True)
    mn, mt = 1000 * statistics.median(tn), 1000 * statistics.median(tt)
    print(f"median: numba {mn:.0f} ms, torch {mt:.0f} ms ({mt / mn:.1f}x the numba time), {a.threads} thread(s)")
    print(f"numba_ms={mn:.1f} torch_ms={mt:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
