"""Both cores for the passes that are not matrix products.

BLAS runs the convolutions' and fully connected layers' matrix products on every
core it is given, but a NumPy ufunc (``maximum``, ``multiply``, ``+=``) runs on
one. NumPy releases the GIL inside those loops, so a few Python threads, each
working on its own slice of the batch, do run at the same time. This module is
the one place in ``nn`` that does that::

    over_batch(relu_into, x, out)      # relu_into(x[a:b], out[a:b]) on each slice, in parallel

The pool has as many threads as BLAS is allowed to use (threadpoolctl when it is
installed, else OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS, else
the cores this process may run on), so two MPI ranks started with one BLAS
thread each also get one thread here and do not fight over the cores.
``set_num_threads(n)`` overrides it (1 turns the pool off). CuPy arrays are
never split: the GPU already runs the whole batch in parallel.

These threads share the cores with BLAS's own: after a matrix product OpenBLAS's
workers would spin for ~0.1 s waiting for the next one, on the very cores these
passes want; ``nn.configure_blas()`` (nn/blas.py), called before NumPy loads,
asks them to sleep at once instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .backend import Array

# Below this many elements per call the threads' start-up costs more than they save.
MIN_ELEMENTS = 1 << 15
# The batch is cut into slices of about this many bytes (of the first array), at least one per
# thread: a layer's temporaries for one slice then stay in cache, and only a few exist at once.
SLICE_BYTES = 1 << 22

_num_threads = None
_executor = None
_executor_pid = None
_executor_workers = None
_lock = threading.Lock()


def _blas_threads():
    """How many threads BLAS uses in this process."""
    try:
        from threadpoolctl import threadpool_info

        counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
        if counts:
            return max(counts)
    except Exception:  # threadpoolctl missing or unable to inspect the libraries
        pass
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(variable, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """Threads ``over_batch`` uses (the BLAS setting unless ``set_num_threads`` changed it)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = max(1, _blas_threads())
    return _num_threads


def set_num_threads(count: int) -> None:
    """Use ``count`` threads for the element-wise passes (1: run everything in the calling thread)."""
    global _num_threads
    if int(count) != count or count < 1:
        raise ValueError(f"set_num_threads: count must be a positive integer, got {count!r}")
    _num_threads = int(count)


def _pool():
    """The worker threads (made on first use, and again in a forked child, whose threads are gone)."""
    global _executor, _executor_pid, _executor_workers
    workers = get_num_threads()
    with _lock:
        if _executor is None or _executor_pid != os.getpid() or _executor_workers != workers:
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nn-threads")
            _executor_pid, _executor_workers = os.getpid(), workers
        return _executor


def over_batch(function: Callable[..., object], *arrays: Array) -> None:
    """Call ``function(*slices)`` on consecutive slices of the batch (axis 0) of every array.

    The slices (about SLICE_BYTES of the first array each, at least one per thread)
    are shared out between the threads, and ``function`` writes its results into
    the arrays it is given (its return value is ignored). Every array must have
    the same length along axis 0. Runs ``function(*arrays)`` once when there is one
    thread, a small batch, a small array or a CuPy array.
    """
    batch = arrays[0].shape[0] if arrays[0].ndim else 1
    threads = min(get_num_threads(), batch)
    if threads < 2 or not isinstance(arrays[0], np.ndarray) or arrays[0].size < MIN_ELEMENTS:
        function(*arrays)
        return
    count = min(batch, max(threads, -(-arrays[0].nbytes // SLICE_BYTES)))
    bounds = np.linspace(0, batch, count + 1).astype(int)
    futures = [
        _pool().submit(function, *(array[start:stop] for array in arrays))
        for start, stop in zip(bounds[:-1], bounds[1:])
    ]
    for future in futures:
        future.result()
