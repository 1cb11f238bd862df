"""The one-way flow at run time and the boundaries DESIGN.md states: what each import loads, and no module
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
