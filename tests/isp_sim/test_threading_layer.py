"""numba's threading layer under isp_sim: TBB where the ``tbb`` wheel is installed (isp_sim loads its library),
the caller's choice kept, and a process that forks after a degradation can degrade again in the child."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_HAS_TBB_WHEEL = sys.platform.startswith("linux") and os.path.exists(os.path.join(sys.prefix, "lib", "libtbb.so.12"))

_LAYER = """
import numpy as np, numba, isp_sim
isp_sim.degrade(np.zeros((16, 16, 3), np.float32), "mi_note10", iso=1000, seed=0)
print(numba.threading_layer())
"""

# degrade, fork, degrade in the child: GNU OpenMP aborts such a child ("fork() called from a process already using
# GNU OpenMP"); TBB does not
_FORK = """
import os, sys
import numpy as np, isp_sim
img = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
a = isp_sim.degrade(img, "mi_note10", iso=3200, seed=1)
pid = os.fork()
if pid == 0:
    b = isp_sim.degrade(img, "mi_note10", iso=3200, seed=1)
    os._exit(0 if np.array_equal(a.image, b.image) else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=300)


@pytest.mark.skipif(not _HAS_TBB_WHEEL, reason="the tbb wheel is not installed in this environment")
def test_kernels_run_on_tbb_and_a_chosen_layer_is_kept():
    """No choice: TBB. A chosen layer is numba's to honour: the work queue stays the work queue, and asking for TBB
    by name or as the thread- and fork-safe layer finds the wheel's library (numba alone does not find it)."""
    assert _run(_LAYER).stdout.split()[-1] == "tbb"
    assert _run(_LAYER, NUMBA_THREADING_LAYER="workqueue").stdout.split()[-1] == "workqueue"
    for choice in ("tbb", "safe"):
        r = _run(_LAYER, NUMBA_THREADING_LAYER=choice)
        assert r.returncode == 0 and r.stdout.split()[-1] == "tbb", (choice, r.stderr[-500:])


@pytest.mark.skipif(not _HAS_TBB_WHEEL, reason="the tbb wheel is not installed in this environment")
def test_a_forked_child_degrades_with_the_parents_bits():
    r = _run(_FORK, NUMBA_NUM_THREADS="2")
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])


@pytest.mark.skipif(not _HAS_TBB_WHEEL, reason="the tbb wheel is not installed in this environment")
def test_the_fork_check_fails_on_gnu_openmp():
    """The control: the same script on numba's GNU OpenMP layer ends in the child's abort, so the fork test can
    fail (skipped where numba has no OpenMP layer)."""
    r = _run(_FORK, NUMBA_NUM_THREADS="2", NUMBA_THREADING_LAYER="omp")
    if "No threading layer could be loaded" in r.stderr:
        pytest.skip("numba has no OpenMP layer here")
    assert r.returncode != 0 and "fork() called from a process already using GNU OpenMP" in r.stderr
