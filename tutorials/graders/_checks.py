"""Pieces the notebooks' checks share: the input left as it was, a tuple of results, and a module that runs
``nn``'s forward pass with the learner's backward pass, so that ``check_module`` can gradient-check a backward
written as a plain function."""

from __future__ import annotations

import numpy as np

import nn
from graders import Mismatch


def untouched(what: str, array, original) -> float:
    """0.0 when ``array`` still equals ``original``; a Mismatch when the learner's code changed it in place."""
    if not np.array_equal(np.asarray(array), np.asarray(original)):
        raise Mismatch(f"{what}: your code changed its input in place (work on a copy, or build a new array)")
    return 0.0


def results(what: str, got, names: tuple[str, ...]) -> tuple:
    """``got`` as a tuple of ``len(names)`` results, or a Mismatch saying what came back instead."""
    if got is None:
        raise Mismatch(f"{what}: your function returned None; is a `return` missing?")
    if not isinstance(got, (tuple, list)) or len(got) != len(names):
        kind = f"a {type(got).__name__}" + (f" of {len(got)} items" if isinstance(got, (tuple, list)) else "")
        raise Mismatch(f"{what}: got {kind}, expected a tuple of {len(names)}: ({', '.join(names)})")
    return tuple(got)


class YourBackward(nn.Module):
    """``forward`` of an ``nn`` layer, ``backward`` of the learner: ``backward(x, grad_out)`` returns the input's
    gradient, or ``(dx, {parameter name: gradient})`` for a layer with parameters, which are added into the
    parameters' ``.grad`` as the Module contract says."""

    def __init__(self, layer, backward, **parameters):
        self._forward, self._backward = layer.forward, backward
        for name, parameter in parameters.items():
            setattr(self, name, parameter)  # the nn layer's own Parameter objects: one set of weights
        self._input = None

    def forward(self, x):
        self._input = x
        return self._forward(x)

    def backward(self, grad_out):
        got = self._backward(self._input, grad_out)
        if isinstance(got, tuple):
            got, grads = got
            for name, grad in grads.items():
                getattr(self, name).grad += grad
        return got
