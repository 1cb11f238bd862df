"""Images of the per-device study: held-out test photos, a tuning split, and procedural training scenes.

Test set (never used for training or tuning): six everyday photos shipped
inside the scikit-image and matplotlib wheels, each a distinct scene (the
motorcycle is a stereo pair: only its left view is used, and it counts once).

============== ====================================================== =========================
name           source (package file)                                  licence (as the package documents it)
============== ====================================================== =========================
astronaut      scikit-image ``skimage/data/astronaut.png``            public domain (NASA)
chelsea        scikit-image ``skimage/data/chelsea.png``              CC0 (Stefan van der Walt)
coffee         scikit-image ``skimage/data/coffee.png``               CC0 (Rachel Michetti)
rocket         scikit-image ``skimage/data/rocket.jpg``               public domain (SpaceX)
motorcycle     scikit-image ``skimage/data/motorcycle_left.png``      Middlebury stereo 2014, free for research
grace_hopper   matplotlib ``mpl-data/sample_data/grace_hopper.jpg``   public domain (US Navy)
============== ====================================================== =========================

Tuning split (the baselines' parameters): crops of the scikit-image
``immunohistochemistry`` photo (CC0) and of dead-leaves scenes drawn from a
seed stream disjoint from the training one.

Training: dead-leaves scenes (:func:`dead_leaves`) and the scikit-image
grey textures ``brick``, ``grass`` and ``gravel`` (CC0) tinted with a random
colour. The dead-leaves model (Matheron 1968; Lee, Mumford and Huang 2001)
stacks occluding disks with radii drawn from ``p(r) ~ r^-3``; it reproduces
the scale invariance and the edge statistics of natural images and is used
in camera texture evaluation (IEEE 1858 / Cao et al. 2010) and as denoiser
training data (Achddou et al. 2021). Here each disk is filled with a colour
gradient and a faint texture so that scenes are not piecewise constant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isp_sim.scenes import dead_leaves, natural_palette

from ..errors import InputError

__all__ = ["natural_palette", "licence_table", "TEST_SCENES", "TUNE_PHOTOS", "TRAIN_TEXTURES", "Scene", "dead_leaves", "load_photo", "test_scenes",
           "tune_scenes", "train_scenes"]


@dataclass(frozen=True)
class Scene:
    """One image of the study: ``name``, float32 sRGB ``(H, W, 3)`` in [0, 1], where it came from."""

    name: str
    image: np.ndarray
    source: str
    licence: str


TEST_SCENES: dict[str, tuple[str, str, str]] = {
    # name: (package, file, licence)
    "astronaut": ("skimage", "astronaut.png", "public domain (NASA)"),
    "chelsea": ("skimage", "chelsea.png", "CC0"),
    "coffee": ("skimage", "coffee.png", "CC0"),
    "rocket": ("skimage", "rocket.jpg", "public domain (SpaceX)"),
    "motorcycle": ("skimage", "motorcycle_left.png", "Middlebury stereo 2014, free for research use"),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg", "public domain (US Navy)"),
}
TUNE_PHOTOS: dict[str, tuple[str, str, str]] = {"ihc": ("skimage", "ihc.png", "CC0")}
TRAIN_TEXTURES: dict[str, tuple[str, str, str]] = {
    "brick": ("skimage", "brick.png", "CC0"),
    "grass": ("skimage", "grass.png", "CC0"),
    "gravel": ("skimage", "gravel.png", "CC0"),
}


def _package_file(package: str, name: str) -> Path:
    if package == "skimage":
        import skimage

        p = Path(skimage.__file__).parent / "data" / name
    elif package == "matplotlib":
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "sample_data" / name
    else:  # pragma: no cover - table above is fixed
        raise InputError(f"unknown image package {package!r}")
    if not p.is_file():
        raise InputError(f"study image {name!r} is missing from the installed {package} ({p}); "
                         f"reinstall {package} (the study reads the photos its wheel ships)")
    return p


def load_photo(package: str, name: str) -> tuple[np.ndarray, str]:
    """A photo shipped by ``package`` as float32 sRGB ``(H, W, 3)`` in [0, 1] (grey images repeated on 3 channels)."""
    from PIL import Image

    p = _package_file(package, name)
    with Image.open(p) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return a, f"{package}: {p.name}"


def _scenes(table: dict[str, tuple[str, str, str]]) -> list[Scene]:
    out = []
    for name, (pkg, fname, lic) in table.items():
        img, src = load_photo(pkg, fname)
        out.append(Scene(name, img, src, lic))
    return out


def test_scenes() -> list[Scene]:
    """The six held-out test photos (module docstring)."""
    return _scenes(TEST_SCENES)


def _palette(scenes: list[Scene], rng: np.random.Generator, n: int = 4096) -> np.ndarray:
    pix = np.concatenate([s.image.reshape(-1, 3) for s in scenes])
    return pix[rng.integers(len(pix), size=n)]


def _texture_scenes(rng: np.random.Generator) -> list[Scene]:
    out = []
    for s in _scenes(TRAIN_TEXTURES):
        tint = rng.uniform(0.35, 1.0, 3).astype(np.float32)
        out.append(Scene(s.name, np.clip(s.image * tint, 0, 1), s.source + " (tinted)", s.licence))
    return out


def train_scenes(n_dead_leaves: int, seed: int, size: int = 256) -> list[Scene]:
    """Training scenes: ``n_dead_leaves`` dead-leaves scenes (colours from the textures and dead leaves) + the tinted textures."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7EA1]))
    tex = _texture_scenes(rng)
    pal = natural_palette(rng)
    leaves = [Scene(f"dead_leaves_{i:03d}", dead_leaves(rng, size, palette=pal), "procedural (d2hnet.study.scenes)",
                    "generated") for i in range(n_dead_leaves)]
    return leaves + tex


def tune_scenes(n_dead_leaves: int, seed: int, size: int = 256) -> list[Scene]:
    """Tuning split: the ``ihc`` photo and dead-leaves scenes from a seed stream disjoint from training."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7C9E]))
    photos = _scenes(TUNE_PHOTOS)
    pal = _palette(photos, rng)
    leaves = [Scene(f"tune_dead_leaves_{i:02d}", dead_leaves(rng, size, palette=pal), "procedural (d2hnet.study.scenes)",
                    "generated") for i in range(n_dead_leaves)]
    return photos + leaves


def licence_table() -> list[dict[str, str]]:
    """Every photo the study uses, with role, source and licence (for the summary)."""
    rows = []
    for role, table in (("test", TEST_SCENES), ("tune", TUNE_PHOTOS), ("train", TRAIN_TEXTURES)):
        for name, (pkg, fname, lic) in table.items():
            rows.append({"role": role, "name": name, "source": f"{pkg}: {fname}", "licence": lic})
    return rows


if __name__ == "__main__":  # pragma: no cover
    print(os.linesep.join(f"{r['role']:6s}{r['name']:14s}{r['source']:40s}{r['licence']}" for r in licence_table()))
