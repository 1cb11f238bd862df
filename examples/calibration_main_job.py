"""Calibration main job: simulate a capture session from a bundled profile, calibrate it, compare, degrade.

1. ``calibration.simulate_capture``: dark and flat DNGs of a phone with the bundled ``mi_note10`` noise
   (plus PRNU, DSNU and vignetting), at five ISOs.
2. ``calibrate --raw-dir``: fit the noise profile back from the DNGs (profile.json + report/).
3. Print recovered vs true parameters.
4. Degrade the bundled sample image with the recovered profile.

Run: ``python -m examples.calibration_main_job -o out/calibration`` (about a minute at 512x768).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="out/calibration")
    ap.add_argument("--size", type=int, nargs=2, default=(512, 768), metavar=("H", "W"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = Path(a.output)
    from calibration import simulate_capture
    from calibration.cli import main as calibrate_main
    from isp_sim import load_profile

    truth = load_profile("mi_note10")
    isos = [1000, 2000, 4000, 8000, 12800]
    print(f"-- simulate a session of mi_note10 at ISO {isos} into {out / 'session'}")
    simulate_capture(truth, out / "session", isos=isos, size=tuple(a.size), seed=a.seed, progress=True)
    print("-- calibrate --raw-dir", out / "session")
    rc = calibrate_main(["--raw-dir", str(out / "session"), "--jobs", "2"])
    if rc:
        return rc
    rec = load_profile(out / "session" / "profile.json")
    print("-- recovered vs true (G channel K in DN/e-, read std in DN, Tukey lambda)")
    print(f"{'ISO':>6} {'K true':>8} {'K rec':>8} {'err%':>6} {'read true':>9} {'read rec':>8} {'lam true':>8} {'lam rec':>8}")
    for iso in isos:
        t, r = truth.at_iso(iso), rec.at_iso(iso)
        print(f"{iso:>6} {t.K[1]:8.4f} {r.K[1]:8.4f} {100 * (r.K[1] / t.K[1] - 1):6.2f} {t.read_std[1]:9.3f} "
              f"{r.read_std[1]:8.3f} {t.read_lambda[1]:8.3f} {r.read_lambda[1]:8.3f}")
    print("-- degrade the sample image with the recovered profile at ISO 4000")
    from isp_sim import degrade
    from isp_sim.imageio import read_rgb, sample_image_path, write_image

    img, _ = read_rgb(sample_image_path("coffee"))
    img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
    res = degrade(img, rec, iso=4000, seed=a.seed)
    write_image(out / "degraded_iso4000.png", res.image)
    print("wrote", out / "degraded_iso4000.png", "noise std", float(np.std(res.image - img)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
