"""The README's main job on the bundled defaults.

1. Degrade the bundled sample image (coffee.png, CC0) with the bundled ``mi_note10``
   profile at a long-exposure ISO (1000) and a short-exposure ISO (8000), sharing
   white balance, and write the noisy images, their raw DNGs and a side-by-side PNG.
2. Simulate a dark/flat DNG capture session of that phone, calibrate it with
   ``calibrate --raw-dir``, print recovered vs true parameters, and degrade the
   sample image with the recovered profile (see examples/calibration_main_job.py).

Run: ``python3 run.py demo`` (or ``python -m examples.main_job -o out/demo``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = Path(a.output)
    from isp_sim.demo import run_demo

    print("== 1. degrade the sample image with the bundled mi_note10 profile")
    run_demo(out / "degrade", profile="mi_note10", long_iso=1000, short_iso=8000, seed=a.seed)
    print("\n== 2. simulate a capture session, calibrate it, compare with the truth")
    from examples.calibration_main_job import main as calibration_job

    rc = calibration_job(["-o", str(out / "calibration"), "--seed", str(a.seed)])
    if rc == 0:
        print(f"\ndone: see {out / 'degrade' / 'side_by_side.png'} and {out / 'calibration' / 'session' / 'report'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
