"""Reading and writing 8- and 16-bit PNG and TIFF images without silent bit-depth loss.

Pillow reads a 16-bit RGB PNG as 8-bit without saying so, so 16-bit PNG goes
through pypng (pure Python, exact) and TIFF through tifffile. 8-bit PNG and
other formats Pillow knows go through Pillow.

Conventions: images in memory are float32 ``(H, W, 3)`` sRGB in [0, 1];
``uint8`` maps ``v -> v / 255`` and ``uint16`` maps ``v -> v / 65535``.
Writing quantises by rounding.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ImageIOError, InputError, InputTypeError

PNG_SUFFIXES = (".png",)
TIFF_SUFFIXES = (".tif", ".tiff")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != _PNG_MAGIC or head[12:16] != b"IHDR":
        raise ImageIOError(f"{path}: not a valid PNG file (bad signature or header)")
    return head[24]


def read_image_raw(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as stored: ``uint8`` or ``uint16``, shape ``(H, W)`` or ``(H, W, C)``.

    Raises :class:`ImageIOError` naming the file when it is missing or cannot be decoded.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageIOError(f"{p}: no such image file")
    suffix = p.suffix.lower()
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            arr = tifffile.imread(p)
        elif suffix in PNG_SUFFIXES and _png_bit_depth(p) == 16:
            import png

            with open(p, "rb") as fh:
                w, h, rows, info = png.Reader(file=fh).asDirect()
                planes = info["planes"]
                arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows])
            arr = arr.reshape(h, w, planes) if planes > 1 else arr.reshape(h, w)
        else:
            from PIL import Image

            with Image.open(p) as im:
                if im.mode in ("P", "PA"):
                    im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
                elif im.mode == "1":
                    im = im.convert("L")
                elif im.mode in ("I;16", "I;16B", "I;16L"):
                    return np.asarray(im, dtype=np.uint16)
                elif im.mode not in ("L", "LA", "RGB", "RGBA"):
                    raise ImageIOError(f"{p}: unsupported image mode {im.mode!r}; use 8/16-bit gray or RGB")
                arr = np.asarray(im)
    except ImageIOError:
        raise
    except Exception as exc:  # decoder errors come in many types
        raise ImageIOError(f"{p}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageIOError(f"{p}: unsupported sample type {arr.dtype}; only 8- and 16-bit integer images are read")
    return arr


def bit_depth_of(arr: np.ndarray) -> int:
    """8 for ``uint8``, 16 for ``uint16``."""
    return 8 if arr.dtype == np.uint8 else 16


def to_float(arr: np.ndarray) -> np.ndarray:
    """Integer image -> float32 in [0, 1] (``uint8 / 255``, ``uint16 / 65535``); float input is checked and returned as float32."""
    if not isinstance(arr, np.ndarray):
        raise InputTypeError(f"expected a numpy array, got {type(arr).__name__}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise InputTypeError(f"image dtype {arr.dtype} not supported; use uint8, uint16 or float in [0, 1]")


def read_rgb(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an RGB image as float32 ``(H, W, 3)`` in [0, 1], with its bit depth (8 or 16).

    Grayscale and images with alpha are refused with an error saying so.
    """
    arr = read_image_raw(path)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 2)):
        raise ImageIOError(f"{path}: grayscale image (shape {arr.shape}); an RGB image is required")
    if arr.ndim != 3 or arr.shape[2] != 3:
        extra = " (RGBA: remove the alpha channel)" if arr.ndim == 3 and arr.shape[2] == 4 else ""
        raise ImageIOError(f"{path}: image of shape {arr.shape} is not RGB (H, W, 3){extra}")
    return to_float(arr), bit_depth_of(arr)


def quantize(img: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float image in [0, 1] -> ``uint8``/``uint16`` by rounding. Values outside [0, 1] are an error."""
    if bit_depth not in (8, 16):
        raise InputError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    x = np.asarray(img)
    if np.issubdtype(x.dtype, np.integer):
        want = np.uint8 if bit_depth == 8 else np.uint16
        if x.dtype != want:
            raise InputTypeError(f"integer image of dtype {x.dtype} cannot be written as {bit_depth}-bit; pass {np.dtype(want)} or float")
        return x
    if not np.all(np.isfinite(x)):
        raise InputError("image contains NaN or inf; cannot write it")
    lo, hi = float(x.min(initial=0.0)), float(x.max(initial=0.0))
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"float image values must lie in [0, 1] to be written, got range [{lo:.4g}, {hi:.4g}]")
    scale = 255.0 if bit_depth == 8 else 65535.0
    q = np.rint(x.astype(np.float64) * scale)
    return q.astype(np.uint8 if bit_depth == 8 else np.uint16)


def write_image(path: str | os.PathLike, img: np.ndarray, bit_depth: int = 8) -> Path:
    """Write ``img`` (float in [0, 1], or uint8/uint16) as an 8- or 16-bit PNG or TIFF.

    The format comes from the suffix (``.png``, ``.tif``, ``.tiff``); anything else is an error.
    Parent folders are created. Returns the path written.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in PNG_SUFFIXES + TIFF_SUFFIXES:
        raise ImageIOError(f"{p}: unsupported output format {suffix!r}; use .png, .tif or .tiff")
    q = quantize(img, bit_depth)
    if q.ndim not in (2, 3) or (q.ndim == 3 and q.shape[2] not in (1, 3, 4)):
        raise InputError(f"cannot write an image of shape {q.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    p.parent.mkdir(parents=True, exist_ok=True)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        photometric = "rgb" if q.ndim == 3 and q.shape[2] >= 3 else "minisblack"
        tifffile.imwrite(p, q, photometric=photometric)
    elif q.dtype == np.uint16:
        import png

        planes = 1 if q.ndim == 2 else q.shape[2]
        writer = png.Writer(width=q.shape[1], height=q.shape[0], bitdepth=16,
                            greyscale=planes in (1, 2), alpha=planes in (2, 4))
        with open(p, "wb") as f:
            writer.write(f, q.reshape(q.shape[0], -1))
    else:
        from PIL import Image

        Image.fromarray(q[..., 0] if q.ndim == 3 and q.shape[2] == 1 else q).save(p)
    return p


SAMPLE_IMAGES = ("coffee", "astronaut", "chelsea")


def sample_image_path(name: str = "coffee") -> Path:
    """Path of a bundled sample image (see ``isp_sim/data/LICENSES.md``): coffee, astronaut or chelsea."""
    from importlib import resources

    if name not in SAMPLE_IMAGES:
        raise InputError(f"unknown sample image {name!r}; bundled: {', '.join(SAMPLE_IMAGES)}")
    return Path(str(resources.files("isp_sim").joinpath("data", f"{name}.png")))
