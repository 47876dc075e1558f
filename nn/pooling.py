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

Both passes loop over the z * z offsets inside a window (9 for AlexNet), each
step working on all images, channels and windows at once.
"""
import numpy as np

from .backend import get_array_module
from .conv import _pair, conv_output_size
from .module import Module, check_input, check_integers


class MaxPool2d(Module):
    """Max-pooling with windows ``kernel_size`` (z) every ``stride`` (s) pixels, no padding (§3.4).

    ValueError (naming the argument) unless kernel size and stride are integers >= 1 (an int or an
    (h, w) pair); in ``forward``, unless the input is at least as large as the window.
    """

    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size = _pair(kernel_size, "MaxPool2d: kernel_size")
        self.stride = _pair(stride, "MaxPool2d: stride")
        check_integers("MaxPool2d", 1, kernel_size=self.kernel_size, stride=self.stride)
        self._argmax = None
        self._input_shape = None

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def output_shape(self, input_shape):
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

    def forward(self, x):
        check_input(self, x, 4)
        xp = get_array_module(x)
        out_shape = self.output_shape(x.shape)
        _, _, out_h, out_w = out_shape
        if out_h < 1 or out_w < 1:
            raise ValueError(f"MaxPool2d: input of spatial size {tuple(x.shape[2:])} is smaller "
                             f"than the window {self.kernel_size}")
        out, argmax = None, xp.zeros(out_shape, dtype=np.int16)
        better = xp.empty(out_shape, dtype=bool)
        for offset, window in self._window_slices(out_h, out_w):
            candidate = x[window]
            if out is None:
                out = candidate.copy()
                continue
            xp.greater(candidate, out, out=better)        # strict: ties keep the first maximum
            xp.copyto(argmax, offset, where=better)
            xp.maximum(out, candidate, out=out)
        self._argmax, self._input_shape = argmax, x.shape
        return out

    def backward(self, grad_out):
        argmax = self._cached(self._argmax)
        self._check_grad(grad_out, argmax.shape)
        xp = get_array_module(grad_out)
        grad_in = xp.zeros(self._input_shape, dtype=grad_out.dtype)
        _, _, out_h, out_w = argmax.shape
        for offset, window in self._window_slices(out_h, out_w):
            grad_in[window] += grad_out * (argmax == offset)
        return grad_in
