"""The kernels' parallel loops are handed out in small chunks (isp_sim._parallel), so that a thread slowed by another
process on its core leaves its share to the others, and the results do not depend on which thread ran what."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import calibration
import isp_sim
from isp_sim import _scratch
from isp_sim.cfa import mosaic
from isp_sim.demosaic import demosaicing_CFA_Bayer_Menon2007, menon2007

from .test_demosaic import TOL, maxdiff, reference, scene


def _modules(pkg):
    yield pkg
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if info.name.endswith((".cli", ".__main__", ".torch")):  # command lines; torch is not ours to load here
            continue
        yield importlib.import_module(info.name)


def test_every_parallel_kernel_runs_chunked():
    """A parallel kernel left without :func:`isp_sim._parallel.chunked` would split its loop statically again."""
    bare, wrapped = [], []
    for pkg in (isp_sim, calibration):
        for mod in _modules(pkg):
            for name, obj in vars(mod).items():
                inner = getattr(obj, "__wrapped__", None)
                if isinstance(obj, CPUDispatcher) and obj.targetoptions.get("parallel"):
                    bare.append(f"{mod.__name__}.{name}")
                elif isinstance(inner, CPUDispatcher) and inner.targetoptions.get("parallel"):
                    wrapped.append(f"{mod.__name__}.{name}")
    assert not bare, f"parallel kernels without chunked: {bare}"
    assert "isp_sim.noise._noise_kernel" in wrapped and "isp_sim.demosaic.menon2007._red_blue" in wrapped


def test_chunk_size_is_set_for_the_call_and_restored():
    """The kernel runs with its chunk size; the caller's own (here 5, set with numba's context manager around the
    call) is back after it, and numba's default (0) after that."""
    seen = []
    probe = isp_sim._parallel.chunked(7)(lambda: seen.append(numba.get_parallel_chunksize()))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        probe()  # one thread: one chunk, the caller's setting untouched
        if numba.config.NUMBA_NUM_THREADS >= 2:
            numba.set_num_threads(2)
            with numba.parallel_chunksize(5):
                probe()
                seen.append(numba.get_parallel_chunksize())
    finally:
        numba.set_num_threads(before)
    assert seen[0] == 0 and seen[1:] in ([], [7, 5])
    assert numba.get_parallel_chunksize() == 0


# Thread 0 does an iteration 30 times faster than the others. numba's own split (chunk size 0) gives each thread
# half of the 64 iterations; chunks of one go to whichever thread is free, so thread 0 does most of them. On a
# loaded machine thread 0 may finish everything before the other thread runs at all (a share of 1.0 without
# chunks): then the run shows nothing and the test is skipped.
_SLOW_THREAD = """
import sys, numpy as np, numba
from numba import njit, prange
import isp_sim
from isp_sim._parallel import chunked

@njit(parallel=True)
def work(ids, n):
    for i in prange(ids.size):
        t = numba.get_thread_id()
        s = 0.0
        for j in range(n if t == 0 else 30 * n):
            s += np.sqrt(j + s)
        ids[i] = t + (0 if s >= 0 else 100)

ids = np.zeros(64, np.int64)
work(ids, 10)
for run in (chunked(1)(work), work):
    shares = []
    for _ in range(3):
        run(ids, 20000)
        shares.append((ids == 0).mean())
    print(sorted(shares)[1], end=" ")
print(numba.threading_layer())
"""


def test_a_slow_threads_share_goes_to_the_other():
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    env.pop("NUMBA_THREADING_LAYER", None)
    r = subprocess.run([sys.executable, "-c", _SLOW_THREAD], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    chunked_share, static_share, layer = r.stdout.split()
    chunked_share, static_share = float(chunked_share), float(static_share)
    if layer != "tbb":
        pytest.skip(f"numba runs on {layer} here (no tbb wheel): it splits the chunks statically")
    if static_share == 1.0:
        pytest.skip("the second thread never ran (a loaded machine): nothing to compare")
    assert chunked_share >= 0.75, (chunked_share, static_share)
    assert static_share <= 0.6, (chunked_share, static_share)  # the control: numba's static split


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_menon_row_blocks_in_any_order_give_the_reference():
    """150 x 2002: Menon's blocks are 20 rows here, 8 of them shared by the threads, each thread reusing its block
    arrays from one block to the next: the same bits on one and two threads, and colour-demosaicing's values."""
    cfa = mosaic(scene(150, 2002, 5), "GRBG")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = demosaicing_CFA_Bayer_Menon2007(cfa, "GRBG")
        numba.set_num_threads(2)
        two = demosaicing_CFA_Bayer_Menon2007(cfa, "GRBG")
    finally:
        numba.set_num_threads(before)
    assert one.tobytes() == two.tobytes()
    # the thread block arrays are reused from call to call: filled with NaN, then the same result as with fresh
    # arrays everywhere (scratch reuse off), so no block reads a value it did not write
    wc = (cfa.shape[1] + 1) // 2
    for a in menon2007._thread_scratch(wc, menon2007._block_rows(wc)):
        a.fill(np.nan)
    poisoned = demosaicing_CFA_Bayer_Menon2007(cfa, "GRBG")
    try:
        _scratch.ENABLED = False
        fresh = demosaicing_CFA_Bayer_Menon2007(cfa, "GRBG")
    finally:
        _scratch.ENABLED = True
    assert poisoned.tobytes() == fresh.tobytes() == two.tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reference("menon2007", cfa, "GRBG")
    assert maxdiff(two, ref) < TOL
