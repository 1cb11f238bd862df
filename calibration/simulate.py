"""Synthetic capture sessions: dark and flat DNG files from a noise profile, for tests, demos and dry runs.

:func:`simulate_capture` writes what an engineer would shoot on a phone, as
rawpy-readable DNGs with ISO and exposure-time tags (EXIF IFD by default, or IFD0,
or both): per ISO ``n_dark`` dark frames and ``n_flat_pairs`` pairs of flat frames
at increasing exposure (one pair per exposure level). The noise is
:func:`isp_sim.noise.add_noise` with the profile's parameters at that ISO (exact
Poisson shot noise with gain K, Tukey-lambda or Gaussian read noise, row noise,
bias, black level, rounding, clipping), plus realistic extras the profile does
not model:

* PRNU: a fixed per-pixel gain map ``1 + prnu * N(0, 1)`` on the flats' signal;
* DSNU: a fixed per-pixel integer offset map ``round(dsnu * N(0, 1))`` DN in every frame;
* vignetting in the flats: ``1 - vignetting * r^2`` (r = 1 at the corners);
* a colour cast of the flat illuminant (channel response R 0.75, G 1, B 0.6).

The true parameters are returned (:class:`SimulatedSession.truth`) and written to
``truth.json``. Same ``seed`` -> the same files, bit for bit.

:func:`loglinear_profile` builds an ISO-indexed profile from exact laws
(K proportional to ISO, ln sigma = slope ln K + bias), for truth-recovery tests.

Command line: ``python -m calibration.simulate PROFILE OUT_DIR`` or
``calibrate --simulate PROFILE --out-dir OUT_DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from isp_sim.cfa import channel_index_image, check_pattern, mosaic
from isp_sim.dng import write_dng
from isp_sim.noise import add_noise
from isp_sim.params import NoiseParams, tukey_lambda_std
from isp_sim.profile import NoiseProfile, load_profile, profile_dict

from .errors import CalibrationError

CHANNEL_RESPONSE = np.array([0.75, 1.0, 1.0, 0.6])


@dataclass
class SimulatedSession:
    """What :func:`simulate_capture` wrote: folder, files, and the truth per ISO."""

    out_dir: Path
    dark_files: dict = field(default_factory=dict)  # iso -> [paths]
    flat_files: dict = field(default_factory=dict)  # iso -> [(path_a, path_b)]
    photo_files: dict = field(default_factory=dict)  # iso -> [[paths of one burst]] (single frames: bursts of 1)
    truth: dict = field(default_factory=dict)  # iso -> NoiseParams
    extras: dict = field(default_factory=dict)
    pattern: str = "RGGB"

    @property
    def isos(self) -> list[float]:
        return sorted(self.truth)


def loglinear_profile(name: str = "synthetic", *, isos: Sequence[float] = (100, 200, 400, 800, 1600, 3200),
                      k_per_iso: float = 1e-3,
                      read_fit: tuple[float, float] = (0.85, 0.4), row_fit: tuple[float, float] | None = (0.85, -1.6), read_lambda: float = 0.1, read_law: str = "tukey_lambda",
                      pattern: str = "RGGB", bit_depth: int = 10, black: float = 64.0, bias: Sequence[float] = (0.3, -0.2, 0.1, 0.4),
                      channel_k: Sequence[float] = (1.0, 1.0, 1.0, 1.0), camera: str = "isp_sim synthetic") -> NoiseProfile:
    """An ISO-indexed profile from exact laws: K = k_per_iso * ISO * channel_k (DN/e-),
    ln(read_std) = read_fit[0] ln K + read_fit[1], ln(row_std) = row_fit[0] ln K + row_fit[1]
    (K the geometric mean over channels; ``row_fit=None`` for no row noise).
    """
    pattern = check_pattern(pattern)
    white = 2**bit_depth - 1
    pts = []
    lamstd = tukey_lambda_std(read_lambda)
    ck = np.asarray(channel_k, dtype=np.float64)
    for iso in sorted(float(i) for i in isos):
        K = k_per_iso * iso * ck
        km = float(np.exp(np.mean(np.log(K))))
        std = math.exp(read_fit[0] * math.log(km) + read_fit[1])
        row = 0.0 if row_fit is None else math.exp(row_fit[0] * math.log(km) + row_fit[1])
        tk = read_law == "tukey_lambda"
        pts.append({"iso": iso, "K": K.tolist(), "read_law": read_law,
                    "read_lambda": [read_lambda if tk else None] * 4,
                    "read_scale": [std / lamstd if tk else None] * 4, "read_std": [std] * 4, "row_std": row,
                    "bias": [float(b) for b in bias]})
    kms = [float(np.exp(np.mean(np.log(p["K"])))) for p in (pts[0], pts[-1])]
    models = {"gaussian_read_std": {"slope": read_fit[0], "bias": read_fit[1], "sigma_residual": 0.0, "k_of": "mean"}}
    if read_law == "tukey_lambda":
        models["read_scale"] = {"slope": read_fit[0], "bias": read_fit[1] - math.log(lamstd), "sigma_residual": 0.0,
                                "k_of": "mean"}
    if row_fit is not None:
        models["row_std"] = {"slope": row_fit[0], "bias": row_fit[1], "sigma_residual": 0.0, "k_of": "mean"}
    d = profile_dict(name=name,
                     description="synthetic sensor with exact log-linear noise laws (calibration.simulate.loglinear_profile)",
                     sensor={"camera": camera, "pattern": pattern, "bit_depth": bit_depth, "white_level": white,
                             "black_level": [float(black)] * 4},
                     index="iso", iso_range=[pts[0]["iso"], pts[-1]["iso"]], k_range=kms, default_read_law=read_law,
                     points=pts, models=models, provenance={"source": "calibration.simulate.loglinear_profile"})
    return NoiseProfile.from_dict(d)


def _vignette(h: int, w: int, amount: float) -> np.ndarray:
    y = (np.arange(h) - (h - 1) / 2) / max((h - 1) / 2, 1)
    x = (np.arange(w) - (w - 1) / 2) / max((w - 1) / 2, 1)
    r2 = (y[:, None] ** 2 + x[None, :] ** 2) / 2.0
    return (1.0 - amount * r2).astype(np.float64)


def scene_frame(scene_lin: np.ndarray, params: NoiseParams, pattern: str = "RGGB", *, seed: int, prnu: float = 0.01,
                level: float = 0.8) -> np.ndarray:
    """One raw frame (uint16) of a linear RGB scene ``(H, W, 3)`` through ``params``' noise model: the mosaic of
    ``pattern``, the scene's brightest value at ``level`` of the range above black, a fresh PRNU map
    ``1 + prnu * N(0, 1)``, :func:`isp_sim.noise.add_noise`, clipping. For single-frame estimator checks on
    scenes of one's choosing (:func:`simulate_capture` shoots whole sessions of dead-leaves scenes)."""
    scene = np.asarray(scene_lin, dtype=np.float64)
    if scene.ndim != 3 or scene.shape[2] != 3 or not np.all(np.isfinite(scene)) or float(scene.max()) <= 0:
        raise CalibrationError(f"scene must be a finite (H, W, 3) linear RGB image with a positive maximum, "
                               f"got shape {scene.shape}")
    h, w = scene.shape[:2]
    cidx = channel_index_image((h, w), pattern)
    m = mosaic(scene, pattern)
    rng = np.random.default_rng(seed)
    black, white = params.black_level, params.white_level
    clean = black[cidx] + level * (white - black.max()) * m / m.max() * (1 + prnu * rng.standard_normal((h, w)))
    return np.clip(add_noise(clean.astype(np.float32), params, pattern, seed=seed), 0, white).astype(np.uint16)


def _iso_tag(iso: float) -> str:
    return f"{int(round(iso))}"


def simulate_capture(profile: NoiseProfile | str | os.PathLike, out_dir: str | os.PathLike, *, isos: Sequence[float] | None = None,
                     n_dark: int = 16, n_flat_pairs: int = 4, flat_levels: Sequence[float] | None = None, size: tuple[int, int] = (256, 256),
                     seed: int = 0, prnu: float = 0.01, dsnu: float = 0.5, vignetting: float = 0.25,
                     layout: str = "split", iso_location: str = "exif", write_noise_profile: bool = True,
                     dark_exposure: float = 0.01, make: str = "isp_sim", model: str = "Simulated sensor",
                     progress: bool = False, n_scenes: int = 0, burst: int = 1, scene_level: float = 0.8,
                     jitter: float = 0.0, scene_exposure: float = 0.02) -> SimulatedSession:
    """Write a synthetic capture session (module docstring) and return its :class:`SimulatedSession`.

    Parameters
    ----------
    profile : NoiseProfile, bundled name or path (ISO-indexed).
    isos : ISOs to shoot (default: up to 6 ISOs log-spaced over the profile's range, rounded).
    n_dark, n_flat_pairs : dark frames and flat pairs per ISO.
    flat_levels : mean signal of each pair as a fraction of (white - black) at the image centre for G
        (default: log-spaced from 0.03 to 0.6).
    size : (H, W) of the frames (even numbers).
    layout : "split" (``dark/`` and ``flat/`` sub-folders) or "mixed" (one folder).
    iso_location : where ISO/exposure tags go: "exif", "ifd0" or "both".
    n_scenes, burst : scene sessions (``photos/``): per ISO ``n_scenes`` dead-leaves scenes at the frame's native
        resolution (:func:`isp_sim.scenes.dead_leaves`, natural colours, gamma 2.2 to linear), each shot
        ``burst`` times (1: single frames) through the same sensor (PRNU, DSNU, vignetting, clipping, the
        profile's noise); the brightest scene pixel at ``scene_level`` of the range; ``jitter``: tripod jitter,
        a sub-pixel shift of the scene per frame with this std in pixels.
    """
    prof = load_profile(profile)
    if prof.index != "iso":
        raise CalibrationError(f"simulate_capture needs an ISO-indexed profile; {prof.name!r} is K-indexed")
    if layout not in ("split", "mixed"):
        raise CalibrationError(f"layout must be 'split' or 'mixed', got {layout!r}")
    h, w = (int(size[0]), int(size[1]))
    if h < 16 or w < 16 or h % 2 or w % 2:
        raise CalibrationError(f"size must be even and at least 16x16, got {size!r}")
    if n_dark < 0 or n_flat_pairs < 0:
        raise CalibrationError(f"n_dark and n_flat_pairs must be >= 0, got {n_dark}, {n_flat_pairs}")
    if n_scenes < 0 or burst < 1:
        raise CalibrationError(f"n_scenes must be >= 0 and burst >= 1, got {n_scenes}, {burst}")
    if not (math.isfinite(jitter) and jitter >= 0):
        raise CalibrationError(f"jitter must be a finite std in pixels >= 0, got {jitter!r}")
    if not (math.isfinite(scene_level) and scene_level > 0):
        raise CalibrationError(f"scene_level must be a finite fraction of the range above black > 0 (above 1 "
                               f"clips the brightest parts), got {scene_level!r}")
    lo, hi = prof.iso_range
    if isos is None:
        n = min(6, len(prof.points))
        isos = sorted({float(round(v)) for v in np.geomspace(lo, hi, n)})
        isos = [min(max(i, lo), hi) for i in isos]
    isos = sorted(float(i) for i in isos)
    if flat_levels is None:
        flat_levels = np.geomspace(0.03, 0.6, n_flat_pairs) if n_flat_pairs > 1 else [0.3] * n_flat_pairs
    flat_levels = [float(v) for v in flat_levels]
    if len(flat_levels) != n_flat_pairs:
        raise CalibrationError(f"flat_levels has {len(flat_levels)} values for n_flat_pairs={n_flat_pairs}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pattern = prof.sensor.pattern
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    cidx = channel_index_image((h, w), pattern)
    prnu_map = 1.0 + prnu * rng.standard_normal((h, w))
    dsnu_map = np.rint(dsnu * rng.standard_normal((h, w))).astype(np.int32)
    vig = _vignette(h, w, vignetting)
    resp = CHANNEL_RESPONSE[cidx]
    sess = SimulatedSession(out_dir=out, pattern=pattern,
                            extras={"prnu": prnu, "dsnu": dsnu, "dsnu_integer_std": float(dsnu_map.std()),
                                    "vignetting": vignetting, "flat_levels": flat_levels, "size": [h, w],
                                    "channel_response": CHANNEL_RESPONSE.tolist(), "seed": seed})
    ddir = out / "dark" if layout == "split" else out
    fdir = out / "flat" if layout == "split" else out
    pdir = out / "photos" if layout == "split" else out
    if n_scenes:
        from isp_sim.scenes import dead_leaves, natural_palette

        srng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE]))
        pal = natural_palette(srng)
        side = max(h, w)
        scenes_lin = [dead_leaves(srng, side, palette=pal)[:h, :w].astype(np.float64) ** 2.2
                      for _ in range(n_scenes)]
    seeds = np.random.SeedSequence(seed).spawn(len(isos) + 1)[1:]
    it = list(zip(isos, seeds))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="simulate", unit="ISO")
    for iso, ss in it:
        params = prof.at_iso(iso)
        sess.truth[iso] = params
        black = params.black_level
        white = params.white_level
        rngw = white - float(black.max())
        npf = params.dng_noise_profile() if write_noise_profile else None
        kw = dict(pattern=pattern, black_level=black, white_level=white, iso=iso, iso_location=iso_location,
                  make=make, model=model, noise_profile=npf)
        fseeds = ss.spawn(n_dark + 2 * n_flat_pairs)
        black_img = black[cidx]
        dark_clean = black_img.astype(np.float32)
        sess.dark_files[iso] = []
        for i in range(n_dark):
            raw = add_noise(dark_clean, params, pattern, seed=fseeds[i])
            raw = np.clip(raw.astype(np.int32) + dsnu_map, 0, white).astype(np.uint16)
            path = ddir / f"dark_iso{_iso_tag(iso)}_{i:03d}.dng"
            write_dng(path, raw, exposure_time=dark_exposure, **kw)
            sess.dark_files[iso].append(path)
        sess.flat_files[iso] = []
        for j, lev in enumerate(flat_levels):
            clean = (black_img + lev * rngw * vig * resp * prnu_map).astype(np.float32)
            pair = []
            for k in range(2):
                raw = add_noise(clean, params, pattern, seed=fseeds[n_dark + 2 * j + k])
                raw = np.clip(raw.astype(np.int32) + dsnu_map, 0, white).astype(np.uint16)
                path = fdir / f"flat_iso{_iso_tag(iso)}_L{j:02d}_{'ab'[k]}.dng"
                write_dng(path, raw, exposure_time=dark_exposure * lev / flat_levels[0] if flat_levels[0] else dark_exposure, **kw)
                pair.append(path)
            sess.flat_files[iso].append(tuple(pair))
        sess.photo_files[iso] = []
        if n_scenes:
            from scipy.ndimage import shift as nd_shift

            pseeds = np.random.SeedSequence([seed, int(iso), 0x9407]).spawn(n_scenes * burst + 1)
            jit = np.random.default_rng(pseeds[-1])
            for s_i, lin in enumerate(scenes_lin):
                files = []
                for f_i in range(burst):
                    img = lin
                    if jitter > 0:
                        img = nd_shift(lin, (*jit.normal(0.0, jitter, 2), 0.0), order=1, mode="reflect")
                    clean = (black_img + scene_level * rngw * vig * prnu_map * mosaic(img, pattern)
                             / max(float(lin.max()), 1e-6))
                    raw = add_noise(clean.astype(np.float32), params, pattern, seed=pseeds[s_i * burst + f_i])
                    raw = np.clip(raw.astype(np.int32) + dsnu_map, 0, white).astype(np.uint16)
                    path = pdir / f"scene_iso{_iso_tag(iso)}_S{s_i:02d}_{f_i:02d}.dng"
                    write_dng(path, raw, exposure_time=scene_exposure, **kw)
                    files.append(path)
                sess.photo_files[iso].append(files)
    truth = {"profile": prof.name, "pattern": pattern, "extras": sess.extras,
             "isos": {str(k): v.to_dict() for k, v in sess.truth.items()}}
    (out / "truth.json").write_text(json.dumps(truth, indent=1, default=float) + "\n")
    return sess


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration.simulate",
                                 description="Write a synthetic dark/flat DNG capture session from a noise profile.")
    ap.add_argument("profile", help="bundled profile name or profile .json path (ISO-indexed)")
    ap.add_argument("out_dir")
    add_simulate_args(ap)
    a = ap.parse_args(argv)
    return run_simulate_from_args(a.profile, a.out_dir, a)


def add_simulate_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--isos", type=float, nargs="+", help="ISOs to shoot (default: 6 across the profile's range)")
    from isp_sim.cli_support import non_negative_int, positive_int

    ap.add_argument("--n-dark", type=positive_int, default=16)
    ap.add_argument("--n-flat-pairs", type=positive_int, default=4)
    ap.add_argument("--size", type=positive_int, nargs=2, default=(512, 768), metavar=("H", "W"))
    ap.add_argument("--seed", type=non_negative_int, default=0)
    ap.add_argument("--layout", choices=("split", "mixed"), default="split")
    ap.add_argument("--iso-location", choices=("exif", "ifd0", "both"), default="exif")
    ap.add_argument("--scenes", type=non_negative_int, default=0,
                    help="dead-leaves scenes per ISO shot into photos/ (calibration without a lab)")
    ap.add_argument("--burst", type=positive_int, default=1, help="frames per scene (1: single photos)")
    ap.add_argument("--jitter", type=float, default=0.0, help="tripod jitter between burst frames, px std")


def run_simulate_from_args(profile, out_dir, a) -> int:
    sess = simulate_capture(profile, out_dir, isos=a.isos, n_dark=a.n_dark, n_flat_pairs=a.n_flat_pairs,
                            size=tuple(a.size), seed=a.seed, layout=a.layout, iso_location=a.iso_location,
                            progress=not getattr(a, "quiet", False), n_scenes=a.scenes, burst=a.burst,
                            jitter=a.jitter)
    n = (sum(len(v) for v in sess.dark_files.values()) + 2 * sum(len(v) for v in sess.flat_files.values())
         + sum(len(b) for v in sess.photo_files.values() for b in v))
    print(f"wrote {n} DNG files for ISO {', '.join(f'{i:g}' for i in sess.isos)} to {sess.out_dir} (truth in truth.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
