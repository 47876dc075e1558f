"""Overlapping max-pooling (§3.4).

"A pooling layer can be thought of as consisting of a grid of pooling units
spaced s pixels apart, each summarizing a neighborhood of size z x z centered at
the location of the pooling unit. ... If we set s < z, we obtain overlapping
pooling. This is what we use throughout our network, with s = 2 and z = 3."

    forward:  y[n, c, Y, X] = max_{0 <= i, j < z} x[n, c, Y*s + i, X*s + j]
              output size floor((H - z) / s) + 1 (no padding)
    backward: each window's gradient goes to ONE input: the position of its
              maximum (the first one in row-major order when several tie).
              Because windows overlap, one input pixel can be the maximum of
              several windows and then collects all their gradients.

Forward keeps only the maximum: a separable max, first along each row (the
maximum of the z entries of every window's row, for every input row), then down
the columns of that (z rows per window), 2 (z - 1) whole-array passes instead of
z^2 - 1. Backward finds each window's winner by comparing the saved input with
the saved output at all z * z offsets at once (no argmax is stored), ranks the
offsets so that the first in row-major order wins, and adds every window's
gradient to its winner's position with one scatter-add (``ufunc.at``): a
handful of array passes (on a GPU, kernel launches) instead of five per offset.
``max_pool_backward_reference`` is the plain version, one offset at a time, that
the tests hold it to bit for bit. Both passes work on all images, channels and
windows at once, split over the batch between threads (``nn.threads``). A window
holding a NaN (no offset equals its maximum) sends its gradient to its first
position; training stops at a non-finite loss before any backward pass.
"""
from __future__ import annotations

import numpy as np

from .backend import Array, get_array_module
from .conv import _pair, conv_output_size
from .module import Module, check_input, check_integers
from .threads import over_batch


class MaxPool2d(Module):
    """Max-pooling with windows ``kernel_size`` (z) every ``stride`` (s) pixels, no padding (§3.4).

    ValueError (naming the argument) unless kernel size and stride are integers >= 1 (an int or an
    (h, w) pair); in ``forward``, unless the input is at least as large as the window.
    """

    def __init__(self, kernel_size: int | tuple[int, int] = 3, stride: int | tuple[int, int] = 2) -> None:
        self.kernel_size = _pair(kernel_size, "MaxPool2d: kernel_size")
        self.stride = _pair(stride, "MaxPool2d: stride")
        check_integers("MaxPool2d", 1, kernel_size=self.kernel_size, stride=self.stride)
        self._input = None
        self._out = None
        self._position_cache = {}       # backward's index arrays, per shape and device (_positions)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        n, c, h, w = input_shape
        return (n, c, conv_output_size(h, self.kernel_size[0], self.stride[0], 0),
                conv_output_size(w, self.kernel_size[1], self.stride[1], 0))

    def _window_slices(self, out_h, out_w):
        """(offset index, slice of the input seen at that offset by every window)."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        for i in range(kh):
            for j in range(kw):
                yield i * kw + j, (slice(None), slice(None),
                                   slice(i, i + sh * (out_h - 1) + 1, sh),
                                   slice(j, j + sw * (out_w - 1) + 1, sw))

    def forward(self, x: Array) -> Array:
        check_input(self, x, 4)
        xp = get_array_module(x)
        out_shape = self.output_shape(x.shape)
        _, _, out_h, out_w = out_shape
        if out_h < 1 or out_w < 1:
            raise ValueError(f"MaxPool2d: input of spatial size {tuple(x.shape[2:])} is smaller "
                             f"than the window {self.kernel_size}")
        out = xp.empty(out_shape, dtype=x.dtype)
        over_batch(self._window_max, x, out)
        self._input, self._out = x, out
        return out

    def _window_max(self, x, out):
        """out = max over each z x z window of x: along the rows first, then down the columns."""
        xp = get_array_module(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        out_h, out_w = out.shape[2:]
        columns = lambda j: slice(j, j + sw * (out_w - 1) + 1, sw)       # noqa: E731
        rows = lambda i: slice(i, i + sh * (out_h - 1) + 1, sh)          # noqa: E731
        if kw == 1:
            row_max = x[:, :, :, columns(0)]                              # (N, C, H, Wo)
        else:
            row_max = xp.maximum(x[:, :, :, columns(0)], x[:, :, :, columns(1)])
            for j in range(2, kw):
                xp.maximum(row_max, x[:, :, :, columns(j)], out=row_max)
        if kh == 1:
            out[...] = row_max[:, :, rows(0)]
        else:
            xp.maximum(row_max[:, :, rows(0)], row_max[:, :, rows(1)], out=out)
            for i in range(2, kh):
                xp.maximum(out, row_max[:, :, rows(i)], out=out)

    def backward(self, grad_out: Array) -> Array:
        x, out = self._cached(self._input, self._out)
        self._check_grad(grad_out, out.shape)
        xp = get_array_module(grad_out)
        grad_in = xp.zeros(x.shape, dtype=grad_out.dtype)
        over_batch(self._route_to_maximum, x, out, grad_out, grad_in)
        return grad_in

    def _route_to_maximum(self, x, out, grad_out, grad_in):
        """grad_in[first position of each window's maximum] += that window's gradient: the winners'
        positions found for all z * z offsets at once, then one scatter-add (a few array passes in
        all, where the reference makes five per offset)."""
        xp = get_array_module(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        n, c, out_h, out_w = out.shape
        height, width = x.shape[2:]
        s_n, s_c, s_h, s_w = x.strides
        windows = xp.lib.stride_tricks.as_strided(     # windows[i, j, n, c, Y, X] = x[n, c, Y s + i, X s + j]
            x, shape=(kh, kw, n, c, out_h, out_w), strides=(s_h, s_w, s_n, s_c, s_h * sh, s_w * sw))
        is_max = xp.empty(windows.shape, dtype=bool)    # C order (windows == out would take the view's)
        xp.equal(windows, out, out=is_max)                                   # every offset holding the max
        # The tie rule: offset k = i z + j ranks z*z - k, so the highest rank present is the first
        # maximum in row-major order (rank 0: no offset equals the max, which only a NaN causes).
        ranks, offset_of_rank, image_start, window_start = self._positions(xp, x.shape, out.shape)
        first = (is_max * ranks).max(axis=(0, 1))                            # z*z - k of the winner
        # where the winner sits in grad_in (flat): image and channel start + window's top-left
        # pixel + i * W + j
        target = xp.take(offset_of_rank, first)
        target += image_start
        target += window_start
        # ufunc.at adds in index order (on NumPy): reversed, each pixel's windows arrive in the
        # order of their offsets, as in the reference's loop, so the sums are the same bit for bit.
        xp.add.at(grad_in.reshape(-1), target.reshape(-1)[::-1], grad_out.reshape(-1)[::-1])

    def _positions(self, xp, in_shape, out_shape):
        """The small index arrays backward adds up, made once per shape and device and kept:
        ``ranks`` (z, z, 1, 1, 1, 1) = z*z - k; ``offset_of_rank[z*z - k]`` = i * W + j (rank 0: 0);
        ``image_start`` (n, c, 1, 1) = (n C + c) H W; ``window_start`` (Ho, Wo) = Y s H + X s."""
        key = (xp.__name__, tuple(in_shape), tuple(out_shape))
        found = self._position_cache.get(key)
        if found is None:
            (kh, kw), (sh, sw) = self.kernel_size, self.stride
            n, c, height, width = in_shape
            out_h, out_w = out_shape[2:]
            offsets = [i * width + j for i in range(kh) for j in range(kw)]
            found = (
                np.arange(kh * kw, 0, -1, dtype=np.uint8).reshape(kh, kw, 1, 1, 1, 1),
                np.array([0] + offsets[::-1], dtype=np.intp),
                np.arange(0, n * c * height * width, height * width, dtype=np.intp).reshape(n, c, 1, 1),
                (np.arange(out_h, dtype=np.intp).reshape(-1, 1) * (sh * width)
                 + np.arange(out_w, dtype=np.intp) * sw),
            )
            found = tuple(xp.asarray(array) for array in found)
            if len(self._position_cache) >= 8:   # a few batch sizes (and threads' slices) at most
                self._position_cache.clear()
            self._position_cache[key] = found
        return found

    @property
    def _argmax(self):
        """The offset i * z + j of each window's (first) maximum; not used by backward, for inspection."""
        x, out = self._cached(self._input, self._out)
        xp = get_array_module(x)
        argmax = xp.full(out.shape, -1, dtype=np.int16)
        for offset, window in reversed(list(self._window_slices(*out.shape[2:]))):
            xp.copyto(argmax, offset, where=x[window] == out)
        return argmax


def max_pool_backward_reference(x: Array, out: Array, grad_out: Array, kernel_size: tuple[int, int],
                                stride: tuple[int, int]) -> Array:
    """dL/dx of max-pooling, plainly: for each offset (i, j) of the window in row-major order, the
    windows whose maximum sits there (and at no earlier offset) add their gradient to that input.
    What ``MaxPool2d.backward`` computes (the tests hold it to this bit for bit, ties included)."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw) = kernel_size, stride
    out_h, out_w = out.shape[2:]
    grad_in = xp.zeros(x.shape, dtype=grad_out.dtype)
    unrouted = xp.ones(out.shape, dtype=bool)          # windows whose maximum is not found yet
    for i in range(kh):
        for j in range(kw):
            window = (slice(None), slice(None), slice(i, i + sh * (out_h - 1) + 1, sh),
                      slice(j, j + sw * (out_w - 1) + 1, sw))
            is_max = (x[window] == out) & unrouted     # ties: only the first maximum, row-major
            unrouted &= ~is_max
            grad_in[window] += grad_out * is_max
    return grad_in
