"""Fully connected layers (§3.5: fc6 and fc7 with 4096 neurons, fc8 with 1000).

    forward:  y = x W^T + b            x: (N, in), W: (out, in), y: (N, out)
    backward: dL/dW = g^T x,  dL/db = sum_n g,  dL/dx = g W
"""
from __future__ import annotations

import numpy as np

from . import init
from .backend import Array
from .module import Module, Parameter, check_input, check_integers


class Linear(Module):
    """y = x W^T + b. ValueError unless in_features and out_features are integers >= 1, and in
    ``forward`` unless x is (N, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32,
                 rng: np.random.Generator | None = None) -> None:
        check_integers("Linear", 1, in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.zeros((out_features, in_features), dtype=dtype))
        init.kaiming_normal_(self.weight, rng)
        self.bias = Parameter(np.zeros(out_features, dtype=dtype)) if bias else None
        self._input = None

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}"

    def forward(self, x: Array) -> Array:
        check_input(self, x, 2, self.in_features, what="features")
        self._input = x
        out = x @ self.weight.data.T
        if self.bias is not None:
            out += self.bias.data
        return out

    def backward(self, grad_out: Array) -> Array:
        x = self._cached(self._input)
        self._check_grad(grad_out, (x.shape[0], self.out_features))
        self.weight.grad += grad_out.T @ x
        if self.bias is not None:
            self.bias.grad += grad_out.sum(axis=0)
        return grad_out @ self.weight.data


class Flatten(Module):
    """(N, C, H, W) -> (N, C * H * W), between the last pooling layer and fc6."""

    def __init__(self) -> None:
        self._input_shape = None

    def forward(self, x: Array) -> Array:
        if x.ndim < 2:
            raise ValueError(f"Flatten expects at least a 2-D input (batch first), got shape {tuple(x.shape)}")
        self._input_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: Array) -> Array:
        shape = self._cached(self._input_shape)
        self._check_grad(grad_out, (shape[0], int(np.prod(shape[1:]))))
        return grad_out.reshape(shape)
