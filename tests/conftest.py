import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RELEASE_JSON = SHARED / "reference" / "d2hnet_release_state_dict.json"
#: reduced D2HNet widths for tests that need the architecture, not its size
SMALL_D2HNET = {"deblurnet": {"ngf": 4, "n_res": 1, "n_res2": 1}, "enhancenet": {"ngf": 8, "n_res": 1, "n_res2": 1}}


@pytest.fixture(scope="session")
def natural_images():
    """The bundled sample photos as float32 sRGB (crops, even sizes)."""
    from isp_sim.imageio import SAMPLE_IMAGES, read_rgb, sample_image_path

    out = {}
    for name in SAMPLE_IMAGES:
        img, _ = read_rgb(sample_image_path(name))
        h, w = img.shape[:2]
        out[name] = img[: h - h % 2, : w - w % 2]
    return out


@pytest.fixture(scope="session")
def official():
    """The release-path restatement in ../shared/bench/official_degrade.py (skips when shared/ is absent)."""
    path = SHARED / "bench" / "official_degrade.py"
    if not path.exists():
        pytest.skip(f"baseline {path} not present (it lives in the project's shared/ folder)")
    spec = importlib.util.spec_from_file_location("official_degrade", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def channel_values(arr: np.ndarray, pattern: str, c: int) -> np.ndarray:
    """All pixels of R, Gr, Gb, B slot ``c`` of a mosaic."""
    from isp_sim.cfa import channel_map

    cm = channel_map(pattern)
    (i, j), = np.argwhere(cm == c)
    return arr[..., i::2, j::2]
