"""Decoded-image cache: each training PNG/TIFF is decoded once per dataset, then read as a memory-mapped array.

A D2HNet phase-1 sample reads a long and a short frame of a tuple and crops 1024 x 1024 from them; decoding
two PNGs costs more than the crop's two degradations. The cache stores each image as stored (``uint8`` or
``uint16``, ``(H, W, 3)``, row-major ``.npy``): a crop then touches only its own rows and is converted to
float32 exactly as :func:`isp_sim.imageio.to_float` converts the whole image (the tests compare both).

Format chosen by measurement (``benchmarks/bench_d2hnet_data.py``, a 1400 x 1400 8-bit tuple): PNG decode 73 ms
per image, ``np.load(mmap_mode="r")`` + a 1024 x 1024 crop + conversion 3 ms; uint8 keeps the cache at the
images' decoded size (an 8-bit D2-Dataset tuple of 2880 x 1620: 14 MB per frame).

Entries are keyed by the source's resolved path, size and modification time (a changed image is decoded again)
and written atomically (a temporary name, then ``os.replace``), so DataLoader workers can fill the cache
concurrently. ``cache_dir`` is shared by all datasets that use it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from isp_sim.imageio import read_image_raw, to_float

from ..errors import InputError

__all__ = ["DecodedCache", "crop_to_float"]


def crop_to_float(arr: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    """``arr[y:y+h, x:x+w]`` as float32 in [0, 1] (:func:`isp_sim.imageio.to_float` of the crop, so only the crop is
    read from a memory map)."""
    return to_float(np.asarray(arr[y:y + h, x:x + w]))


class DecodedCache:
    """Decoded images under ``directory`` (module docstring). ``get(path)`` returns a read-only memory map."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"decoded-image cache {self.dir}: cannot create it ({exc.strerror or exc})") from None
        self._maps: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.decoded = 0  # images decoded by this process (0 once the cache is warm)

    def _key(self, path: Path) -> str:
        st = path.stat()
        h = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]
        return f"{path.stem[:40]}-{h}.npy"

    def path_for(self, path: str | os.PathLike) -> Path:
        return self.dir / self._key(Path(path))

    def get(self, path: str | os.PathLike) -> np.ndarray:
        """The image at ``path`` as stored (``uint8``/``uint16``), memory-mapped; decoded and cached on first use."""
        p = Path(path)
        entry = self.path_for(p)
        k = str(entry)
        m = self._maps.get(k)
        if m is not None:
            return m
        if not entry.is_file():
            arr = read_image_raw(p)
            tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                with open(tmp, "wb") as f:
                    np.save(f, np.ascontiguousarray(arr))
                os.replace(tmp, entry)
            finally:
                if tmp.exists():
                    tmp.unlink()
            self.decoded += 1
        m = np.load(entry, mmap_mode="r")
        with self._lock:
            self._maps[k] = m
        return m

    def __getstate__(self):  # DataLoader workers get their own memory maps
        return {"dir": self.dir}

    def __setstate__(self, state):
        self.dir = state["dir"]
        self._maps = {}
        self._lock = threading.Lock()
        self.decoded = 0
