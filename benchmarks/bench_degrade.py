"""Speed of isp_sim.degrade (D2HNet recipe) against the release-path baseline, side by side.

    python -m benchmarks.bench_degrade [--size 1024] [--rounds 9] [--no-12mp] [--threads-only]

Threads: one and two numba threads on the natural photo, in a quiet window, with one core taken 30% of the time
by a pinned process (busy 3 ms of every 10), and with a busy-loop process occupying one core (5 degrades per fresh
process, alternating rounds), for each threading configuration in
``POLICIES`` (isp_sim's default: numba's TBB layer; OpenMP with isp_sim's short spin count, passive, libgomp's
default spin count and active spinning; numba's work queue), with the layer numba reported in each child and,
from the same child processes, two controls of what the machine gave the second thread in that window: a
compute-only loop and a memory triad (``benchmarks/_threads_control.py``).

Baseline: ../shared/bench/official_degrade.py (NumPy/SciPy/colour-demosaicing
restatement of the D2HNet release's noise path). Ours: isp_sim.degrade with the
bundled mi_note10 profile, gamma 2.2, Menon 2007 demosaicing, the same ISO (8000).

Method. Each thread count runs in its own fresh process (NUMBA_NUM_THREADS=1 or 2,
so a one-thread run has no idle OpenMP thread spinning beside it). In that process
the baseline and ours alternate, round after round on the same input, and the
speed-up of a round is baseline time / our time in that round: the VM's speed
drifts by tens of percent within minutes, and a ratio of two runs seconds apart
cancels most of that drift. Reported: the median of the per-round ratios and
their range, the medians of the times, per-stage times, a natural photo, a 16 MP
(3472x4624) frame, peak memory and first-call latency (fresh processes; a warm numba cache is
the on-disk cache written by earlier runs). Prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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
        "unprocess (inverse gamma, inverse WB, mosaic)": timeit(lambda: unprocess(img, **kw), repeat),
        "add_noise (Poisson, Tukey lambda, row, bias, rounding, clip)": timeit(lambda: add_noise(clean, n, p.pattern, key=p.noise_key), repeat),
        "process (WB, Menon 2007, gamma)": timeit(lambda: process(raw, **kw), repeat),
        "of which demosaic (Menon 2007)": timeit(lambda: demosaic(cfa, p.pattern, "menon2007"), repeat),
    }


def side_by_side(ours_fn, base_fn, rounds):
    """Alternate baseline and ours; returns per-round ratios and both time lists."""
    ours_fn()
    base_fn()
    t_ours, t_base = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        base_fn()
        t_base.append(time.perf_counter() - t)
        t = time.perf_counter()
        ours_fn()
        t_ours.append(time.perf_counter() - t)
    ratios = [b / o for b, o in zip(t_base, t_ours)]
    return {"ratios": ratios, "ours_s": t_ours, "base_s": t_base}


def worker(size: int, rounds: int) -> dict:
    """One process, one thread count (NUMBA_NUM_THREADS): the side-by-side runs and stage times."""
    import numba
    from scipy import ndimage

    import isp_sim
    from isp_sim.imageio import read_rgb, sample_image_path

    official = load_baseline()
    profile = isp_sim.load_profile("mi_note10")
    img = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
    img64 = img.astype(np.float64)
    photo, _ = read_rgb(sample_image_path("astronaut"))
    photo = np.clip(ndimage.zoom(photo, (size / photo.shape[0], size / photo.shape[1], 1), order=1), 0, 1).astype(np.float32)
    photo64 = photo.astype(np.float64)
    wb = (2.0, 1.7)
    out = {"threads": numba.get_num_threads()}
    out["random"] = side_by_side(lambda: isp_sim.degrade(img, profile, iso=8000, wb=wb, seed=0),
                                 lambda: official.degrade(img64, 8000, np.random.default_rng(0), wb=wb), rounds)
    out["photo"] = side_by_side(lambda: isp_sim.degrade(photo, profile, iso=8000, wb=wb, seed=0),
                                lambda: official.degrade(photo64, 8000, np.random.default_rng(0), wb=wb), rounds)
    out["stages"] = stage_times(img, profile, rounds)
    return out


THREADS_CHILD = r"""
import os, sys, time, statistics, json
import numpy as np
from scipy import ndimage
import isp_sim
from isp_sim.imageio import read_rgb, sample_image_path
size = int(sys.argv[1])
photo, _ = read_rgb(sample_image_path("astronaut"))
photo = np.clip(ndimage.zoom(photo, (size / photo.shape[0], size / photo.shape[1], 1), order=1), 0, 1).astype(np.float32)
prof = isp_sim.load_profile("mi_note10")
isp_sim.degrade(photo, prof, iso=8000, seed=0)
ts = []
for i in range(5):
    t = time.perf_counter(); isp_sim.degrade(photo, prof, iso=8000, seed=i); ts.append(time.perf_counter() - t)
import numba
out = {"median_ms": 1000 * statistics.median(ts), "layer": numba.threading_layer(), "pkg": isp_sim.__file__}
sys.path.append(os.environ["BENCH_ROOT"])  # after isp_sim's import: the controls, from this repository
from benchmarks._threads_control import control_ms
out.update(control_ms())
print(json.dumps(out))
"""


#: Threading configurations compared: (label, environment). isp_sim's default is numba's TBB layer where the ``tbb``
#: wheel is installed (pyproject, Linux x86_64), else OpenMP with isp_sim's short spin count; the OpenMP rows force
#: that layer with each wait setting (its own default applies only where neither variable is set).
POLICIES = [
    ("isp_sim default (TBB)", {}),
    ("OpenMP, isp_sim's GOMP_SPINCOUNT=10000", {"NUMBA_THREADING_LAYER": "omp"}),
    ("OpenMP, OMP_WAIT_POLICY=PASSIVE", {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "PASSIVE"}),
    ("OpenMP, libgomp default (GOMP_SPINCOUNT=300000)", {"NUMBA_THREADING_LAYER": "omp", "GOMP_SPINCOUNT": "300000"}),
    ("OpenMP, OMP_WAIT_POLICY=ACTIVE (spin)", {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "ACTIVE"}),
    ("numba work queue", {"NUMBA_THREADING_LAYER": "workqueue"}),
]


# The windows of the thread table: quiet; one core taken 30% of the time by a process pinned to it (busy 3 ms of
# every 10 ms: how a VM's stolen time or a light neighbour looks to a thread); one core held by a busy loop.
_PART = ("import os, time\nos.sched_setaffinity(0, {max(os.sched_getaffinity(0))})\nwhile True:\n"
         " t = time.perf_counter()\n while time.perf_counter() - t < 0.003: pass\n time.sleep(0.007)")
WINDOWS = [("quiet", None), ("one core 30% taken", _PART), ("one core busy", "while True: pass")]


def thread_robustness(size: int, rounds: int = 2, policies=None) -> list[str]:
    """Markdown rows: median ms (5 degrades per fresh process) for 1 / 2 threads in each of :data:`WINDOWS` (the
    partly taken core only where the OS lets a process pin itself), for each configuration in :data:`POLICIES`."""
    policies = policies or POLICIES
    windows = [w for w in WINDOWS if w[1] != _PART or hasattr(os, "sched_setaffinity")]
    res: dict[tuple, list[float]] = {}
    layers: dict[str, set] = {}
    for rnd in range(rounds):
        # each round starts at the next setting and swaps the thread order, so no setting is always measured first
        # after a window change (the first child after the busy loop stops ran up to 25% slower)
        k = rnd % len(policies)
        order = policies[k:] + policies[:k]
        for window, load in windows:
            hog = subprocess.Popen([sys.executable, "-c", load]) if load else None
            try:
                if hog:
                    time.sleep(0.2)
                    if hog.poll() is not None:  # e.g. the CPU it pins itself to is not this process's to use
                        raise RuntimeError(f"the load of the {window!r} window exited with status {hog.returncode}")
                for label, extra, *where in order:
                    for threads in ((1, 2) if rnd % 2 == 0 else (2, 1)):
                        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), BENCH_ROOT=str(ROOT))
                        for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_THREADING_LAYER"):
                            env.pop(k, None)
                        env.update(extra)
                        r = subprocess.run([sys.executable, "-c", THREADS_CHILD, str(size)], capture_output=True,
                                           text=True, cwd=where[0] if where else ROOT, env=env)
                        if r.returncode:
                            raise RuntimeError(r.stderr)
                        out = json.loads(r.stdout.strip().splitlines()[-1])
                        if not Path(out["pkg"]).resolve().is_relative_to(Path(where[0] if where else ROOT).resolve()):
                            raise RuntimeError(f"{label}: the child imported {out['pkg']}")
                        for k in ("median_ms", "compute_ms", "triad_ms"):
                            res.setdefault((window, label, threads, k), []).append(out[k])
                        layers.setdefault(label, set()).add(out["layer"])
            finally:
                if hog:
                    hog.kill()
                    hog.wait()
    rows = ["| window | threading layer, wait setting | layer numba ran | 1 thread (ms) | 2 threads (ms) | "
            "2 threads / 1 thread time | controls, same processes: compute loop, memory triad |",
            "|---|---|---|---|---|---|---|"]
    for window, _ in windows:
        for label, *_ in policies:
            def med(key, threads):
                return statistics.median(res[(window, label, threads, key)])
            one, two = med("median_ms", 1), med("median_ms", 2)
            ctl = ", ".join(f"{med(k, 2) / med(k, 1):.2f}" for k in ("compute_ms", "triad_ms"))
            rows.append(f"| {window} | {label} | {', '.join(sorted(layers[label]))} | "
                        f"{one:.1f} | {two:.1f} | {two / one:.2f} | {ctl} |")
    return rows


def run_worker(threads: int, size: int, rounds: int) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    res = subprocess.run([sys.executable, "-m", "benchmarks.bench_degrade", "--worker", "--size", str(size),
                          "--rounds", str(rounds)], capture_output=True, text=True, cwd=ROOT, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


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


def summary(run: dict) -> str:
    r = sorted(run["ratios"])
    return (f"**{statistics.median(r):.1f}x** (rounds {r[0]:.1f}-{r[-1]:.1f}x; median times: ours "
            f"{statistics.median(run['ours_s']) * 1e3:.1f} ms, release {statistics.median(run['base_s']) * 1e3:.0f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--no-12mp", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads-only", action="store_true", help="only the thread-robustness table")
    ap.add_argument("--thread-rounds", type=int, default=2, help="alternating rounds of the thread table")
    ap.add_argument("--policies", nargs="+", type=int, default=None, choices=range(len(POLICIES)),
                    help="indices into POLICIES for the thread table (default: all)")
    ap.add_argument("--against", metavar="REV", default=None,
                    help="add to the thread table isp_sim as of git revision REV (default layer), measured alongside")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.size, a.rounds)))
        return
    import numba

    import isp_sim

    n = a.size
    isp_sim.degrade(np.zeros((64, 64, 3), np.float32), "mi_note10", iso=8000, seed=0)  # fill the numba cache
    if a.threads_only or (os.cpu_count() or 1) >= 2:
        print(f"# threads: natural photo {n}x{n}, medians of 5 degrades per fresh process, {a.thread_rounds} "
              "alternating rounds")
        pol = [POLICIES[i] for i in a.policies] if a.policies else POLICIES
        with tempfile.TemporaryDirectory() as old:
            if a.against:  # that revision's package alone, imported first from the child's working directory
                tar = subprocess.run(["git", "archive", "--end-of-options", a.against, "isp_sim"], cwd=ROOT,
                                     capture_output=True)
                if tar.returncode:
                    ap.error(f"--against {a.against}: git archive failed: {tar.stderr.decode().strip()}")
                subprocess.run(["tar", "-x", "-C", old], input=tar.stdout, check=True)
                # its compiled kernels stay in the temporary folder, also where NUMBA_CACHE_DIR is set
                pol = pol + [(f"isp_sim at {a.against}, its default layer",
                              {"NUMBA_CACHE_DIR": os.path.join(old, "numba_cache")}, old)]
            print("\n".join(thread_robustness(n, a.thread_rounds, pol)) + "\n")
        if a.threads_only:
            return
    print(f"# isp_sim.degrade vs release path, {n}x{n}, mi_note10 ISO 8000, WB (2.0, 1.7), Menon 2007 both sides")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}, numba {numba.__version__}\n")
    runs = {t: run_worker(t, n, a.rounds) for t in (1, 2) if t <= (os.cpu_count() or 1)}
    print(f"| stage ({n}x{n}, random input, median) | " + " | ".join(f"ours, {t} thread{'s' if t > 1 else ''} (ms)" for t in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for stage in next(iter(runs.values()))["stages"]:
        print(f"| {stage} | " + " | ".join(f"{runs[t]['stages'][stage] * 1e3:.1f}" for t in runs) + " |")
    print(f"| **degrade, total** | " + " | ".join(f"**{statistics.median(runs[t]['random']['ours_s']) * 1e3:.1f}**" for t in runs) + " |")
    print(f"| release path (single-threaded NumPy) | " + " | ".join(f"{statistics.median(runs[t]['random']['base_s']) * 1e3:.0f}" for t in runs) + " |")
    print()
    print("| input | " + " | ".join(f"speed-up, {t} thread{'s' if t > 1 else ''}" for t in runs) + " |")
    print("|---|" + "---|" * len(runs))
    print(f"| random sRGB {n}x{n} | " + " | ".join(summary(runs[t]["random"]) for t in runs) + " |")
    print(f"| natural photo (astronaut upsampled to {n}x{n}) | " + " | ".join(summary(runs[t]["photo"]) for t in runs) + " |")
    print()
    if not a.no_12mp:
        profile = isp_sim.load_profile("mi_note10")
        official = load_baseline()
        rng = np.random.default_rng(0)
        big = rng.random((3472, 4624, 3), dtype=np.float32)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        big64 = big.astype(np.float64)
        run = side_by_side(lambda: isp_sim.degrade(big, profile, iso=8000, wb=(2.0, 1.7), seed=0),
                           lambda: official.degrade(big64, 8000, np.random.default_rng(0), wb=(2.0, 1.7)), 2)
        del big64
        print(f"16 MP frame (3472x4624, random input, {numba.get_num_threads()} threads): {summary(run)}")
        c = child(CHILD, 3472, 4624)
        o = child(CHILD_OFFICIAL, 3472, 4624, BASELINE)
        print(f"peak memory for one 16 MP degrade (fresh process, VmHWM): ours {c['peak_rss_mb']:.0f} MB "
              f"(of which input float32 + imports {c['before_mb']:.0f} MB), release path {o['peak_rss_mb']:.0f} MB "
              f"(input float64 + imports {o['before_mb']:.0f} MB)")
    c = child(CHILD, 256, 256)
    print(f"fresh process, warm numba cache: import isp_sim {c['import_s'] * 1e3:.0f} ms, "
          f"first degrade() of 256x256 {c['first_call_s'] * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
