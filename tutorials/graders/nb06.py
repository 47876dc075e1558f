"""Notebook 06's checks: average pooling as a Module (forward and backward), and max-pooling's backward pass with
``nn.MaxPool2d``'s tie rule (the first maximum of each window in row-major order wins), against loops and
``nn.MaxPool2d``, and gradient-checked."""

from __future__ import annotations

import numpy as np

import nn
from graders import compare, during
from graders._checks import YourBackward, untouched
from nn.gradcheck import check_module


def _windows(shape, z, s):
    """(Y, X, rows, cols) of every z x z window every s pixels (no padding)."""
    ho, wo = (shape[2] - z) // s + 1, (shape[3] - z) // s + 1
    for Y in range(ho):
        for X in range(wo):
            yield Y, X, slice(Y * s, Y * s + z), slice(X * s, X * s + z)


def _avg_pool(x, z, s):
    ho, wo = (x.shape[2] - z) // s + 1, (x.shape[3] - z) // s + 1
    out = np.zeros(x.shape[:2] + (ho, wo))
    for Y, X, rows, cols in _windows(x.shape, z, s):
        out[:, :, Y, X] = x[:, :, rows, cols].mean(axis=(2, 3))
    return out


def _avg_pool_backward(g, shape, z, s):
    grad = np.zeros(shape)
    for Y, X, rows, cols in _windows(shape, z, s):
        grad[:, :, rows, cols] += g[:, :, Y, X][:, :, None, None] / (z * z)
    return grad


# (z, s, input shape): AlexNet's overlapping 3/2, non-square, tiling 2/2 on odd sizes (the last row and column
# belong to no window), heavy overlap (stride 1) and gaps (stride > z)
AVG_CONFIGS = [
    (3, 2, (2, 3, 7, 7)),
    (3, 2, (1, 2, 9, 8)),
    (2, 2, (2, 2, 7, 9)),
    (3, 1, (1, 2, 5, 6)),
    (2, 3, (1, 1, 8, 7)),
]


def avg_pool(AvgPool2d):
    """Sub-checks per configuration of AVG_CONFIGS: forward and backward against loops, on one layer used twice
    with inputs of different shapes (what forward caches must be the latest input's); the inputs left unchanged;
    a gradient check."""
    errors = {}
    for z, s, shape in AVG_CONFIGS:
        rng = np.random.default_rng(sum(shape) + 10 * z + s)
        tag = f"z={z}, s={s}"
        with during(f"AvgPool2d({z}, {s})"):
            pool = AvgPool2d(z, s)
        for other in (shape, shape[:2] + (shape[2] + 2, shape[3] + 1)):
            what = f"{tag}, x {'x'.join(map(str, other))}"
            x = rng.normal(size=other)
            x0 = x.copy()
            with during(f"forward, {what}"):
                y = pool.forward(x)
            errors[f"forward, {what}"] = compare(f"forward, {what}", y, _avg_pool(x0, z, s))
            g = rng.normal(size=_avg_pool(x0, z, s).shape)
            g0 = g.copy()
            with during(f"backward, {what}"):
                dx = pool.backward(g)
            errors[f"backward, {what}"] = compare(
                f"backward, {what}", dx, _avg_pool_backward(g0, other, z, s)
            )
            errors[f"inputs unchanged, {what}"] = untouched(f"x, {what}", x, x0) + untouched(
                f"grad_out, {what}", g, g0
            )
    with during("gradient check, z=3, s=2"):
        errors["gradient check, z=3, s=2"] = check_module(
            AvgPool2d(3, 2), np.random.default_rng(5).normal(size=(2, 2, 7, 6))
        ).max_error
    return errors


def _distinct(shape, rng):
    """All entries different and at least ~1e-2 apart: no ties, no swaps under a 1e-6 perturbation."""
    values = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    return (values - values.mean()) / values.size * 4 + 1e-3 * rng.random(shape)


def _tie_cases(rng):
    """(name, x, z, s): inputs where the tie rule decides where the gradient goes."""
    # one window, two tied maxima: row-major first is (0, 2); column-major first and row-major last are (1, 0)
    corner = np.array([[0.0, 0.0, 5.0], [5.0, 0.0, 0.0], [0.0, 0.0, 0.0]])[None, None]
    # ties on the shared column of two overlapping windows, and between them
    shared = np.array([[1.0, 2, 7, 3, 7], [7, 0, 7, 1, 2], [4, 7, 0, 7, 1]])[None, None]
    relu = np.maximum(rng.normal(size=(2, 3, 9, 10)) - 0.8, 0)  # after a ReLU: many all-zero windows
    few = rng.integers(0, 3, size=(2, 2, 7, 8)).astype(np.float64)  # three distinct values
    return [
        ("ties in one window", corner, 3, 3),
        ("ties on a shared column", shared, 3, 2),
        ("all-zero windows after a ReLU", relu, 3, 2),
        ("only three distinct values, z=3, s=2", few, 3, 2),
        ("only three distinct values, z=2, s=1", few, 2, 1),
    ]


def maxpool_backward(maxpool_backward):
    """Sub-checks: dL/dx against ``nn.MaxPool2d.backward`` on distinct values (overlapping, non-square, tiling
    windows on odd sizes, stride 1) and on inputs full of ties; the inputs left unchanged; gradient checks on
    inputs without ties."""
    rng = np.random.default_rng(6)
    cases = [
        (f"distinct values, z={z}, s={s}, x {'x'.join(map(str, shape))}", _distinct(shape, rng), z, s)
        for z, s, shape in [
            (3, 2, (2, 3, 9, 8)),
            (2, 2, (1, 2, 7, 9)),
            (3, 1, (1, 2, 6, 7)),
            (2, 3, (2, 1, 8, 7)),
        ]
    ] + _tie_cases(rng)
    errors = {}
    for what, x, z, s in cases:
        pool = nn.MaxPool2d(z, s)
        g = rng.normal(size=pool.output_shape(x.shape))
        pool.forward(x.copy())
        expected = pool.backward(g.copy())
        x0, g0 = x.copy(), g.copy()
        with during(what):
            got = maxpool_backward(x, g, kernel_size=z, stride=s)
        errors[f"dL/dx, {what}"] = compare(f"dL/dx, {what}", got, expected)
        errors[f"inputs unchanged, {what}"] = untouched(f"x, {what}", x, x0) + untouched(
            f"grad_out, {what}", g, g0
        )
    for z, s, shape in [(3, 2, (2, 2, 7, 9)), (2, 2, (1, 2, 6, 6))]:
        what = f"gradient check, z={z}, s={s}"
        module = YourBackward(
            nn.MaxPool2d(z, s), lambda x, g, z=z, s=s: maxpool_backward(x, g, kernel_size=z, stride=s)
        )
        with during(what):
            errors[what] = check_module(module, _distinct(shape, rng)).max_error
    return errors
