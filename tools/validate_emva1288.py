#!/usr/bin/env python3
"""Validate calibration.emva1288 against the EMVA reference implementation (PyPI ``emva1288`` 1.0.2).

The reference needs numpy < 2, so it runs in its own virtual environment (created on first use):

    python tools/validate_emva1288.py [--venv /tmp/emva_ref_venv] [--out /tmp/emva_validation]

Steps: (1) in the reference venv, generate a measurement with the reference's own camera simulator
(``emva1288.camera.dataset_generator.DatasetGenerator``) and compute the reference results
(``process.ParseEmvaDescriptorFile`` -> ``LoadImageData`` -> ``Data1288`` -> ``Results1288``);
(2) run ``calibration.emva1288`` on the same descriptor in this project's environment; (3) print the
relative difference of every quantity (paste the table into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import venv
from pathlib import Path

QUANTITIES = ("K", "R", "QE", "sigma_y_dark", "sigma_d", "u_p_min", "u_e_sat", "SNR_max", "DR", "DSNU1288",
              "PRNU1288", "LE_min", "LE_max")

REF_SCRIPT = r"""
import json, sys
import numpy as np
from emva1288 import process
from emva1288.camera.dataset_generator import DatasetGenerator
out = sys.argv[1]
ds = DatasetGenerator(height=240, width=320, bit_depth=12, steps=50, exposure_fixed=None, path=out, seed=0)
desc = ds.descriptor_path
parser = process.ParseEmvaDescriptorFile(desc)
imgs = process.LoadImageData(parser.images)
dat = process.Data1288(imgs.data)
res = process.Results1288(dat.data)
vals = {}
for q in %r:
    v = getattr(res, q)
    v = v() if callable(v) else v
    vals[q] = None if v is None else float(v)
vals["QE"] = vals["QE"] / 100.0  # the reference reports QE in %%
cam = ds.cam if hasattr(ds, "cam") else None
truth = {}
if cam is not None:
    for k in ("K", "_sigma2_dark_0", "_dsnu", "_prnu"):
        if hasattr(cam, k):
            try:
                truth[k] = float(np.mean(getattr(cam, k)))
            except Exception:
                pass
print(json.dumps({"descriptor": desc, "reference": vals, "camera": truth}))
""" % (QUANTITIES,)

OURS_SCRIPT = r"""
import json, sys, warnings
from calibration import emva1288
r = emva1288(sys.argv[1])
print(json.dumps({q: getattr(r, q) for q in %r}))
""" % (QUANTITIES,)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", default="/tmp/emva_ref_venv")
    ap.add_argument("--out", default="/tmp/emva_validation")
    a = ap.parse_args(argv)
    vdir = Path(a.venv)
    py = vdir / "bin" / "python"
    if not py.exists():
        venv.create(vdir, with_pip=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy<2", "scipy<1.14", "emva1288==1.0.2",
                        "matplotlib<3.9", "pillow"], check=True)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    ref = subprocess.run([str(py), "-c", REF_SCRIPT, a.out], capture_output=True, text=True)
    if ref.returncode:
        print(ref.stderr)
        return 1
    refj = json.loads(ref.stdout.strip().splitlines()[-1])
    root = Path(__file__).resolve().parents[1]
    ours = subprocess.run([sys.executable, "-c", OURS_SCRIPT, refj["descriptor"]], capture_output=True, text=True,
                          cwd=root)
    if ours.returncode:
        print(ours.stderr)
        return 1
    oj = json.loads(ours.stdout.strip().splitlines()[-1])
    print(f"descriptor: {refj['descriptor']}; simulator camera: {refj['camera']}")
    print(f"| quantity | reference emva1288 1.0.2 | calibration.emva1288 | relative difference |")
    print("|---|---|---|---|")
    for q in QUANTITIES:
        r, o = refj["reference"].get(q), oj.get(q)
        if r is None or o is None:
            print(f"| {q} | {r} | {o} | - |")
            continue
        rel = (o - r) / abs(r) if r else float("nan")
        print(f"| {q} | {r:.6g} | {o:.6g} | {100 * rel:+.3f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
