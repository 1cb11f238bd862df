"""Accuracy of calibration without a lab, against the truth and the flat-field calibration of the same phone.

Two simulated phones (the bundled mi_note10, PRNU 1%; examples/profiles/sim_phone_b.json, PRNU 0.5%), each
across its ISO range: a photo session (2 dead-leaves scenes per ISO at the frame's native resolution, bursts of
4 frames with 0.05 px tripod jitter, no flats, no darks) and a flat-field session (16 darks, 4 flat pairs) of
the same sensor. Per ISO the largest K error over the four channels of each estimator: bursts, single frames
(the first frame of each burst alone), the DNG tag (the simulator writes the true model there, so it only
checks the conversion), the flat-field calibration; and the read-std error of the burst calibration (no darks:
Gaussian, including row noise).

    python benchmarks/bench_labfree.py [--size 512 768] [--work /tmp/bench_labfree]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

PHONES = [("mi_note10", [800, 1600, 3200, 6400, 12800], 0.01),
          ("examples/profiles/sim_phone_b.json", [100, 400, 1600, 6400], 0.005)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(512, 768))
    ap.add_argument("--work", default="/tmp/bench_labfree")
    a = ap.parse_args(argv)
    from calibration import calibrate, simulate_capture
    from calibration.labfree import single_estimate
    from calibration.rawio import read_raw

    root = Path(__file__).resolve().parents[1]
    print("| phone | ISO | burst K | single-frame K | DNG tag K | flat-field K | burst read std (no darks) |")
    print("|---|---|---|---|---|---|---|")
    for prof, isos, prnu in PHONES:
        pname = Path(prof).stem
        prof_path = prof if not prof.endswith(".json") else str(root / prof)
        w = Path(a.work) / pname
        s = simulate_capture(prof_path, w / "photos_session", isos=isos, n_dark=0, n_flat_pairs=0, size=tuple(a.size),
                             n_scenes=2, burst=4, jitter=0.05, prnu=prnu, seed=7)
        simulate_capture(prof_path, w / "flat_session", isos=isos, n_dark=16, n_flat_pairs=4, size=tuple(a.size),
                         prnu=prnu, seed=7)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rp = calibrate(w / "photos_session", progress=False)
            rf = calibrate(w / "flat_session", progress=False)
        for iso in isos:
            t = s.truth[float(iso)]
            ep = rp.estimates[float(iso)]
            bursts = [le for le in ep.labfree if le.method == "burst"]
            kb = float(np.max(np.abs(ep.K / t.K - 1)))
            singles = []
            for files in s.photo_files[float(iso)]:
                fr = read_raw(files[0])
                try:
                    singles.append(single_estimate(fr.data, fr.pattern, fr.black_level, fr.white_level).K)
                except ValueError:
                    pass
            ks = float(np.max(np.abs(np.median(singles, 0) / t.K - 1))) if singles else float("nan")
            tag = [le for le in ep.labfree if le.method == "dng_tag"]
            kt = float(np.max(np.abs(tag[0].K / t.K - 1))) if tag else float("nan")
            kf = float(np.max(np.abs(rf.estimates[float(iso)].K / t.K - 1)))
            want = np.sqrt(t.read_std**2 + t.row_std**2)
            rd = np.asarray(ep.law["read_std"]) / want - 1
            big = want > 1
            rdm = f"{100 * float(np.max(np.abs(rd[big]))):.1f}%" if big.any() else "(< 1 DN)"
            print(f"| {pname} | {iso} | {100 * kb:.2f}% ({len(bursts)} bursts) | {100 * ks:.1f}% | {100 * kt:.2g}% | "
                  f"{100 * kf:.2f}% | {rdm} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
