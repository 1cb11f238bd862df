"""Parser and handler of ``d2hnet study`` (registered in :mod:`d2hnet.cli`); building the parser imports no torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from isp_sim.cli_support import non_negative_int as _seed
from isp_sim.cli_support import positive_int as _positive

__all__ = ["add_study_parser"]


def add_study_parser(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "study", help="per-device study: a model trained on a phone's calibrated profile vs generic, another phone's "
                      "and the release's noise, and classical baselines",
        description="Train D2HNet models that differ only in their training noise (generic Gaussian, the calibrated "
                    "profile, another phone's noise shape at equal K, the release's recipe, the calibrated profile "
                    "with another seed), score them and tuned classical baselines (Gaussian blur, NLM, BM3D, a "
                    "long/short fusion) on held-out photos degraded with the phone's true noise, with bootstrap "
                    "intervals over images. Writes OUT/study.json, summary.md, panel.png, curves.png. Default run: "
                    "about 55 min on 2 CPU cores; --quick: about 7 min (a smoke run, not evidence).")
    p.add_argument("--profile", required=True, help="the phone's calibrated profile (what `calibrate --raw-dir` wrote)")
    p.add_argument("--truth", required=True,
                   help="the phone's true profile, used only for the test noise (for a simulated phone: the "
                        "simulator's truth; passing --profile again makes the study circular, and it says so)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--other-profile", default=None,
                   help="the other phone (bundled name or path; default mi_note10, or sony_a7s2 when the target is mi_note10)")
    p.add_argument("--quick", action="store_true", help="tiny budgets: every method, CIs computed; a smoke run")
    p.add_argument("--seed", type=_seed, default=0, help="seed of data, noise and training (default 0)")
    p.add_argument("--full-width", action="store_true",
                   help="the paper's widths (ngf 32) instead of the reduced CPU widths; meant for a GPU")
    p.add_argument("--init", default=None, help="checkpoint to use as d2hnet_generic instead of training it "
                                                "(e.g. OUT/d2hnet_generic.pt of an earlier, longer run)")
    p.add_argument("--jobs", type=_positive, default=None,
                   help="parallel worker processes, one core each (default 2 on the CPU, 1 with --device cuda)")
    p.add_argument("--device", default="cpu", help="where the networks train: cpu (default), cuda or cuda:N")
    p.add_argument("--overwrite", action="store_true", help="replace a study already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_study)


def _run_study(args: argparse.Namespace) -> int:
    from .study import FULL_ARCH, StudyConfig, run_study

    kw = {"seed": args.seed, "jobs": args.jobs or (2 if args.device == "cpu" else 1), "device": args.device}
    if args.full_width:
        kw["arch"] = FULL_ARCH
    cfg = StudyConfig.quick_config(**kw) if args.quick else StudyConfig(**kw)
    study = run_study(args.profile, args.truth, args.out, other_profile=args.other_profile, cfg=cfg, init=args.init,
                      overwrite=args.overwrite, progress=not args.no_progress)
    m, pr = study["methods"], study["paired"]
    print(f"{'method':<26}{'PSNR dB':>9}  95% CI")
    for name, r in m.items():
        print(f"{name:<26}{r['psnr_mean']:>9.2f}  [{r['psnr_ci95'][0]:.2f}, {r['psnr_ci95'][1]:.2f}]")
    for k in ("matched_minus_other_phone", "matched_minus_generic", "matched_minus_release_recipe",
              "matched_minus_matched_seed2", "matched_minus_ablation_no_long"):
        r = pr[k]
        print(f"{k:<34}{r['mean']:+.2f} dB  [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]")
    if study["circular"]:
        print("note: --truth equals --profile: the study is circular (the test noise is the matched model's training noise)")
    return 0
