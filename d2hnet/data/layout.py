"""Find training / validation tuples on disk: the D2-Dataset layout and a plain generic layout.

A *tuple* is one scene: one or more long exposures (``long2``, ``long4``,
``long6``, ``long8``: ~20/40/60/80 ms in D2-Dataset), optionally the sharp
frame at the end of the long exposure (``long_last``, used by
VarmapSelection) and the short exposure ``short`` (its first frame, the
ground truth before noise).

D2-Dataset layout (docs/d2hnet.md, "Dataset layout")
    files ``<video>_<tuple>_<suffix>.png`` anywhere below the root; blur
    patches carry three name tokens (``<video>_<tuple>_<patch>_<suffix>``).
    A ``day`` or ``night`` folder on a file's path sets its split.
    Other suffixes (``quarter``, ``half``, ``3quarter``) are ignored.

Generic layout, either
    * one folder per tuple holding ``long*.png`` (any of the long suffixes, or
      plain ``long.png``), ``short.png`` and optionally ``long_last.png``; or
    * parallel folders ``long/``, ``short/`` (and ``long_last/``) holding
      files of the same names.

PNG and TIFF are read (8 or 16 bit). Every reader returns a list of
:class:`TupleRecord`, sorted by name, so indices are stable across runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

__all__ = ["LONG_SUFFIXES", "LAYOUTS", "IMAGE_SUFFIXES", "TupleRecord", "scan_d2_dataset", "scan_generic", "scan_dataset"]

#: Long-exposure suffixes of D2-Dataset, shortest to longest exposure.
LONG_SUFFIXES = ("long2", "long4", "long6", "long8")
LAYOUTS = ("auto", "d2", "generic")
#: Image files a dataset folder is read for.
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
_SPLITS = ("day", "night")
_D2_RE = re.compile(r"^(?P<name>.+)_(?P<suffix>long2|long4|long6|long8|long_last|short)$")


@dataclass(frozen=True)
class TupleRecord:
    """One scene: paths of its long exposures (by suffix), the short exposure, ``long_last`` and the split."""

    name: str
    short: Path
    longs: dict[str, Path] = field(default_factory=dict)
    long_last: Path | None = None
    split: str | None = None

    def long_path(self, suffix: str | None = None) -> Path:
        """The long exposure ``suffix`` (default: the longest available)."""
        if suffix is None:
            return self.longs[sorted(self.longs, key=_long_rank)[-1]]
        if suffix not in self.longs:
            raise InputError(f"tuple {self.name!r} has no {suffix!r} exposure; it has {sorted(self.longs)}")
        return self.longs[suffix]


def _long_rank(s: str) -> int:
    return LONG_SUFFIXES.index(s) if s in LONG_SUFFIXES else len(LONG_SUFFIXES)


def _split_of(path: Path, root: Path) -> str | None:
    for part in path.relative_to(root).parts[:-1]:
        if part.lower() in _SPLITS:
            return part.lower()
    return None


def _check_root(root: str | os.PathLike) -> Path:
    p = Path(root)
    if not p.is_dir():
        raise InputError(f"dataset folder {str(p)!r} does not exist or is not a folder")
    return p


def _images(folder: Path, recursive: bool) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in it if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def scan_d2_dataset(root: str | os.PathLike) -> list[TupleRecord]:
    """Tuples of a D2-Dataset-style folder (files ``<video>_<tuple>_<suffix>.png`` below ``root``).

    Tuples without a ``short`` frame or without any long exposure are skipped
    with one warning that counts them.
    """
    import warnings

    r = _check_root(root)
    groups: dict[tuple[Path, str], dict[str, Path]] = {}
    for f in _images(r, recursive=True):
        m = _D2_RE.match(f.stem)
        if m:
            groups.setdefault((f.parent, m["name"]), {})[m["suffix"]] = f
    out, incomplete = [], 0
    for (parent, name), files in groups.items():
        longs = {s: files[s] for s in LONG_SUFFIXES if s in files}
        if "short" not in files or not longs:
            incomplete += 1
            continue
        rel = parent.relative_to(r)
        full = "/".join((*rel.parts, name)) if rel.parts else name
        out.append(TupleRecord(full, files["short"], longs, files.get("long_last"), _split_of(files["short"], r)))
    if incomplete:
        warnings.warn(f"{r}: skipped {incomplete} incomplete tuple(s) (a 'short' and at least one long exposure are needed)",
                      stacklevel=2)
    return sorted(out, key=lambda t: t.name)


def _long_files(files: dict[str, Path]) -> dict[str, Path]:
    longs = {s: files[s] for s in LONG_SUFFIXES if s in files}
    if not longs and "long" in files:
        longs = {"long": files["long"]}
    return longs


def scan_generic(root: str | os.PathLike) -> list[TupleRecord]:
    """Tuples of a generic folder: ``long/`` + ``short/`` parallel folders, or one folder per tuple."""
    r = _check_root(root)
    if (r / "long").is_dir() and (r / "short").is_dir():
        shorts = {f.stem: f for f in _images(r / "short", False)}
        longs = {f.stem: f for f in _images(r / "long", False)}
        lasts = {f.stem: f for f in _images(r / "long_last", False)} if (r / "long_last").is_dir() else {}
        missing = sorted(set(shorts) ^ set(longs))
        if missing:
            raise InputError(f"{r}: long/ and short/ must hold files of the same names; unmatched: {missing[:5]}")
        return [TupleRecord(n, shorts[n], {"long": longs[n]}, lasts.get(n), _split_of(shorts[n], r)) for n in sorted(shorts)]
    out = []
    for d in sorted(p for p in r.rglob("*") if p.is_dir()):
        files = {f.stem: f for f in _images(d, False)}
        longs = _long_files(files)
        if "short" in files and longs:
            out.append(TupleRecord(str(d.relative_to(r)).replace(os.sep, "/"), files["short"], longs,
                                   files.get("long_last"), _split_of(files["short"], r)))
    return out


def scan_dataset(root: str | os.PathLike, layout: str = "auto") -> list[TupleRecord]:
    """Tuples below ``root`` in ``layout`` ("d2", "generic" or "auto": D2 names first, else generic).

    Raises :class:`~d2hnet.errors.InputError` naming the folder when no tuple is found.
    """
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    r = _check_root(root)
    recs: list[TupleRecord] = []
    if layout in ("auto", "d2"):
        recs = scan_d2_dataset(r)
    if not recs and layout in ("auto", "generic"):
        recs = scan_generic(r)
    if not recs:
        raise InputError(
            f"dataset folder {str(r)!r} holds no tuples (layout {layout!r}): expected <video>_<tuple>_<suffix>.png "
            f"files with suffixes short and {'/'.join(LONG_SUFFIXES)}, or long/ + short/ folders, or one folder per "
            "tuple with long*.png and short.png (make some with `d2hnet synth`)"
        )
    return recs
