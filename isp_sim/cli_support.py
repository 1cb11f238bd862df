"""What every command line of the project shares: argument types checked before any work, output-path
checks, and one top-level handler that turns errors into one line and exit statuses.

Exit statuses of ``isp-sim``, ``calibrate`` and ``d2hnet``:

* ``0``: everything asked for was done;
* ``1``: finished, but some input was skipped or failed (each one named on stderr);
* ``2``: bad arguments or unusable input, reported before any work (argparse's usage errors too);
* ``3``: an unexpected internal error (a bug): the traceback is shown with a request to report it;
* ``130``: interrupted (Ctrl-C).

Errors of the project (:class:`~isp_sim.errors.IspSimError`) print one line
``<prog>: error: <message>``; ``--debug`` adds the traceback. Output piped into
a program that stops reading (``| head``) ends quietly.

This module imports nothing heavy (no numpy, no numba), so parsers stay fast.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import InputError, IspSimError

__all__ = ["EXIT_OK", "EXIT_SKIPPED", "EXIT_USAGE", "EXIT_BUG", "non_negative_int", "positive_int", "regex_with_group",
           "profile_name", "add_debug_flag", "run_cli", "cli_message", "check_output_file", "check_output_dir", "check_distinct_outputs",
           "batch_summary", "file_problem", "folder_problem"]

EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds)."""
    v = _int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {v}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts, jobs)."""
    v = _int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {v}")
    return v


def regex_with_group(text: str) -> str:
    """argparse type: a valid regular expression with at least one group (the value it extracts)."""
    try:
        rx = re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid regular expression ({exc})") from None
    if rx.groups < 1:
        raise argparse.ArgumentTypeError(f"{text!r} has no group: put the ISO digits in parentheses, e.g. 'iso(\\d+)'")
    return text


def profile_name(text: str) -> str:
    """argparse type: a profile name as the profile format allows it (lowercase letters, digits, underscores)."""
    if not re.fullmatch(r"[a-z0-9_]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a profile name: use lowercase letters, digits and "
                                         "underscores (e.g. my_phone_main)")
    return text


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--debug`` (show tracebacks of the project's errors) to ``parser``."""
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")


def run_cli(prog: str, parser: argparse.ArgumentParser, argv: list[str] | None,
            dispatch: Callable[[argparse.Namespace], int | None],
            extra_usage_errors: tuple[type[BaseException], ...] = (), api_to_flag: dict[str, str] | None = None) -> int:
    """Parse ``argv``, run ``dispatch(args)`` and map its outcome to an exit status (module docstring).

    ``api_to_flag``: phrases of API messages and the command-line words that replace them in this CLI's
    error lines (``{"extrapolate=True": "--extrapolate"}``), so users read the flag they can type.
    """
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        rc = dispatch(args)
        sys.stdout.flush()
        return int(rc or 0)
    except (IspSimError, *extra_usage_errors) as exc:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {cli_message(exc, api_to_flag)}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): silence the flush at exit, as the Python docs advise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"{prog}: internal error: this is a bug in phonenoise; please report it with the command line and "
              "the traceback above", file=sys.stderr)
        return EXIT_BUG


def cli_message(exc: BaseException | str, api_to_flag: dict[str, str] | None = None) -> str:
    """The text of an error or warning with API phrases replaced by the command-line words (see :func:`run_cli`)."""
    msg = str(exc)
    for api, flag in (api_to_flag or {}).items():
        msg = msg.replace(api, flag)
    return msg


def file_problem(path: str | os.PathLike, what: str = "") -> str | None:
    """Why ``path`` cannot be read as a file, in words (``None`` when it is a file): a folder is called a folder.

    ``what`` names the expected kind (``"checkpoint"`` -> "no such checkpoint file"). Used by every loader, so
    the API and each CLI word this the same way."""
    p = Path(path)
    kind = f"{what} file" if what else "file"
    if p.is_dir():
        return f"is a folder; give a{'n' if kind[0] in 'aeiou' else ''} {kind}"
    if not p.is_file():
        return f"no such {kind}"
    return None


def folder_problem(path: str | os.PathLike, what: str = "") -> str | None:
    """Why ``path`` cannot be used as a folder (``None`` when it is one): a file is called a file."""
    p = Path(path)
    kind = f"{what} folder" if what else "folder"
    if p.exists() and not p.is_dir():
        return f"is a file; give a{'n' if kind[0] in 'aeiou' else ''} {kind}"
    if not p.exists():
        return f"no such {kind}"
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_file(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), flag: str = "-o",
                      overwrite: bool = True) -> Path:
    """Check an output file before any work: not a folder, not one of ``inputs``, its folder writable.

    ``overwrite=False`` also refuses an existing file. Returns the path.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} {p}: is a folder; give a file name")
    for i in inputs:
        if _same(p, Path(i)):
            raise InputError(f"{flag} {p}: is also an input ({i}); choose another output so the input is not overwritten")
    if p.exists() and not overwrite:
        raise InputError(f"{flag} {p}: exists; remove it or choose another name")
    _check_writable_parent(p, flag)
    return p


def check_output_dir(path: str | os.PathLike, *, flag: str = "-o") -> Path:
    """Check an output folder before any work: not an existing file, and creatable/writable. Returns it."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{flag} {p}: is a file; give a folder")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise InputError(f"{flag} {p}: folder is not writable")
    else:
        _check_writable_parent(p, flag)
    return p


def _check_writable_parent(p: Path, flag: str) -> None:
    parent = p.parent if str(p.parent) else Path(".")
    q = parent
    while not q.exists():
        if q.parent == q:
            break
        q = q.parent
    if q.exists() and not q.is_dir():
        raise InputError(f"{flag} {p}: {q} is a file, not a folder")
    if q.exists() and not os.access(q, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {p}: folder {q} is not writable")


def check_distinct_outputs(pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]], *,
                           inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse, before any work, two inputs that would write the same output, or an output that is an input.

    ``pairs``: ``(input, output)``. The message names both inputs.
    """
    seen: dict[Path, str] = {}
    ins = [Path(i) for i in inputs]
    for src, dst in pairs:
        d = Path(dst).resolve()
        if d in seen:
            raise InputError(f"{seen[d]} and {src} would both be written to {dst}; rename one of them or "
                             "process them in separate runs")
        seen[d] = str(src)
        for i in ins:
            if _same(Path(dst), i):
                raise InputError(f"output {dst} for {src} is an input file; choose another output folder or suffix")


def batch_summary(prog: str, done: int, skipped: list[str]) -> int:
    """Print ``"<prog>: N done, K skipped: names"`` (stderr when something was skipped); return the exit status."""
    if skipped:
        names = ", ".join(skipped[:20]) + (f", ... ({len(skipped) - 20} more)" if len(skipped) > 20 else "")
        print(f"{prog}: {done} done, {len(skipped)} skipped: {names}", file=sys.stderr)
        return EXIT_SKIPPED
    print(f"{prog}: {done} done, 0 skipped")
    return EXIT_OK
