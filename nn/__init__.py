"""nn: AlexNet's layers written by hand, forward and backward, on NumPy or CuPy.

Every layer cites the section of Krizhevsky, Sutskever and Hinton (2012) that it
implements. See docs/ARCHITECTURE.md for how the packages fit together.
"""
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
from .serialization import load_npz, save_npz_atomic

__all__ = [
    "init", "ReLU", "Tanh", "asnumpy", "check_device", "cupy_available", "get_array_module",
    "to_device", "Conv2d", "col2im", "im2col", "Dropout", "Flatten", "Linear",
    "SoftmaxCrossEntropyLoss", "softmax", "Module", "Parameter", "Sequential",
    "LocalResponseNorm", "SGD", "MaxPool2d", "ReduceLROnPlateau", "StepLR",
    "load_npz", "save_npz_atomic",
]
