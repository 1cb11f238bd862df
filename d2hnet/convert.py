"""Convert the official D2HNet release's two weight files into one d2hnet checkpoint.

The release saves each network as ``torch.save(net.state_dict())``:
``GNet-epoch-99.pkl`` (``DeblurNet_v2``) and ``GNet-epoch-149.pkl``
(``DenoiseNet_v2``, our EnhanceNet), loaded strictly by the release, so the
key sets are exact. Every key is either mapped to exactly one key of our
networks (:func:`release_key_map`) or deliberately dropped
(:data:`RELEASE_DROPPED_KEYS`: modules the release registers but never calls).
Files are read with ``torch.load(weights_only=True)``.

Spectral norm
-------------
The release wraps EnhanceNet's four decoder upsampling convs in its own
``SpectralNorm``: trainable ``weight_bar`` plus power-iteration vectors
``weight_u`` (out,) and ``weight_v`` (in*3*3,) stored as parameters. On
*every* forward, eval included, it runs one power iteration from the stored
``u`` (``v = W^T u / |.|``, ``u = W v / |.|``), updates ``u, v`` in place and
uses ``W / (u . W v)``. Our upsamplers use
:func:`torch.nn.utils.parametrizations.spectral_norm`, which iterates only in
training mode; in eval mode it uses its stored ``_u, _v`` as they are.

Conversion: ``weight_bar -> original`` unchanged; ``_u, _v`` are the vectors
after the one power iteration the release performs on its first forward
from the saved ``weight_u``. Our eval model therefore uses exactly the
weight the release uses on its first call after loading, and keeps using it
(deterministic, the same for every tile and photo). The release keeps
iterating on later calls, so its sigma drifts toward the exact top singular
value; after 150 epochs of training ``u`` is already converged, so that
drift is far below float32 image precision in practice (it cannot be
measured here: no release weights are available). In training mode our
parametrisation iterates once per forward, as the release.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .checkpoint import check_state_dict, identify_state_dict, save_checkpoint, torch_load_weights
from .errors import ReleaseConversionError
from .models.pair import D2HNet

__all__ = [
    "RELEASE_NETS",
    "RELEASE_DROPPED_KEYS",
    "release_key_map",
    "spectral_norm_keys",
    "release_sn_power_iteration",
    "convert_release_state_dicts",
    "convert_release",
    "load_release_state_dict",
]

#: Release class name -> our network attribute on :class:`D2HNet`.
RELEASE_NETS = {"DeblurNet_v2": "deblurnet", "DenoiseNet_v2": "enhancenet"}

_N_RES = 4  # the release's deblur_res_num, deblur_res_num2, denoise_res_num2 and decoder ResBlocks
_LEVELS = 5

#: Keys of the release's DenoiseNet_v2 that are never used in its forward, dropped on conversion
#: (docs/d2hnet.md; d2hnet_release_state_dict.json "unused_in_forward"). DeblurNet_v2 drops none.
RELEASE_DROPPED_KEYS: dict[str, tuple[str, ...]] = {
    "DeblurNet_v2": (),
    "DenoiseNet_v2": (
        # level 5 is called without a coarser offset: its offset-merging conv is never used
        "upsample_alignblock5.offset_conv2.weight",
        "upsample_alignblock5.offset_conv2.bias",
        # every Align_module registers a transposed conv and a conv that forward never calls
        "upsample_alignblock5.up.weight",
        "upsample_alignblock5.up.bias",
        "upsample_alignblock5.conv_2.weight",
        "upsample_alignblock5.conv_2.bias",
        "upsample_alignblock4.up.weight",
        "upsample_alignblock4.up.bias",
        "upsample_alignblock4.conv_2.weight",
        "upsample_alignblock4.conv_2.bias",
        "upsample_alignblock3.up.weight",
        "upsample_alignblock3.up.bias",
        "upsample_alignblock3.conv_2.weight",
        "upsample_alignblock3.conv_2.bias",
        "upsample_alignblock2.up.weight",
        "upsample_alignblock2.up.bias",
        "upsample_alignblock2.conv_2.weight",
        "upsample_alignblock2.conv_2.bias",
        "upsample_alignblock1.up.weight",
        "upsample_alignblock1.up.bias",
        "upsample_alignblock1.conv_2.weight",
        "upsample_alignblock1.conv_2.bias",
        # three 3->32 convs built but only referenced in a commented-out block
        "short_conv.layers.0.weight",
        "short_conv.layers.0.bias",
        "long_conv.layers.0.weight",
        "long_conv.layers.0.bias",
        "deblur_out_conv.layers.0.weight",
        "deblur_out_conv.layers.0.bias",
    ),
}


def _wb(release_prefix: str, our_prefix: str) -> dict[str, str]:
    """weight and bias of one conv."""
    return {f"{release_prefix}.{p}": f"{our_prefix}.{p}" for p in ("weight", "bias")}


def _resblock(release_prefix: str, our_prefix: str) -> dict[str, str]:
    """Release ``ResBlock``: ``conv2d.0`` / ``conv2d.1`` (each a Conv2dLayer) -> our ``conv1`` / ``conv2``."""
    return {
        **_wb(f"{release_prefix}.conv2d.0.layers.0", f"{our_prefix}.conv1"),
        **_wb(f"{release_prefix}.conv2d.1.layers.0", f"{our_prefix}.conv2"),
    }


def _deblurnet_map() -> dict[str, str]:
    m: dict[str, str] = {}
    m.update(_wb("fusion_conv.layers.0", "fusion_conv"))
    m.update(_wb("downsample_conv.layers.0", "down_conv"))
    for i in range(_N_RES):
        m.update(_resblock(f"deblur_res_block_{i}", f"res.{i}"))
    m.update(_wb("upsample_conv.layers.0", "up_conv"))
    m.update(_wb("deblur_layer.layers.0", "out_conv"))
    for i in range(_N_RES):
        m.update(_resblock(f"deblur_res_block2_{i}", f"res2.{i}"))
    return m


def _enhancenet_map() -> dict[str, str]:
    m: dict[str, str] = {}
    for enc_r, enc_o in (("downsample_short_conv", "short_enc"), ("downsample_long_conv", "long_enc")):
        for lvl in range(1, _LEVELS + 1):
            m.update(_wb(f"{enc_r}{lvl}.0.layers.0", f"{enc_o}.levels.{lvl - 1}.conv"))
            m.update(_resblock(f"{enc_r}{lvl}.1", f"{enc_o}.levels.{lvl - 1}.res"))
    for lvl in range(_LEVELS, 0, -1):
        i = lvl - 1
        a = f"upsample_alignblock{lvl}"
        m.update(_wb(f"{a}.conv_1", f"align.{i}.offset_conv0"))
        m.update(_wb(f"{a}.offset_conv1", f"align.{i}.offset_conv1"))
        if lvl < _LEVELS:
            m.update(_wb(f"{a}.offset_conv2", f"align.{i}.offset_conv2"))
        m.update(_wb(f"{a}.offset_conv3", f"align.{i}.offset_conv3"))
        m.update(_wb(f"{a}.dcnpack", f"align.{i}.dcn"))
        m.update(_wb(f"{a}.dcnpack.conv_offset_mask", f"align.{i}.offset_mask"))
        m.update(_wb(f"upsample_comb{lvl}.layers.0", f"merge.{i}"))
        if lvl > 1:
            for j in range(_N_RES):
                m.update(_resblock(f"upsample_resblock{lvl}.{j}", f"fuse_res.{i}.{j}"))
        if lvl < _LEVELS:
            sn = f"upsample_conv{lvl}.conv2d.layers.0.module"
            ours = f"up.{i}.conv"
            m[f"{sn}.bias"] = f"{ours}.bias"
            m[f"{sn}.weight_bar"] = f"{ours}.parametrizations.weight.original"
            m[f"{sn}.weight_u"] = f"{ours}.parametrizations.weight.0._u"
            m[f"{sn}.weight_v"] = f"{ours}.parametrizations.weight.0._v"
    m.update(_wb("upsample_conv0.layers.0", "tail_conv"))
    m.update(_wb("denoise_layer.layers.0", "out_conv"))
    for i in range(_N_RES):
        m.update(_resblock(f"denoise_res_block2_{i}", f"tail_res.{i}"))
    return m


def release_key_map(release_net: str) -> dict[str, str]:
    """Release key -> our key for ``"DeblurNet_v2"`` or ``"DenoiseNet_v2"`` (dropped keys excluded).

    One-to-one: every key of our network (built with the default config) is
    the image of exactly one release key.
    """
    if release_net == "DeblurNet_v2":
        return _deblurnet_map()
    if release_net == "DenoiseNet_v2":
        return _enhancenet_map()
    raise ReleaseConversionError(f"unknown release network {release_net!r}; expected one of {sorted(RELEASE_NETS)}")


def spectral_norm_keys() -> list[tuple[str, str, str]]:
    """``(weight_bar, weight_u, weight_v)`` release keys of each spectrally normalised conv, level 4 to 1."""
    return [
        tuple(f"upsample_conv{lvl}.conv2d.layers.0.module.{n}" for n in ("weight_bar", "weight_u", "weight_v"))
        for lvl in range(_LEVELS - 1, 0, -1)
    ]


@torch.no_grad()
def release_sn_power_iteration(
    weight_bar: torch.Tensor, weight_u: torch.Tensor, eps: float = 1e-12
) -> tuple[torch.Tensor, torch.Tensor]:
    """The release's per-forward power iteration: returns ``(u, v)`` after one step from ``weight_u``.

    ``v = W^T u / (|W^T u| + eps)``, ``u = W v / (|W v| + eps)`` with
    ``W = weight_bar.view(out, -1)``; the release then divides the weight by
    ``sigma = u . W v``. (The stored ``weight_v`` is overwritten by this step,
    so it does not enter.)
    """
    w = weight_bar.reshape(weight_bar.shape[0], -1)
    v = torch.mv(w.t(), weight_u)
    v = v / (v.norm() + eps)
    u = torch.mv(w, v)
    u = u / (u.norm() + eps)
    return u, v


def load_release_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load one release ``.pkl`` safely (``weights_only=True``) and check it is a bare state_dict."""
    p = Path(path)
    obj = torch_load_weights(p, "cpu")
    if not isinstance(obj, Mapping):
        raise ReleaseConversionError(f"{p}: expected a state_dict (dict of tensors), got {type(obj).__name__}")
    not_tensor = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensor:
        raise ReleaseConversionError(
            f"{p}: expected a bare state_dict (torch.save(net.state_dict())), but entries "
            f"{not_tensor[:6]} are not tensors (a training-state file? pass the network's state_dict)"
        )
    return dict(obj)


def _check_release(sd: Mapping[str, torch.Tensor], release_net: str, expected: Mapping[str, torch.Tensor], src: str) -> None:
    kmap = release_key_map(release_net)
    dropped = set(RELEASE_DROPPED_KEYS[release_net])
    kind = identify_state_dict(sd)
    other = "DenoiseNet_v2" if release_net == "DeblurNet_v2" else "DeblurNet_v2"
    if kind == f"release {other}":
        raise ReleaseConversionError(
            f"{src}: holds the release's {other} weights, expected {release_net}; "
            "the arguments are DEBLURNET.pkl first, then ENHANCENET.pkl (DenoiseNet): swapped?"
        )
    if kind in ("DeblurNet", "EnhanceNet"):
        raise ReleaseConversionError(f"{src}: holds d2hnet {kind} weights already; nothing to convert")
    problems = []
    missing = [k for k in list(kmap) + sorted(dropped) if k not in sd]
    unexpected = [k for k in sd if k not in kmap and k not in dropped]
    if missing:
        problems.append(f"missing keys: {missing[:8]}{' ...' if len(missing) > 8 else ''} ({len(missing)} in all)")
    if unexpected:
        hint = " (keys start with 'module.': save the unwrapped net's state_dict)" if all(
            k.startswith("module.") for k in unexpected
        ) else ""
        problems.append(
            f"unexpected keys: {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''} ({len(unexpected)} in all){hint}"
        )
    bad_shape = [
        f"{rk}: {tuple(sd[rk].shape)}, expected {tuple(expected[ok].shape)}"
        for rk, ok in kmap.items()
        if rk in sd and tuple(sd[rk].shape) != tuple(expected[ok].shape)
    ]
    if bad_shape:
        problems.append("wrong shapes: " + "; ".join(bad_shape[:8]) + (" ..." if len(bad_shape) > 8 else ""))
    not_float = [f"{k}: {sd[k].dtype}" for k in kmap if k in sd and not sd[k].is_floating_point()]
    if not_float:
        problems.append("non-floating tensors: " + "; ".join(not_float[:8]))
    if problems:
        raise ReleaseConversionError(f"{src}: not the release's {release_net} state_dict: " + " | ".join(problems))


def convert_release_state_dicts(
    deblurnet_sd: Mapping[str, torch.Tensor],
    enhancenet_sd: Mapping[str, torch.Tensor],
    *,
    sources: tuple[str, str] = ("DeblurNet_v2 state_dict", "DenoiseNet_v2 state_dict"),
) -> D2HNet:
    """Release state_dicts (``DeblurNet_v2``, ``DenoiseNet_v2``) -> a :class:`D2HNet` in eval mode.

    Every release key must be present with the release's shape, and nothing
    else; every tensor lands in the key :func:`release_key_map` names, as
    float32; the spectral-norm vectors are advanced by the release's power
    iteration (module docstring).
    """
    model = D2HNet(init_type="default")
    for (release_net, attr), sd, src in zip(RELEASE_NETS.items(), (deblurnet_sd, enhancenet_sd), sources):
        net = getattr(model, attr)
        expected = net.state_dict()
        _check_release(sd, release_net, expected, src)
        kmap = release_key_map(release_net)
        new = {ok: sd[rk].detach().to("cpu", torch.float32).clone() for rk, ok in kmap.items()}
        if release_net == "DenoiseNet_v2":
            for bar_k, u_k, v_k in spectral_norm_keys():
                u, v = release_sn_power_iteration(new[kmap[bar_k]], new[kmap[u_k]])
                new[kmap[u_k]], new[kmap[v_k]] = u, v
        check_state_dict(new, net, f"converted {release_net} weights")
        net.load_state_dict(new, strict=True)
    return model.eval()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_release(
    deblurnet_path: str | os.PathLike, enhancenet_path: str | os.PathLike, out_path: str | os.PathLike
) -> Path:
    """Convert the release's ``DeblurNet_v2`` and ``DenoiseNet_v2`` ``.pkl`` files into one d2hnet checkpoint.

    Returns the path written (atomically). The checkpoint's ``meta`` records
    the source file names and SHA-256 digests and the spectral-norm treatment.
    """
    dp, ep = Path(deblurnet_path), Path(enhancenet_path)
    model = convert_release_state_dicts(
        load_release_state_dict(dp), load_release_state_dict(ep), sources=(str(dp), str(ep))
    )
    meta: dict[str, Any] = {
        "source": "official D2HNet release (github zhaoyuzhi/D2HNet), converted by `d2hnet convert-release`",
        "release_files": {
            "DeblurNet_v2": {"name": dp.name, "sha256": _sha256(dp)},
            "DenoiseNet_v2": {"name": ep.name, "sha256": _sha256(ep)},
        },
        "dropped_release_keys": list(RELEASE_DROPPED_KEYS["DenoiseNet_v2"]),
        "spectral_norm": "u, v advanced by the release's one power iteration; eval uses them as stored",
    }
    return save_checkpoint(out_path, model, meta=meta)
