"""Dropout (§4.2).

"[Dropout] consists of setting to zero the output of each hidden neuron with
probability 0.5. The neurons which are 'dropped out' in this way do not
contribute to the forward pass and do not participate in back-propagation. ...
At test time, we use all the neurons but multiply their outputs by 0.5."

Two equivalent bookkeepings of the same idea, chosen with ``mode``:

* ``"inverted"`` (default, what PyTorch does): in training keep each unit with
  probability 1 - p and divide the kept ones by 1 - p; at test time the layer is
  the identity. The expected training output equals the test output.
* ``"paper"``: in training keep each unit with probability 1 - p unscaled; at
  test time multiply every output by 1 - p (the paper's "multiply by 0.5").

The two networks differ only by a constant factor 1/(1 - p) on the next layer's
weights: a network trained one way computes the same test-time function as the
other. Inverted dropout keeps the test path free of any extra work.

    forward (train): y = x * mask, mask_i = [u_i >= p] * (1 / (1 - p) if inverted else 1)
    backward:        dL/dx = dL/dy * mask     (dropped units get no gradient)

The mask is drawn by ``draw_mask`` from this layer's own ``numpy.random.Generator``
(so a seed fixes it, and a checkpoint can save ``generator.bit_generator.state``), then
moved to the input's device. ``mask_source``, when set, replaces ``draw_mask`` in a
training forward: a function ``(shape, dtype) -> mask`` for code that needs a mask other
than one fresh draw of the input's shape (e.g. some rows of a larger batch's draw).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .backend import get_array_module
from .module import Module

#: What a training forward calls for its mask: ``(input shape, dtype) -> NumPy multiplier``.
MaskSource = Callable[[tuple, np.dtype], np.ndarray]


class Dropout(Module):
    def __init__(self, p: float = 0.5, mode: str = "inverted", rng: np.random.Generator | None = None):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        if mode not in ("inverted", "paper"):
            raise ValueError(f"Dropout: mode must be 'inverted' or 'paper', got {mode!r}")
        self.p, self.mode = p, mode
        self.generator = rng if rng is not None else np.random.default_rng()
        self.mask_source: MaskSource | None = None     # None: draw_mask
        self._mask = None          # the last forward's multiplier: an array in training, a number at test
        self._shape = None

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"

    def draw_mask(self, shape: tuple, dtype=np.float32) -> np.ndarray:
        """A training multiplier for an input of ``shape`` (NumPy): ``[u >= p]`` with u uniform
        from this layer's generator, times 1 / (1 - p) in inverted mode."""
        keep = self.generator.random(tuple(shape), dtype=np.float32) >= self.p
        dtype = np.dtype(dtype)
        scale = 1 / (1 - self.p) if self.mode == "inverted" else 1
        return keep.astype(dtype) * dtype.type(scale)

    def forward(self, x):
        xp = get_array_module(x)
        self._shape = x.shape
        if not self.training:                      # test time: every unit, scaled by 1 - p in paper mode
            self._mask = 1 - self.p if self.mode == "paper" else 1
            return x * x.dtype.type(self._mask) if self.mode == "paper" else x
        draw = self.draw_mask if self.mask_source is None else self.mask_source
        self._mask = xp.asarray(draw(x.shape, x.dtype))
        return x * self._mask

    def backward(self, grad_out):
        mask = self._cached(self._mask)
        self._check_grad(grad_out, self._shape)
        if isinstance(mask, (int, float)):
            return grad_out * grad_out.dtype.type(mask)
        return grad_out * mask
