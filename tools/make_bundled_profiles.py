#!/usr/bin/env python3
"""Regenerate the bundled noise profiles in isp_sim/profiles/ from published constants.

    python tools/make_bundled_profiles.py [--eld ../shared/reference/eld_camera_params.json]

Sources (facts, cited; no code copied):

* mi_note10: the D2HNet release's Mi Note 10 fits (Zhao et al., "D2HNet", ECCV 2022).
  The release writes ``K_off`` in electrons per DN as a quadratic in l = log10(ISO):
  G 0.60948693 l^2 - 5.27886693 l + 11.51749064, R 0.51866798 l^2 - 4.55091212 l + 10.04344718,
  B 0.6151894 l^2 - 5.38666882 l + 11.86832215; read noise Tukey-lambda, shape 0.09, scale
  s = exp(-0.888 ln(K_off_B) + 0.116), each draw divided by 0.9375. Here K = 1 / K_off
  (DN per electron) and the 1/0.9375 factor is folded into read_scale. The release scales sRGB to
  0..1023 as if black were already subtracted; the phone's raw is 10-bit, black 64, white 1023, so
  it has 959 DN of signal range: 0.9375 = (1024 - 64) / 1024 is a leftover of that normalisation.
  The profile tabulates the published law every 100 ISO over [800, 12800]: the release trained on
  [1000, 12800]; 800-999 is a short extrapolation of the same quadratic, included because the
  paper's protocol (short ISO = 8 x long ISO, short in [6400, 12800]) needs long ISO down to 800.
  Row noise, bias and dark current are not in the release: 0 here.
* ELD cameras: Wei et al., "A Physics-based Noise Formation Model for Extreme Low-light Raw
  Denoising", CVPR 2020, release camera_params (MIT licence), via eld_camera_params.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from isp_sim.params import tukey_lambda_std
from isp_sim.profile import profile_dict

OUT = Path(__file__).resolve().parent.parent / "isp_sim" / "profiles"

ELD = {
    # name: (release key, camera, black level, black-level note)
    "sony_a7s2": ("SonyA7S2", "Sony ILCE-7SM2 (A7S II)", 512, "black 512 as in the SID Sony A7S2 ARW files"),
    "nikon_d850": ("NikonD850", "Nikon D850", 400, "black 400: the usual 14-bit NEF black level of the D850 (not published by ELD)"),
    "canon_eos70d": ("CanonEOS70D", "Canon EOS 70D", 2048, "black 2048: nominal 14-bit Canon CR2 black (not published by ELD; real files measure it from masked pixels)"),
    "canon_eos700d": ("CanonEOS700D", "Canon EOS 700D", 2048, "black 2048: nominal 14-bit Canon CR2 black (not published by ELD; real files measure it from masked pixels)"),
    "canon_eos5d4": ("CanonEOS5D4", "Canon EOS 5D Mark IV", 2048, "black 2048: nominal 14-bit Canon CR2 black (not published by ELD; real files measure it from masked pixels)"),
}


def mi_note10_k_off(iso: float) -> tuple[float, float, float]:
    l = math.log10(iso)
    g = 0.60948693 * l**2 - 5.27886693 * l + 11.51749064
    r = 0.51866798 * l**2 - 4.55091212 * l + 10.04344718
    b = 0.6151894 * l**2 - 5.38666882 * l + 11.86832215
    return r, g, b


def mi_note10() -> dict:
    lam = 0.09
    pts = []
    for iso in range(800, 12801, 100):
        r, g, b = mi_note10_k_off(iso)
        s = math.exp(-0.888 * math.log(b) + 0.116) / 0.9375
        std = s * tukey_lambda_std(lam)
        pts.append({"iso": float(iso), "K": [1 / r, 1 / g, 1 / g, 1 / b], "read_law": "tukey_lambda",
                    "read_lambda": [lam] * 4, "read_scale": [s] * 4, "read_std": [std] * 4, "row_std": 0.0,
                    "bias": [0.0] * 4})
    kmean = [math.exp(np.mean(np.log(p["K"]))) for p in (pts[0], pts[-1])]
    return profile_dict(**{
        "name": "mi_note10",
        "description": "Xiaomi Mi Note 10 main camera as calibrated for D2HNet (ECCV 2022): published release constants.",
        "sensor": {"camera": "Xiaomi Mi Note 10", "pattern": "RGGB", "bit_depth": 10, "white_level": 1023,
                   "black_level": [64.0] * 4, "width": 4624, "height": 3472,
                   "assumptions": ["row noise, bias and dark current are not modelled by the release: set to 0"]},
        "index": "iso", "iso_range": [800.0, 12800.0], "k_range": kmean, "default_read_law": "tukey_lambda",
        "points": pts,
        "models": {"read_scale": {"slope": 0.888, "bias": 0.116 - math.log(0.9375), "sigma_residual": 0.0, "k_of": "B"}},
        "provenance": {
            "source": "D2HNet official release (Zhao et al., ECCV 2022): Mi Note 10 noise fits, tabulated every 100 ISO",
            "conversions": ["K = 1 / K_off (release K_off is electrons per DN)",
                            "read_scale = s / 0.9375 (the release divides each read-noise draw by 0.9375)",
                            "the release used 1023 DN of range where the phone has 959 (black 64): 0.9375 = (1024 - 64) / 1024",
                            "ISO 800-999 extrapolates the published quadratic (release range 1000-12800)"],
            "tool": "tools/make_bundled_profiles.py",
        },
    })


def eld(name: str, cams: dict) -> dict:
    key, camera, black, note = ELD[name]
    c = cams[key]
    # ELD packs colour bias as R, G1, B, G2 (rawpy raw_pattern codes); ours is R, Gr, Gb, B
    biases = [[row[0], row[1], row[3], row[2]] for row in c["color_bias"]]
    fit = lambda f: {"slope": f["slope"], "bias": f["bias"], "sigma_residual": f["sigma_residual"], "k_of": "mean"}
    return profile_dict(**{
        "name": name,
        "description": f"{camera}: ELD (Wei et al., CVPR 2020) published noise parameters, K-indexed.",
        "sensor": {"camera": camera, "pattern": "RGGB", "bit_depth": 14, "white_level": 16383,
                   "black_level": [float(black)] * 4, "width": None, "height": None,
                   "assumptions": [note, "pattern RGGB and white level 16383 assumed (14-bit raw); ELD parameters are "
                                         "shared by all CFA channels",
                                   "ELD records no K for its colour-bias rows: sample() draws a row uniformly, at_k() uses their mean"]},
        "index": "k", "iso_range": None, "k_range": [c["K_min"], c["K_max"]], "default_read_law": "tukey_lambda",
        "points": [],
        "models": {"read_scale": fit(c["tukey_scale_fit"]), "row_std": fit(c["row_std_fit"]),
                   "gaussian_read_std": fit(c["gaussian_read_std_fit"]),
                   "read_lambdas": c["tukey_lambda_shapes"], "biases": biases},
        "provenance": {"source": f"ELD release camera_params ({key}), Wei et al., CVPR 2020 (MIT licence)",
                       "tool": "tools/make_bundled_profiles.py"},
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eld", default=str(Path(__file__).resolve().parents[2] / "shared" / "reference" / "eld_camera_params.json"))
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    profiles = [mi_note10()]
    cams = json.loads(Path(a.eld).read_text())["cameras"]
    profiles += [eld(n, cams) for n in ELD]
    from isp_sim.profile import NoiseProfile

    for d in profiles:
        NoiseProfile.from_dict(d).save(OUT / f"{d['name']}.json")
        print("wrote", OUT / f"{d['name']}.json")


if __name__ == "__main__":
    main()
