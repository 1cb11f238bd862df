"""Speed of isp_sim.degrade (D2HNet recipe) against the release-path baseline, side by side.

    python -m benchmarks.bench_degrade [--size 1024] [--repeat 5] [--no-12mp]

Baseline: ../shared/bench/official_degrade.py (NumPy/SciPy/colour-demosaicing
restatement of the D2HNet release's noise path). Ours: isp_sim.degrade with the
bundled mi_note10 profile, gamma 2.2, Menon 2007 demosaicing, the same ISO (8000).
Both run in this process on the same input; numba runs with 1 and with 2 threads.
Peak memory and first-call latency are measured in fresh subprocesses
(ru_maxrss; a warm numba cache is the on-disk cache written by earlier runs).
Prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT.parent / "shared" / "bench" / "official_degrade.py"


def load_baseline():
    spec = importlib.util.spec_from_file_location("official_degrade", BASELINE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timeit(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def stage_times(img, profile, repeat):
    from isp_sim import add_noise, degrade, process, unprocess
    from isp_sim.demosaic import demosaic

    r = degrade(img, profile, iso=8000, seed=0)
    p = r.params
    n = p.noise
    kw = dict(pattern=p.pattern, wb=p.wb, settings=p.settings, black_level=n.black_level, white_level=n.white_level)
    clean = unprocess(img, **kw)
    raw = add_noise(clean, n, p.pattern, key=p.noise_key)
    cfa = (raw.astype(np.float32) - 64) / 959
    return {
        "unprocess": timeit(lambda: unprocess(img, **kw), repeat),
        "add_noise": timeit(lambda: add_noise(clean, n, p.pattern, key=p.noise_key), repeat),
        "process": timeit(lambda: process(raw, **kw), repeat),
        "  of which demosaic (Menon)": timeit(lambda: demosaic(cfa, p.pattern, "menon2007"), repeat),
        "degrade (total)": timeit(lambda: degrade(img, profile, iso=8000, wb=p.wb, seed=0), repeat),
    }


# peak memory from /proc/self/status (VmHWM: this process's high-water mark; ru_maxrss would
# carry over the parent's across exec). "before" = resident size with imports and input ready.
MEM = r"""
def mem(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
"""

CHILD = MEM + r"""
import sys, time, json
t0 = time.perf_counter()
import numpy as np
import isp_sim
t_import = time.perf_counter() - t0
h, w = int(sys.argv[1]), int(sys.argv[2])
img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
before = mem("VmRSS")
t = time.perf_counter()
isp_sim.degrade(img, "mi_note10", iso=8000, seed=0)
first = time.perf_counter() - t
print(json.dumps({"import_s": t_import, "first_call_s": first, "peak_rss_mb": mem("VmHWM"), "before_mb": before}))
"""

CHILD_OFFICIAL = MEM + r"""
import importlib.util, sys, json
import numpy as np
spec = importlib.util.spec_from_file_location("o", sys.argv[3]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
h, w = int(sys.argv[1]), int(sys.argv[2])
img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32).astype(np.float64)
before = mem("VmRSS")
m.degrade(img, 8000, np.random.default_rng(0))
print(json.dumps({"peak_rss_mb": mem("VmHWM"), "before_mb": before}))
"""


def child(code, *args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-12mp", action="store_true")
    a = ap.parse_args()
    import numba

    import isp_sim

    official = load_baseline()
    profile = isp_sim.load_profile("mi_note10")
    rng = np.random.default_rng(0)
    n = a.size
    img = rng.random((n, n, 3), dtype=np.float32)
    img64 = img.astype(np.float64)
    isp_sim.degrade(img[:64, :64], profile, iso=8000, seed=0)  # compile / load cache

    print(f"# isp_sim.degrade vs release path, {n}x{n}, mi_note10 ISO 8000, Menon 2007 both sides")
    print(f"machine: {platform.processor() or platform.machine()}, {numba.config.NUMBA_NUM_THREADS} numba threads max, "
          f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}\n")
    t_off = timeit(lambda: official.degrade(img64, 8000, np.random.default_rng(0)), max(2, a.repeat // 2))
    rows = {}
    for threads in (1, 2):
        if threads > numba.config.NUMBA_NUM_THREADS:
            continue
        numba.set_num_threads(threads)
        rows[threads] = stage_times(img, profile, a.repeat)
    t_off2 = timeit(lambda: official.degrade(img64, 8000, np.random.default_rng(0)), max(2, a.repeat // 2))
    t_off = min(t_off, t_off2)
    print(f"| stage ({n}x{n}) | " + " | ".join(f"ours, {t} thread{'s' if t > 1 else ''} (ms)" for t in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for stage in next(iter(rows.values())):
        print(f"| {stage} | " + " | ".join(f"{rows[t][stage] * 1e3:.1f}" for t in rows) + " |")
    print(f"| release path (official_degrade.py) | {t_off * 1e3:.0f} (NumPy, single-threaded) | |")
    print()
    for t in rows:
        print(f"speed-up, {t} thread(s): {t_off / rows[t]['degrade (total)']:.1f}x")
    # a natural photo (bundled astronaut, 512x512, bilinearly upsampled to the benchmark size):
    # shot-noise cost depends on the signal, the release path's does not
    from scipy import ndimage

    from isp_sim.imageio import read_rgb, sample_image_path

    photo, _ = read_rgb(sample_image_path("astronaut"))
    photo = np.clip(ndimage.zoom(photo, (n / photo.shape[0], n / photo.shape[1], 1), order=1), 0, 1).astype(np.float32)
    t_off_photo = timeit(lambda: official.degrade(photo.astype(np.float64), 8000, np.random.default_rng(0)), 2)
    for t in rows:
        numba.set_num_threads(t)
        tp = timeit(lambda: isp_sim.degrade(photo, profile, iso=8000, wb=(2.0, 1.7), seed=0), a.repeat)
        print(f"natural photo input, {t} thread(s): ours {tp * 1e3:.1f} ms, release path {t_off_photo * 1e3:.0f} ms, "
              f"speed-up {t_off_photo / tp:.1f}x")
    mp = n * n / 1e6
    print(f"ours: {rows[max(rows)]['degrade (total)'] * 1e3 / mp:.1f} ms/MP with {max(rows)} threads; release: {t_off * 1e3 / mp:.0f} ms/MP\n")
    if not a.no_12mp:
        big = rng.random((3472, 4624, 3), dtype=np.float32)
        numba.set_num_threads(max(rows))
        t_big = timeit(lambda: isp_sim.degrade(big, profile, iso=8000, seed=0), 2)
        t_big_off = timeit(lambda: official.degrade(big.astype(np.float64), 8000, np.random.default_rng(0)), 1)
        print(f"12 MP frame (3472x4624): ours {t_big:.2f} s ({max(rows)} threads), release path {t_big_off:.1f} s, "
              f"ratio {t_big_off / t_big:.1f}x")
        c = child(CHILD, 3472, 4624)
        o = child(CHILD_OFFICIAL, 3472, 4624, BASELINE)
        print(f"peak memory for one 12 MP degrade (fresh process, VmHWM): ours {c['peak_rss_mb']:.0f} MB "
              f"(of which input float32 + imports {c['before_mb']:.0f} MB), release path {o['peak_rss_mb']:.0f} MB "
              f"(input float64 + imports {o['before_mb']:.0f} MB)")
    c = child(CHILD, 256, 256)
    print(f"fresh process, warm numba cache: import isp_sim {c['import_s'] * 1e3:.0f} ms, "
          f"first degrade() of 256x256 {c['first_call_s'] * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
