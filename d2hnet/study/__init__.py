"""``d2hnet study``: does a phone's own calibrated noise profile give a better restoration model for that phone?

One run trains D2HNet models that differ only in the noise they were
trained on, and scores them and classical baselines on held-out photos
degraded with the phone's *true* noise:

=========================  ================================================================
``d2hnet_generic``         trained from scratch on heteroscedastic Gaussian noise over a
                           wide range of levels (Brooks et al. 2019); the start of the others
``d2hnet_matched``         generic fine-tuned with the calibrated profile (``--profile``)
``d2hnet_other_phone``     the same fine-tuning with another phone's noise shape at the
                           target's system gain K (default ``mi_note10``)
``d2hnet_release_recipe``  the same fine-tuning with ``mi_note10`` at the release's ISO ranges
``d2hnet_matched_seed2``   the matched fine-tuning with another data seed (null control)
``d2hnet_ablation_no_long`` the matched model given the short frame in place of the long one
=========================  ================================================================

Baselines (:mod:`~d2hnet.study.baselines`): the two inputs, a Gaussian
blur, non-local means and BM3D of the short frame, and a classical
long/short fusion, each tuned per ISO band on a separate tuning split.
Scenes: :mod:`~d2hnet.study.scenes`; noise models:
:mod:`~d2hnet.study.noise_models`; training: :mod:`~d2hnet.study.training`;
statistics: :mod:`~d2hnet.study.stats`.

The study reads ``--truth`` only to make the test noise. For a real phone
without ground-truth noise, passing the calibrated profile as ``--truth``
makes the study circular (the test noise is the matched model's training
noise): the output says so (``"circular": true``).
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, wait, FIRST_COMPLETED
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isp_sim.cli_support import file_problem

from ..errors import InputError

__all__ = ["StudyConfig", "run_study", "REDUCED_ARCH", "FULL_ARCH", "METHOD_ORDER", "PAIRED"]

#: Reduced widths for CPU runs (the paper: DeblurNet ngf 32, 4 + 4 ResBlocks; EnhanceNet ngf 32, 4 + 4, offsets 32).
REDUCED_ARCH = {"deblurnet": {"ngf": 8, "n_res": 2, "n_res2": 2},
                "enhancenet": {"ngf": 8, "n_res": 1, "n_res2": 2, "deformable_groups": 8, "offset_channels": 16}}
FULL_ARCH = {"deblurnet": {"ngf": 32, "n_res": 4, "n_res2": 4},
             "enhancenet": {"ngf": 32, "n_res": 4, "n_res2": 4, "deformable_groups": 8, "offset_channels": 32}}

MODELS = ("d2hnet_generic", "d2hnet_matched", "d2hnet_other_phone", "d2hnet_release_recipe", "d2hnet_matched_seed2")
METHOD_ORDER = ("long_input", "short_input", "gaussian_blur_short", "nlm_short", "bm3d_short", "classical_fusion",
                *MODELS, "d2hnet_ablation_no_long")
PAIRED = {"matched_minus_other_phone": ("d2hnet_matched", "d2hnet_other_phone"),
          "matched_minus_generic": ("d2hnet_matched", "d2hnet_generic"),
          "matched_minus_release_recipe": ("d2hnet_matched", "d2hnet_release_recipe"),
          "matched_minus_matched_seed2": ("d2hnet_matched", "d2hnet_matched_seed2"),
          "matched_minus_bm3d_short": ("d2hnet_matched", "bm3d_short"),
          "matched_minus_classical_fusion": ("d2hnet_matched", "classical_fusion"),
          "matched_minus_ablation_no_long": ("d2hnet_matched", "d2hnet_ablation_no_long"),
          "matched_minus_short_input": ("d2hnet_matched", "short_input"),
          "matched_minus_long_input": ("d2hnet_matched", "long_input")}
BAND_NAMES = ("low", "mid", "high")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass
class StudyConfig:
    """Sizes and recipe of one study run (``quick()`` / ``default()`` give the CLI's two budgets)."""

    seed: int = 0
    crop: int = 128
    patch: int = 64
    n_train: int = 3000               # pre-degraded training tuples per noise model
    n_dead_leaves: int = 48           # 256x256 procedural training scenes (+ 3 tinted textures)
    test_crops: int = 6               # crops per test photo (stratified over the ISO bands)
    tune_crops: int = 12              # tuning crops (half from ihc, half from dead leaves)
    n_bands: int = 3
    generic_steps: tuple[int, int] = (5000, 1000)
    finetune_steps: tuple[int, int] = (1200, 500)
    generic_lr: tuple[float, float] = (1e-3, 5e-4)
    finetune_lr: tuple[float, float] = (2.5e-4, 1.25e-4)  # where the generic schedule ended
    batch: tuple[int, int] = (8, 4)
    eval_points: int = 5              # curve points per phase (besides start and end)
    jobs: int = 2                     # parallel processes (one torch thread each)
    device: str = "cpu"               # where the networks train: "cpu", "cuda", "cuda:N" (one job per GPU)
    max_shake_px: float = 5.0        # camera shake over the longest exposure, at the 128 px crop
    short_offset_px: float = 1.5
    arch: dict = field(default_factory=lambda: json.loads(json.dumps(REDUCED_ARCH)))
    quick: bool = False
    baseline_grid: str = "full"       # "full", "quick" (every other value) or "tiny" (one value: tests)
    n_boot: int = 10_000

    @classmethod
    def quick_config(cls, **kw) -> "StudyConfig":
        base = dict(n_train=320, n_dead_leaves=8, test_crops=4, tune_crops=6, generic_steps=(400, 60),
                    finetune_steps=(100, 30), eval_points=2, quick=True, baseline_grid="quick")
        base.update(kw)
        return cls(**base)

    def check(self) -> None:
        if self.crop % 32 or self.crop < 64:
            raise InputError(f"crop must be a multiple of 32 and >= 64, got {self.crop}")
        if self.patch % 16 or self.patch > self.crop:
            raise InputError(f"patch must be a multiple of 16 and <= crop {self.crop}, got {self.patch}")
        if self.test_crops < self.n_bands:
            raise InputError(f"test_crops ({self.test_crops}) must be >= the number of ISO bands ({self.n_bands})")
        if self.jobs < 1:
            raise InputError(f"--jobs must be >= 1, got {self.jobs}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise InputError(f"--device must be cpu, cuda or cuda:N, got {self.device!r}")
        if self.device != "cpu":
            import torch

            if not torch.cuda.is_available():
                raise InputError(f"--device {self.device}: CUDA is not available on this machine")
        if self.baseline_grid not in ("full", "quick", "tiny"):
            raise InputError(f"baseline_grid must be 'full', 'quick' or 'tiny', got {self.baseline_grid!r}")
        if self.n_train < max(self.batch):
            raise InputError(f"n_train ({self.n_train}) must be at least the batch size {max(self.batch)}")


# ----------------------------------------------------------------------------- data


def _region(rng: np.random.Generator, img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h < size or w < size:
        raise InputError(f"scene {img.shape[:2]} smaller than the region {size}")
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return img[y:y + size, x:x + size]


def _tuple(rng: np.random.Generator, img: np.ndarray, crop: int, shake: float, long_key: str | None,
           offset: float = 1.5):
    """Clean (long, short) crop of ``crop`` px with camera shake (``d2hnet.data.synth``); long8 or a random long."""
    from ..data.layout import LONG_SUFFIXES
    from ..data.synth import render_tuple_from_still

    margin = int(math.ceil(shake + offset)) + 2
    reg = _region(rng, img, crop + 2 * margin + 2)
    tup = render_tuple_from_still(reg, rng, max_shake_px=shake, short_offset_px=offset)
    key = long_key or LONG_SUFFIXES[int(rng.integers(len(LONG_SUFFIXES)))]
    h, w = tup["short"].shape[:2]
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    return tup[key][y0:y0 + crop, x0:x0 + crop].copy(), tup["short"][y0:y0 + crop, x0:x0 + crop].copy()


def _eval_split(items, cfg: StudyConfig, model, seed_tag: int) -> dict:
    """Noisy crops ``items = [(scene, crop index, band)]`` with noise from ``model`` (a ProfileRecipe), raw kept."""
    from .noise_models import ProfileRecipe, degrade_pair

    out: dict[str, list] = {k: [] for k in ("long", "short", "gt", "raw", "meta", "band", "image")}
    for sc, j, band in items:
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, seed_tag, j]))
        long, gt = _tuple(rng, sc.image, cfg.crop, cfg.max_shake_px, "long8", cfg.short_offset_px)
        rec = ProfileRecipe(model.profile, "paper", band=(band, cfg.n_bands))
        nl, ns, info = degrade_pair(long, gt, rec, rng, keep_raw=True)
        r = info.pop("short_result")
        for k, v in (("long", nl), ("short", ns), ("gt", gt), ("raw", r.raw), ("meta", info), ("band", band),
                     ("image", sc.name)):
            out[k].append(v)
    for k in ("long", "short", "gt"):
        out[k] = np.stack(out[k]).astype(np.float32)
    out["raw"] = np.stack(out["raw"])
    return out


def _test_items(scenes, cfg: StudyConfig) -> list:
    """``test_crops`` crops of every test photo, crop ``j`` in ISO band ``j mod n_bands``."""
    return [(sc, i * 1000 + j, j % cfg.n_bands) for i, sc in enumerate(scenes) for j in range(cfg.test_crops)]


def _tune_items(scenes, cfg: StudyConfig) -> list:
    """Half the tuning crops from the first (photo) scene, one from each dead-leaves scene; bands in turn."""
    n_photo = cfg.tune_crops - (len(scenes) - 1)
    pick = [scenes[0]] * n_photo + list(scenes[1:])
    return [(sc, j, j % cfg.n_bands) for j, sc in enumerate(pick)]


def _train_tuples(cfg: StudyConfig, scenes, progress=None) -> dict[str, np.ndarray]:
    from ..data.augment import color_adjust, illumination_adjust

    n = cfg.n_train
    longs = np.empty((n, cfg.crop, cfg.crop, 3), np.float32)
    shorts, gts = np.empty_like(longs), np.empty_like(longs)
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1, i]))
        long, short = _tuple(rng, scenes[i % len(scenes)].image, cfg.crop, cfg.max_shake_px, None, cfg.short_offset_px)
        gt = short
        (short, long, gt), _ = illumination_adjust([short, long, gt], rng)
        short, _ = color_adjust(short, rng)
        longs[i], shorts[i], gts[i] = long, short, gt
        if progress is not None:
            progress()
    return {"long": longs, "short": shorts, "gt": gts}


def _degrade_cache(clean: dict, model, tag: int, cfg: StudyConfig, folder: Path, prefix: str, progress=None) -> dict:
    from .noise_models import degrade_pair

    n = clean["long"].shape[0]
    nl = np.lib.format.open_memmap(folder / f"{prefix}_long.npy", mode="w+", dtype=np.float16, shape=clean["long"].shape)
    ns = np.lib.format.open_memmap(folder / f"{prefix}_short.npy", mode="w+", dtype=np.float16, shape=clean["long"].shape)
    ks = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 2, tag, i]))
        a, b, info = degrade_pair(clean["long"][i], clean["short"][i], model, rng)
        nl[i], ns[i] = a, b
        ks.append((info["long_k"], info["short_k"]))
        if progress is not None:
            progress()
    nl.flush()
    ns.flush()
    k = np.asarray(ks)
    return {"short_k_range": [float(k[:, 1].min()), float(k[:, 1].max())],
            "long_k_range": [float(k[:, 0].min()), float(k[:, 0].max())]}


# ----------------------------------------------------------------------------- workers


def _worker(kind: str, payload: dict, queue) -> dict:
    """Entry point of a spawned worker process: one model (``train``) or the baselines (``baselines``)."""
    import numba

    numba.set_num_threads(1)
    if kind == "train":
        from .training import run_job

        return run_job(payload, progress=queue)
    from .baselines import run_baselines

    import isp_sim

    folder = Path(payload["cache"])
    splits = {}
    for name in ("tune", "test"):
        d = dict(np.load(folder / f"{name}_split.npz"))
        d["meta"] = json.loads((folder / f"{name}_meta.json").read_text())
        splits[name] = d
    res = run_baselines(splits["tune"], splits["test"], isp_sim.load_profile(payload["profile"]),
                        mode=payload["grid"], progress=queue)
    for m, r in res["methods"].items():
        np.save(folder / f"baseline_{m}.outputs.npy", r.pop("outputs").astype(np.float16))
    return res


# ----------------------------------------------------------------------------- the study


def _profile(p, what: str):
    import isp_sim

    prof = isp_sim.load_profile(p)
    if prof.iso_range is None:
        raise InputError(f"{what} {p}: profile {prof.name!r} is K-indexed; the study needs an ISO-indexed profile "
                         "(as `calibrate --raw-dir` writes)")
    return prof


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    if out.is_dir() and (out / "study.json").exists() and not overwrite:
        raise InputError(f"--out {out} already holds a study (study.json); choose another folder or pass --overwrite")


def run_study(profile, truth, out, *, other_profile=None, cfg: StudyConfig | None = None, init: str | None = None,
              overwrite: bool = False, progress: bool = True, log=print) -> dict[str, Any]:
    """Run the whole study (module docstring); write ``out/study.json``, ``panel.png``, ``summary.md``; return the JSON."""
    import isp_sim

    from .noise_models import GenericGaussian, OtherPhoneByK, ProfileRecipe

    cfg = cfg or StudyConfig()
    cfg.check()
    import importlib.util

    for mod, hint in (("bm3d", "pip install 'phonenoise[study]' (bm3d: free for non-commercial use only)"),
                      ("skimage", "pip install scikit-image")):
        if importlib.util.find_spec(mod) is None:
            raise InputError(f"d2hnet study needs the {mod} package for its baselines: {hint}")
    out = Path(out)
    _check_out(out, overwrite)
    target = _profile(profile, "--profile")
    true = _profile(truth, "--truth")
    if true.sensor.pattern != target.sensor.pattern or true.sensor.white_level != target.sensor.white_level:
        raise InputError(f"--truth {true.name!r} ({true.sensor.pattern}, white {true.sensor.white_level}) and --profile "
                         f"{target.name!r} ({target.sensor.pattern}, white {target.sensor.white_level}) describe "
                         "different sensors")
    if other_profile is None:
        other_profile = "mi_note10" if target.name != "mi_note10" else "sony_a7s2"
    other = isp_sim.load_profile(other_profile)
    release = isp_sim.load_profile("mi_note10")
    circular = json.dumps(target.to_dict(), sort_keys=True) == json.dumps(true.to_dict(), sort_keys=True)
    if init is not None:
        if not Path(init).is_file():
            raise InputError(f"--init {init}: {file_problem(init, 'checkpoint')}")
        from ..checkpoint import read_checkpoint
        from ..models.pair import validate_config

        have, want = read_checkpoint(init)["config"], validate_config(cfg.arch)
        if have != want:  # checked here, not after the data stage in a worker
            raise InputError(f"--init {init}: its architecture {have} differs from the study's {want} "
                             "(--full-width selects the paper's widths)")
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    timing: dict[str, float] = {}

    from tqdm.auto import tqdm

    from .baselines import COST_S, work_seconds
    from .scenes import TEST_SCENES, test_scenes, train_scenes, tune_scenes

    models = {"generic": GenericGaussian(target), "matched": ProfileRecipe(target, "paper"),
              "other_phone": OtherPhoneByK(target, other), "release_recipe": ProfileRecipe(release, "release")}
    g1, g2 = (0, 0) if init else cfg.generic_steps
    f1, f2 = cfg.finetune_steps
    # the bar counts estimated single-core seconds of work (measured costs on a 2-core VM), so its
    # remaining time means something although tuples, training steps and BM3D calls differ in cost
    area = (cfg.crop / 128) ** 2
    w_step = {1: 0.16 * area * cfg.batch[0] / 8, 2: 1.0 * (cfg.patch / 64) ** 2 * cfg.batch[1] / 4}
    w_tuple = 0.03 * area
    w_degrade = {"generic": 0.006 * area, "matched": 0.01 * area, "other_phone": 0.045 * area,
                 "release_recipe": 0.008 * area}  # other_phone: two profile look-ups by K per frame
    n_test = cfg.test_crops * len(TEST_SCENES)
    total = (cfg.n_train * (w_tuple + sum(w_degrade.values())) + (g1 + 4 * f1) * w_step[1] + (g2 + 4 * f2) * w_step[2]
             + work_seconds(cfg.baseline_grid, cfg.tune_crops, n_test, cfg.crop))
    bar = tqdm(total=round(total), desc="study", unit="s", disable=not progress, smoothing=0.05,
               bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def advance(seconds: float) -> None:
        bar.update(min(seconds, bar.total - bar.n))

    # ---- 1. data: scenes, clean tuples, pre-degraded caches, test and tuning splits
    t0 = time.perf_counter()
    bar.set_postfix_str("scenes and tuples")
    clean = _train_tuples(cfg, train_scenes(cfg.n_dead_leaves, cfg.seed), progress=lambda: advance(w_tuple))
    np.save(cache / "gt.npy", clean["gt"].astype(np.float16))
    cache_info = {}
    for tag, (name, m) in enumerate(models.items()):
        bar.set_postfix_str(f"degrading the {name} cache")
        cache_info[name] = _degrade_cache(clean, m, tag, cfg, cache, name,
                                          progress=lambda w=w_degrade[name]: advance(w))
    del clean
    tests = test_scenes()
    test = _eval_split(_test_items(tests, cfg), cfg, ProfileRecipe(true, "paper"), 4)
    tune = _eval_split(_tune_items(tune_scenes(cfg.tune_crops - cfg.tune_crops // 2, cfg.seed), cfg), cfg,
                       ProfileRecipe(target, "paper"), 3)
    for name, sp in (("test", test), ("tune", tune)):
        np.savez(cache / f"{name}_split.npz", **{k: np.asarray(sp[k]) for k in ("long", "short", "gt", "raw", "band")})
        (cache / f"{name}_meta.json").write_text(json.dumps(sp["meta"]))
    for k in ("long", "short", "gt"):
        np.save(cache / f"test_{k}.npy", test[k])
    timing["data_s"] = time.perf_counter() - t0

    # ---- 2. models and baselines in worker processes, scheduled as a dependency graph:
    # generic phase 1 -> (generic phase 2 | each fine-tune's phase 1) -> each fine-tune's phase 2
    def job(name, noise, steps, lrs, seed, *, init=None, init_enh=None, offset=0, zero=False, extra=None):
        from .training import TrainJob

        return asdict(TrainJob(name=name, out=str(out / f"{name}.pt"), cache=str(cache), noise=noise, test=str(cache),
                               arch=cfg.arch, init=init, init_enhancenet=init_enh, step_offset=offset,
                               steps1=steps[0], steps2=steps[1], lr1=lrs[0], lr2=lrs[1], batch1=cfg.batch[0],
                               batch2=cfg.batch[1], patch=cfg.patch, seed=seed, eval_points=cfg.eval_points,
                               zero_out_conv=zero, device=cfg.device, extra=extra or {}))

    p1 = str(cache / "generic_phase1.pt")
    gen = str(out / "d2hnet_generic.pt")
    tasks: dict[str, tuple[str, dict, list[str]]] = {}  # key -> (kind, payload, dependencies)
    base_profile = str(profile) if not isinstance(profile, isp_sim.NoiseProfile) else _saved(profile, cache / "calibrated.json")
    tasks["baselines"] = ("baselines", {"cache": str(cache), "profile": base_profile, "grid": cfg.baseline_grid}, [])
    if init:
        tasks["d2hnet_generic"] = ("train", job("d2hnet_generic", "generic", (0, 0), cfg.generic_lr, cfg.seed, init=init), [])
        p1 = init
    else:
        tasks["generic_phase1"] = ("train", dict(job("generic_phase1", "generic", (g1, 0), cfg.generic_lr, cfg.seed),
                                                 out=p1), [])
        tasks["d2hnet_generic"] = ("train", job("d2hnet_generic", "generic", (0, g2), cfg.generic_lr, cfg.seed, init=p1,
                                                offset=g1, zero=True), ["generic_phase1"])
    fine = [("d2hnet_matched", "matched", cfg.seed + 1, {"ablation_no_long": True}),
            ("d2hnet_other_phone", "other_phone", cfg.seed + 1, None),
            ("d2hnet_release_recipe", "release_recipe", cfg.seed + 1, None),
            ("d2hnet_matched_seed2", "matched", cfg.seed + 2, None)]
    first = [] if init else ["generic_phase1"]
    for name, noise, seed, extra in fine:
        mid = str(cache / f"{name}_phase1.pt")
        tasks[f"{name}_phase1"] = ("train", dict(job(f"{name}_phase1", noise, (f1, 0), cfg.finetune_lr, seed, init=p1),
                                                 out=mid), first)
        tasks[name] = ("train", job(name, noise, (0, f2), cfg.finetune_lr, seed, init=mid, init_enh=gen, offset=f1,
                                    extra=extra), [f"{name}_phase1", "d2hnet_generic"])
    # priority when a worker is free: the generic model first (everything waits on it), then phase 1s, baselines
    priority = ["d2hnet_generic", "generic_phase1"] + [f"{f[0]}_phase1" for f in fine] + ["baselines"] + [f[0] for f in fine]

    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    # one core per worker: the BM3D and BLAS libraries would otherwise start a thread per core
    saved_env = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    manager = ctx.Manager()
    queue = manager.Queue()
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        with ProcessPoolExecutor(max_workers=cfg.jobs, mp_context=ctx) as pool:
            running: dict[Any, str] = {}
            while len(results) < len(tasks):
                ready = [k for k in priority if k in tasks and k not in results and k not in running.values()
                         and all(d in results for d in tasks[k][2])]
                while ready and len(running) < cfg.jobs:
                    k = ready.pop(0)
                    kind, payload, _ = tasks[k]
                    running[pool.submit(_worker, kind, payload, queue)] = k
                    bar.set_postfix_str(", ".join(sorted(running.values())))
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    name, phase, n = queue.get()
                    advance(n * (w_step[phase] if phase else COST_S.get(name, 0.05) * area))
                for f in done:
                    k = running.pop(f)
                    results[k] = f.result()  # re-raises a worker's error here
                    if k == "d2hnet_generic":
                        timing["generic_s"] = time.perf_counter() - t0
    finally:
        manager.shutdown()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for name in ["d2hnet_generic"] + [f[0] for f in fine]:
        key = "generic_phase1" if name == "d2hnet_generic" else f"{name}_phase1"
        if key in results:  # one curve and one timing record per model over both phases
            results[name]["curve"] = results[key]["curve"] + results[name]["curve"]
            results[name]["timing"] = {**results[key]["timing"], **results[name]["timing"]}
    timing["models_s"] = time.perf_counter() - t0
    bar.close()
    timing["total_s"] = time.perf_counter() - t_start

    # ---- 3. statistics and outputs
    from .report import write_outputs

    study = _assemble(cfg, results, test, target, true, other, models, cache_info, circular, timing, init)
    (out / "study.json").write_text(json.dumps(study, indent=1))
    write_outputs(out, study, test, cache, log=log)
    return study


def _saved(profile, path: Path) -> str:
    profile.save(path)
    return str(path)


def _assemble(cfg, results, test, target, true, other, models, cache_info, circular, timing, init) -> dict:
    from .scenes import licence_table
    from .stats import paired, per_image, summarise, psnr_ssim

    groups = test["image"]
    per_crop: dict[str, tuple[list, list]] = {}
    for name, key in (("long_input", "long"), ("short_input", "short")):
        sc = [psnr_ssim(x, g) for x, g in zip(test[key], test["gt"])]
        per_crop[name] = ([v[0] for v in sc], [v[1] for v in sc])
    base = results["baselines"]
    for name in ("gaussian_blur_short", "nlm_short", "bm3d_short", "classical_fusion"):
        per_crop[name] = (base["methods"][name]["psnr"], base["methods"][name]["ssim"])
    for name in MODELS:
        per_crop[name] = (results[name]["psnr"], results[name]["ssim"])
    ab = results["d2hnet_matched"]["ablation_no_long"]
    per_crop["d2hnet_ablation_no_long"] = (ab["psnr"], ab["ssim"])

    def table(mask) -> tuple[dict, dict]:
        g = [x for x, m in zip(groups, mask) if m]
        methods, imgs = {}, {}
        for name in METHOD_ORDER:
            p, s = per_crop[name]
            names, pi = per_image([v for v, m in zip(p, mask) if m], g)
            _, si = per_image([v for v, m in zip(s, mask) if m], g)
            methods[name] = summarise(pi, si, n_boot=cfg.n_boot, seed=cfg.seed)
            imgs[name] = pi
        pairs = {k: paired(imgs[a], imgs[b], n_boot=cfg.n_boot, seed=cfg.seed) for k, (a, b) in PAIRED.items()}
        return methods, pairs

    methods, pairs = table([True] * len(groups))
    by_iso = {}
    for b in range(cfg.n_bands):
        mask = [x == b for x in test["band"]]
        isos = [m["short_iso"] for m, x in zip(test["meta"], mask) if x]
        bm, bp = table(mask)
        name = BAND_NAMES[b] if cfg.n_bands == 3 else f"band{b}"
        by_iso[name] = {"short_iso_range": [min(isos), max(isos)], "n_crops": int(sum(mask)),
                        "methods": {k: {kk: v[kk] for kk in ("psnr_mean", "ssim_mean", "psnr_ci95")} for k, v in bm.items()},
                        "paired": {k: {kk: v[kk] for kk in ("mean", "ci95", "wins", "n")} for k, v in bp.items()}}
    image_names = list(dict.fromkeys(groups))
    curves = {name: results[name]["curve"] for name in MODELS}
    tm = dict(timing)
    for name in MODELS:
        tm[name] = results[name]["timing"]
    tm["baselines"] = base["timing"]
    config = asdict(cfg)
    config.update({"profile": target.name, "truth": true.name, "other_profile": other.name, "init": init,
                   "noise_models": {k: m.describe() for k, m in models.items()}, "cache": cache_info,
                   "tuned_baselines": base["tuned"], "baseline_tune_psnr": base["tune_psnr"],
                   "test_images": image_names, "image_licences": licence_table(), "metric_protocol": "standard",
                   "test_noise": f"{true.name} (truth), paper recipe, seed {cfg.seed}"})
    return {"format": "d2hnet-study", "version": 1, "methods": methods, "paired": pairs, "by_iso": by_iso,
            "curves": curves, "config": config, "timing": tm, "circular": bool(circular),
            "images": image_names, "crops": [{"image": g, "band": int(b), **m} for g, b, m in zip(groups, test["band"], test["meta"])]}
