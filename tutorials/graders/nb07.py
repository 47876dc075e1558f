"""Notebook 07's exercise: inverted dropout (§4.2), checked at several rates, per example, in both modes.

A mask that only looks right at p = 0.5 (p read as the keep probability, or keeping with probability p while
scaling by 1/(1-p)) or one shared by the whole batch passes a single p = 0.5 check; these checks use rates
from 0 to 0.9, count what every example keeps, and compare the backward pass with the forward's own mask.
"""

import numpy as np

from graders import Mismatch, compare

RATES = (0.0, 0.2, 0.5, 0.9)


def _input(seed, shape=(100, 400)):
    """Positive, never zero: a kept unit is nonzero, so ``y != 0`` is the mask."""
    return np.random.default_rng(seed).uniform(1.0, 3.0, size=shape)


def dropout(MyDropout):
    """``MyDropout(p, rng)``: training multiplies by ``[u >= p] / (1 - p)``, a fresh mask for every unit of
    every example at every forward; test time is the identity; backward multiplies by the same mask."""
    errors = {}
    for p in RATES:
        x = _input(1)
        x_before = x.copy()
        layer = MyDropout(p, rng=np.random.default_rng(3))
        layer.train()
        y = layer.forward(x)
        compare(f"training output, p={p}", y, x)  # None, shape, dtype, NaN: before any value
        if not np.array_equal(x, x_before):
            raise Mismatch(f"training forward, p={p}: your forward changed its input x in place")
        kept = y != 0
        if 0 < p:
            same = float((kept[1:] == kept[0]).all(axis=1).mean())
            errors[f"each example has its own mask (not one for the batch), p={p}"] = (same, 0.01)
        # 40,000 units: the dropped fraction is p within 0.01 (4 standard deviations at p = 0.5)
        errors[f"fraction dropped, p={p} (expected {p})"] = (abs(float(1 - kept.mean()) - p), 0.01)
        if kept.any():
            errors[f"kept units are x / (1 - p), p={p}"] = compare(
                f"kept units, p={p}", y[kept], x[kept] / (1 - p)
            )
        # 400 units per example: every row keeps 1 - p of its units within 0.15 (6 standard deviations;
        # a mask per unit, not one number per example)
        worst_row = float(np.abs(kept.mean(axis=1) - (1 - p)).max())
        errors[f"every example keeps about 1 - p of its units, p={p}"] = (worst_row, 0.15)
        if 0 < p:
            y2 = layer.forward(x)
            errors[f"a fresh mask at every forward pass, p={p}"] = (float(np.array_equal(y2 != 0, kept)), 0.5)
            g = np.random.default_rng(4).normal(size=x.shape)
            dx = layer.backward(g)
            errors[f"backward uses the last forward's mask and factor, p={p}"] = compare(
                f"backward, p={p}", dx, g * y2 / x
            )
        # test time
        layer.eval()
        y_test = layer.forward(x)
        errors[f"test-time output is x, p={p}"] = compare(f"test-time output, p={p}", y_test, x)
        g = np.random.default_rng(5).normal(size=x.shape)
        errors[f"test-time backward is the identity, p={p}"] = compare(
            f"test-time backward, p={p}", layer.backward(g), g
        )
        # back to training: masks again
        layer.train()
        again = layer.forward(x)
        if p > 0:
            errors[f"after .train() again it drops units, p={p}"] = (
                abs(float((again == 0).mean()) - p),
                0.01,
            )
    # a gradient check on a small input (it replays the layer's generator, so every forward sees one mask)
    from nn.gradcheck import check_module

    for p in (0.3, 0.7):
        x = np.random.default_rng(6).normal(size=(3, 7))
        result = check_module(MyDropout(p, rng=np.random.default_rng(7)), x)
        errors[f"gradient check, p={p}"] = result.max_error
    return errors
