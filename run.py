#!/usr/bin/env python3
"""One entry point that sets itself up: needs only Python 3.10+.

    python3 run.py demo     # the main job on the bundled defaults (writes out/demo/)
    python3 run.py test     # the test suite (extra arguments go to pytest)
    python3 run.py bench    # the benchmarks behind BENCHMARKS.md
    python3 run.py shell    # print how to activate the environment

The first call creates ./.venv and installs this project into it (editable) with
the extras the command needs; later calls reinstall only when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")

EXTRAS = {"demo": "test", "test": "torch,test,study", "bench": "torch,test,study"}


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"Python 3.10+ is required, this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"[run.py] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    have = set()
    stamp = VENV / ".phonenoise-installed"
    if stamp.exists():
        lines = stamp.read_text().split()
        if lines and lines[0] == digest:
            have = set(lines[1:])
    want = set(filter(None, extras.split(",")))
    if want <= have and have:
        return
    want |= have
    spec = f".[{','.join(sorted(want))}]" if want else "."
    print(f"[run.py] installing {spec} into {VENV} (first run: a few minutes)", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", spec],
                   cwd=ROOT, check=True)
    stamp.write_text(" ".join([digest, *sorted(want)]) + "\n")


def main() -> int:
    args = sys.argv[1:]
    cmd = args[0] if args else "demo"
    rest = args[1:]
    if cmd not in EXTRAS and cmd != "shell":
        print(__doc__)
        return 2
    ensure_env(EXTRAS.get(cmd, "test"))
    env = dict(os.environ)
    if cmd == "demo":
        return subprocess.call([str(PY), "-m", "examples.main_job", *rest], cwd=ROOT, env=env)
    if cmd == "test":
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env)
    if cmd == "bench":
        return subprocess.call([str(PY), "-m", "benchmarks.run_all", *rest], cwd=ROOT, env=env)
    print(f"source {BIN / 'activate'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
