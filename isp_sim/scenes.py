"""Synthetic scenes with natural image statistics: dead leaves (occluding disks, r^-3 radii) and a natural
colour palette. Used to simulate raw captures of textured scenes at native resolution (calibration's scene
sessions) and as training / tuning scenes (``d2hnet study``).

Dead leaves (Matheron 1968; Lee, Mumford and Huang 2001): scale-invariant occlusion models whose power
spectra and edge statistics follow natural images', unlike upsampled small photos, which are unnaturally
smooth at the pixel scale.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["dead_leaves", "natural_palette"]


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
