"""Command line: ``isp-sim degrade | profiles | show-profile | demo``.

    isp-sim degrade IMAGES... -o OUTDIR --profile NAME|PATH [--iso N | --k K] [--seed S] [--save-raw]
    isp-sim profiles
    isp-sim show-profile NAME|PATH
    isp-sim demo [-o OUTDIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .cli_support import (add_debug_flag, batch_summary, check_distinct_outputs, check_output_dir, cli_message,
                          non_negative_int, run_cli)
from .errors import InputError, IspSimError


#: API phrases in messages and the flags that say the same on this command line
_API_TO_FLAG = {"pass extrapolate=True": "pass --extrapolate", "use at_iso(..., extrapolate=True)": "use --iso with --extrapolate"}


def _iso_arg(text: str):
    """``--iso`` value: a number, or ``LOW:HIGH``."""
    try:
        if ":" in text:
            lo, hi = text.split(":", 1)
            val = (float(lo), float(hi))
            if not val[0] <= val[1]:
                raise argparse.ArgumentTypeError(f"range {text!r} is reversed: give LOW:HIGH with LOW <= HIGH")
            return val
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO number or LOW:HIGH, got {text!r}") from None


def _noisy_path(out: Path, path) -> Path:
    """Where ``degrade`` writes the noisy image of ``path``: ``<stem>_noisy`` with the input's PNG/TIFF suffix."""
    suffix = Path(path).suffix.lower()
    return out / f"{Path(path).stem}_noisy{suffix if suffix in ('.png', '.tif', '.tiff') else '.png'}"


def _outputs(a) -> list[tuple[str, Path]]:
    """Every ``(input, output)`` of an ``isp-sim degrade`` call, for the collision check before any work."""
    out = Path(a.output)
    res = []
    for path in a.images:
        stem = Path(path).stem
        res.append((path, _noisy_path(out, path)))
        if a.save_raw:
            res += [(path, out / f"{stem}_raw.dng"), (path, out / f"{stem}_params.json")]
    return res


def _cmd_degrade(a) -> int:
    from .degradation import degrade
    from .imageio import read_rgb, write_image
    from .pipeline import ISPSettings
    from .profile import load_profile

    profile = load_profile(a.profile)
    settings = ISPSettings(transfer=a.transfer, demosaic=a.demosaic)
    out = check_output_dir(a.output, flag="-o/--output")
    for path in a.images:
        if Path(path).is_dir():
            raise InputError(f"{path}: is a folder; give image files (.png, .tif, .tiff)")
    check_distinct_outputs(_outputs(a), inputs=a.images)
    out.mkdir(parents=True, exist_ok=True)
    children = np.random.SeedSequence(a.seed).spawn(len(a.images))
    from tqdm import tqdm

    skipped: list[str] = []
    for path, ss in tqdm(list(zip(a.images, children)), desc="degrade", unit="img", disable=a.quiet or len(a.images) < 2):
        try:
            img, depth = read_rgb(path)
            r = degrade(img, profile, iso=a.iso, k=a.k, seed=ss, settings=settings, extrapolate=a.extrapolate)
        except IspSimError as exc:
            print(f"isp-sim degrade: warning: skipping {path}: {cli_message(exc, _API_TO_FLAG)}", file=sys.stderr)
            skipped.append(str(path))
            continue
        stem = Path(path).stem
        dst = write_image(_noisy_path(out, path), r.image, bit_depth=a.bit_depth or depth)
        p = r.params
        desc = f"ISO {p.iso:.0f}" if p.iso is not None else f"K {p.K[0]:.4g} DN/e-"
        msg = f"{path} -> {dst} ({desc}, wb r={p.wb[0]:.3f} b={p.wb[2]:.3f})"
        if a.save_raw:
            dng, side = r.save_raw(out / f"{stem}_raw.dng", out / f"{stem}_params.json")
            msg += f", raw {dng.name} + {side.name}"
        if not a.quiet:
            print(msg)
    if a.quiet and not skipped:
        return 0
    return batch_summary("isp-sim degrade", len(a.images) - len(skipped), skipped)


def _cmd_profiles(a) -> int:
    from .profile import bundled_profiles, load_profile

    for name in bundled_profiles():
        p = load_profile(name)
        rng = (f"ISO {p.iso_range[0]:g}-{p.iso_range[1]:g}" if p.iso_range else
               f"K {p.k_range[0]:.3g}-{p.k_range[1]:.3g} DN/e-")
        print(f"{name:15s} {p.sensor.camera:28s} {p.sensor.pattern} {p.sensor.bit_depth:2d}-bit  {rng}")
    return 0


def _cmd_show(a) -> int:
    from .profile import load_profile

    p = load_profile(a.profile)
    print(f"{p.name}: {p.description}")
    s = p.sensor
    print(f"sensor: {s.camera}, {s.pattern}, {s.bit_depth}-bit, white {s.white_level}, black {s.black_level.tolist()}")
    print(f"index: {p.index}; " + (f"iso_range {p.iso_range}; " if p.iso_range else "") +
          f"k_range [{p.k_range[0]:.4g}, {p.k_range[1]:.4g}] DN/e-; read law {p.default_read_law}")
    print(f"source: {p.provenance.get('source', '')}")
    head = f"{'ISO' if p.index == 'iso' else 'K':>8} | {'K R':>8} {'K Gr':>8} {'K Gb':>8} {'K B':>8} | {'lambda':>7} {'read_std':>8} {'row_std':>8} | bias (R Gr Gb B)"
    print(head)
    print("-" * len(head))
    for n in p.table():
        idx = f"{n.iso:8.0f}" if n.iso is not None else f"{n.K[0]:8.4g}"
        lam = "gauss" if n.read_law == "gaussian" else f"{np.nanmean(n.read_lambda):7.3f}"
        print(f"{idx} | " + " ".join(f"{v:8.4f}" for v in n.K) + f" | {lam:>7} {n.read_std.mean():8.3f} {n.row_std:8.3f} | "
              + " ".join(f"{v:.3f}" for v in n.bias))
    return 0


def _cmd_demo(a) -> int:
    from .demo import run_demo

    run_demo(Path(a.output), profile=a.profile, long_iso=a.long_iso, short_iso=a.short_iso, seed=a.seed,
             image=a.image)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="isp-sim", description="Realistic phone-camera noise: unprocess -> calibrated sensor noise -> ISP.")
    add_debug_flag(ap)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("degrade", help="degrade sRGB images (8/16-bit PNG/TIFF) with a noise profile")
    d.add_argument("images", nargs="+", help="input images (.png, .tif, .tiff)")
    d.add_argument("-o", "--output", required=True, help="output folder")
    d.add_argument("--profile", default="mi_note10", help="bundled profile name or path to a profile .json (default mi_note10)")
    g = d.add_mutually_exclusive_group()
    g.add_argument("--iso", type=_iso_arg, help="ISO, or LOW:HIGH to draw log-uniformly (default: drawn from the profile)")
    g.add_argument("--k", type=float, help="system gain K in DN per electron (K-indexed profiles)")
    d.add_argument("--seed", type=non_negative_int, default=None, help="random seed (default: fresh entropy, recorded with --save-raw)")
    d.add_argument("--save-raw", action="store_true", help="also write the noisy mosaic as DNG plus a JSON sidecar of the params")
    d.add_argument("--demosaic", default="menon2007", choices=("bilinear", "malvar2004", "menon2007"),
                   help="demosaicing of the forward ISP (default menon2007)")
    d.add_argument("--transfer", default="gamma", choices=("gamma", "srgb", "linear"))
    d.add_argument("--bit-depth", type=int, choices=(8, 16), default=None, help="output bit depth (default: the input's)")
    d.add_argument("--extrapolate", action="store_true", help="allow ISO/K outside the profile's range (warns)")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=_cmd_degrade)
    p = sub.add_parser("profiles", help="list the bundled noise profiles")
    p.set_defaults(func=_cmd_profiles)
    s = sub.add_parser("show-profile", help="table of noise parameters at a few ISOs or K values")
    s.add_argument("profile", help="bundled name or path")
    s.set_defaults(func=_cmd_show)
    m = sub.add_parser("demo", help="degrade the bundled sample image at a long- and a short-exposure ISO")
    m.add_argument("-o", "--output", default="out/demo")
    m.add_argument("--profile", default="mi_note10")
    m.add_argument("--long-iso", type=float, default=1000)
    m.add_argument("--short-iso", type=float, default=8000)
    m.add_argument("--seed", type=non_negative_int, default=0)
    m.add_argument("--image", default=None, help="input image (default: bundled coffee.png)")
    m.set_defaults(func=_cmd_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``isp-sim``; exit statuses as in :mod:`isp_sim.cli_support`."""
    return run_cli("isp-sim", build_parser(), argv, lambda a: a.func(a), api_to_flag=_API_TO_FLAG)


if __name__ == "__main__":
    sys.exit(main())
