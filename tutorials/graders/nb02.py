"""Notebook 02's check: ``MyLinear`` against ``nn.Linear``, two backward passes in a row, and a gradient check."""

from __future__ import annotations

import numpy as np

import nn
from graders import compare, during
from graders._checks import untouched
from nn.gradcheck import check_module

# (batch, in_features, out_features): never square, so that a transposed gradient has the wrong shape; a batch of
# one and a single output, where a sum over the wrong axis or a broadcast goes unnoticed in the shapes
SHAPES = [(3, 5, 4), (1, 7, 2), (6, 3, 1)]


def linear(MyLinear):
    """Sub-checks per shape: forward, dL/dx, weight.grad and bias.grad after one backward, the same after a
    second forward and backward on new data (the gradients add up; dx uses the new input), the inputs left
    unchanged; then a gradient check of the layer."""
    errors = {}
    for n, fin, fout in SHAPES:
        rng = np.random.default_rng(100 * fin + fout)
        tag = f"{n}x{fin} input, {fout} outputs"
        with during(f"{tag}: constructing MyLinear({fin}, {fout})"):
            mine = MyLinear(fin, fout, rng=np.random.default_rng(1))
        ref = nn.Linear(fin, fout, dtype=np.float64)
        weight, bias = rng.normal(size=(fout, fin)), rng.normal(size=fout)
        for layer in (mine, ref):  # the same weights, a non-zero bias, gradients at zero
            layer.weight.data, layer.bias.data = weight.copy(), bias.copy()
            layer.weight.grad, layer.bias.grad = np.zeros_like(weight), np.zeros_like(bias)
        for step in ("", " (second pass)"):
            x, g = rng.normal(size=(n, fin)), rng.normal(size=(n, fout))
            x0, g0 = x.copy(), g.copy()
            with during(f"{tag}: forward{step}"):
                y = mine.forward(x)
            errors[f"{tag}: forward{step}"] = compare(f"{tag}: forward{step}", y, ref.forward(x0))
            with during(f"{tag}: backward{step}"):
                dx = mine.backward(g)
            errors[f"{tag}: dL/dx{step}"] = compare(f"{tag}: backward's dL/dx{step}", dx, ref.backward(g0))
            after = "after a second backward (backward adds into .grad)" if step else "after one backward"
            for name in ("weight", "bias"):
                what = f"{tag}: {name}.grad {after}"
                errors[what] = compare(what, getattr(mine, name).grad, getattr(ref, name).grad)
            errors[f"{tag}: inputs unchanged{step}"] = untouched(f"{tag}: x", x, x0) + untouched(
                f"{tag}: grad_out", g, g0
            )
    with during("gradient check (5x4 layer, batch 3)"):
        result = check_module(
            MyLinear(5, 4, rng=np.random.default_rng(2)), np.random.default_rng(3).normal(size=(3, 5))
        )
    errors["gradient check"] = result.max_error
    return errors
