"""Notebook 11's exercise: the backward pass of a channel shuffle, by gradient check and by value.

Permutations that are not their own inverse (so applying pi instead of pi^-1 shows), 2-D, 3-D and 4-D inputs,
and the gradient's shape and dtype.
"""

import numpy as np

from graders import Mismatch, compare

CASES = [
    ("6 channels, 3-D input", [2, 0, 3, 1, 5, 4], (2, 6, 3)),
    ("a 5-cycle, 4-D input", [1, 2, 3, 4, 0], (3, 5, 2, 2)),
    ("4 channels, 2-D input", [3, 0, 1, 2], (4, 4)),
]


def channel_shuffle(ChannelShuffle):
    """``ChannelShuffle(permutation)``: forward ``x[:, permutation]`` (given), backward written by the learner."""
    from nn.gradcheck import check_module

    errors = {}
    rng = np.random.default_rng(0)
    for name, permutation, shape in CASES:
        x, g = rng.normal(size=shape), rng.normal(size=shape)
        layer = ChannelShuffle(permutation)
        layer.forward(x)
        given = g.copy()
        dx = layer.backward(given)
        if not np.array_equal(given, g):
            raise Mismatch(f"backward, {name}: your backward changed grad_out in place")
        expected = np.empty_like(g)
        expected[:, permutation] = g
        errors[f"backward, {name}"] = compare(f"backward, {name}", dx, expected)
        errors[f"gradient check, {name}"] = check_module(ChannelShuffle(permutation), x).max_error
    return errors
