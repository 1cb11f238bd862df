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


PUBLIC_MODULES = ["isp_sim", "isp_sim.cfa", "isp_sim.demosaic", "isp_sim.profile", "isp_sim.params", "isp_sim.pipeline",
                  "isp_sim.degradation", "isp_sim.noise", "isp_sim.imageio", "isp_sim.scenes", "isp_sim.cli_support",
                  "calibration", "calibration.labfree", "calibration.emva", "calibration.rawio", "calibration.simulate",
                  "d2hnet.metrics", "d2hnet.ckpt_policy"]
TORCH_MODULES = ["isp_sim.torch", "d2hnet", "d2hnet.models", "d2hnet.infer", "d2hnet.validate", "d2hnet.train",
                 "d2hnet.checkpoint", "d2hnet.data", "d2hnet.config", "d2hnet.val_images"]


def _public_callables(modname):
    import importlib
    import inspect

    mod = importlib.import_module(modname)
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if inspect.isfunction(obj):
            yield f"{modname}.{name}", obj, obj
        elif inspect.isclass(obj) and obj.__module__.split(".")[0] in PACKAGES:
            yield f"{modname}.{name}", obj, None
            for k, v in vars(obj).items():
                if inspect.isfunction(v) and (not k.startswith("_") or k in ("__init__", "forward", "__call__")):
                    yield f"{modname}.{name}.{k}", v, v


def test_public_api_has_type_hints_and_docstrings():
    """Every function and class named in a package's ``__all__`` has a docstring, and every public function and
    method full type hints; none is a bare ``Any``."""
    import inspect

    mods = PUBLIC_MODULES + (TORCH_MODULES if _has_torch() else [])
    bad = []
    for m in mods:
        for label, obj, fn in _public_callables(m):
            if fn is None or fn is obj:
                if not (obj.__doc__ or "").strip() and not (fn is not None and fn.__name__ == "__init__"):
                    bad.append(f"{label}: no docstring")
            if fn is None:
                continue
            sig = inspect.signature(fn)
            for p in sig.parameters.values():
                if p.name in ("self", "cls") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                if p.annotation is inspect.Parameter.empty:
                    bad.append(f"{label}: parameter {p.name} has no type hint")
                elif str(p.annotation) in ("Any", "typing.Any"):
                    bad.append(f"{label}: parameter {p.name} is a bare Any")
            if sig.return_annotation is inspect.Signature.empty and fn.__name__ != "__init__":
                bad.append(f"{label}: no return type")
    assert not bad, "\n".join(bad)


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None
