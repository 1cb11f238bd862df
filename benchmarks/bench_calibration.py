"""Benchmark: wall time and peak memory of ``calibrate --raw-dir`` on a simulated 12 MP session.

Session: 6 ISOs x (16 dark frames + 4 flat pairs) of the bundled mi_note10 profile, 3000x4000 DNGs
(~3.5 GB on disk; written once to --work). Each calibration runs in a fresh subprocess so its peak
resident memory (ru_maxrss) is its own; jobs=1 and jobs=2 are measured side by side.

    python benchmarks/bench_calibration.py [--size 3000 4000] [--work /tmp/bench_cal] [--jobs 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, warnings
from calibration import calibrate
t = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    res = calibrate(sys.argv[1], jobs=int(sys.argv[2]), progress=False)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "isos": res.isos, "n_files": res.profile.provenance["n_files"]}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(3000, 4000), metavar=("H", "W"))
    ap.add_argument("--work", default="/tmp/bench_calibration")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--isos", type=float, nargs="+", default=[800, 1600, 3200, 6400, 9600, 12800])
    a = ap.parse_args(argv)
    work = Path(a.work) / f"{a.size[0]}x{a.size[1]}"
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if not (work / "truth.json").exists():
        from calibration import simulate_capture

        t = time.perf_counter()
        simulate_capture("mi_note10", work, isos=a.isos, size=tuple(a.size), n_dark=16, n_flat_pairs=4, seed=0,
                         progress=True)
        print(f"simulated session in {time.perf_counter() - t:.1f} s")
    n = len(list(work.rglob("*.dng")))
    size_gb = sum(p.stat().st_size for p in work.rglob("*.dng")) / 1e9
    frame_mb = a.size[0] * a.size[1] * 2 / 1e6
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"session: {n} DNGs of {a.size[0]}x{a.size[1]} ({frame_mb:.0f} MB each as uint16), {size_gb:.2f} GB")
    for j in a.jobs:
        out = subprocess.run([sys.executable, "-c", CHILD, str(work), str(j)], capture_output=True, text=True, env=env)
        if out.returncode:
            print(out.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"jobs={j}: wall {r['wall_s']:.1f} s ({r['wall_s'] / n * 1000:.0f} ms/frame), peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(= {r['peak_rss_mb'] / frame_mb:.1f} frames), {len(r['isos'])} ISOs, {r['n_files']} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
