"""Command line: ``calibrate``.

    calibrate --raw-dir DIR [-o profile.json] [--report DIR] [--jobs N] [--iso-from-name REGEX] [--name NAME]
    calibrate --emva1288 DESCRIPTOR [--report DIR]
    calibrate --simulate PROFILE --out-dir DIR [--isos ...] [--size H W] [--n-dark N] [--n-flat-pairs N] [--seed S]

Defaults: the profile goes to ``DIR/profile.json``, the report to ``DIR/report/``
(EMVA: next to the descriptor, ``<descriptor>_emva1288/``). Warnings are printed
to stderr, each naming the file or ISO concerned. Exit status 0 on success, 1
when nothing could be calibrated (the message says why), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="calibrate", description="Calibrate a camera's raw noise from dark and flat frames "
                                 "(or EMVA 1288 data), or simulate a capture session to try the pipeline.")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--raw-dir", metavar="DIR", help="session folder: dark/ and flat/ sub-folders, or mixed frames")
    mode.add_argument("--emva1288", metavar="DESCRIPTOR", help="EMVA 1288 measurement descriptor (monochrome sensor)")
    mode.add_argument("--simulate", metavar="PROFILE", help="write a synthetic dark/flat DNG session from a profile")
    ap.add_argument("-o", "--output", metavar="PROFILE_JSON", help="profile path (default DIR/profile.json)")
    ap.add_argument("--report", metavar="DIR", help="report folder (default DIR/report/)")
    ap.add_argument("--no-report", action="store_true", help="write the profile only")
    ap.add_argument("--jobs", type=int, default=1, metavar="N", help="decoding threads (default 1)")
    ap.add_argument("--iso-from-name", metavar="REGEX",
                    help="ISO for files without ISO metadata: regular expression on the file name, first group = ISO "
                         "(e.g. 'iso(\\d+)')")
    ap.add_argument("--name", help="profile name (lowercase snake case; default from the camera model)")
    ap.add_argument("--min-dsnu-frames", type=int, default=4, help="dark frames needed to remove the fixed pattern")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    g = ap.add_argument_group("--simulate options")
    g.add_argument("--out-dir", metavar="DIR", help="where --simulate writes the session")
    from .simulate import add_simulate_args

    add_simulate_args(g)
    return ap


def _print_warnings(ws) -> None:
    for w in ws:
        print(f"warning: {w.message}", file=sys.stderr)


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    from .errors import CalibrationError

    if a.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {a.jobs}")
    try:
        if a.simulate:
            if not a.out_dir:
                ap.error("--simulate needs --out-dir DIR")
            from .simulate import run_simulate_from_args

            return run_simulate_from_args(a.simulate, a.out_dir, a)
        if a.emva1288:
            from .emva import emva1288, write_emva_report

            desc = Path(a.emva1288)
            res = emva1288(desc)
            rep = Path(a.report) if a.report else desc.parent / f"{desc.stem}_emva1288"
            path = write_emva_report(res, rep)
            print(res.summary())
            print(f"report: {path}")
            return 0
        from .pipeline import calibrate

        raw_dir = Path(a.raw_dir)
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            res = calibrate(raw_dir, jobs=a.jobs, iso_from_name=a.iso_from_name, name=a.name,
                            min_dsnu_frames=a.min_dsnu_frames, progress=None if not a.quiet else False)
        _print_warnings(ws)
        out = Path(a.output) if a.output else raw_dir / "profile.json"
        res.profile.save(out)
        print(f"profile: {out} ({len(res.isos)} ISO(s): {', '.join(f'{i:g}' for i in res.isos)})")
        for p in res.profile.points:
            print(f"  ISO {p['iso']:>6g}  K {['%.4g' % v for v in p['K']]}  read std {['%.3g' % v for v in p['read_std']]}"
                  f"  lambda {['%.3g' % v if v is not None else '-' for v in p['read_lambda']]}  row {p['row_std']:.3g}")
        if not a.no_report:
            from .report import write_report

            rep = Path(a.report) if a.report else raw_dir / "report"
            print(f"report: {write_report(res, rep, profile_path=out)}")
        if res.warnings:
            print(f"{len(res.warnings)} warning(s): see above and the report", file=sys.stderr)
        return 0
    except CalibrationError as exc:
        print(f"calibrate: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
