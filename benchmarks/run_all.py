"""Run the benchmarks behind BENCHMARKS.md (``python3 run.py bench [--all]``).

Default: isp_sim.degrade vs the release path, and the demosaicers vs colour-demosaicing
(a few minutes). ``--all`` adds calibration of a simulated 12 MP session (writes ~3.5 GB to a
temporary folder), CPU restore with d2hnet, and d2hnet's data-loader throughput.
Each script prints its own table; run them one at a time on a quiet machine.
"""

from __future__ import annotations

import subprocess
import sys

QUICK = ["benchmarks.bench_degrade", "benchmarks.bench_demosaic"]
ALL = QUICK + ["benchmarks.bench_calibration", "benchmarks.bench_d2hnet_restore", "benchmarks.bench_d2hnet_data"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    mods = ALL if "--all" in argv else QUICK
    rc = 0
    for m in mods:
        print(f"\n##### python -m {m}", flush=True)
        rc |= subprocess.call([sys.executable, "-m", m])
    return rc


if __name__ == "__main__":
    sys.exit(main())
