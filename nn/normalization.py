"""Local response normalization (§3.3).

With a^i_{x,y} the ReLU output of kernel i at position (x, y) and N kernels:

    b^i = a^i / ( k + alpha * sum_{j = max(0, i - n/2)}^{min(N - 1, i + n/2)} (a^j)^2 )^beta

with k = 2, n = 5, alpha = 1e-4, beta = 0.75 in the paper ("a form of lateral
inhibition ... creating competition for big activities amongst neuron outputs
computed using different kernels").

alpha convention: here alpha multiplies the plain SUM of squares, exactly as the
paper writes it. Caffe and PyTorch's ``LocalResponseNorm`` divide alpha by n
(they use the mean of the squares), so the paper's alpha = 1e-4 is
``torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)``. Pass
``alpha_over_n=True`` to get their convention.

Window: for odd n it is i - n//2 .. i + n//2, as written. For even n the paper's
"n/2" is ambiguous; this layer uses n//2 channels before i and (n-1)//2 after, as
PyTorch does.

Groups (§3.2 with §3.3). In the paper the network is split over two GPUs and each
GPU normalizes the kernel maps it holds: the window never reaches from one tower's
maps into the other's. ``groups=2`` reproduces that: the N channels are split into
``groups`` contiguous blocks of N / groups and the sum above is clipped at each
block's edges instead of at 0 and N - 1. ``groups=1`` (the default) lets the window
run across all N maps, as Caffe's BVLC AlexNet (and so the ONNX model zoo's
``bvlcalexnet``) does.

Backward. Write s_i = k + alpha * S_i (S_i the windowed sum of squares) and
b_i = a_i s_i^(-beta). Then d b_i / d a_j = [i = j] s_i^(-beta)
- 2 alpha beta a_i a_j s_i^(-beta - 1) [j in window(i)], so

    dL/da_j = g_j s_j^(-beta) - 2 alpha beta a_j * sum_{i : j in window(i)} g_i b_i / s_i

where the last sum is the same windowed sum, taken with the window mirrored.
"""
from __future__ import annotations

import numpy as np

from .backend import Array, get_array_module
from .module import Module, check_input, check_integers
from .threads import over_batch
from .unroll import scratch


def padded_channels(shape: tuple[int, ...], before: int, after: int, dtype, xp) -> tuple[Array, Array]:
    """(padded, inside): a buffer (N, before + C + after, ...) for values of ``shape`` (N, C, ...),
    whose first ``before`` and last ``after`` channels are zero, and the view of the C channels
    between them, where the caller writes the values to be summed. The buffer is scratch (kept
    between calls, one per layout and thread: nn/unroll.py ``scratch``), so its border is zeroed
    once, not on every call; it is overwritten by the next call with the same layout."""
    n, channels, *rest = shape
    layout = (channels, *rest, before, after)
    padded_shape = (n, before + channels + after, *rest)
    size = int(np.prod(padded_shape))
    flat = scratch(f"channel window {layout}", size, dtype, xp, layout)
    padded = flat[:size].reshape(padded_shape)
    return padded, padded[:, before:before + channels]


def sum_windows(padded: Array, before: int, after: int, out: Array | None = None) -> Array:
    """out[:, i] = sum_{d = 0}^{before + after} padded[:, i + d] for the C channels inside the
    zero border of ``padded_channels``: every window sum of the values written there, clipped at
    the edges by the zeros. One reduction over a read-only strided view whose first axis is the
    offset d within the window (view[d, n, i] = padded[n, i + d]; the view is never written)."""
    xp = get_array_module(padded)
    n, padded_channels_count, *rest = padded.shape
    channels = padded_channels_count - before - after
    windows = xp.lib.stride_tricks.as_strided(
        padded, shape=(before + after + 1, n, channels, *rest), strides=(padded.strides[1], *padded.strides))
    return windows.sum(axis=0, out=out)


def window_sum(values: Array, before: int, after: int, out: Array | None = None) -> Array:
    """sum_{j = i - before}^{i + after} values[:, j] over the channel axis, clipped at the edges
    (written into ``out`` when given, an array of values' shape): the values copied inside a zero
    border of channels, then every window summed at once (``sum_windows``)."""
    xp = get_array_module(values)
    padded, inside = padded_channels(values.shape, before, after, values.dtype, xp)
    xp.copyto(inside, values)
    return sum_windows(padded, before, after, out)


class LocalResponseNorm(Module):
    """The paper's LRN (§3.3) over channels; see the module docstring for the formula and groups.

    ValueError (naming the argument) unless size and groups are integers >= 1, k > 0 and
    alpha >= 0 (so that k + alpha * S >= k > 0 and its power is finite); in ``forward``, unless the
    channels split into ``groups`` equal blocks.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0,
                 alpha_over_n: bool = False, groups: int = 1) -> None:
        check_integers("LocalResponseNorm", 1, size=size)
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"LocalResponseNorm: groups must be a positive integer, got {groups!r}")
        if not k > 0:
            raise ValueError(f"LocalResponseNorm: k must be > 0, got {k!r}")
        if not alpha >= 0:
            raise ValueError(f"LocalResponseNorm: alpha must be >= 0, got {alpha!r}")
        self.size, self.beta, self.k, self.groups = size, beta, k, int(groups)
        self.alpha = alpha / size if alpha_over_n else alpha
        self.before, self.after = size // 2, (size - 1) // 2
        self._input = self._scale = self._out = None

    def extra_repr(self) -> str:
        text = f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
        return text + (f", groups={self.groups}" if self.groups != 1 else "")

    def _blocks(self, values):
        """(N, C, H, W) -> (N * groups, C / groups, H, W): one tower's channels per block (§3.2),
        so that the window sums are clipped at each block's edges (a view of a contiguous array,
        as the outputs written through it are)."""
        batch, channels = values.shape[:2]
        return values.reshape(batch * self.groups, channels // self.groups, *values.shape[2:])

    def forward(self, x: Array) -> Array:
        check_input(self, x, 4)
        if x.shape[1] % self.groups:
            raise ValueError(f"LocalResponseNorm: {x.shape[1]} channels do not split into "
                             f"groups={self.groups} equal blocks")
        xp = get_array_module(x)
        scale, out = xp.empty(x.shape, dtype=x.dtype), xp.empty(x.shape, dtype=x.dtype)
        over_batch(self._normalize, x, scale, out)
        # a_i, s_i and b_i are kept: backward needs all three (recomputing s_i instead would save
        # one activation-sized array per layer, for eight more passes over it).
        self._input, self._scale, self._out = x, scale, out
        return out

    def _scale_of(self, x, out):
        """out = s_i = k + alpha * S_i, S_i the windowed sum of squares."""
        xp = get_array_module(x)
        a = self._blocks(x)
        padded, squares = padded_channels(a.shape, self.before, self.after, x.dtype, xp)
        xp.multiply(a, a, out=squares)                                               # a_j^2
        scale = sum_windows(padded, self.before, self.after, out=self._blocks(out))  # S_i
        scale *= self.alpha
        scale += self.k                                                              # s_i = k + alpha S_i
        return out

    def _normalize(self, x, scale, out):
        """scale = s_i, out = b_i = a_i s_i^-beta for a slice of the batch (``nn.threads`` runs
        slices in parallel)."""
        self._scale_of(x, out=scale)
        get_array_module(x).multiply(x, _inverse_power(scale, self.beta), out=out)

    def backward(self, grad_out: Array) -> Array:
        x, scale, out = self._cached(self._input, self._scale, self._out)
        self._check_grad(grad_out, x.shape)
        grad_in = get_array_module(grad_out).empty(x.shape, dtype=grad_out.dtype)
        over_batch(self._backward_slice, x, scale, out, grad_out, grad_in)
        return grad_in

    def _backward_slice(self, x, scale, out, grad_out, grad_in):
        xp = get_array_module(x)
        # j in window(i)  <=>  i in [j - after, j + before]: the mirrored window.
        padded, ratio = padded_channels(self._blocks(x).shape, self.after, self.before, x.dtype, xp)
        xp.multiply(self._blocks(grad_out), self._blocks(out), out=ratio)
        ratio /= self._blocks(scale)                                                 # g_i b_i / s_i
        through_neighbours = sum_windows(padded, self.after, self.before).reshape(x.shape)
        through_neighbours *= x
        through_neighbours *= -2 * self.alpha * self.beta
        xp.multiply(grad_out, _inverse_power(scale, self.beta), out=grad_in)        # g_j s_j^-beta
        grad_in += through_neighbours


def _inverse_power(scale, beta):
    """scale ** -beta; for the paper's beta = 3/4 as 1 / sqrt(s * sqrt(s)), several times faster than pow."""
    xp = get_array_module(scale)
    if beta == 0.75:
        result = xp.sqrt(scale)
        result *= scale
        xp.sqrt(result, out=result)
        return xp.reciprocal(result, out=result)
    return xp.power(scale, -beta, dtype=scale.dtype)
