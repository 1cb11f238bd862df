"""Writing Bayer raw frames as DNG files the way a phone does (uncompressed 16-bit CFA, one IFD).

The files carry what LibRaw/rawpy and the ``calibration`` package read back:
CFA pattern, per-channel black level (2x2 ``BlackLevelRepeatDim``), white level,
make/model, colour matrix and as-shot neutral, the DNG ``NoiseProfile`` tag
(51041) and, as the camera wrote them, ISO (``ISOSpeedRatings``, 34855) and
exposure time (33434) in the EXIF IFD, in IFD0, or both. Android phones put them
in the EXIF IFD; some tools put them in IFD0, where rawpy reports ISO 0, so both
layouts are offered for testing readers.

Only what a sensor raw needs is written; the writer is a plain little-endian
TIFF 6.0 encoder (no dependency), following the DNG 1.4 specification's tag
list. Extra tags (for example a ``LinearizationTable`` or opcode lists, to test
that readers refuse processed DNGs) can be added with ``extra_tags``.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from .cfa import check_pattern
from .errors import InputError, InputTypeError

# TIFF field types
BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL, DOUBLE = 1, 2, 3, 4, 5, 7, 10, 12
_SIZES = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, SRATIONAL: 8, DOUBLE: 8}

TAG_ISO = 34855
TAG_EXPOSURE_TIME = 33434
TAG_EXIF_IFD = 34665
TAG_NOISE_PROFILE = 51041
TAG_LINEARIZATION_TABLE = 50712
TAG_OPCODE_LIST2 = 51009
_CFA_CODES = {"R": 0, "G": 1, "B": 2}


def _rational(v: float, signed: bool) -> tuple[int, int]:
    f = Fraction(float(v)).limit_denominator(1_000_000)
    n, d = f.numerator, f.denominator
    lim = 2**31 - 1 if signed else 2**32 - 1
    while abs(n) > lim or d > lim:
        n //= 2
        d //= 2
    return n, max(d, 1)


def _encode(ftype: int, values) -> bytes:
    if ftype == ASCII:
        b = values.encode("ascii", "replace") if isinstance(values, str) else bytes(values)
        return b + b"\0"
    if ftype in (BYTE, UNDEFINED):
        return bytes(values)
    vals = list(values) if isinstance(values, Iterable) and not isinstance(values, (str, bytes)) else [values]
    if ftype == SHORT:
        return struct.pack(f"<{len(vals)}H", *[int(v) for v in vals])
    if ftype == LONG:
        return struct.pack(f"<{len(vals)}I", *[int(v) for v in vals])
    if ftype == DOUBLE:
        return struct.pack(f"<{len(vals)}d", *[float(v) for v in vals])
    if ftype in (RATIONAL, SRATIONAL):
        out = b""
        for v in vals:
            n, d = _rational(v, ftype == SRATIONAL)
            out += struct.pack("<ii" if ftype == SRATIONAL else "<II", n, d)
        return out
    raise InputError(f"unsupported TIFF field type {ftype}")


def _ifd_bytes(entries: dict, offset: int, next_ifd: int = 0) -> tuple[bytes, bytes]:
    """Serialise one IFD placed at ``offset``; returns (ifd, overflow data that follows it)."""
    n = len(entries)
    ifd_size = 2 + 12 * n + 4
    data_off = offset + ifd_size
    ifd = struct.pack("<H", n)
    data = b""
    for tag in sorted(entries):
        ftype, payload = entries[tag]
        raw = _encode(ftype, payload)
        count = len(raw) // _SIZES[ftype]
        if len(raw) <= 4:
            ifd += struct.pack("<HHI", tag, ftype, count) + raw.ljust(4, b"\0")
        else:
            if (data_off + len(data)) % 2:
                data += b"\0"
            ifd += struct.pack("<HHII", tag, ftype, count, data_off + len(data))
            data += raw
    ifd += struct.pack("<I", next_ifd)
    return ifd, data


def write_dng(path: str | os.PathLike, raw: np.ndarray, pattern: str, black_level, white_level: int, *,
              iso: float | None = None, exposure_time: float | None = None, iso_location: str = "exif",
              make: str = "isp_sim", model: str = "Simulated sensor", color_matrix=None, as_shot_neutral=None,
              noise_profile: Iterable[tuple[float, float]] | None = None, bits_per_sample: int | None = None,
              extra_tags: dict | None = None) -> Path:
    """Write a Bayer mosaic as an uncompressed DNG (see module docstring).

    Parameters
    ----------
    raw : (H, W) uint16 mosaic in DN (black level included).
    pattern : CFA pattern in reading order ("RGGB", ...).
    black_level : number or 4 numbers in R, Gr, Gb, B order.
    white_level : int DN.
    iso, exposure_time : written where ``iso_location`` says: "exif" (EXIF IFD, as phones do),
        "ifd0" or "both"; None omits the tag.
    color_matrix : 3x3 XYZ -> camera matrix (DNG ColorMatrix1); identity-like default.
    as_shot_neutral : camera-neutral RGB (1 / white-balance gains); default (1, 1, 1).
    noise_profile : DNG NoiseProfile (S, O) pairs, one per CFA colour plane (R, G, B).
    extra_tags : {tag: (tiff_type, values)} added to IFD0.
    """
    if not isinstance(raw, np.ndarray):
        raise InputTypeError(f"raw must be a numpy array, got {type(raw).__name__}")
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise InputError(f"raw must be a 2-D uint16 Bayer mosaic, got shape {raw.shape} dtype {raw.dtype}")
    if iso_location not in ("exif", "ifd0", "both"):
        raise InputError(f"iso_location must be 'exif', 'ifd0' or 'both', got {iso_location!r}")
    pattern = check_pattern(pattern)
    black = np.asarray(black_level, dtype=np.float64)
    if black.ndim == 0:
        black = np.full(4, float(black))
    if black.shape != (4,):
        raise InputError(f"black_level must be one number or 4 (R, Gr, Gb, B), got {black_level!r}")
    from .cfa import channel_map

    cmap = channel_map(pattern)
    black_rc = [float(black[cmap[i, j]]) for i in range(2) for j in range(2)]  # reading order of the 2x2 cell
    h, w = raw.shape
    bps = bits_per_sample or 16
    cm = np.eye(3) if color_matrix is None else np.asarray(color_matrix, dtype=np.float64)
    neutral = (1.0, 1.0, 1.0) if as_shot_neutral is None else tuple(float(v) for v in as_shot_neutral)
    pixel_bytes = np.ascontiguousarray(raw, dtype="<u2").tobytes()

    ifd0 = {
        254: (LONG, [0]),  # NewSubFileType: main image
        256: (LONG, [w]), 257: (LONG, [h]),
        258: (SHORT, [bps]), 259: (SHORT, [1]),  # uncompressed
        262: (SHORT, [32803]),  # PhotometricInterpretation: CFA
        271: (ASCII, make), 272: (ASCII, model),
        274: (SHORT, [1]), 277: (SHORT, [1]), 278: (LONG, [h]),
        279: (LONG, [len(pixel_bytes)]),
        284: (SHORT, [1]),
        305: (ASCII, "isp_sim"),
        33421: (SHORT, [2, 2]),  # CFARepeatPatternDim
        33422: (BYTE, [_CFA_CODES[c] for c in pattern]),  # CFAPattern
        50706: (BYTE, [1, 4, 0, 0]), 50707: (BYTE, [1, 1, 0, 0]),  # DNGVersion, DNGBackwardVersion
        50708: (ASCII, f"{make} {model}"),  # UniqueCameraModel
        50710: (BYTE, [0, 1, 2]),  # CFAPlaneColor
        50711: (SHORT, [1]),  # CFALayout: rectangular
        50713: (SHORT, [2, 2]),  # BlackLevelRepeatDim
        50714: (RATIONAL, black_rc),  # BlackLevel
        50717: (LONG, [int(white_level)]),  # WhiteLevel
        50721: (SRATIONAL, cm.ravel().tolist()),  # ColorMatrix1
        50728: (RATIONAL, list(neutral)),  # AsShotNeutral
        50778: (SHORT, [21]),  # CalibrationIlluminant1: D65
        50829: (LONG, [0, 0, h, w]),  # ActiveArea
    }
    if noise_profile is not None:
        flat = [float(v) for pair in noise_profile for v in pair]
        ifd0[TAG_NOISE_PROFILE] = (DOUBLE, flat)
    exif = {}
    if iso is not None:
        target = [exif] if iso_location == "exif" else [ifd0] if iso_location == "ifd0" else [exif, ifd0]
        for t in target:
            t[TAG_ISO] = (SHORT, [min(int(round(iso)), 65535)])
    if exposure_time is not None:
        target = [exif] if iso_location == "exif" else [ifd0] if iso_location == "ifd0" else [exif, ifd0]
        for t in target:
            t[TAG_EXPOSURE_TIME] = (RATIONAL, [float(exposure_time)])
    if extra_tags:
        ifd0.update(extra_tags)
    if exif:
        exif[36864] = (UNDEFINED, b"0230")  # ExifVersion
        ifd0[TAG_EXIF_IFD] = (LONG, [0])  # patched below

    # layout: header | pixel data | IFD0 + data | EXIF IFD + data
    header_len = 8
    pix_off = header_len
    ifd0_off = pix_off + len(pixel_bytes)
    ifd0_off += ifd0_off % 2
    ifd0[273] = (LONG, [pix_off])  # StripOffsets
    ifd0_b, ifd0_d = _ifd_bytes(ifd0, ifd0_off)
    exif_b = exif_d = b""
    if exif:
        exif_off = ifd0_off + len(ifd0_b) + len(ifd0_d)
        exif_off += exif_off % 2
        ifd0[TAG_EXIF_IFD] = (LONG, [exif_off])
        ifd0_b, ifd0_d = _ifd_bytes(ifd0, ifd0_off)
        exif_b, exif_d = _ifd_bytes(exif, exif_off)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    with open(tmp, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", ifd0_off))
        f.write(pixel_bytes)
        if f.tell() % 2:
            f.write(b"\0")
        f.write(ifd0_b + ifd0_d)
        if exif:
            if f.tell() % 2:
                f.write(b"\0")
            f.write(exif_b + exif_d)
    os.replace(tmp, p)
    return p
