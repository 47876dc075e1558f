"""nn: AlexNet's layers written by hand, forward and backward, on NumPy or CuPy.

Every layer cites the section of Krizhevsky, Sutskever and Hinton (2012) that it
implements. See docs/ARCHITECTURE.md for how the packages fit together.
"""
import os as _os
import sys as _sys

# OpenBLAS's idle worker threads. After every matrix product OpenBLAS keeps its worker threads
# spinning (about 2^28 cycles, ~0.1 s) waiting for the next one; meanwhile nn's element-wise passes
# (nn.threads) and the data loader's threads want those cores: on a 2-core machine the training
# step of the README's recipe took 1.08-1.10 s instead of 0.93-0.96 s (two runs of
# benchmarks/bench_end_to_end.py, README lever 15).
# OPENBLAS_THREAD_TIMEOUT=4 (2^4 cycles, its minimum) makes them sleep at once and be woken by
# the next product. OpenBLAS reads it once, as NumPy loads it: so when nn is imported before
# NumPy, and the variable is not already set, nn sets it for that moment only (it is removed again,
# so that processes started later are not affected). OPENBLAS_THREAD_TIMEOUT records the value
# OpenBLAS was loaded with as far as nn knows (None: NumPy was loaded first; unknown).
if "numpy" not in _sys.modules and "OPENBLAS_THREAD_TIMEOUT" not in _os.environ:
    _os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    try:
        import numpy as _numpy  # noqa: F401  (loads OpenBLAS, which reads the variable now)
    finally:
        del _os.environ["OPENBLAS_THREAD_TIMEOUT"]
    OPENBLAS_THREAD_TIMEOUT = "4"
else:
    OPENBLAS_THREAD_TIMEOUT = None if "numpy" in _sys.modules else _os.environ["OPENBLAS_THREAD_TIMEOUT"]

from . import init
from .activation import ReLU, Tanh
from .backend import asnumpy, check_device, cupy_available, get_array_module, to_device
from .conv import Conv2d, col2im, im2col
from .dropout import Dropout
from .linear import Flatten, Linear
from .loss import SoftmaxCrossEntropyLoss, softmax
from .module import Module, Parameter, Sequential
from .normalization import LocalResponseNorm
from .optim import SGD
from .pooling import MaxPool2d
from .schedules import ReduceLROnPlateau, StepLR
from .serialization import atomic_write, load_npz, save_npz_atomic

__all__ = [
    "init", "ReLU", "Tanh", "asnumpy", "check_device", "cupy_available", "get_array_module",
    "to_device", "Conv2d", "col2im", "im2col", "Dropout", "Flatten", "Linear",
    "SoftmaxCrossEntropyLoss", "softmax", "Module", "Parameter", "Sequential",
    "LocalResponseNorm", "SGD", "MaxPool2d", "ReduceLROnPlateau", "StepLR",
    "atomic_write", "load_npz", "save_npz_atomic",
]
