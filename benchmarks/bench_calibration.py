"""Benchmark: wall time and peak memory of ``calibrate --raw-dir`` on a simulated 12 MP session.

Session: 6 ISOs x (16 dark frames + 4 flat pairs) of the bundled mi_note10 profile, 3000x4000 DNGs
(~3.5 GB on disk; written once to --work). Each calibration runs in a fresh subprocess so its peak
resident memory (ru_maxrss) is its own; jobs=1 and jobs=2 are measured side by side, in alternating rounds
with the *floor*: per file, rawpy open + unpack + copy of the visible raw, plus one per-channel mean and
variance in float32 (the least any calibration must do), also in a fresh process. Medians and ranges over
the rounds; the last line is machine-readable.

    python benchmarks/bench_calibration.py [--size 3000 4000] [--work /tmp/bench_cal] [--jobs 1 2] [--rounds 2]
        [--profile]

``--profile`` then adds where a warm ``--jobs 1`` calibration spends its time: cProfile's own time of the
costliest functions, per frame (one calibration to warm up, one profiled, in this process).
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

# peak resident memory of this process: VmHWM (reset by exec), not ru_maxrss, which Linux carries over from the
# forking parent (here the benchmark, after it simulated the session)
PEAK = r"""
def peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

CHILD = PEAK + r"""
import json, sys, time, warnings
from calibration import calibrate
t = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    res = calibrate(sys.argv[1], jobs=int(sys.argv[2]), progress=False)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_mb": peak_mb(), "isos": res.isos,
                  "n_files": res.profile.provenance["n_files"]}))
"""


FLOOR = PEAK + r"""
import json, sys, time
from pathlib import Path
import numpy as np
import rawpy
files = sorted(Path(sys.argv[1]).rglob("*.dng"))
t = time.perf_counter()
for f in files:
    with rawpy.imread(str(f)) as r:
        a = r.raw_image_visible.copy()
    for i in (0, 1):
        for j in (0, 1):
            p = a[i::2, j::2].astype(np.float32)
            p.mean(), p.var()
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_mb": peak_mb()}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(3000, 4000), metavar=("H", "W"))
    ap.add_argument("--work", default="/tmp/bench_calibration")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--isos", type=float, nargs="+", default=[800, 1600, 3200, 6400, 9600, 12800])
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of floor and each --jobs")
    ap.add_argument("--profile", action="store_true", help="add a cProfile table of a warm --jobs 1 run")
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
    import statistics

    runs: dict[str, list[dict]] = {}
    for rnd in range(a.rounds):
        for label, code, arg in [("floor", FLOOR, None)] + [(f"jobs={j}", CHILD, str(j)) for j in a.jobs]:
            cmd = [sys.executable, "-c", code, str(work)] + ([arg] if arg else [])
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode:
                print(out.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            runs.setdefault(label, []).append(r)
            print(f"round {rnd + 1} {label}: wall {r['wall_s']:.1f} s ({r['wall_s'] / n * 1000:.0f} ms/frame), "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    floor = statistics.median(r["wall_s"] for r in runs["floor"]) / n * 1000
    summary = {"frames": n, "floor_ms_per_frame": round(floor, 1)}
    print()
    print("| run | per frame, median (range) | x floor | peak RSS |")
    print("|---|---|---|---|")
    for label, rs in runs.items():
        per = [r["wall_s"] / n * 1000 for r in rs]
        med = statistics.median(per)
        print(f"| {label} | {med:.0f} ms ({min(per):.0f}-{max(per):.0f}) | {med / floor:.2f} | "
              f"{max(r['peak_rss_mb'] for r in rs):.0f} MB |")
        if label != "floor":
            summary[f"{label.replace('=', '')}_ms_per_frame"] = round(med, 1)
            summary[f"{label.replace('=', '')}_x_floor"] = round(med / floor, 3)
            summary[f"{label.replace('=', '')}_peak_rss_mb"] = round(max(r["peak_rss_mb"] for r in rs))
    if a.profile:
        _profile(work, n)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


def _profile(work: Path, n: int) -> None:
    import cProfile
    import pstats
    import warnings

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from calibration import calibrate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrate(work, jobs=1, progress=False)
        prof = cProfile.Profile()
        prof.enable()
        calibrate(work, jobs=1, progress=False)
        prof.disable()
    st = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    top = sorted(st.items(), key=lambda kv: -kv[1][2])[:12]
    print()
    print("| function (warm --jobs 1, cProfile) | calls | own time per frame |")
    print("|---|---|---|")
    for (f, line, name), (_, nc, tt, _, _) in top:
        print(f"| {Path(f).name}:{line}({name}) | {nc} | {tt / n * 1000:.1f} ms |")


if __name__ == "__main__":
    sys.exit(main())
