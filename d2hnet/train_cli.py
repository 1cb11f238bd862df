"""Parsers and handlers of ``d2hnet train``, ``validate``, ``synth`` and ``make-val`` (registered in :mod:`d2hnet.cli`).

Kept apart from :mod:`d2hnet.train` so that building the parser imports no
torch (``d2hnet --help`` stays fast); handlers import what they need.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from isp_sim.cli_support import non_negative_int, positive_int

__all__ = ["add_train_parser", "add_validate_parser", "add_synth_parser", "add_make_val_parser"]


def add_train_parser(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "train", help="train D2HNet (phase 1 DeblurNet, phase 2 EnhanceNet) with a noise profile",
        description="Train D2HNet from one config file (TOML, YAML or JSON; see d2hnet.config). The config is validated "
                    "completely before training starts and copied into the run folder. Multi-GPU / multi-node: "
                    "torchrun --nproc_per_node N -m d2hnet.cli train ...")
    p.add_argument("--config", "-c", type=Path, required=True, help="config file (.toml, .yaml/.yml, .json)")
    p.add_argument("--profile", "-p", default=None,
                   help="noise profile: bundled name (e.g. mi_note10) or a profile.json from `calibrate` "
                        "(default: the config's noise.profile)")
    p.add_argument("--phase", choices=("1", "2", "both"), default="both", help="which phase(s) to run (default both)")
    p.add_argument("--resume", action="store_true", help="continue the run in run.out_dir exactly where it stopped")
    p.add_argument("--resume-from", type=Path, default=None, metavar="STATE",
                   help="continue the first phase run from a kept state (phaseP/history/state_eNNNN.pt, best_state.pt)")
    p.add_argument("--max-steps", type=positive_int, default=None, help="stop after this many steps of each phase (smoke runs)")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .train import train

    phases = (1, 2) if args.phase == "both" else (int(args.phase),)
    res = train(args.config, profile=args.profile, phases=phases, resume=args.resume, max_steps=args.max_steps,
                resume_from=args.resume_from)
    for ph, losses in res.items():
        if losses:
            print(f"phase {ph}: {len(losses)} steps, last loss {losses[-1]:.5f}", flush=True)
    return 0


def add_validate_parser(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "validate", help="PSNR/SSIM of a checkpoint on a validation set, per split (day/night/all)",
        description="PSNR and SSIM of a d2hnet checkpoint on a folder written by `d2hnet make-val`, under a named "
                    "protocol (d2hnet.metrics): standard (clamped, Gaussian 11 / sigma 1.5, data range 1) or paper "
                    "(what the D2HNet release computed: unclamped, 7x7 uniform window, data range 2; DeblurNet at x0.5). "
                    "Our figures are not comparable with the paper's: its D2-Dataset is not here.")
    p.add_argument("--checkpoint", "-c", type=Path, required=True)
    p.add_argument("--val-dir", type=Path, required=True, help="folder made by `d2hnet make-val`")
    p.add_argument("--phase", type=int, choices=(1, 2), default=2,
                   help="2: full pipeline at full resolution (default); 1: DeblurNet alone at 1/scale")
    p.add_argument("--scale", type=int, default=2, help="phase 1: DeblurNet downsampling factor (2 as in training)")
    p.add_argument("--protocol", default="standard", choices=("standard", "paper"), help="metric protocol (standard)")
    from .infer import add_deblur_args

    add_deblur_args(p)
    p.add_argument("--tile-size", type=int, default=1024, help="EnhanceNet tile size (multiple of 16)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"))
    p.add_argument("--inputs", action="store_true", help="also score the two noisy inputs (long, short, better of both)")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from .validate import evaluate, evaluate_inputs, format_results

    res = {"model": evaluate(args.checkpoint, args.val_dir, phase=args.phase, scale=args.scale, device=args.device,
                             amp=args.amp, tile_size=args.tile_size, progress=not args.no_progress,
                             protocol=args.protocol, deblur_size=args.deblur_size, deblur_scale=args.deblur_scale)}
    print(format_results(res["model"], f"{args.checkpoint} on {args.val_dir}"))
    if args.inputs:
        for k, v in evaluate_inputs(args.val_dir, protocol=args.protocol).items():
            res[f"input_{k}"] = v
            print(format_results(v, f"input: {k}"))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


def add_synth_parser(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "synth", help="synthesise training tuples from video frames or from sharp still photos",
        description="Write D2-Dataset-style tuples (<name>_<k>_{long2,long4,long6,long8,long_last,short}.png). "
                    "--frames: consecutive video frames (long = mean over the exposure, read-out gap, short = next "
                    "frame). --stills / --samples: random smooth camera-shake trajectories over sharp photos.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--frames", type=Path, help="folder of consecutive video frames")
    src.add_argument("--stills", type=Path, nargs="+", help="sharp photos (files or folders)")
    src.add_argument("--samples", action="store_true", help="use isp_sim's bundled sample photos")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--fps", type=float, default=None, help="--frames: frame rate of the frames (required)")
    p.add_argument("--long-ms", type=float, nargs=4, default=None, help="exposures of long2/4/6/8 in ms (20 40 60 80)")
    p.add_argument("--gap-ms", type=float, default=None, help="read-out gap in ms (35)")
    p.add_argument("--tuples-per-image", type=positive_int, default=1, help="stills: tuples per photo (different shakes)")
    p.add_argument("--max-shake", type=float, default=12.0, help="stills: largest shake extent in px (12)")
    p.add_argument("--short-offset", type=float, default=3.0, help="stills: extra short-frame offset in px (3)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(func=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from .data.synth import DEFAULT_GAP_MS, DEFAULT_LONG_MS, synth_from_frames, synth_from_stills
    from .errors import InputError

    long_ms = tuple(args.long_ms) if args.long_ms else DEFAULT_LONG_MS
    gap = DEFAULT_GAP_MS if args.gap_ms is None else args.gap_ms
    if args.frames is not None:
        if args.fps is None:
            raise InputError("--frames needs --fps (the frame rate of the frames)")
        names = synth_from_frames(args.frames, args.output, fps=args.fps, long_ms=long_ms, gap_ms=gap)
    else:
        if args.samples:
            from isp_sim.imageio import SAMPLE_IMAGES, sample_image_path

            files = [sample_image_path(n) for n in SAMPLE_IMAGES]
        else:
            files = []
            for s in args.stills:
                files += sorted(f for f in s.iterdir() if f.suffix.lower() in (".png", ".tif", ".tiff")) if s.is_dir() else [s]
        skipped: list = []
        names = synth_from_stills(files, args.output, tuples_per_image=args.tuples_per_image, seed=args.seed,
                                  max_shake_px=args.max_shake, short_offset_px=args.short_offset, long_ms=long_ms,
                                  gap_ms=gap, progress=True, skipped=skipped)
        print(f"{len(names)} tuples written to {args.output}")
        from isp_sim.cli_support import batch_summary

        return batch_summary("d2hnet synth", len(files) - len(skipped), [Path(f).name for f, _ in skipped])
    print(f"{len(names)} tuples written to {args.output}")
    return 0


def add_make_val_parser(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "make-val", help="write a deterministic noisy validation set from clean tuples",
        description="Degrade the long (long8) and short exposure of every tuple with the profile (shared WB, ISOs as "
                    "configured); the same seed and files give the same output. Writes <name>_{long,short,gt}.png "
                    "(day/night subfolders kept) and manifest.json.")
    p.add_argument("--profile", "-p", required=True, help="bundled profile name or profile.json")
    p.add_argument("--src", type=Path, required=True, help="folder of clean tuples (D2-Dataset or generic layout)")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--layout", default="auto", choices=("auto", "d2", "generic"))
    p.add_argument("--long-suffix", default="long8")
    p.add_argument("--crop", type=int, default=None, help="centre crop (multiple of 16) for quick validation")
    p.add_argument("--resolution", choices=("1440p", "2880p"), default=None,
                   help="resize every frame to 2560x1440 or 5120x2880 first, as the paper's two validation sets")
    p.add_argument("--recipe", default="paper", choices=("paper", "release"),
                   help="noise recipe (d2hnet.data.noise): paper (ISO x exposure fixed, shared WB) or release")
    p.add_argument("--long-iso", type=float, nargs=2, default=(1000.0, 4000.0), help="release recipe: long ISO range")
    p.add_argument("--short-iso", type=float, nargs=2, default=(6400.0, 12800.0), help="release recipe: short ISO range")
    p.add_argument("--iso-ratio", type=float, default=8.0, help="paper recipe: short ISO / long ISO")
    p.set_defaults(func=_run_make_val)


def _run_make_val(args: argparse.Namespace) -> int:
    from .data.dataset import make_val

    m = make_val(args.src, args.output, args.profile, seed=args.seed, layout=args.layout, long_suffix=args.long_suffix,
                 crop=args.crop, recipe=args.recipe, long_iso=tuple(args.long_iso), short_iso=tuple(args.short_iso),
                 iso_ratio=args.iso_ratio, progress=True, resolution=args.resolution)
    print(m)
    return 0
