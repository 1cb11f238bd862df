"""d2hnet checkpoint files: both networks' weights, the architecture config and a format version.

A checkpoint is one ``torch.save`` file holding a plain dict (only tensors,
strings, numbers, lists and dicts, so it loads with ``weights_only=True``)::

    {
      "format": "d2hnet-checkpoint",
      "format_version": 1,
      "config": {"deblurnet": {...}, "enhancenet": {...}},   # see models.DEFAULT_CONFIG
      "deblurnet": <DeblurNet state_dict>,
      "enhancenet": <EnhanceNet state_dict>,
      "meta": {...},          # free-form provenance (strings, numbers, lists, dicts)
    }

Loading checks all three (format and version, config, weights: every key and
shape, strictly) and the error says what does not match. Writes are atomic:
a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from isp_sim.cli_support import file_problem

from .errors import CheckpointError, InputError
from .models.pair import D2HNet, validate_config

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "check_state_dict",
    "identify_state_dict",
    "atomic_torch_save",
]

FORMAT = "d2hnet-checkpoint"
FORMAT_VERSION = 1
_NETS = ("deblurnet", "enhancenet")
_NET_NAMES = {"deblurnet": "DeblurNet", "enhancenet": "EnhanceNet"}


def atomic_torch_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then ``os.replace`` it into place."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; a checkpoint is an output like any other (0666 less the umask, e.g. 0644)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def _plain_meta(meta: Any, where: str = "meta") -> Any:
    """Check ``meta`` holds only what ``weights_only`` loading accepts (str, int, float, bool, None, list, dict)."""
    if meta is None or isinstance(meta, bool):
        return meta
    for plain in (str, int, float):  # subclasses (e.g. torch's TorchVersion) would not load with weights_only
        if isinstance(meta, plain):
            return plain(meta)
    if isinstance(meta, (list, tuple)):
        return [_plain_meta(v, f"{where}[{i}]") for i, v in enumerate(meta)]
    if isinstance(meta, Mapping):
        out = {}
        for k, v in meta.items():
            if not isinstance(k, str):
                raise InputError(f"{where}: keys must be strings, got {k!r}")
            out[k] = _plain_meta(v, f"{where}[{k!r}]")
        return out
    raise InputError(f"{where}: values must be str, int, float, bool, None, list or dict, got {type(meta).__name__}")


def save_checkpoint(path: str | os.PathLike, model: D2HNet, *, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (both networks) to ``path`` in the d2hnet checkpoint format.

    Tensors are saved on the CPU. ``meta`` is free-form provenance (e.g. the
    source files of a conversion, the training run). Returns the path written.
    """
    if not isinstance(model, D2HNet):
        raise InputError(f"model must be a d2hnet.models.D2HNet, got {type(model).__name__}")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config(),
        "deblurnet": {k: v.detach().cpu().clone() for k, v in model.deblurnet.state_dict().items()},
        "enhancenet": {k: v.detach().cpu().clone() for k, v in model.enhancenet.state_dict().items()},
        "meta": _plain_meta(dict(meta or {}), "meta"),
    }
    payload["meta"].setdefault("torch_version", str(torch.__version__))
    return atomic_torch_save(payload, path)


def torch_load_weights(path: Path, map_location: Any = "cpu") -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: {file_problem(path, 'checkpoint')}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle / zip / weights_only errors come in many types
        text = str(exc)
        if "weights_only" in text or "Weights only" in text:
            # torch's own message suggests weights_only=False, which runs arbitrary code from the file: never relay it
            detail = ("it holds Python objects besides tensors (a pickled model or optimiser state); d2hnet only "
                      "loads plain weights, for safety: save a state_dict, or convert release files with "
                      "`d2hnet convert-release`")
        else:
            detail = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        raise CheckpointError(f"{path}: cannot be loaded as a PyTorch weights file ({detail})") from exc


def identify_state_dict(sd: Mapping[str, Any]) -> str | None:
    """Say which network a bare state_dict belongs to, if recognisable.

    Returns one of ``"release DeblurNet_v2"``, ``"release DenoiseNet_v2"``,
    ``"DeblurNet"``, ``"EnhanceNet"`` or None.
    """
    keys = set(sd)
    if "fusion_conv.layers.0.weight" in keys or "deblur_layer.layers.0.weight" in keys:
        return "release DeblurNet_v2"
    if any(k.startswith(("downsample_short_conv", "upsample_alignblock")) for k in keys):
        return "release DenoiseNet_v2"
    if "fusion_conv.weight" in keys and "down_conv.weight" in keys:
        return "DeblurNet"
    if any(k.startswith(("short_enc.", "align.")) for k in keys):
        return "EnhanceNet"
    return None


def _list(keys: list[str], n: int = 6) -> str:
    shown = ", ".join(keys[:n])
    return f"{shown}{', ...' if len(keys) > n else ''} ({len(keys)} in all)"


def check_state_dict(sd: object, model: torch.nn.Module, what: str) -> None:
    """Check ``sd`` has exactly ``model``'s keys, shapes and floating dtypes; raise a :class:`CheckpointError` listing every mismatch."""
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{what}: expected a dict of tensors (a state_dict), got {type(sd).__name__}")
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing:
        problems.append(f"missing keys: {_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_list(unexpected)}")
    shape_bad = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in sd and tuple(sd[k].shape) != tuple(v.shape)
    ]
    if shape_bad:
        problems.append("shape mismatch: " + "; ".join(shape_bad[:6]) + (" ..." if len(shape_bad) > 6 else ""))
    dtype_bad = [f"{k}: {v.dtype}" for k, v in sd.items() if k in expected and not v.is_floating_point()]
    if dtype_bad:
        problems.append("non-floating tensors: " + "; ".join(dtype_bad[:6]))
    if problems:
        hint = ""
        kind = identify_state_dict(sd)
        net = type(model).__name__
        if kind is not None and kind != net:
            hint = f" These look like {kind} weights, not {net} weights."
            if kind.startswith("release"):
                hint += " Convert the release's files with `d2hnet convert-release`."
        raise CheckpointError(f"{what} do not match {net}({_cfg_str(model)}): " + " | ".join(problems) + hint)


def _cfg_str(model: torch.nn.Module) -> str:
    cfg = model.config() if hasattr(model, "config") else {}
    return ", ".join(f"{k}={v}" for k, v in cfg.items())


def read_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file and check its format, version and config (not yet its weights).

    Returns the raw dict with ``config`` replaced by the validated full config.
    """
    p = Path(path)
    obj = torch_load_weights(p, map_location)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p}: not a d2hnet checkpoint (holds a {type(obj).__name__}, expected a dict)")
    if "format" not in obj:
        kind = identify_state_dict(obj) if all(isinstance(v, torch.Tensor) for v in obj.values()) else None
        if kind is not None and kind.startswith("release"):
            raise CheckpointError(
                f"{p}: a bare state_dict of the official release's {kind.split()[1]}, not a d2hnet checkpoint; "
                "convert the two release files with `d2hnet convert-release DEBLURNET.pkl ENHANCENET.pkl -o CKPT`"
            )
        if kind is not None:
            raise CheckpointError(f"{p}: a bare {kind} state_dict, not a d2hnet checkpoint (no 'format' entry)")
        raise CheckpointError(f"{p}: not a d2hnet checkpoint (no 'format' entry; keys: {_list(sorted(map(str, obj)))})")
    if obj["format"] != FORMAT:
        raise CheckpointError(f"{p}: format {obj['format']!r}, expected {FORMAT!r}")
    version = obj.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{p}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"{p}: format_version {version} is not supported; this d2hnet reads version {FORMAT_VERSION}"
            + (" (the file was written by a newer d2hnet: upgrade)" if version > FORMAT_VERSION else "")
        )
    missing = [k for k in ("config", *_NETS) if k not in obj]
    if missing:
        raise CheckpointError(f"{p}: checkpoint lacks the entries {missing}")
    try:
        obj["config"] = validate_config(obj["config"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{p}: bad config: {exc}") from exc
    obj.setdefault("meta", {})
    return obj


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> D2HNet:
    """Build a :class:`~d2hnet.models.D2HNet` from a checkpoint file, in eval mode, on ``device``.

    The file is loaded with ``torch.load(weights_only=True)``. The format
    version, the config and every weight key and shape are checked; a
    mismatch raises :class:`~d2hnet.errors.CheckpointError` saying what does
    not match. The checkpoint's ``meta`` dict is attached as ``model.meta``.
    """
    p = Path(path)
    ck = read_checkpoint(p, map_location="cpu")
    model = D2HNet(ck["config"], init_type="default")
    for net in _NETS:
        sub = getattr(model, net)
        sd = ck[net]
        if isinstance(sd, Mapping) and all(isinstance(v, torch.Tensor) for v in sd.values()):
            other = "enhancenet" if net == "deblurnet" else "deblurnet"
            if identify_state_dict(sd) == _NET_NAMES[other]:
                raise CheckpointError(
                    f"{p}: the {net!r} entry holds {_NET_NAMES[other]} weights (the wrong network); "
                    "the file is corrupt or was written with the networks swapped"
                )
        check_state_dict(sd, sub, f"{p}: {net!r} weights")
        sub.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    model.meta = dict(ck.get("meta") or {})
    model.meta["format_version"] = ck["format_version"]
    model.to(device)
    return model.eval()
