"""Notebook 04's check: the backward passes of ReLU (from its input) and tanh (from its output), against
``nn.ReLU`` and ``nn.Tanh``, and gradient-checked."""

from __future__ import annotations

import numpy as np

import nn
from graders import compare, during
from graders._checks import YourBackward, untouched
from nn.gradcheck import check_module


def _inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    x.flat[::5] = 0.0  # exact zeros: nn.ReLU's gradient there is 0 (x > 0, not x >= 0)
    return x.astype(dtype), rng.normal(size=shape).astype(dtype)


def activation_backward(relu_backward, tanh_backward):
    """Sub-checks: both backward passes on a 2-D and a 4-D float64 input and a float32 one (the gradient keeps
    the dtype), including exact zeros for ReLU; the inputs left unchanged; gradient checks of both."""
    errors = {}
    for shape, dtype, seed in [
        ((4, 7), np.float64, 0),
        ((2, 3, 5, 4), np.float64, 1),
        ((3, 6), np.float32, 2),
    ]:
        tag = f"{'x'.join(map(str, shape))} {np.dtype(dtype).name} input"
        x, g = _inputs(shape, dtype, seed)
        relu, tanh = nn.ReLU(), nn.Tanh()
        relu.forward(x.copy())
        y = tanh.forward(x.copy())
        x0, y0, g0 = x.copy(), y.copy(), g.copy()
        with during(f"relu_backward, {tag}"):
            got = relu_backward(x, g)
        errors[f"relu_backward, {tag}"] = compare(f"relu_backward, {tag}", got, relu.backward(g0.copy()))
        with during(f"tanh_backward, {tag}"):
            got = tanh_backward(y, g)
        errors[f"tanh_backward, {tag}"] = compare(f"tanh_backward, {tag}", got, tanh.backward(g0.copy()))
        errors[f"inputs unchanged, {tag}"] = (
            untouched(f"relu_backward's x, {tag}", x, x0)
            + untouched(f"tanh_backward's y, {tag}", y, y0)
            + untouched(f"grad_out, {tag}", g, g0)
        )
    x = np.random.default_rng(3).normal(size=(2, 3, 4))
    x[np.abs(x) < 1e-3] += 1e-2  # away from ReLU's kink
    for name, layer, backward in [
        ("relu_backward", nn.ReLU(), lambda x, g: relu_backward(x, g)),
        ("tanh_backward", nn.Tanh(), lambda x, g: tanh_backward(np.tanh(x), g)),
    ]:
        with during(f"gradient check of {name}"):
            errors[f"gradient check of {name}"] = check_module(YourBackward(layer, backward), x).max_error
    return errors
