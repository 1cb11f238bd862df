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


def dead_leaves(rng: np.random.Generator, size: int = 256, *, r_min: float = 2.0, r_max: float = 80.0,
                n_disks: int | None = None, palette: np.ndarray | None = None) -> np.ndarray:
    """A dead-leaves scene ``(size, size, 3)`` float32 sRGB in [0, 1].

    Disks are drawn back to front (later disks occlude earlier ones) with
    radii from ``p(r) ~ r^-3`` on ``[r_min, r_max]`` (inverse-CDF sampling),
    uniform centres (also outside the frame by ``r_max``), colours from
    ``palette`` (``(M, 3)`` sRGB colours, e.g. pixels of photos) or uniform,
    each with a linear shading gradient and a faint sinusoidal texture.
    ``n_disks`` defaults to enough disks to cover the frame several times.
    """
    if size < 8:
        raise InputError(f"dead_leaves size must be >= 8, got {size}")
    if not 0 < r_min < r_max:
        raise InputError(f"need 0 < r_min < r_max, got {r_min}, {r_max}")
    if n_disks is None:
        # E[r^2] for p(r) ~ r^-3 on [a, b] is 2 ln(b / a) / (a^-2 - b^-2): cover the padded frame ~3 times
        mean_area = np.pi * 2.0 * np.log(r_max / r_min) / (r_min**-2 - r_max**-2)
        n_disks = int(3.0 * (size + 2 * r_max) ** 2 / mean_area)
    n = max(int(n_disks), 1)
    img = np.full((size, size, 3), 0.5, np.float32)
    # p(r) ~ r^-3 on [a, b]: CDF F(r) = (a^-2 - r^-2) / (a^-2 - b^-2)
    u = rng.random(n)
    a2, b2 = r_min**-2, r_max**-2
    radii = (a2 - u * (a2 - b2)) ** -0.5
    cy = rng.uniform(-r_max, size + r_max, n)
    cx = rng.uniform(-r_max, size + r_max, n)
    if palette is not None and len(palette):
        cols = palette[rng.integers(len(palette), size=n)].astype(np.float32)
    else:
        cols = rng.random((n, 3)).astype(np.float32)
    grads = rng.normal(0.0, 0.25, (n, 2)).astype(np.float32)
    tex_f = rng.uniform(0.05, 0.6, (n, 2)).astype(np.float32)
    tex_a = rng.uniform(0.0, 0.08, n).astype(np.float32)
    for i in range(n):
        r = radii[i]
        y0, y1 = max(int(cy[i] - r), 0), min(int(cy[i] + r) + 1, size)
        x0, x1 = max(int(cx[i] - r), 0), min(int(cx[i] + r) + 1, size)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy[i])
        xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx[i])
        m = yy * yy + xx * xx <= r * r
        if not m.any():
            continue
        shade = 1.0 + (grads[i, 0] * yy + grads[i, 1] * xx) / np.float32(r) \
            + tex_a[i] * np.sin(tex_f[i, 0] * yy + tex_f[i, 1] * xx)
        patch = np.clip(cols[i][None, None, :] * shade[..., None], 0.0, 1.0)
        img[y0:y1, x0:x1][m] = patch[m]
    # photographed edges are not aliased: a lens-like blur of about half a pixel
    from scipy.ndimage import gaussian_filter

    return np.clip(gaussian_filter(img, sigma=(0.6, 0.6, 0.0)), 0.0, 1.0).astype(np.float32)


def natural_palette(rng: np.random.Generator, n: int = 4096) -> np.ndarray:
    """``(n, 3)`` sRGB colours with natural-looking statistics: any hue, mostly low saturation, darkish values."""
    h = rng.random(n)
    s = rng.beta(1.5, 3.0, n)
    v = rng.random(n) ** 1.3
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.empty((n, 3))
    for k, (r, g, b) in enumerate(table):
        m = i == k
        out[m] = np.stack([r[m], g[m], b[m]], 1)
    return out.astype(np.float32)


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
