"""The two networks of D2HNet held together, with the architecture config that rebuilds them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from torch import nn

from ..errors import InputError, InputTypeError
from .deblurnet import DeblurNet
from .enhancenet import EnhanceNet

__all__ = ["D2HNet", "DEFAULT_CONFIG", "validate_config"]

#: Architecture of the paper / the release. ``checkpoint`` files store a config of this shape.
DEFAULT_CONFIG: dict[str, dict[str, int]] = {
    "deblurnet": {"ngf": 32, "n_res": 4, "n_res2": 4},
    "enhancenet": {"ngf": 32, "n_res": 4, "n_res2": 4, "deformable_groups": 8, "offset_channels": 32},
}


def validate_config(config: Mapping[str, object] | None) -> dict[str, dict[str, int]]:
    """Check an architecture config; return a full copy (missing keys take the defaults).

    Unknown sections or keys and non-integer values are errors naming them.
    """
    if not isinstance(config, dict):
        raise InputTypeError(f"config must be a dict with sections {sorted(DEFAULT_CONFIG)}, got {type(config).__name__}")
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise InputError(f"config: unknown section(s) {unknown}; allowed: {sorted(DEFAULT_CONFIG)}")
    out = copy.deepcopy(DEFAULT_CONFIG)
    for section, defaults in DEFAULT_CONFIG.items():
        given = config.get(section, {})
        if not isinstance(given, dict):
            raise InputTypeError(f"config[{section!r}] must be a dict, got {type(given).__name__}")
        bad = sorted(set(given) - set(defaults))
        if bad:
            raise InputError(f"config[{section!r}]: unknown key(s) {bad}; allowed: {sorted(defaults)}")
        for k, v in given.items():
            if not isinstance(v, int) or isinstance(v, bool):
                raise InputTypeError(f"config[{section!r}][{k!r}] must be an integer, got {v!r}")
            out[section][k] = v
    return out


class D2HNet(nn.Module):
    """DeblurNet and EnhanceNet of one D2HNet model.

    Parameters
    ----------
    config
        Architecture (see :data:`DEFAULT_CONFIG`; missing keys take the paper's values).
    init_type, init_gain
        Weight initialisation of both networks (the release: xavier, 0.02).

    Attributes
    ----------
    deblurnet : DeblurNet
    enhancenet : EnhanceNet

    ``forward`` is not defined: use :func:`d2hnet.infer.restore` for whole
    photos, or call the two networks (training).
    """

    def __init__(
        self,
        config: dict[str, dict[str, int]] | None = None,
        *,
        init_type: str = "xavier",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        cfg = validate_config(config if config is not None else {})
        self.deblurnet = DeblurNet(**cfg["deblurnet"], init_type=init_type, init_gain=init_gain)
        self.enhancenet = EnhanceNet(**cfg["enhancenet"], init_type=init_type, init_gain=init_gain)
        #: provenance read from a checkpoint (see :func:`d2hnet.checkpoint.load_checkpoint`)
        self.meta: dict = {}

    def config(self) -> dict[str, dict[str, int]]:
        """The architecture config that rebuilds these networks."""
        return {"deblurnet": self.deblurnet.config(), "enhancenet": self.enhancenet.config()}
