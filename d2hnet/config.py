"""The training config: one TOML (or YAML, or JSON) file, validated completely before anything runs.

Load with :func:`load_config` (TOML through the standard library's
``tomllib`` on Python >= 3.11, ``tomli`` on 3.10; YAML only through
``yaml.safe_load`` when PyYAML is installed; JSON always). Unknown sections
or keys, wrong types, out-of-range values and missing folders are errors
(:class:`ConfigError`) that name the key and say what is allowed. Every key
has a default (the paper's); only ``data.train_dir`` and ``run.out_dir`` are
required. The validated config is written to the run folder as
``config.json`` (and the original file is copied there).

Relative paths in the file are relative to the file's folder.

Sections and keys (defaults in brackets)::

    [run]     out_dir (required), seed [0], device ["auto"], amp ["auto": bf16 on CUDA, off on CPU; "off", "bf16", "fp16"],
              deterministic [true], num_workers [4], log_every [20 steps], ckpt_every [500 steps; 0 = per epoch only],
              val_every [1 epoch; 0 = never], progress [true], tensorboard [true: when installed]
    [data]    train_dir (required), layout ["auto"|"d2"|"generic"], val_dir ["": no validation],
              long_suffixes [["long2","long4","long6","long8"]], max_val [0 = all]
    [noise]   profile ["mi_note10"; the CLI's --profile wins], recipe ["paper"|"release": d2hnet.data.noise],
              engine ["numba": DataLoader workers degrade on the CPU | "torch": the step degrades on its device], iso_ratio [8.0],
              long_iso [[1000, 4000]], short_iso [[6400, 12800]], wb_r [[1.9, 2.4]], wb_b [[1.5, 1.9]]
    [augment] ia_p [0.3], ia_gammas [1/0.6 ... 1/0.9], ca_p [0.5], ca_a [[0.3, 0.6]], ca_b [[0.001, 0.01]],
              cutnoise_p [0.3], cutnoise_t_p [0.3], cutnoise_size [120]
    [varmap]  enabled [true], window [16], percentile [5.0], squares_per_image [1000], extra_ratio [1.67 extra patches
              per tuple: 9453 / 5661 as in the paper], extra [-1: use extra_ratio]
    [model]   deblurnet {ngf, n_res, n_res2}, enhancenet {ngf, n_res, n_res2, deformable_groups, offset_channels}
    [phase1]  epochs [100], lr [1e-4], betas [[0.5, 0.999]], lr_step [50 epochs], lr_gamma [0.5], batch_size [2],
              crop [1024], scale [2], l1_weight [1.0], max_steps [0 = no limit; for tests and smoke runs]
    [phase2]  the same keys (epochs 150, lr 5e-5) plus patch [256], patches [2], deblur_checkpoint [""]
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from isp_sim.cli_support import file_problem, folder_problem
from isp_sim.errors import IspSimError

from .data.augment import IA_GAMMAS
from .data.layout import LAYOUTS, LONG_SUFFIXES
from .data.noise import RECIPES
from .metrics import PROTOCOLS
from .models.pair import DEFAULT_CONFIG

__all__ = ["ConfigError", "DEFAULTS", "load_config", "validate_config", "read_config_file"]


class ConfigError(IspSimError, ValueError):
    """A training config that is malformed, has unknown keys or bad values, or names missing paths."""


_PHASE = {"epochs": 100, "lr": 1e-4, "betas": [0.5, 0.999], "lr_step": 50, "lr_gamma": 0.5, "batch_size": 2,
          "crop": 1024, "scale": 2, "l1_weight": 1.0, "max_steps": 0}

DEFAULTS: dict[str, dict[str, Any]] = {
    "run": {"out_dir": None, "seed": 0, "device": "auto", "amp": "auto", "deterministic": True, "num_workers": 4,
            "log_every": 20, "ckpt_every": 500, "val_every": 1, "progress": True, "tensorboard": True,
            "val_protocol": "standard", "keep_last": 3, "keep_every": 0, "keep_best": True, "val_images": 4},
    "data": {"train_dir": None, "layout": "auto", "val_dir": "", "long_suffixes": list(LONG_SUFFIXES), "max_val": 0,
             "decoded_cache": "auto"},
    "noise": {"profile": "mi_note10", "recipe": "paper", "engine": "numba", "iso_ratio": 8.0, "long_iso": [1000.0, 4000.0],
              "short_iso": [6400.0, 12800.0], "wb_r": [1.9, 2.4], "wb_b": [1.5, 1.9]},
    "augment": {"ia_p": 0.3, "ia_gammas": list(IA_GAMMAS), "ca_p": 0.5, "ca_a": [0.3, 0.6], "ca_b": [0.001, 0.01],
                "cutnoise_p": 0.3, "cutnoise_t_p": 0.3, "cutnoise_size": 120},
    "varmap": {"enabled": True, "window": 16, "percentile": 5.0, "squares_per_image": 1000, "extra_ratio": 9453 / 5661,
               "extra": -1},
    "model": copy.deepcopy(DEFAULT_CONFIG),
    "phase1": dict(_PHASE),
    "phase2": {**_PHASE, "epochs": 150, "lr": 5e-5, "lr_step": 50, "patch": 256, "patches": 2, "deblur_checkpoint": ""},
}


def _err(key: str, msg: str) -> ConfigError:
    return ConfigError(f"config key {key}: {msg}")


def _num(key, v, lo=None, hi=None, integer=False, lo_open=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise _err(key, f"must be {'an integer' if integer else 'a number'}, got {v!r}")
    if not math.isfinite(v):
        raise _err(key, f"must be finite, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise _err(key, f"must be {'>' if lo_open else '>='} {lo}, got {v!r}")
    if hi is not None and v > hi:
        raise _err(key, f"must be <= {hi}, got {v!r}")
    return v


def _range(key, v, lo=None, hi=None):
    if not (isinstance(v, (list, tuple)) and len(v) == 2):
        raise _err(key, f"must be a [low, high] pair, got {v!r}")
    a, b = (_num(key, x, lo, hi) for x in v)
    if a > b:
        raise _err(key, f"low must be <= high, got {list(v)}")
    return [float(a), float(b)]


def _choice(key, v, allowed):
    if v not in allowed:
        raise _err(key, f"must be one of {list(allowed)}, got {v!r}")
    return v


def _bool(key, v):
    if not isinstance(v, bool):
        raise _err(key, f"must be true or false, got {v!r}")
    return v


def _str(key, v):
    if not isinstance(v, str):
        raise _err(key, f"must be a string, got {v!r}")
    return v


def _prob(key, v):
    return float(_num(key, v, 0.0, 1.0))


def _check_phase(name: str, p: dict) -> None:
    k = f"{name}."
    _num(k + "epochs", p["epochs"], 1, integer=True)
    p["lr"] = float(_num(k + "lr", p["lr"], 0.0, lo_open=True))
    p["betas"] = _range(k + "betas", p["betas"], 0.0, 0.999999)
    _num(k + "lr_step", p["lr_step"], 1, integer=True)
    p["lr_gamma"] = float(_num(k + "lr_gamma", p["lr_gamma"], 0.0, 1.0, lo_open=True))
    _num(k + "batch_size", p["batch_size"], 1, integer=True)
    _num(k + "scale", p["scale"], 1, integer=True)
    _num(k + "crop", p["crop"], 4 * p["scale"], integer=True)
    if p["crop"] % (4 * p["scale"]):
        raise _err(k + "crop", f"must be a multiple of 4 x scale = {4 * p['scale']}, got {p['crop']}")
    p["l1_weight"] = float(_num(k + "l1_weight", p["l1_weight"], 0.0, lo_open=True))
    _num(k + "max_steps", p["max_steps"], 0, integer=True)
    if name == "phase2":
        _num(k + "patch", p["patch"], 16, p["crop"], integer=True)
        if p["patch"] % 16:
            raise _err(k + "patch", f"must be a multiple of 16 (EnhanceNet), got {p['patch']}")
        _num(k + "patches", p["patches"], 1, integer=True)
        _str(k + "deblur_checkpoint", p["deblur_checkpoint"])


def validate_config(raw: object, base_dir: str | os.PathLike = ".", *, check_paths: bool = True) -> dict[str, Any]:
    """Check a config dict; return a full copy with defaults filled in and paths made absolute.

    ``base_dir``: folder that relative paths are relative to. ``check_paths``:
    also check that ``data.train_dir`` (and ``val_dir``, ``deblur_checkpoint``
    when given) exist.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"config must be a table/mapping of sections {sorted(DEFAULTS)}, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"config: unknown section(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    cfg = copy.deepcopy(DEFAULTS)
    for sec, given in raw.items():
        if not isinstance(given, dict):
            raise ConfigError(f"config section [{sec}] must be a table, got {type(given).__name__}")
        if sec == "model":
            from .models.pair import validate_config as validate_model

            try:
                cfg["model"] = validate_model(given)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"config section [model]: {exc}") from None
            continue
        if sec == "noise" and "iso_mode" in given:
            v = given["iso_mode"]
            raise ConfigError(f"config key noise.iso_mode was replaced by noise.recipe (\"paper\" or \"release\": "
                              f"ISO draws, white balance, CutNoise box and clipping; d2hnet.data.noise): write "
                              f"recipe = {json.dumps(v) if v in ('paper', 'release') else chr(34) + 'paper' + chr(34)} "
                              "instead")
        bad = sorted(set(given) - set(DEFAULTS[sec]))
        if bad:
            raise ConfigError(f"config section [{sec}]: unknown key(s) {bad}; allowed: {sorted(DEFAULTS[sec])}")
        cfg[sec].update(copy.deepcopy(given))
    base = Path(base_dir)

    r = cfg["run"]
    if r["out_dir"] is None:
        raise _err("run.out_dir", "is required (the run folder: checkpoints, logs, the config copy)")
    r["out_dir"] = str((base / _str("run.out_dir", r["out_dir"])).resolve())
    _num("run.seed", r["seed"], 0, 2**63 - 1, integer=True)
    _str("run.device", r["device"])
    _choice("run.amp", r["amp"], ("auto", "off", "bf16", "fp16"))
    for k in ("deterministic", "progress", "tensorboard", "keep_best"):
        _bool(f"run.{k}", r[k])
    _choice("run.val_protocol", r["val_protocol"], PROTOCOLS)
    for k in ("num_workers", "log_every", "ckpt_every", "val_every", "keep_last", "keep_every", "val_images"):
        _num(f"run.{k}", r[k], 0 if k != "log_every" else 1, integer=True)

    d = cfg["data"]
    if d["train_dir"] is None:
        raise _err("data.train_dir", "is required (folder of training tuples; make some with `d2hnet synth`)")
    d["train_dir"] = str((base / _str("data.train_dir", d["train_dir"])).resolve())
    _choice("data.layout", d["layout"], LAYOUTS)
    if _str("data.val_dir", d["val_dir"]):
        d["val_dir"] = str((base / d["val_dir"]).resolve())
    ls = d["long_suffixes"]
    if not (isinstance(ls, list) and ls and all(s in (*LONG_SUFFIXES, "long") for s in ls)):
        raise _err("data.long_suffixes", f"must be a non-empty list from {[*LONG_SUFFIXES, 'long']}, got {ls!r}")
    _num("data.max_val", d["max_val"], 0, integer=True)
    dc_ = _str("data.decoded_cache", d["decoded_cache"])
    if dc_ not in ("auto", "off"):
        d["decoded_cache"] = str((base / dc_).resolve())

    n = cfg["noise"]
    _str("noise.profile", n["profile"])
    _choice("noise.recipe", n["recipe"], RECIPES)
    _choice("noise.engine", n["engine"], ("numba", "torch"))
    n["iso_ratio"] = float(_num("noise.iso_ratio", n["iso_ratio"], 1.0))
    for k in ("long_iso", "short_iso"):
        n[k] = _range(f"noise.{k}", n[k], 0.0)
    for k in ("wb_r", "wb_b"):
        n[k] = _range(f"noise.{k}", n[k], 0.0)

    a = cfg["augment"]
    for k in ("ia_p", "ca_p", "cutnoise_p", "cutnoise_t_p"):
        a[k] = _prob(f"augment.{k}", a[k])
    g = a["ia_gammas"]
    if not (isinstance(g, list) and g):
        raise _err("augment.ia_gammas", f"must be a non-empty list of positive numbers, got {g!r}")
    a["ia_gammas"] = [float(_num("augment.ia_gammas", x, 0.0, lo_open=True)) for x in g]
    a["ca_a"] = _range("augment.ca_a", a["ca_a"], 0.0)
    a["ca_b"] = _range("augment.ca_b", a["ca_b"], -1.0, 1.0)
    _num("augment.cutnoise_size", a["cutnoise_size"], 1, integer=True)

    v = cfg["varmap"]
    _bool("varmap.enabled", v["enabled"])
    _num("varmap.window", v["window"], 2, integer=True)
    v["percentile"] = float(_num("varmap.percentile", v["percentile"], 0.0, 100.0, lo_open=True))
    _num("varmap.squares_per_image", v["squares_per_image"], 1, integer=True)
    v["extra_ratio"] = float(_num("varmap.extra_ratio", v["extra_ratio"], 0.0))
    _num("varmap.extra", v["extra"], -1, integer=True)

    for ph in ("phase1", "phase2"):
        _check_phase(ph, cfg[ph])
    dc = cfg["phase2"]["deblur_checkpoint"]
    if dc:
        cfg["phase2"]["deblur_checkpoint"] = str((base / dc).resolve())

    if check_paths:
        for key, p in (("data.train_dir", d["train_dir"]), ("data.val_dir", d["val_dir"])):
            if p and not Path(p).is_dir():
                raise _err(key, f"{p!r}: {folder_problem(p)}")
        if dc and not Path(cfg["phase2"]["deblur_checkpoint"]).is_file():
            dcp = cfg["phase2"]["deblur_checkpoint"]
            raise _err("phase2.deblur_checkpoint", f"{dcp!r}: {file_problem(dcp, 'checkpoint')}")
    return cfg


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a ``.toml``, ``.yaml``/``.yml`` (safe loader) or ``.json`` file into a dict (not yet validated)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r}: {file_problem(p, 'config')}")
    suffix = p.suffix.lower()
    text = p.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                try:
                    import tomli as tomllib  # type: ignore[no-redef]
                except ModuleNotFoundError:
                    raise ConfigError("reading TOML on Python 3.10 needs tomli: pip install tomli") from None
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ModuleNotFoundError:
                raise ConfigError("YAML configs need PyYAML (pip install pyyaml); or write the config as TOML") from None
            data = yaml.safe_load(text)
            return data if data is not None else {}
        if suffix == ".json":
            return json.loads(text)
    except ConfigError:
        raise
    except Exception as exc:  # parser errors of three libraries
        raise ConfigError(f"{p}: cannot parse: {exc}") from None
    raise ConfigError(f"{p}: unsupported config format {suffix!r}; use .toml, .yaml/.yml or .json")


def load_config(path: str | os.PathLike, *, overrides: dict[str, dict[str, Any]] | None = None,
                check_paths: bool = True) -> dict[str, Any]:
    """Read and validate a config file; ``overrides`` (``{section: {key: value}}``) win over the file."""
    raw = read_config_file(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a table of sections, got {type(raw).__name__}")
    for sec, kv in (overrides or {}).items():
        if not isinstance(raw.get(sec, {}), dict):
            break
        raw.setdefault(sec, {}).update(kv)
    return validate_config(raw, Path(path).resolve().parent, check_paths=check_paths)


# ----------------------------------------------------------------------------- typed, frozen view


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: the run folder, seeding, device and precision, workers, logging, checkpoints, validation."""

    out_dir: str
    seed: int
    device: str
    amp: str
    deterministic: bool
    num_workers: int
    log_every: int
    ckpt_every: int
    val_every: int
    progress: bool
    tensorboard: bool
    val_protocol: str
    keep_last: int
    keep_every: int
    keep_best: bool
    val_images: int


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: training and validation folders, their layout, long exposures used, the decoded cache."""

    train_dir: str
    layout: str
    val_dir: str
    long_suffixes: tuple[str, ...]
    max_val: int
    decoded_cache: str


@dataclass(frozen=True)
class NoiseConfig:
    """``[noise]``: the profile, the recipe and engine, ISO and white-balance ranges."""

    profile: str
    recipe: str
    engine: str
    iso_ratio: float
    long_iso: tuple[float, float]
    short_iso: tuple[float, float]
    wb_r: tuple[float, float]
    wb_b: tuple[float, float]


@dataclass(frozen=True)
class AugmentConfig:
    """``[augment]``: Illumination Adjustment, Color Adjustment and CutNoise."""

    ia_p: float
    ia_gammas: tuple[float, ...]
    ca_p: float
    ca_a: tuple[float, float]
    ca_b: tuple[float, float]
    cutnoise_p: float
    cutnoise_t_p: float
    cutnoise_size: int


@dataclass(frozen=True)
class VarmapConfig:
    """``[varmap]``: VarmapSelection's window, percentile, squares per image and extra patches."""

    enabled: bool
    window: int
    percentile: float
    squares_per_image: int
    extra_ratio: float
    extra: int


@dataclass(frozen=True)
class PhaseConfig:
    """``[phase1]`` / ``[phase2]``: schedule, optimiser, crops; phase 2 adds patches and DeblurNet's weights."""

    epochs: int
    lr: float
    betas: tuple[float, float]
    lr_step: int
    lr_gamma: float
    batch_size: int
    crop: int
    scale: int
    l1_weight: float
    max_steps: int
    patch: int = 256
    patches: int = 2
    deblur_checkpoint: str = ""


@dataclass(frozen=True)
class TrainConfig:
    """A validated training config (:func:`validate_config`) as frozen, typed sections; :meth:`to_dict` gives the
    JSON-able dict back (``config.json`` in the run folder)."""

    run: RunConfig
    data: DataConfig
    noise: NoiseConfig
    augment: AugmentConfig
    varmap: VarmapConfig
    model: dict
    phase1: PhaseConfig
    phase2: PhaseConfig

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> "TrainConfig":
        """From a dict :func:`validate_config` returned (lists become tuples)."""
        def build(kind, d):
            names = {f.name for f in fields(kind)}
            return kind(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names})

        return cls(run=build(RunConfig, cfg["run"]), data=build(DataConfig, cfg["data"]),
                   noise=build(NoiseConfig, cfg["noise"]), augment=build(AugmentConfig, cfg["augment"]),
                   varmap=build(VarmapConfig, cfg["varmap"]), model=copy.deepcopy(dict(cfg["model"])),
                   phase1=build(PhaseConfig, cfg["phase1"]), phase2=build(PhaseConfig, cfg["phase2"]))

    def phase(self, n: int) -> PhaseConfig:
        """The section of phase ``n`` (1 or 2)."""
        return self.phase1 if n == 1 else self.phase2

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict (tuples as lists), equal to the validated dict it came from."""
        def plain(x):
            d = asdict(x)
            return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

        out = {s: plain(getattr(self, s)) for s in ("run", "data", "noise", "augment", "varmap")}
        out["model"] = copy.deepcopy(self.model)
        out["phase1"] = {k: v for k, v in plain(self.phase1).items() if k in DEFAULTS["phase1"]}
        out["phase2"] = plain(self.phase2)
        return {s: out[s] for s in DEFAULTS}
