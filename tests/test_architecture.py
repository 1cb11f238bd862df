"""The one-way flow at run time and the boundaries docs/architecture.md states: what each import loads, and no module
reaching into another module's private names."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("isp_sim", "calibration", "d2hnet")


def _loaded(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_networks_load_no_isp_and_no_numba():
    mods = _loaded("import d2hnet.models")
    assert "numba" not in mods
    assert [m for m in mods if m.startswith("isp_sim")] == ["isp_sim", "isp_sim.errors"]
    assert not any(m.startswith("calibration") for m in mods)


def test_isp_sim_and_calibration_load_no_torch():
    mods = _loaded("import isp_sim, calibration; isp_sim.load_profile('mi_note10'); import calibration.pipeline")
    assert "torch" not in mods


def test_no_module_imports_another_modules_private_names():
    """``from X import _name`` only for private *modules* (``_rng``, ``_kernels``), never a private function."""
    bad = []
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(f.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                    base = f.parent
                    for _ in range(max(node.level - 1, 0)):
                        base = base.parent
                    target = (base / (node.module or "").replace(".", "/")) if node.level else ROOT / (node.module or "").replace(".", "/")
                    for a in node.names:
                        if a.name.startswith("_") and not ((target / f"{a.name}.py").exists() or (target / a.name).is_dir()):
                            bad.append(f"{f.relative_to(ROOT)}:{node.lineno} imports {a.name} from {node.module}")
    assert not bad, "\n".join(bad)


def test_one_writer_for_the_profile_format():
    """Only isp_sim spells the profile format; every bundled profile is what tools/make_bundled_profiles.py
    builds through isp_sim.profile.profile_dict (equal in content)."""
    import importlib.util

    spelled = [str(f.relative_to(ROOT)) for pkg in ("calibration", "d2hnet", "tools")
               for f in sorted((ROOT / pkg).rglob("*.py")) if "isp_sim.noise_profile" in f.read_text()]
    assert not spelled, spelled
    spec = importlib.util.spec_from_file_location("mbp", ROOT / "tools" / "make_bundled_profiles.py")
    mbp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mbp)
    from isp_sim import NoiseProfile, load_profile

    def same(d, name):
        return json.loads(json.dumps(NoiseProfile.from_dict(d).to_dict())) == \
            json.loads(json.dumps(load_profile(name).to_dict()))

    assert same(mbp.mi_note10(), "mi_note10")
    eld_src = ROOT.parent / "shared" / "reference" / "eld_camera_params.json"
    if eld_src.exists():  # the ELD source table sits beside the repository (../shared), not in it
        cams = json.loads(eld_src.read_text())["cameras"]
        for name in mbp.ELD:
            assert same(mbp.eld(name, cams), name), name
