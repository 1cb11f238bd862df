#!/usr/bin/env python3
"""Validate calibration.emva1288 against the EMVA reference implementation (PyPI ``emva1288`` 1.0.2).

The reference needs numpy < 2, so it runs in its own virtual environment (created on first use):

    python tools/validate_emva1288.py [--venv /tmp/emva_ref_venv] [--out /tmp/emva_validation]
    python tools/validate_emva1288.py --descriptor DATASETS/EMVA1288_ReferenceSet_*/EMVA1288_Data.txt

The second form compares on existing measurements, e.g. the real sets of the public EMVA1288/datasets repository
(``git clone https://github.com/EMVA1288/datasets``; not part of this project): ours with ``saturation="max"``
(the standard's definition) and ``saturation="reference"`` (the reference's backward search) against the reference.

Steps: (1) in the reference venv, generate a measurement with the reference's own camera simulator
(``emva1288.camera.dataset_generator.DatasetGenerator``: an exposure-time series, a 2-image temporal pair
plus a dark pair per step, and one L-image bright/dark spatial stack at the middle exposure) and compute the
reference results (``process.ParseEmvaDescriptorFile`` -> ``LoadImageData`` -> ``Data1288`` -> ``Results1288``);
(2) run ``calibration.emva1288`` on the same descriptor in this project's environment; (3) print the
relative difference of every quantity (paste the table into BENCHMARKS.md).

Unit conventions: the reference reports QE in %; it is divided by 100 here to match ours (a fraction).
All other quantities share units (DR and SNR_max as ratios, DSNU1288 in e-, PRNU1288 and LE in %).
Images are written as TIFF (``image_format='tif'``): the reference writes 32-bit mode-'I' images, which
Pillow >= 11 refuses to save as PNG.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import venv
from pathlib import Path

QUANTITIES = ("K", "R", "QE", "sigma_y_dark", "sigma_d", "u_p_min", "u_p_sat", "u_e_sat", "SNR_max", "DR",
              "DSNU1288", "PRNU1288", "LE_min", "LE_max")

# the reference's processing chain and the results read from it, shared by both scripts
_REF_RESULTS = """parser = process.ParseEmvaDescriptorFile(desc, loglevel=logging.WARNING)
imgs = process.LoadImageData(parser.images, loglevel=logging.WARNING)
dat = process.Data1288(imgs.data, loglevel=logging.WARNING)
res = process.Results1288(dat.data, loglevel=logging.WARNING)
vals = {}
for q in %r:
    v = getattr(res, q)
    v = v() if callable(v) else v
    vals[q] = None if v is None else float(v)
""" % (QUANTITIES,)

REF_SCRIPT = r"""
import json, logging, shutil, sys, os
import numpy as np
import emva1288
from emva1288 import process
from emva1288.camera.dataset_generator import DatasetGenerator
out, height, width, bits, steps, L, seed, dsnu_e, prnu, u_esat = sys.argv[1:11]
height, width, bits, steps, L, seed = (int(v) for v in (height, width, bits, steps, L, seed))
dsnu_e, prnu, u_esat = float(dsnu_e), float(prnu), float(u_esat)
outdir = os.path.join(out, "dataset")
shutil.rmtree(outdir, ignore_errors=True)  # the generator refuses an existing images/ folder
rng = np.random.default_rng(seed + 1000)
dsnu_map = dsnu_e * rng.standard_normal((height, width))          # e-, added to every image
prnu_map = 1.0 + prnu * rng.standard_normal((height, width))      # gain factor on the light signal
ds = DatasetGenerator(steps=steps, L=L, version="4.0", image_format="tif", outdir=outdir,
                      bit_depth=bits, width=width, height=height, seed=seed, dsnu=dsnu_map, prnu=prnu_map,
                      u_esat=u_esat)
desc = ds.descriptor_path
{results}vals["QE"] = vals["QE"] / 100.0  # the reference reports QE in %
cam = ds.cam
truth = {"K": float(cam.K), "blackoffset": float(cam.blackoffset), "sigma2_dark_0 (e-^2)": float(cam._sigma2_dark_0),
         "u_esat (e-)": float(cam._u_esat), "mean QE over wavelengths": float(np.mean(cam.qe.qe)),
         "DSNU map std (e-)": float(np.std(dsnu_map)), "PRNU map std (%)": float(100 * np.std(prnu_map))}
info = {"index_u_ysat": int(res.index_u_ysat), "index_sensitivity_max": int(res.index_sensitivity_max),
        "index_linearity": [int(res.index_linearity_min), int(res.index_linearity_max)],
        "n_temporal": int(len(res.temporal["u_p"]))}
print(json.dumps({"version": emva1288.__version__ if hasattr(emva1288, "__version__") else
                  __import__("emva1288._version", fromlist=["version"]).version,
                  "descriptor": desc, "reference": vals, "camera": truth, "info": info}))
"""

REF_DESCRIPTOR_SCRIPT = r"""
import json, logging, sys
from emva1288 import process
desc = sys.argv[1]
{results}vals["QE"] = vals["QE"] / 100.0
print(json.dumps({"reference": vals, "info": {"index_u_ysat": int(res.index_u_ysat),
                  "n_temporal": int(len(res.temporal["u_p"]))}}))
"""

REF_SCRIPT = REF_SCRIPT.replace("{results}", _REF_RESULTS)
REF_DESCRIPTOR_SCRIPT = REF_DESCRIPTOR_SCRIPT.replace("{results}", _REF_RESULTS)

OURS_SCRIPT = r"""
import json, sys, warnings
from calibration import emva1288
r = emva1288(sys.argv[1], saturation=sys.argv[2] if len(sys.argv) > 2 else "max")
t = r.temporal
print(json.dumps({"values": {q: (None if getattr(r, q) is None else float(getattr(r, q))) for q in %r},
                  "info": {"isat": int(t["isat"]), "n_temporal": int(len(t["u_p"])),
                           "n_fit": int(t["fit_range"].sum()), "n_lin": int(t["linearity_range"].sum())},
                  "notes": r.notes}))
""" % (QUANTITIES,)


def _ensure_venv(vdir: Path) -> Path:
    py = vdir / "bin" / "python"
    if not py.exists():
        venv.create(vdir, with_pip=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "emva1288==1.0.2", "numpy<2", "scipy", "matplotlib",
                        "pillow"], check=True)
    return py


def _ours(descriptor: str, saturation: str) -> dict:
    root = Path(__file__).resolve().parents[1]
    ours = subprocess.run([sys.executable, "-c", OURS_SCRIPT, descriptor, saturation], capture_output=True, text=True,
                          cwd=root)
    if ours.returncode:
        raise RuntimeError(ours.stderr)
    return json.loads(ours.stdout.strip().splitlines()[-1])


def _compare_descriptors(py: Path, descriptors, out: Path) -> int:
    """Reference vs ours on existing measurement descriptors: one row per set, the worst relative difference."""
    rows, dump = [], {}
    for desc in descriptors:
        ref = subprocess.run([str(py), "-c", REF_DESCRIPTOR_SCRIPT, desc], capture_output=True, text=True)
        if ref.returncode:
            print(ref.stderr)
            return 1
        refj = json.loads(ref.stdout.strip().splitlines()[-1])
        name = Path(desc).parent.name or desc
        dump[name] = {"reference": refj}
        for sat in ("max", "reference"):
            oj = _ours(desc, sat)
            dump[name][sat] = oj
            diffs = {q: (oj["values"][q] - r) / abs(r) for q, r in refj["reference"].items()
                     if r not in (None, 0.0) and oj["values"].get(q) is not None}
            worst = max(diffs, key=lambda q: abs(diffs[q]))
            rows.append((name, sat, refj["reference"]["K"], oj["values"]["K"], worst, diffs[worst],
                         refj["info"]["n_temporal"], oj["info"]["n_temporal"], "; ".join(oj["notes"]) or "-"))
    (out / "results_descriptors.json").write_text(json.dumps(dump, indent=2))
    print("| data set | our saturation | K reference | K ours | largest relative difference (quantity) "
          "| temporal steps (ref / ours) | our notes |")
    print("|---|---|---|---|---|---|---|")
    for name, sat, kr, ko, q, d, nr, no, notes in rows:
        print(f"| {name} | {sat} | {kr:.6g} | {ko:.6g} | {d:+.1e} ({q}) | {nr} / {no} | {notes} |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", default="/tmp/emva_ref_venv")
    ap.add_argument("--out", default="/tmp/emva_validation")
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--bits", type=int, default=12)
    ap.add_argument("--steps", type=int, default=50, help="exposure steps of the temporal series")
    ap.add_argument("--L", type=int, default=16, help="images per spatial stack")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dsnu", type=float, default=5.0, help="simulated DSNU map std (e-)")
    ap.add_argument("--prnu", type=float, default=0.01, help="simulated PRNU map std (fraction)")
    ap.add_argument("--u-esat", type=float, default=1e5,
                    help="simulated full-well capacity (e-). The simulator's default, 15000 e-, clips below the ADC "
                         "range at the auto-chosen K = 0.1 DN/e-; the series then runs far into a flat saturated "
                         "plateau (the reference's saturation search then stops at the last step) and the mid-series "
                         "spatial stack is saturated (PRNU undefined). 1e5 makes the ADC (2^bits - 1) clip first.")
    ap.add_argument("--descriptor", nargs="+", metavar="TXT",
                    help="compare on these existing descriptors (e.g. the EMVA1288/datasets real sets) instead of "
                         "simulating")
    a = ap.parse_args(argv)
    py = _ensure_venv(Path(a.venv))
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if a.descriptor:
        return _compare_descriptors(py, a.descriptor, out)
    ref = subprocess.run([str(py), "-c", REF_SCRIPT, str(out), str(a.height), str(a.width), str(a.bits), str(a.steps),
                          str(a.L), str(a.seed), str(a.dsnu), str(a.prnu), str(a.u_esat)], capture_output=True, text=True)
    if ref.returncode:
        print(ref.stderr)
        return 1
    refj = json.loads(ref.stdout.strip().splitlines()[-1])
    oj = _ours(refj["descriptor"], "max")
    (out / "results.json").write_text(json.dumps({"reference": refj, "ours": oj}, indent=2))
    print(f"reference: emva1288 {refj['version']}; descriptor: {refj['descriptor']}")
    print(f"simulated camera: {refj['camera']}")
    print(f"reference indices: {refj['info']}; ours: {oj['info']}; our notes: {oj['notes']}")
    print()
    print(f"| quantity | reference emva1288 {refj['version']} | calibration.emva1288 | relative difference |")
    print("|---|---|---|---|")
    for q in QUANTITIES:
        r, o = refj["reference"].get(q), oj["values"].get(q)
        if r is None or o is None or (isinstance(r, float) and math.isnan(r)):
            print(f"| {q} | {r} | {o} | - |")
            continue
        rel = (o - r) / abs(r) if r else float("nan")
        print(f"| {q} | {r:.6g} | {o:.6g} | {100 * rel:+.4f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
