"""The main job of the README: degrade a bundled sample image at a long- and a short-exposure ISO.

Writes ``clean.png``, ``long_iso<N>.png``, ``short_iso<N>.png`` (noisy sRGB), the
noisy mosaics as DNG with JSON sidecars, and ``side_by_side.png`` (crops with
ISO and PSNR in the titles). Long and short share white-balance gains, as a
long/short pair from one phone would.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

from ._seed import seed_sequence
from .degradation import sample_wb, degrade
from .imageio import read_rgb, sample_image_path, write_image
from .pipeline import D2HNET_WB_RANGE
from .profile import load_profile


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of images in [0, 1] over all pixels and channels."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def side_by_side(path: Path, panels: list[tuple[str, np.ndarray]], crop: int | None = 256) -> Path:
    """Save images next to each other with titles (matplotlib, Agg; no global state touched)."""
    from matplotlib.figure import Figure

    h, w = panels[0][1].shape[:2]
    fig = Figure(figsize=(4.2 * len(panels), 4.6 if crop else 4.2 * h / w + 0.4), dpi=110)
    for i, (title, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        view = img
        if crop and min(h, w) > crop:
            y0, x0 = (h - crop) // 2, (w - crop) // 2
            view = img[y0:y0 + crop, x0:x0 + crop]
        ax.imshow(np.clip(view, 0, 1), interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(title, 38)), fontsize=10)  # long titles wrap instead of being cut
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def run_demo(out: Path, *, profile="mi_note10", long_iso: float = 1000, short_iso: float = 8000, seed: int = 0,
             image=None, verbose: bool = True) -> dict:
    prof = load_profile(profile)
    src = Path(image) if image else sample_image_path("coffee")
    img, depth = read_rgb(src)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = seed_sequence(seed)
    ss_wb, ss_long, ss_short = root.spawn(3)
    wb = sample_wb(np.random.default_rng(ss_wb), D2HNET_WB_RANGE)
    write_image(out / "clean.png", img, depth)
    panels = [("clean (input)", img)]
    summary = {"input": str(src), "profile": prof.name, "wb": wb.tolist(), "outputs": {}}
    for tag, iso, ss in (("long", long_iso, ss_long), ("short", short_iso, ss_short)):
        r = degrade(img, prof, iso=iso, wb=wb, seed=ss)
        name = f"{tag}_iso{iso:.0f}"
        write_image(out / f"{name}.png", r.image, depth)
        n = r.params.noise
        r.save_raw(out / f"{name}.dng")
        q = psnr(r.image, img)
        panels.append((f"{tag} exposure, ISO {iso:.0f}\nPSNR {q:.2f} dB", r.image))
        summary["outputs"][name] = {"psnr_db": q, "K": n.K.tolist(), "read_std": n.read_std.tolist()}
        if verbose:
            print(f"{tag:5s} ISO {iso:6.0f}: K = {np.round(n.K, 4).tolist()} DN/e-, read std {n.read_std[0]:.3f} DN, "
                  f"PSNR vs clean {q:.2f} dB -> {out / (name + '.png')}")
    side_by_side(out / "side_by_side.png", panels)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if verbose:
        print(f"side-by-side comparison: {out / 'side_by_side.png'}")
    return summary
