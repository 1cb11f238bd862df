"""Command line: ``calibrate``.

    calibrate --raw-dir DIR [-o profile.json] [--report DIR] [--jobs N] [--iso-from-name REGEX] [--name NAME]
    calibrate --emva1288 DESCRIPTOR [--report DIR]
    calibrate --simulate PROFILE --out-dir DIR [--isos ...] [--size H W] [--n-dark N] [--n-flat-pairs N] [--seed S]

Defaults: the profile goes to ``DIR/profile.json``, the report to ``DIR/report/``
(EMVA: next to the descriptor, ``<descriptor>_emva1288/``). Warnings are printed
to stderr, each naming the file or ISO concerned. Every argument and output path
is checked before any file is read. Exit status (:mod:`isp_sim.cli_support`): 0
done; 1 done, but files were skipped (each named); 2 bad arguments or nothing
usable (the message says why); 3 an internal error.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from isp_sim.cli_support import (add_debug_flag, batch_summary, check_output_dir, check_output_file, folder_problem,
                                 positive_int, profile_name, regex_with_group, run_cli)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="calibrate", description="Calibrate a camera's raw noise from dark and flat frames "
                                 "(or EMVA 1288 data), or simulate a capture session to try the pipeline.")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--raw-dir", metavar="DIR", help="session folder: dark/ and flat/ sub-folders, or mixed frames")
    mode.add_argument("--emva1288", metavar="DESCRIPTOR", help="EMVA 1288 measurement descriptor (monochrome sensor)")
    mode.add_argument("--simulate", metavar="PROFILE", help="write a synthetic dark/flat DNG session from a profile")
    ap.add_argument("--photos", metavar="DIR", help="photos (tripod bursts or single frames of any scene) besides "
                    "DIR/photos/: ISOs without flats are calibrated from them (calibration.labfree)")
    ap.add_argument("-o", "--output", metavar="PROFILE_JSON", help="profile path (default DIR/profile.json)")
    ap.add_argument("--report", metavar="DIR", help="report folder (default DIR/report/)")
    ap.add_argument("--no-report", action="store_true", help="write the profile only")
    ap.add_argument("--jobs", type=positive_int, default=1, metavar="N", help="decoding threads (default 1)")
    ap.add_argument("--iso-from-name", metavar="REGEX", type=regex_with_group,
                    help="ISO for files without ISO metadata: regular expression on the file name, first group = ISO "
                         "(e.g. 'iso(\\d+)')")
    ap.add_argument("--name", type=profile_name, help="profile name (lowercase snake case; default from the camera model)")
    ap.add_argument("--min-dsnu-frames", type=positive_int, default=4, help="dark frames needed to remove the fixed pattern")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--cache-dir", metavar="DIR", help="where decoded photos and classified frames wait between the scan and the "
                    "estimators (default: the system's temporary folder; dark/ and flat/ frames need no space; deleted "
                    "at the end)")
    ap.add_argument("--emva-saturation", choices=("max", "reference"), default="max",
                    help="EMVA 1288 saturation step: 'max' the maximal temporal variance (the standard; default), "
                         "'reference' the emva1288 package's backward search (reproduces its results)")
    add_debug_flag(ap)
    g = ap.add_argument_group("--simulate options")
    g.add_argument("--out-dir", metavar="DIR", help="where --simulate writes the session")
    from .simulate import add_simulate_args

    add_simulate_args(g)
    return ap


def _print_warnings(ws) -> None:
    for w in ws:
        print(f"warning: {w.message}", file=sys.stderr)


def _run(a: argparse.Namespace, ap: argparse.ArgumentParser) -> int:
    from .errors import CalibrationError

    if a.simulate:
        if not a.out_dir:
            ap.error("--simulate needs --out-dir DIR")
        check_output_dir(a.out_dir, flag="--out-dir")
        from .simulate import run_simulate_from_args

        return run_simulate_from_args(a.simulate, a.out_dir, a)
    if a.emva1288:
        from .emva import emva1288, write_emva_report

        desc = Path(a.emva1288)
        rep = check_output_dir(a.report if a.report else desc.parent / f"{desc.stem}_emva1288", flag="--report")
        res = emva1288(desc, saturation=a.emva_saturation)
        path = write_emva_report(res, rep)
        print(res.summary())
        print(f"report: {path}")
        return 0
    from .pipeline import calibrate

    raw_dir = Path(a.raw_dir)
    if not raw_dir.is_dir():
        raise CalibrationError(f"--raw-dir {raw_dir}: {folder_problem(raw_dir, 'session')}")
    out = check_output_file(Path(a.output) if a.output else raw_dir / "profile.json", flag="-o/--output")
    rep = None if a.no_report else check_output_dir(Path(a.report) if a.report else raw_dir / "report", flag="--report")
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        res = calibrate(raw_dir, jobs=a.jobs, iso_from_name=a.iso_from_name, name=a.name,
                        min_dsnu_frames=a.min_dsnu_frames, progress=None if not a.quiet else False,
                        cache_dir=a.cache_dir, photos=a.photos)
    _print_warnings(ws)
    res.profile.save(out)
    print(f"profile: {out} ({len(res.isos)} ISO(s): {', '.join(f'{i:g}' for i in res.isos)})")
    for p in res.profile.points:
        print(f"  ISO {p['iso']:>6g}  K {['%.4g' % v for v in p['K']]}  read std {['%.3g' % v for v in p['read_std']]}"
              f"  lambda {['%.3g' % v if v is not None else '-' for v in p['read_lambda']]}  row {p['row_std']:.3g}")
    if rep is not None:
        from .report import write_report

        print(f"report: {write_report(res, rep, profile_path=out)}")
    if res.warnings:
        print(f"{len(res.warnings)} warning(s): see above and the report", file=sys.stderr)
    return batch_summary("calibrate", len(res.session.frames), [Path(str(p)).name for p, _ in res.session.skipped])


def main(argv=None) -> int:
    """Entry point of ``calibrate``; exit statuses in the module docstring."""
    ap = build_parser()
    return run_cli("calibrate", ap, argv, lambda a: _run(a, ap),
                   api_to_flag={"supply it with iso_from_name / --iso-from-name": "supply it with --iso-from-name"})


if __name__ == "__main__":
    sys.exit(main())
