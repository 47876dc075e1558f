"""nn: AlexNet's layers written by hand, forward and backward, on NumPy or CuPy.

Every layer cites the section of Krizhevsky, Sutskever and Hinton (2012) that it
implements. See docs/ARCHITECTURE.md for how the packages fit together.

``import nn`` loads nothing heavy: each name below is imported from its module on
first use (``nn.Conv2d`` imports nn/conv.py, and NumPy with it; nn/lazy.py). That
leaves a program the moment to call ``nn.configure_blas()`` before NumPy loads
(nn/blas.py).
"""

from __future__ import annotations

from .blas import configure_blas
from .lazy import lazy_getattr

# Where each public name is defined: the package's table of contents.
_MODULE_OF = {
    "init": "init",
    "ReLU": "activation",
    "Tanh": "activation",
    "asnumpy": "backend",
    "check_device": "backend",
    "cupy_available": "backend",
    "get_array_module": "backend",
    "to_device": "backend",
    "Conv2d": "conv",
    "col2im": "unroll",
    "im2col": "unroll",
    "Dropout": "dropout",
    "FlatParameters": "flat",
    "Flatten": "linear",
    "Linear": "linear",
    "SoftmaxCrossEntropyLoss": "loss",
    "softmax": "loss",
    "Module": "module",
    "Parameter": "module",
    "Sequential": "module",
    "LocalResponseNorm": "normalization",
    "SGD": "optim",
    "sgd_step_reference": "optim",
    "MaxPool2d": "pooling",
    "ReduceLROnPlateau": "schedules",
    "StepLR": "schedules",
    "atomic_write": "serialization",
    "load_npz": "serialization",
    "save_npz_atomic": "serialization",
}

__all__ = ["configure_blas", *_MODULE_OF]


__getattr__ = lazy_getattr(__name__, _MODULE_OF)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
