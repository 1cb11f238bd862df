"""``d2hnet`` command line: ``restore``, ``convert-release``, ``info``, ``train``, ``validate``, ``synth``,
``make-val`` and ``study``.

Subcommands are ``(name, add_parser)`` entries in :data:`SUBCOMMANDS`. An
``add_parser(subparsers)`` function adds its parser with
``subparsers.add_parser(name, ...)`` and sets ``func=<callable(args) -> int>``
as a default; :func:`main` calls it. The parsers of other modules are listed
here through ``_lazy(module, function)``, so their module is imported only
when the command line is built, e.g. the training commands::

    # d2hnet/train_cli.py
    def add_train_parser(subparsers): ...
    # d2hnet/cli.py, in SUBCOMMANDS
    ("train", _lazy("d2hnet.train_cli", "add_train_parser")),

:func:`register_subcommand` adds one at run time (plug-ins, tests).

Handlers import torch lazily, so ``d2hnet --help`` is fast and a missing
PyTorch gives an install hint. Errors of this package print one line
``d2hnet <cmd>: error: ...``; warnings print as ``d2hnet <cmd>: warning: ...``.
Exit statuses (:mod:`isp_sim.cli_support`): 0 done; 1 a batch finished but
skipped items (named); 2 bad arguments or unusable input; 3 an internal error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main", "build_parser", "SUBCOMMANDS", "register_subcommand"]

AddParser = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _lazy(module: str, attr: str) -> AddParser:
    """An ``add_parser`` that imports ``module.attr`` only when the parser is built."""

    def add(subparsers):  # type: ignore[no-untyped-def]
        return getattr(importlib.import_module(module), attr)(subparsers)

    return add


# ----------------------------------------------------------------------------- restore


def _add_restore(subparsers) -> None:  # type: ignore[no-untyped-def]
    from .infer import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE, add_deblur_args

    p = subparsers.add_parser(
        "restore",
        help="restore long/short exposure pairs with a d2hnet checkpoint",
        description=(
            "Restore one pair (--long L --short S -o OUT) or every pair in a folder "
            "(--input-dir DIR -o OUTDIR: files <name><long-suffix>.<ext> and <name><short-suffix>.<ext>). "
            "PNG/TIFF, 8 or 16 bit; the output bit depth defaults to the input's."
        ),
    )
    p.add_argument("--long", type=Path, help="long-exposure image (PNG/TIFF)")
    p.add_argument("--short", type=Path, help="short-exposure image (PNG/TIFF)")
    p.add_argument("--input-dir", type=Path, help="folder of pairs (folder mode)")
    p.add_argument("--long-suffix", default="_long", help="folder mode: name suffix of long exposures (default _long)")
    p.add_argument("--short-suffix", default="_short", help="folder mode: name suffix of short exposures (default _short)")
    p.add_argument("--out-suffix", default="_restored", help="folder mode: suffix of output names (default _restored)")
    p.add_argument("--out-ext", default=".png", choices=(".png", ".tif", ".tiff"), help="folder mode: output format")
    p.add_argument("--checkpoint", "-c", type=Path, required=True, help="d2hnet checkpoint (see convert-release)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output image (pair mode) or folder (folder mode)")
    add_deblur_args(p)
    p.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE,
                   help=f"EnhanceNet tile size, multiple of 16 (default {DEFAULT_TILE_SIZE})")
    p.add_argument("--tile-overlap", type=int, default=None,
                   help=f"overlap of neighbouring tiles, blended smoothly (default min({DEFAULT_TILE_OVERLAP}, tile/4))")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"),
                   help="autocast precision on CUDA (auto = bf16 on CUDA, float32 on CPU)")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=None, help="output bit depth (default: the input's)")
    p.add_argument("--save-deblur", action="store_true", help="also write DeblurNet's output next to each result (<out>_deblur)")
    p.add_argument("--side-by-side", action="store_true",
                   help="also write <out>_side_by_side.png (long, short, restored); folder mode adds contact_sheet.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_restore)


def _run_restore(args: argparse.Namespace) -> int:
    from isp_sim.cli_support import batch_summary, check_distinct_outputs, check_output_dir, check_output_file, file_problem

    from .checkpoint import load_checkpoint
    from .errors import InputError, IspSimError
    from .infer import RestoreOptions, describe_deblur, iter_folder, resolve_deblur, resolve_device, restore_files

    pair_mode = args.long is not None or args.short is not None
    if pair_mode and args.input_dir is not None:
        raise InputError("give either --long/--short (one pair) or --input-dir (folder mode), not both")
    if pair_mode and (args.long is None or args.short is None):
        raise InputError("pair mode needs both --long and --short")
    if not pair_mode and args.input_dir is None:
        raise InputError("nothing to restore: give --long L --short S, or --input-dir DIR")
    if pair_mode:
        for flag, p in (("--long", args.long), ("--short", args.short)):
            why = file_problem(p, "image")
            if why:
                raise InputError(f"{flag} {p}: {why}" + (" (or use --input-dir for a folder)" if p.is_dir() else ""))
        check_output_file(args.output, inputs=(args.long, args.short), flag="-o")
        if args.side_by_side:
            check_output_file(_sbs_path(args.output), inputs=(args.long, args.short), flag="--side-by-side")
        jobs = [("", args.long, args.short, args.output)]
    else:
        check_output_dir(args.output, flag="-o")
        jobs = list(iter_folder(args.input_dir, args.output, long_suffix=args.long_suffix,
                                short_suffix=args.short_suffix, out_suffix=args.out_suffix, out_ext=args.out_ext))
        every_input = [p for _, lp, sp, _ in jobs for p in (lp, sp)]
        outs = [(lp, op) for _, lp, _, op in jobs]
        if args.save_deblur:
            outs += [(lp, op.with_name(f"{op.stem}_deblur{op.suffix}")) for _, lp, _, op in jobs]
        if args.side_by_side:
            outs += [(lp, _sbs_path(op)) for _, lp, _, op in jobs]
            outs.append((args.input_dir, args.output / "contact_sheet.png"))
        check_distinct_outputs(outs, inputs=every_input)
    dev = resolve_device(args.device)
    model = load_checkpoint(args.checkpoint, device=dev)
    size, scale = resolve_deblur("standard", args.deblur_size, args.deblur_scale)
    opts = RestoreOptions(
        deblur_size=size, deblur_scale=scale, tile_size=args.tile_size,
        tile_overlap=args.tile_overlap, device=str(dev), amp=args.amp, progress=not args.no_progress,
    )
    skipped: list[str] = []
    sheet: list = []
    for i, (name, lp, sp, op) in enumerate(jobs):
        deb = op.with_name(f"{op.stem}_deblur{op.suffix}") if args.save_deblur else None
        label = f"[{i + 1}/{len(jobs)}] " if len(jobs) > 1 else ""
        if pair_mode:  # one pair: its error is the command's error
            written = restore_files(lp, sp, op, model, bit_depth=args.bit_depth, deblurred_path=deb, options=opts)
        else:
            try:
                written = restore_files(lp, sp, op, model, bit_depth=args.bit_depth, deblurred_path=deb, options=opts)
            except IspSimError as exc:
                print(f"d2hnet restore: warning: skipping pair {name!r} ({lp.name}, {sp.name}): {exc}", file=sys.stderr)
                skipped.append(name)
                continue
        from PIL import Image

        with Image.open(written) as im:
            w, h = im.size
        print(f"{label}{written} ({describe_deblur(h, w, opts.deblur_size, opts.deblur_scale)})", flush=True)
        if args.side_by_side:
            sheet.append((name or lp.stem, _side_by_side(lp, sp, Path(written))))
    if args.side_by_side and not pair_mode and sheet:
        print(f"contact sheet: {_contact_sheet(args.output / 'contact_sheet.png', sheet)}", flush=True)
    if pair_mode:
        return 0
    return batch_summary("d2hnet restore", len(jobs) - len(skipped), skipped)


def _sbs_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_side_by_side.png")


def _thumb(img, width: int = 320):
    import numpy as np

    step = max(1, img.shape[1] // width)
    return np.ascontiguousarray(img[::step, ::step])


def _side_by_side(long_path: Path, short_path: Path, restored: Path) -> list:
    """Write ``<restored>_side_by_side.png`` (whole frames, titled); return the three thumbnails for the sheet."""
    from isp_sim.demo import side_by_side
    from isp_sim.imageio import read_rgb

    imgs = [read_rgb(p)[0] for p in (long_path, short_path, restored)]
    side_by_side(_sbs_path(restored), [(f"long: {long_path.name}", imgs[0]), (f"short: {short_path.name}", imgs[1]),
                                       (f"restored: {restored.name}", imgs[2])], crop=None)
    return [_thumb(i) for i in imgs]


def _contact_sheet(path: Path, rows: list) -> Path:
    """One row per restored pair: long, short, restored thumbnails."""
    from .val_images import save_image_grid

    cells = [[(img, f"{name}: {col}" if c == 0 else col) for c, (img, col) in
              enumerate(zip(imgs, ("long", "short", "restored")))] for name, imgs in rows]
    return save_image_grid(path, cells, cell_size=(3.0, 2.6))


# ----------------------------------------------------------------------------- convert-release


def _add_convert(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "convert-release",
        help="convert the official release's two .pkl weight files into one d2hnet checkpoint",
        description=(
            "Convert the official D2HNet release's DeblurNet_v2 (GNet-epoch-99.pkl) and DenoiseNet_v2 "
            "(GNet-epoch-149.pkl) state_dict files into one d2hnet checkpoint. Files are loaded with "
            "weights_only=True; key sets and shapes are checked strictly; unused release modules are dropped."
        ),
    )
    p.add_argument("deblurnet", type=Path, help="the release's DeblurNet_v2 state_dict (.pkl)")
    p.add_argument("enhancenet", type=Path, help="the release's DenoiseNet_v2 (EnhanceNet) state_dict (.pkl)")
    p.add_argument("-o", "--output", type=Path, required=True, help="checkpoint to write")
    p.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import convert_release

    print(convert_release(args.deblurnet, args.enhancenet, args.output))
    return 0


# ----------------------------------------------------------------------------- info


def _add_info(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser("info", help="describe a d2hnet checkpoint (format, config, parameter counts, provenance)")
    p.add_argument("checkpoint", type=Path)
    p.set_defaults(func=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    import json

    from .checkpoint import load_checkpoint
    from .models import count_parameters

    model = load_checkpoint(args.checkpoint)
    info = {
        "checkpoint": str(args.checkpoint),
        "format_version": model.meta.get("format_version"),
        "config": model.config(),
        "parameters": {
            "deblurnet": count_parameters(model.deblurnet),
            "enhancenet": count_parameters(model.enhancenet),
        },
        "meta": {k: v for k, v in model.meta.items() if k != "format_version"},
    }
    print(json.dumps(info, indent=2))
    return 0


# ----------------------------------------------------------------------------- registry and main

#: ``(name, add_parser)`` for every subcommand, in ``--help`` order.
SUBCOMMANDS: list[tuple[str, AddParser]] = [
    ("restore", _add_restore),
    ("convert-release", _add_convert),
    ("info", _add_info),
    ("train", _lazy("d2hnet.train_cli", "add_train_parser")),
    ("validate", _lazy("d2hnet.train_cli", "add_validate_parser")),
    ("synth", _lazy("d2hnet.train_cli", "add_synth_parser")),
    ("make-val", _lazy("d2hnet.train_cli", "add_make_val_parser")),
    ("study", _lazy("d2hnet.study_cli", "add_study_parser")),
]


def register_subcommand(name: str, add_parser: AddParser) -> None:
    """Add a subcommand; ``add_parser(subparsers)`` must add a parser called ``name`` with a ``func`` default."""
    if any(n == name for n, _ in SUBCOMMANDS):
        raise ValueError(f"subcommand {name!r} is already registered")
    SUBCOMMANDS.append((name, add_parser))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="d2hnet", description="D2HNet night restoration of long/short exposure pairs."
    )
    from isp_sim.cli_support import add_debug_flag

    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for _name, add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``d2hnet`` console script; returns the exit status (module docstring)."""
    from isp_sim.cli_support import run_cli

    parser = build_parser()

    def dispatch(args: argparse.Namespace) -> int:

        def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
            print(f"d2hnet {args.command}: warning: {message}", file=sys.stderr)

        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = show  # restored by catch_warnings
            return int(args.func(args) or 0)

    # the prefix of error lines names the subcommand ("d2hnet restore: error: ...")
    argv_list = list(sys.argv[1:] if argv is None else argv)
    sub = next((a for a in argv_list if not a.startswith("-")), "")
    prog = f"d2hnet {sub}" if sub in {n for n, _ in SUBCOMMANDS} else "d2hnet"
    return run_cli(prog, parser, argv_list, dispatch, extra_usage_errors=(ImportError,))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
