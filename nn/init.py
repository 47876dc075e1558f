"""Weight initializers.

§5: "We initialized the weights in each layer from a zero-mean Gaussian
distribution with standard deviation 0.01. We initialized the neuron biases in
the second, fourth, and fifth convolutional layers, as well as in the
fully-connected hidden layers, with the constant 1 ... [and] with the constant 0
in the remaining layers."

He/Kaiming (He et al., 2015) is the alternative: std = sqrt(2 / fan_in), which
keeps the variance of ReLU activations constant from layer to layer, so deep
stacks start learning at once instead of waiting for tiny signals to grow.

Each initializer fills a Parameter (or array) in place and draws from a
``numpy.random.Generator`` so that a seed fixes the network.
"""

from __future__ import annotations

import numpy as np

from .backend import Array, get_array_module
from .module import Parameter


def _target(param):
    return param.data if hasattr(param, "data") else param


def _fill(param, values):
    target = _target(param)
    xp = get_array_module(target)
    target[...] = xp.asarray(values, dtype=target.dtype)
    return param


def _shape(param):
    return _target(param).shape


def _gaussian(param, std, rng):
    """N(0, std^2) samples drawn directly in the parameter's precision (float32 draws are ~2x faster)."""
    rng = rng if rng is not None else np.random.default_rng()
    dtype = np.float32 if _target(param).dtype == np.float32 else np.float64
    samples = rng.standard_normal(_shape(param), dtype=dtype)
    samples *= dtype(std)
    return _fill(param, samples)


def fan_in(shape: tuple[int, ...]) -> int:
    """Inputs feeding one output unit: in_features, or in_channels_per_group * kh * kw."""
    return int(np.prod(shape[1:]))


def normal_(
    param: Parameter | Array, std: float = 0.01, rng: np.random.Generator | None = None
) -> Parameter | Array:
    """Zero-mean Gaussian with standard deviation ``std`` (the paper's 0.01, §5)."""
    return _gaussian(param, std, rng)


def constant_(param: Parameter | Array, value: float) -> Parameter | Array:
    """Every entry set to ``value`` (the paper's biases: 1 or 0, §5)."""
    return _fill(param, np.full(_shape(param), value))


def kaiming_normal_(param: Parameter | Array, rng: np.random.Generator | None = None) -> Parameter | Array:
    """He initialization for ReLU networks: N(0, 2 / fan_in)."""
    return _gaussian(param, np.sqrt(2.0 / fan_in(_shape(param))), rng)
