"""nn: AlexNet's layers written by hand, forward and backward, on NumPy or CuPy.

Every layer cites the section of Krizhevsky, Sutskever and Hinton (2012) that it
implements. See docs/ARCHITECTURE.md for how the packages fit together.

``import nn`` loads nothing heavy: each name below is imported from its module on
first use (``nn.Conv2d`` imports nn/conv.py, and NumPy with it). That leaves a
program the moment to call ``nn.configure_blas()`` before NumPy loads (nn/blas.py).
"""
from __future__ import annotations

import importlib

from .blas import configure_blas

# Where each public name is defined: the package's table of contents.
_MODULE_OF = {
    "init": "init",
    "ReLU": "activation", "Tanh": "activation",
    "asnumpy": "backend", "check_device": "backend", "cupy_available": "backend",
    "get_array_module": "backend", "to_device": "backend",
    "Conv2d": "conv", "col2im": "unroll", "im2col": "unroll",
    "Dropout": "dropout",
    "Flatten": "linear", "Linear": "linear",
    "SoftmaxCrossEntropyLoss": "loss", "softmax": "loss",
    "Module": "module", "Parameter": "module", "Sequential": "module",
    "LocalResponseNorm": "normalization",
    "SGD": "optim",
    "MaxPool2d": "pooling",
    "ReduceLROnPlateau": "schedules", "StepLR": "schedules",
    "atomic_write": "serialization", "load_npz": "serialization", "save_npz_atomic": "serialization",
}

__all__ = ["configure_blas", *_MODULE_OF]


def __getattr__(name: str):
    """``nn.<name>``: a public name, or a submodule (``nn.threads``), imported on first use."""
    module_name = _MODULE_OF.get(name, name)
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{module_name}":
            raise                                   # a module of nn that failed to import something
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = module if module_name == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
