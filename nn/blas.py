"""``configure_blas()``: make OpenBLAS's idle worker threads sleep at once. Call it before NumPy loads.

After every matrix product OpenBLAS keeps its worker threads spinning (about 2^28 cycles, ~0.1 s)
waiting for the next one; meanwhile nn's element-wise passes (``nn.threads``) and the data loader's
threads want those cores. OPENBLAS_THREAD_TIMEOUT=4 (2^4 cycles, its minimum) makes the workers
sleep at once and be woken by the next product: on a 2-core machine the training step of the
README's recipe took 0.93-0.96 s instead of 1.08-1.10 s (benchmarks/bench_end_to_end.py).

OpenBLAS reads the variable once, when NumPy loads it, so a program calls this first::

    import nn
    nn.configure_blas()          # before anything imports NumPy
    import numpy as np

``import nn`` itself loads no NumPy and changes nothing (nn/__init__.py loads its modules on first
use), and this module imports only ``os`` and ``sys``. The command-line entry points
(``python -m alexnet``) and the benchmarks call it.
"""

from __future__ import annotations

import os
import sys

# The value OpenBLAS was loaded with, as far as configure_blas knows: its own "4", the user's own
# OPENBLAS_THREAD_TIMEOUT, or None (configure_blas not called, or called after NumPy had loaded).
OPENBLAS_THREAD_TIMEOUT: str | None = None


def configure_blas(thread_timeout: int = 4) -> str | None:
    """Load NumPy with OPENBLAS_THREAD_TIMEOUT=``thread_timeout``; return the value it was loaded with.

    A value the user set in the environment is kept (and returned). The variable is removed again
    once NumPy has loaded, so that processes started later are not affected. When NumPy was
    already loaded it is too late: nothing changes, and the result is what an earlier call
    recorded (None when there was none).
    """
    global OPENBLAS_THREAD_TIMEOUT
    if "numpy" in sys.modules:
        return OPENBLAS_THREAD_TIMEOUT
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        OPENBLAS_THREAD_TIMEOUT = os.environ["OPENBLAS_THREAD_TIMEOUT"]
        import numpy  # noqa: F401  (loads OpenBLAS, which reads the user's value now)

        return OPENBLAS_THREAD_TIMEOUT
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(thread_timeout)
    try:
        import numpy  # noqa: F401  (loads OpenBLAS, which reads the variable now)
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]
    OPENBLAS_THREAD_TIMEOUT = str(thread_timeout)
    return OPENBLAS_THREAD_TIMEOUT
