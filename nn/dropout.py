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

The mask is drawn from this layer's own ``numpy.random.Generator`` (so a seed
fixes it, and a checkpoint can save ``generator.bit_generator.state``), then
moved to the input's device.

Per example, for several processes (data-parallel training): with ``shard = (start, stop,
total)`` the layer draws the mask of the WHOLE batch of ``total`` rows and keeps its rows
``start:stop``. Every process then draws the same numbers (their generators stay in step, so
one checkpointed state serves them all) and each example gets the mask it would get in one
process. ``skip(total)`` advances the generator by one batch for a process whose share of a
batch is empty. ``shard = None`` (the default) is the one-process path.
"""
import numpy as np

from .backend import get_array_module
from .module import Module


class Dropout(Module):
    def __init__(self, p=0.5, mode="inverted", rng=None):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        if mode not in ("inverted", "paper"):
            raise ValueError(f"Dropout: mode must be 'inverted' or 'paper', got {mode!r}")
        self.p, self.mode = p, mode
        self.generator = rng if rng is not None else np.random.default_rng()
        self._mask = None          # the multiplier of the last forward: an array in training, a number at test
        self._shape = None
        self.shard = None          # (start, stop, total): this process's rows of a batch of total rows

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode!r}"

    def forward(self, x):
        xp = get_array_module(x)
        self._shape = x.shape
        if not self.training:                      # test time: every unit, scaled by 1 - p in paper mode
            self._mask = 1 - self.p if self.mode == "paper" else 1
            return x * x.dtype.type(self._mask) if self.mode == "paper" else x
        if self.shard is None:
            keep = self.generator.random(x.shape, dtype=np.float32) >= self.p
        else:                                      # the whole batch's draw, this process's rows
            start, stop, total = self.shard
            if stop - start != x.shape[0]:
                raise ValueError(f"Dropout: shard rows {start}:{stop} do not match a batch of {x.shape[0]}")
            keep = self.generator.random((total,) + x.shape[1:], dtype=np.float32)[start:stop] >= self.p
        scale = 1 / (1 - self.p) if self.mode == "inverted" else 1
        self._mask = xp.asarray(keep.astype(x.dtype) * x.dtype.type(scale))
        return x * self._mask

    def skip(self, total, feature_shape):
        """Advance the generator exactly as a training forward on ``total`` rows of
        ``feature_shape`` would (a process whose share of the batch is empty)."""
        self.generator.random((int(total),) + tuple(feature_shape), dtype=np.float32)

    def backward(self, grad_out):
        mask = self._cached(self._mask)
        self._check_grad(grad_out, self._shape)
        if isinstance(mask, (int, float)):
            return grad_out * grad_out.dtype.type(mask)
        return grad_out * mask
