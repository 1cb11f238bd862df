"""D2HNet training data: tuple readers, synthesis, VarmapSelection, augmentations, noise and datasets.

Modules: :mod:`~d2hnet.data.layout` (D2-Dataset and generic readers),
:mod:`~d2hnet.data.synth` (tuples from video frames or still photos),
:mod:`~d2hnet.data.varmap` (VarmapSelection), :mod:`~d2hnet.data.augment`
(IA, CA, CutNoise), :mod:`~d2hnet.data.noise` (pair degradation through
``isp_sim``), :mod:`~d2hnet.data.dataset` (PyTorch datasets, ``make_val``).
"""

from .augment import color_adjust, cut_noise, cut_noise_box, illumination_adjust
from .dataset import SampleSettings, TrainDataset, ValDataset, make_val, worker_init_fn
from .layout import LONG_SUFFIXES, TupleRecord, scan_d2_dataset, scan_dataset, scan_generic
from .noise import degrade_pair, pair_isos
from .synth import synth_from_frames, synth_from_stills
from .varmap import BlurPatch, VarmapResult, varmap_ratio, varmap_selection

__all__ = [
    "BlurPatch", "LONG_SUFFIXES", "SampleSettings", "TrainDataset", "TupleRecord", "ValDataset", "VarmapResult",
    "color_adjust", "cut_noise", "cut_noise_box", "degrade_pair", "illumination_adjust", "make_val", "pair_isos",
    "scan_d2_dataset", "scan_dataset", "scan_generic", "synth_from_frames", "synth_from_stills", "varmap_ratio",
    "varmap_selection", "worker_init_fn",
]
