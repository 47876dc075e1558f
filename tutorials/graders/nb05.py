"""Notebook 05's checks: LRN's forward pass as a loop over channels and its backward pass (§3.3), against
``nn.LocalResponseNorm``, with the two towers (``groups``), even windows and fewer channels than the window."""

from __future__ import annotations

import numpy as np

import nn
from graders import compare, during
from graders._checks import YourBackward, untouched
from nn.gradcheck import check_module

# (n, k, alpha, beta, groups, input shape): the paper's constants with one window and with the two towers, other
# constants (a learner who hard-codes k, alpha or beta, or uses alpha / n), an even window (n // 2 maps before i,
# (n - 1) // 2 after) inside two towers, towers narrower than the window, and fewer channels than the window
FORWARD = [
    (5, 2.0, 1e-4, 0.75, 1, (2, 8, 3, 4)),
    (5, 2.0, 1e-4, 0.75, 2, (2, 8, 3, 4)),
    (3, 1.0, 1e-3, 0.5, 1, (1, 6, 2, 3)),
    (4, 2.0, 1e-4, 0.75, 2, (2, 12, 2, 2)),
    (5, 2.0, 1e-4, 0.75, 4, (1, 12, 2, 3)),
    (7, 1.5, 2e-4, 0.6, 1, (2, 4, 3, 2)),
]
# the backward pass: alpha = 1 makes the coupling term as large as the direct one (with the paper's 1e-4 a
# forgotten coupling is off by only ~1e-4, section 3 of the notebook)
BACKWARD = FORWARD[:2] + [
    (5, 2.0, 1.0, 0.75, 1, (2, 4, 3, 3)),
    (5, 2.0, 1.0, 0.75, 2, (2, 8, 2, 3)),
    (4, 1.0, 1.0, 0.75, 1, (2, 6, 2, 2)),
    (4, 1.0, 0.5, 0.6, 2, (1, 12, 2, 2)),
    (3, 1.0, 1.0, 0.5, 3, (2, 9, 1, 2)),
]


def _describe(n, k, alpha, beta, groups, shape):
    return f"n={n}, k={k}, alpha={alpha}, beta={beta}, groups={groups}, a {'x'.join(map(str, shape))}"


def _layer(n, k, alpha, beta, groups):
    return nn.LocalResponseNorm(n, alpha=alpha, beta=beta, k=k, groups=groups)


def _activities(shape, alpha, seed):
    """ReLU-like activities large enough for the normalization to matter: alpha * sum of squares ~ k."""
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=shape)) * (0.4 / np.sqrt(alpha) if alpha < 0.1 else 1.0)


def lrn_loop(lrn_loop):
    """Sub-checks: the output for each configuration of FORWARD, and the input left unchanged."""
    errors = {}
    for seed, (n, k, alpha, beta, groups, shape) in enumerate(FORWARD):
        a = _activities(shape, alpha, seed)
        a0 = a.copy()
        what = _describe(n, k, alpha, beta, groups, shape)
        with during(what):
            b = lrn_loop(a, n=n, k=k, alpha=alpha, beta=beta, groups=groups)
        errors[f"output, {what}"] = compare(
            f"output, {what}", b, _layer(n, k, alpha, beta, groups).forward(a0)
        )
        errors[f"input unchanged, {what}"] = untouched(f"a, {what}", a, a0)
    return errors


def lrn_backward(lrn_backward):
    """Sub-checks: dL/da for each configuration of BACKWARD against ``nn.LocalResponseNorm.backward``, the
    inputs left unchanged, and gradient checks (``nn``'s forward with your backward)."""
    errors = {}
    for seed, (n, k, alpha, beta, groups, shape) in enumerate(BACKWARD):
        rng = np.random.default_rng(50 + seed)
        a = _activities(shape, alpha, seed) * rng.choice([-1.0, 1.0], size=shape)  # negative inputs too
        g = rng.normal(size=shape)
        a0, g0 = a.copy(), g.copy()
        layer = _layer(n, k, alpha, beta, groups)
        layer.forward(a0)
        expected = layer.backward(g0)
        what = _describe(n, k, alpha, beta, groups, shape)
        with during(what):
            got = lrn_backward(a, g, n=n, k=k, alpha=alpha, beta=beta, groups=groups)
        errors[f"dL/da, {what}"] = compare(f"dL/da, {what}", got, expected)
        errors[f"inputs unchanged, {what}"] = untouched(f"a, {what}", a, a0) + untouched(
            f"grad_out, {what}", g, g0
        )
    for seed, (n, k, alpha, beta, groups, shape) in enumerate([BACKWARD[3], BACKWARD[5]]):
        what = f"gradient check, {_describe(n, k, alpha, beta, groups, shape)}"
        module = YourBackward(
            _layer(n, k, alpha, beta, groups),
            lambda a, g, n=n, k=k, alpha=alpha, beta=beta, groups=groups: lrn_backward(
                a, g, n=n, k=k, alpha=alpha, beta=beta, groups=groups
            ),
        )
        with during(what):
            errors[what] = check_module(module, np.random.default_rng(90 + seed).normal(size=shape)).max_error
    return errors
