"""Notebook 01's check: a convolution's parameter count, against ``nn.Conv2d``."""

from __future__ import annotations

import numbers

import nn
from graders import Mismatch, during

# (in_channels, out_channels, kernel, groups): AlexNet's five convolutions (§3.5, two towers), the same as one
# tower, and shapes where a count that ignores groups, the kernel's square or the bias cannot come out right
CONVOLUTIONS = [
    (3, 96, 11, 1),
    (96, 256, 5, 2),
    (256, 384, 3, 1),
    (384, 384, 3, 2),
    (384, 256, 3, 2),
    (96, 256, 5, 1),
    (384, 384, 3, 1),
    (384, 256, 3, 1),
    (12, 8, 1, 4),
    (6, 9, 3, 3),
    (4, 6, 7, 2),
]


def _count(what, got):
    if got is None:
        raise Mismatch(f"{what}: your function returned None; is a `return` missing?")
    if isinstance(got, bool) or not isinstance(got, numbers.Integral):
        raise Mismatch(
            f"{what}: got {got!r} ({type(got).__name__}), expected an integer count "
            f"(`//` divides integers and keeps them integers)"
        )
    return int(got)


def conv_parameters(conv_parameters):
    """Sub-checks: one count per convolution of CONVOLUTIONS, exact (tolerance 0.5)."""
    errors = {}
    for in_c, out_c, k, g in CONVOLUTIONS:
        what = f"{in_c} -> {out_c} channels, {k}x{k}, groups={g}"
        expected = nn.Conv2d(in_c, out_c, k, groups=g).num_parameters()
        with during(what):
            got = _count(what, conv_parameters(in_c, out_c, k, g))
        errors[what] = (abs(got - expected), 0.5)
    return errors
