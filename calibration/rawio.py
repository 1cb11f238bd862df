"""Reading one raw frame: pixels, CFA, levels and capture metadata, with sensor-raw sanity checks.

:func:`read_raw` opens any file LibRaw opens (phone DNGs first) through rawpy,
in a ``with`` block, and returns a :class:`RawFrame`:

* ``data``: the visible Bayer area, ``(H, W)`` uint16 DN (black level included);
* ``pattern`` in reading order ("RGGB", ...), ``black_level`` (4,) in R, Gr, Gb, B
  order, ``white_level`` (DN), all from the file;
* ``iso`` and ``exposure_time`` (seconds): rawpy's values where set, else the TIFF
  tags ``ISOSpeedRatings`` (34855) / ``ExposureTime`` (33434) in the EXIF IFD, else
  in IFD0 (rawpy reports ISO 0 for DNGs that carry it only in IFD0); ``None`` when
  the file has none;
* ``camera`` ("Make Model") and ``noise_profile`` (the DNG NoiseProfile (S, O)
  pairs, tag 51041, when present).

Files that are not sensor raws are refused with :class:`NotSensorRawError`
naming the reason: demosaiced/linear DNGs (PhotometricInterpretation LinearRaw,
several samples per pixel, rawpy ``RawType.Stack``), non-Bayer CFAs, and DNGs
with a non-identity ``LinearizationTable`` (their stored values are not linear
in the sensor's DN). A lens-shading ``GainMap`` in an opcode list is reported in
``RawFrame.notes`` (the raw values are read before any opcode, so the noise
statistics are not affected; the flats keep their vignetting, which the
tile-wise estimators tolerate).
"""

from __future__ import annotations

import math
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isp_sim.cli_support import file_problem

from .errors import NotSensorRawError, RawReadError

TAG_NEW_SUBFILE_TYPE = 254
TAG_PHOTOMETRIC = 262
TAG_SAMPLES_PER_PIXEL = 277
TAG_MAKE, TAG_MODEL = 271, 272
TAG_EXIF_IFD = 34665
TAG_ISO = 34855
TAG_EXPOSURE_TIME = 33434
TAG_LINEARIZATION_TABLE = 50712
TAG_DNG_VERSION = 50706
TAG_OPCODE_LISTS = {51008: "OpcodeList1", 51009: "OpcodeList2", 51022: "OpcodeList3"}
TAG_NOISE_PROFILE = 51041
PHOTOMETRIC_CFA = 32803
PHOTOMETRIC_LINEAR_RAW = 34892
OPCODE_GAIN_MAP = 9

#: suffixes tried by :func:`is_raw_candidate` (LibRaw reads many more; others are tried too when asked)
RAW_SUFFIXES = (".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
                ".pef", ".srw", ".3fr", ".iiq", ".x3f", ".erf", ".mef", ".mos", ".kdc", ".dcr", ".raw", ".rwl")


@dataclass
class RawFrame:
    """One raw frame (see module docstring for units and conventions)."""

    path: str
    data: np.ndarray | None
    pattern: str
    black_level: np.ndarray
    white_level: int
    iso: float | None
    exposure_time: float | None
    camera: str = ""
    noise_profile: list[tuple[float, float]] | None = None
    iso_source: str = ""
    notes: list[str] = field(default_factory=list)
    linearization_max_step: int | None = None  # largest DN step of a non-identity LinearizationTable applied

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.data.shape) if self.data is not None else (0, 0)

    @property
    def bit_depth(self) -> int:
        return max(8, int(math.ceil(math.log2(self.white_level + 1))))


def is_raw_candidate(path: str | os.PathLike) -> bool:
    """True when the file name has a raw-file suffix (case-insensitive)."""
    return Path(path).suffix.lower() in RAW_SUFFIXES


def _tag_value(tags, code):
    t = tags.get(code)
    return None if t is None else t.value


def _as_float(v) -> float | None:
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        if len(v) == 2 and all(isinstance(x, (int, np.integer)) for x in v):  # TIFF rational as (num, den)
            return float(v[0]) / float(v[1]) if v[1] else None
        if not v:
            return None
        v = v[0]
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _opcode_ids(blob) -> list[int]:
    """Opcode ids of a DNG opcode list (big-endian: count, then id, version, flags, size, payload)."""
    b = bytes(blob) if not isinstance(blob, bytes) else blob
    ids = []
    try:
        (n,) = struct.unpack_from(">I", b, 0)
        off = 4
        for _ in range(min(n, 1000)):
            oid, _ver, _flags, size = struct.unpack_from(">IIII", b, off)
            ids.append(oid)
            off += 16 + size
    except struct.error:
        pass
    return ids


class _Collect(logging.Handler):
    """Keeps a library's log records (instead of letting them reach stderr unattributed)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _tiff_metadata(path: str) -> dict:
    """Metadata read from the TIFF structure (DNG and TIFF-based raws); {} for other files.

    tifffile's log lines about this file (malformed offsets and the like) are returned in
    ``"tiff_messages"`` so that the caller can attribute them to the file.
    """
    log = logging.getLogger("tifffile")
    handler = _Collect()
    old = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        out = _tiff_metadata_inner(path)
    finally:
        log.removeHandler(handler)
        log.propagate = old
    if handler.messages:
        out["tiff_messages"] = handler.messages
    return out


def _tiff_metadata_inner(path: str) -> dict:
    try:
        import tifffile
    except ImportError:  # pragma: no cover - tifffile is a dependency
        return {}
    out: dict = {}
    try:
        with tifffile.TiffFile(path) as tf:
            if not tf.pages:
                return {}
            p0 = tf.pages[0]
            pages = [p0]
            try:
                if p0.subifds:
                    pages += list(tifffile.TiffPages(p0))
            except Exception:  # noqa: BLE001 - malformed SubIFDs are LibRaw's call, not ours
                pass
            raw_page = p0
            for p in pages:
                if int(_tag_value(p.tags, TAG_NEW_SUBFILE_TYPE) or 0) == 0:
                    raw_page = p
                    break
            t0, tr = p0.tags, raw_page.tags
            make = str(_tag_value(t0, TAG_MAKE) or "").strip()
            model = str(_tag_value(t0, TAG_MODEL) or "").strip()
            out["camera"] = (model if model.lower().startswith(make.lower()) else f"{make} {model}").strip()
            exif = _tag_value(t0, TAG_EXIF_IFD)
            if isinstance(exif, dict):
                out["exif_iso"] = _as_float(exif.get("ISOSpeedRatings", exif.get("PhotographicSensitivity")))
                out["exif_exposure"] = _as_float(exif.get("ExposureTime"))
            out["ifd0_iso"] = _as_float(_tag_value(t0, TAG_ISO))
            out["ifd0_exposure"] = _as_float(_tag_value(t0, TAG_EXPOSURE_TIME))
            out["photometric"] = int(_tag_value(tr, TAG_PHOTOMETRIC) or 0)
            out["is_dng"] = _tag_value(t0, TAG_DNG_VERSION) is not None
            out["samples_per_pixel"] = int(_tag_value(tr, TAG_SAMPLES_PER_PIXEL) or 1)
            for tags in (tr, t0):
                lin = _tag_value(tags, TAG_LINEARIZATION_TABLE)
                if lin is not None:
                    out["linearization"] = np.asarray(lin, dtype=np.int64)
                    break
            gain_maps = []
            for code, name in TAG_OPCODE_LISTS.items():
                for tags in (tr, t0):
                    blob = _tag_value(tags, code)
                    if blob is not None:
                        if OPCODE_GAIN_MAP in _opcode_ids(blob):
                            gain_maps.append(name)
                        break
            out["gain_maps"] = gain_maps
            for tags in (tr, t0):
                npf = _tag_value(tags, TAG_NOISE_PROFILE)
                if npf is not None:
                    v = [float(x) for x in np.ravel(npf)]
                    if len(v) >= 2 and len(v) % 2 == 0:
                        out["noise_profile"] = [(v[i], v[i + 1]) for i in range(0, len(v), 2)]
                    break
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError, struct.error):
        return {}
    return out


def _bayer_layout(raw) -> tuple[str, np.ndarray]:
    """(pattern, black R/Gr/Gb/B) from rawpy's raw_pattern / color_desc / black_level_per_channel."""
    rp = raw.raw_pattern
    if rp is None or np.asarray(rp).shape != (2, 2):
        shape = None if rp is None else np.asarray(rp).shape
        raise NotSensorRawError(f"not a 2x2 Bayer CFA (raw_pattern {shape})")
    desc = raw.color_desc.decode("ascii", "replace")
    letters = [[desc[int(rp[i, j])] for j in range(2)] for i in range(2)]
    flat = "".join(letters[0] + letters[1])
    if sorted(flat) != ["B", "G", "G", "R"]:
        raise NotSensorRawError(f"CFA {flat!r} is not an RGB Bayer pattern")
    bl = list(raw.black_level_per_channel)
    red_row = 0 if "R" in letters[0] else 1
    black = np.zeros(4)
    for i in range(2):
        for j in range(2):
            c = letters[i][j]
            slot = 0 if c == "R" else 3 if c == "B" else (1 if i == red_row else 2)
            black[slot] = float(bl[int(rp[i, j])])
    return flat, black


def read_raw(path: str | os.PathLike, *, iso: float | None = None, exposure_time: float | None = None,
             load_data: bool = True) -> RawFrame:
    """Read one raw file as a :class:`RawFrame` (see module docstring).

    Parameters
    ----------
    path : the raw file.
    iso, exposure_time : values to use when the file carries none (the file's own values win).
    load_data : False skips copying the pixels (``data`` is None); metadata and checks still run.

    Raises
    ------
    RawReadError : the file is missing, truncated, corrupt or not a raw file LibRaw knows.
    NotSensorRawError : the file is not sensor-raw Bayer data (the message says why).
    """
    import rawpy

    p = Path(path)
    if not p.is_file():
        raise RawReadError(f"{p}: {file_problem(p, 'raw')}")
    meta = _tiff_metadata(str(p))
    notes: list[str] = [f"tifffile: {m}" for m in meta.get("tiff_messages", [])]
    if meta.get("photometric") == PHOTOMETRIC_LINEAR_RAW or meta.get("samples_per_pixel", 1) > 1:
        what = ("a demosaiced (LinearRaw) DNG" if meta.get("is_dng") and meta.get("photometric") == PHOTOMETRIC_LINEAR_RAW
                else "a demosaiced DNG" if meta.get("is_dng")
                else "an RGB TIFF-based image (e.g. a scanner or converted file), not a camera raw")
        raise NotSensorRawError(f"{p}: {what}, not sensor CFA data "
                                f"(PhotometricInterpretation {meta.get('photometric')}, "
                                f"{meta.get('samples_per_pixel')} samples per pixel)")
    lin = meta.get("linearization")
    lin_step = None
    if lin is not None and not np.array_equal(lin, np.arange(len(lin))):
        steps = np.diff(lin)
        if np.any(steps < 0):
            raise NotSensorRawError(f"{p}: its LinearizationTable ({len(lin)} entries) is not monotonic, so stored "
                                    "values cannot be mapped back to linear sensor DN")
        lin_step = int(steps.max())
        notes.append(f"LinearizationTable ({len(lin)} entries) applied, as LibRaw does: the values are linear DN, "
                     f"but quantised non-uniformly (steps from {int(steps.min())} to {lin_step} DN)")
    elif lin is not None:
        notes.append("identity LinearizationTable (harmless)")
    if meta.get("gain_maps"):
        notes.append(f"lens-shading GainMap opcode in {', '.join(meta['gain_maps'])}: ignored (the raw values are "
                     "used before any opcode; flats keep their vignetting)")
    try:
        with rawpy.imread(str(p)) as raw:
            if raw.raw_type != rawpy.RawType.Flat:
                raise NotSensorRawError(f"{p}: rawpy reports {raw.raw_type} (several values per pixel): already demosaiced")
            try:
                pattern, black = _bayer_layout(raw)
            except NotSensorRawError as exc:
                raise NotSensorRawError(f"{p}: {exc}") from None
            white = int(raw.white_level)
            data = None
            if load_data:
                data = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
                if data.ndim != 2:
                    raise NotSensorRawError(f"{p}: raw image has shape {data.shape}, expected a 2-D mosaic")
            shape = tuple(raw.raw_image_visible.shape) if not load_data else data.shape
            r_iso = float(raw.other.iso_speed or 0.0)
            r_exp = float(raw.other.shutter_speed or 0.0)
    except NotSensorRawError:
        raise
    except rawpy.LibRawError as exc:
        raise RawReadError(f"{p}: LibRaw cannot read it ({type(exc).__name__}: {exc}); truncated, corrupt or not a raw file") from None
    except (OSError, ValueError) as exc:
        raise RawReadError(f"{p}: cannot read it as a raw file ({exc})") from None
    if min(shape) < 2:
        raise NotSensorRawError(f"{p}: raw image of shape {shape} is too small")
    iso_v, src = None, ""
    for val, name in ((r_iso if r_iso > 0 else None, "rawpy"), (meta.get("exif_iso"), "EXIF IFD"),
                      (meta.get("ifd0_iso"), "IFD0"), (iso, "supplied")):
        if val is not None and val > 0:
            iso_v, src = float(val), name
            break
    exp_v = meta.get("exif_exposure") or meta.get("ifd0_exposure") or (r_exp if r_exp > 0 else None) or exposure_time
    return RawFrame(path=str(p), data=data, pattern=pattern, black_level=black, white_level=white, iso=iso_v,
                    exposure_time=None if exp_v is None else float(exp_v), camera=meta.get("camera", ""),
                    noise_profile=meta.get("noise_profile"), iso_source=src, notes=notes,
                    linearization_max_step=lin_step)
