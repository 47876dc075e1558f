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

from .backend import Array, get_array_module
from .module import Module, check_input, check_integers
from .threads import over_batch


def window_sum(values: Array, before: int, after: int) -> Array:
    """sum_{j = i - before}^{i + after} values[:, j] over the channel axis, clipped at the edges.

    A loop over the n offsets of the window, each adding a whole shifted slab. (Each slab is named
    before ``+=``: ``total[:, s:] += ...`` would also assign the result back through ``__setitem__``,
    which on CuPy is one more kernel launch.)
    """
    total = values.copy()
    channels = values.shape[1]
    for shift in range(1, before + 1):          # j = i - shift
        if shift < channels:
            slab = total[:, shift:]
            slab += values[:, :channels - shift]
    for shift in range(1, after + 1):           # j = i + shift
        if shift < channels:
            slab = total[:, :channels - shift]
            slab += values[:, shift:]
    return total


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
        self._input = self._out = None

    def extra_repr(self) -> str:
        text = f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
        return text + (f", groups={self.groups}" if self.groups != 1 else "")

    def _window_sum(self, values, before, after):
        """``window_sum`` within each block of channels N / groups (one tower each, §3.2)."""
        if self.groups == 1:
            return window_sum(values, before, after)
        batch, channels = values.shape[:2]
        per_group = values.reshape(batch * self.groups, channels // self.groups, *values.shape[2:])
        return window_sum(per_group, before, after).reshape(values.shape)

    def forward(self, x: Array) -> Array:
        check_input(self, x, 4)
        if x.shape[1] % self.groups:
            raise ValueError(f"LocalResponseNorm: {x.shape[1]} channels do not split into "
                             f"groups={self.groups} equal blocks")
        out = get_array_module(x).empty(x.shape, dtype=x.dtype)
        over_batch(self._normalize, x, out)
        # Only a_i and b_i are kept: backward recomputes s_i from a_i (a few cheap passes), which
        # saves two activation-sized arrays per LRN layer.
        self._input, self._out = x, out
        return out

    def _scale_of(self, x):
        """s_i = k + alpha * S_i, S_i the windowed sum of squares."""
        scale = self._window_sum(x * x, self.before, self.after)                   # S_i
        scale *= self.alpha
        scale += self.k                                                              # s_i = k + alpha S_i
        return scale

    @property
    def _scale(self):
        """s_i of the last forward's input (recomputed on each access; None before any forward)."""
        return None if self._input is None else self._scale_of(self._input)

    def _normalize(self, x, out):
        """out = b_i = a_i s_i^-beta for a slice of the batch (``nn.threads`` runs slices in parallel)."""
        get_array_module(x).multiply(x, _inverse_power(self._scale_of(x), self.beta), out=out)

    def backward(self, grad_out: Array) -> Array:
        x, out = self._cached(self._input, self._out)
        self._check_grad(grad_out, x.shape)
        grad_in = get_array_module(grad_out).empty(x.shape, dtype=grad_out.dtype)
        over_batch(self._backward_slice, x, out, grad_out, grad_in)
        return grad_in

    def _backward_slice(self, x, out, grad_out, grad_in):
        xp = get_array_module(x)
        scale = self._scale_of(x)                                                    # s_i, recomputed
        ratio = grad_out * out
        ratio /= scale                                                               # g_i b_i / s_i
        # j in window(i)  <=>  i in [j - after, j + before]: the mirrored window.
        through_neighbours = self._window_sum(ratio, self.after, self.before)
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
