"""Time isp_sim.demosaic against colour-demosaicing on one mosaic, side by side.

Usage::

    python benchmarks/bench_demosaic.py [--size 1024] [--repeats 9] [--threads 1 2]

For each method: colour-demosaicing (NumPy/SciPy, float64) and ours (numba,
float32) with each requested numba thread count, every timing the median of
``--repeats`` calls after a warm-up call (which also compiles, or loads the
on-disk cache). Then the first-call latency of a fresh Python process, which
should load the compiled kernels from numba's cache instead of compiling.

The mosaic is a noisy natural-ish scene (shared texture, smooth tint, sharp
edges, Gaussian noise of 0.02): the noise makes Menon's direction decision
data-dependent, as it is on real raw frames.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
import warnings

import numba
import numpy as np

from isp_sim.cfa import mosaic
from isp_sim.demosaic import (
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
    demosaicing_CFA_Bayer_Menon2007,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # scipy.ndimage.filters namespace
    import colour_demosaicing as cd

METHODS = [
    ("bilinear", demosaicing_CFA_Bayer_bilinear, cd.demosaicing_CFA_Bayer_bilinear),
    ("malvar2004", demosaicing_CFA_Bayer_Malvar2004, cd.demosaicing_CFA_Bayer_Malvar2004),
    ("menon2007", demosaicing_CFA_Bayer_Menon2007, cd.demosaicing_CFA_Bayer_Menon2007),
]


def make_mosaic(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    lum = 0.5 + 0.05 * sum(
        np.sin(rng.uniform(0.05, 1.0) * (np.cos(th) * xx + np.sin(th) * yy) + rng.uniform(0, 6))
        for th in rng.uniform(0, np.pi, 8)
    )
    tint = np.stack(
        [0.7 + 0.3 * np.sin(0.01 * xx + p) * np.cos(0.007 * yy) for p in rng.uniform(0, 6, 3)], axis=-1
    )
    img = lum[..., None] * tint
    for _ in range(6):
        a, b, c = rng.normal(size=3)
        side = a * (xx - size / 2) + b * (yy - size / 2) + c * size / 4 > 0
        img[side] *= rng.uniform(0.4, 1.0, 3)
    img += rng.normal(0.0, 0.02, img.shape)
    return mosaic(img.astype(np.float32), "RGGB")


def median_ms(f, repeats: int) -> float:
    f()  # warm-up (compiles or loads the cache on the first call)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def fresh_process_first_call(size: int) -> str:
    code = textwrap.dedent(
        f"""
        import time
        t0 = time.perf_counter()
        import numpy as np
        from isp_sim.demosaic import DEMOSAICING_METHODS
        t1 = time.perf_counter()
        x = np.random.default_rng(0).random(({size}, {size}), dtype=np.float32)
        parts = ["import %.0f ms" % (1e3 * (t1 - t0))]
        for name, f in DEMOSAICING_METHODS.items():
            t = time.perf_counter(); f(x); t2 = time.perf_counter(); f(x); t3 = time.perf_counter()
            parts.append("%s first %.0f ms (then %.1f ms)" % (name, 1e3 * (t2 - t), 1e3 * (t3 - t2)))
        print("; ".join(parts))
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="mosaic height and width (default 1024)")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per entry (default 9)")
    parser.add_argument(
        "--reference-repeats", type=int, default=3, help="timed colour-demosaicing calls (default 3)"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="numba thread counts (default 1 2)")
    parser.add_argument("--no-fresh-process", action="store_true", help="skip the fresh-process first-call check")
    args = parser.parse_args(argv)

    threads = [t for t in args.threads if t <= numba.config.NUMBA_NUM_THREADS]
    cfa = make_mosaic(args.size)
    print(f"# demosaic {args.size}x{args.size} float32 RGGB; median of {args.repeats} (ours) / "
          f"{args.reference_repeats} (colour-demosaicing) calls after a warm-up")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numba {numba.__version__} "
          f"(threading layer chosen at first parallel call), numpy {np.__version__}")
    header = ["method", "colour-demosaicing ms"]
    header += [f"ours {t}T ms" for t in threads] + [f"speed-up {t}T" for t in threads]
    rows = []
    before = numba.get_num_threads()
    try:
        for name, ours, ref in METHODS:
            ref_ms = median_ms(lambda: ref(cfa, "RGGB"), args.reference_repeats)
            ours_ms = []
            for t in threads:
                numba.set_num_threads(t)
                ours_ms.append(median_ms(lambda: ours(cfa, "RGGB"), args.repeats))
            rows.append(
                [name, f"{ref_ms:.1f}"] + [f"{m:.2f}" for m in ours_ms] + [f"{ref_ms / m:.0f}x" for m in ours_ms]
            )
    finally:
        numba.set_num_threads(before)
    print(f"# numba threading layer: {numba.threading_layer()}")
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths]] + rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    if not args.no_fresh_process:
        print("# fresh process (numba cache warm):", fresh_process_first_call(args.size))


if __name__ == "__main__":
    main()
