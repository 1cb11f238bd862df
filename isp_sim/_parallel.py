"""Dynamic scheduling of the kernels' parallel loops.

numba cuts a ``prange`` loop into one equal chunk per thread unless a chunk size is set for the call
(``numba.set_parallel_chunksize``): a static split, so a thread whose core is taken for a while (another process on
it, a VM's stolen time) holds up the whole loop while the other thread waits at its end. With chunks of a few
rows, TBB (isp_sim's threading layer) hands them to whichever thread is free; numba's OpenMP and work-queue layers
still split the chunks statically. The kernels' results do not depend on the schedule: each iteration writes only
its own rows (tests compare one and two threads bit for bit).
"""

from __future__ import annotations

import functools

import numba

#: iterations per chunk of a loop over image rows: 64 chunks of a 1024-row image, each tens of microseconds of work
ROWS = 16
#: iterations per chunk of a loop whose iterations are already blocks of rows (the noise kernel's 16-row tasks,
#: Menon's row blocks)
BLOCKS = 1


def chunked(chunk: int):
    """Decorate a compiled parallel kernel, called from Python, so that it runs with numba's chunk size ``chunk``
    (the caller's own chunk size is restored after it; numba keeps one per thread). Compiled code cannot call the
    wrapper: it calls the kernel, ``__wrapped__``, which then runs with the caller's chunk size."""
    def wrap(kernel):
        def call(*args, **kwargs):
            if numba.get_num_threads() == 1:  # one chunk: no per-chunk calls
                return kernel(*args, **kwargs)
            before = numba.set_parallel_chunksize(chunk)
            try:
                return kernel(*args, **kwargs)
            finally:
                numba.set_parallel_chunksize(before)
        return functools.update_wrapper(call, kernel, updated=())
    return wrap
