"""Notebook 03's checks: a convolution's forward pass by im2col, and its backward pass by col2im, against
``nn.Conv2d`` on non-square inputs with stride and padding together, and gradient-checked."""

from __future__ import annotations

import numpy as np

import nn
from graders import compare, during
from graders._checks import YourBackward, results, untouched
from nn.gradcheck import check_module

# (batch, channels, height, width, kernels, kernel size, stride, padding): conv2's geometry (5x5, padding 2),
# conv1's (11x11, stride 4) on a non-square image, stride and padding together with height != width, a stride
# that leaves the last row unseen, and more images than kernels (so that forgetting to put the batch axis first
# changes the shape)
CONFIGS = [
    (2, 6, 9, 9, 4, 5, 1, 2),
    (2, 3, 31, 23, 5, 11, 4, 0),
    (3, 3, 7, 10, 2, 3, 2, 1),
    (2, 2, 10, 8, 3, 3, 3, 0),
    (4, 3, 6, 5, 2, 3, 2, 2),
]


def _describe(n, c, h, w, f, k, s, p):
    return f"x {n}x{c}x{h}x{w}, {f} kernels {k}x{k}, stride {s}, padding {p}"


def _layer(c, f, k, s, p, rng):
    layer = nn.Conv2d(c, f, k, stride=s, padding=p, dtype=np.float64, rng=rng)
    layer.bias.data[...] = rng.normal(size=f)  # a zero bias would hide a missing or misplaced one
    return layer


def conv_im2col(conv2d_im2col):
    """Sub-checks: the output for each configuration of CONFIGS, and the inputs left unchanged."""
    errors = {}
    for n, c, h, w, f, k, s, p in CONFIGS:
        rng = np.random.default_rng(h * w + k)
        layer = _layer(c, f, k, s, p, rng)
        x = rng.normal(size=(n, c, h, w))
        x0, weight, bias = x.copy(), layer.weight.data.copy(), layer.bias.data.copy()
        what = _describe(n, c, h, w, f, k, s, p)
        with during(what):
            out = conv2d_im2col(x, weight, bias, s, p)
        errors[f"output, {what}"] = compare(f"output, {what}", out, layer.forward(x0))
        errors[f"inputs unchanged, {what}"] = (
            untouched(f"x, {what}", x, x0)
            + untouched(f"weight, {what}", weight, layer.weight.data)
            + untouched(f"bias, {what}", bias, layer.bias.data)
        )
    return errors


def conv_backward(conv2d_im2col_backward):
    """Sub-checks: dx, dW and db for each configuration of CONFIGS against ``nn.Conv2d.backward``, the
    inputs left unchanged, and a gradient check (``nn``'s forward with your backward) with stride and padding."""
    errors = {}
    for n, c, h, w, f, k, s, p in CONFIGS:
        rng = np.random.default_rng(h * w + k + 1)
        layer = _layer(c, f, k, s, p, rng)
        x = rng.normal(size=(n, c, h, w))
        g = rng.normal(size=layer.output_shape(x.shape))
        x0, g0, weight = x.copy(), g.copy(), layer.weight.data.copy()
        layer.forward(x0)
        layer.zero_grad()
        dx_ref = layer.backward(g0)
        what = _describe(n, c, h, w, f, k, s, p)
        with during(what):
            got = conv2d_im2col_backward(x, weight, s, p, g)
        dx, dw, db = results(what, got, ("dx", "dW", "db"))
        errors[f"dx, {what}"] = compare(f"dx, {what}", dx, dx_ref)
        errors[f"dW, {what}"] = compare(f"dW, {what}", dw, layer.weight.grad)
        errors[f"db, {what}"] = compare(
            f"db (summed over the batch and the positions), {what}", db, layer.bias.grad
        )
        errors[f"inputs unchanged, {what}"] = (
            untouched(f"x, {what}", x, x0)
            + untouched(f"grad_out, {what}", g, g0)
            + untouched(f"weight, {what}", weight, layer.weight.data)
        )
    for n, c, h, w, f, k, s, p in [(2, 3, 7, 8, 4, 3, 2, 1), (1, 2, 6, 5, 3, 3, 3, 2)]:
        rng = np.random.default_rng(7 * h + w)
        layer = _layer(c, f, k, s, p, rng)

        def backward(x, grad_out, layer=layer, s=s, p=p):
            dx, dw, db = results(
                "gradient check",
                conv2d_im2col_backward(x, layer.weight.data, s, p, grad_out),
                ("dx", "dW", "db"),
            )
            return dx, {"weight": dw, "bias": db}

        what = f"gradient check, {_describe(n, c, h, w, f, k, s, p)}"
        module = YourBackward(layer, backward, weight=layer.weight, bias=layer.bias)
        with during(what):
            errors[what] = check_module(module, rng.normal(size=(n, c, h, w))).max_error
    return errors
