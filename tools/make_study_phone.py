"""Write the truth profile of the simulated "new phone" of the per-device study (examples/profiles/sim_phone_b.json).

A phone unlike the Mi Note 10 in every respect the study is about:

=================  ============================  ==============================
                   sim_phone_b (this file)       mi_note10 (bundled)
=================  ============================  ==============================
CFA, bit depth     GRBG, 10-bit, black 48        RGGB, 10-bit, black 64
ISO range          100-6400                      800-12800
K (DN/e-)          0.00135 x ISO x (1.05, 1,     0.83-9.9 (published fit)
                   1, 0.95): 0.13-8.6
read noise         Tukey lambda -0.10 (heavy     Tukey lambda 0.09 (lighter
                   tails), std 3.2 K^0.75 DN     tails), std 1.4-12 DN
                   (about 1.6x the Mi Note 10's
                   at equal K)
row noise          std 0.35 x read std           none
bias               (0.4, -0.3, 0.2, 0.5) DN      0
=================  ============================  ==============================

Run ``python tools/make_study_phone.py`` to regenerate the file (the values
are exact laws, written by ``calibration.simulate.loglinear_profile``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "profiles" / "sim_phone_b.json"


def make():
    sys.path.insert(0, str(ROOT))
    from calibration.simulate import loglinear_profile

    read_fit = (0.75, math.log(3.2))
    return loglinear_profile("sim_phone_b", isos=(100, 200, 400, 800, 1600, 3200, 6400), k_per_iso=0.00135,
                             read_fit=read_fit, row_fit=(0.75, math.log(3.2 * 0.35)), read_lambda=-0.10,
                             pattern="GRBG", bit_depth=10, black=48.0, bias=(0.4, -0.3, 0.2, 0.5),
                             channel_k=(1.05, 1.0, 1.0, 0.95), camera="simulated phone B (d2hnet study)")


if __name__ == "__main__":
    p = make().save(OUT)
    print(f"wrote {p}")
