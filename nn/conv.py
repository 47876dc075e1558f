"""Convolution by im2col, with the paper's two-group split (§3.2, §3.5).

A convolution with F kernels of size C x kh x kw is one matrix product once the
input is unrolled: every kh x kw window of every input channel becomes a column
("im2col"), so that

    out[f, (n, y, x)] = sum_k  W[f, k] * cols[k, (n, y, x)] + b[f]
    with k = (c, i, j) and cols[(c, i, j), (n, y, x)] = x_pad[n, c, y*s + i, x*s + j].

Groups (§3.2): "the kernels of layer 3 take input from all kernel maps in layer
2. However, kernels in layer 4 take input only from those kernel maps in layer 3
which reside on the same GPU." Splitting the C input channels and the F kernels
into G groups, and letting group g's kernels see only group g's channels, is
exactly that; with G = 2 the two halves are the two GTX 580s. The G products are
done as one batched matrix product.

Backward, with g = dL/d(out) laid out like ``out``:

    dL/dW    = g @ cols^T                 (per group)
    dL/db    = sum of g over (n, y, x)
    dL/dcols = W^T @ g                    (per group)
    dL/dx    = col2im(dL/dcols): every column entry is added back to the pixel
               it was copied from (pixels shared by overlapping windows collect
               several contributions).

Memory: on the CPU the batch is unrolled a chunk of images at a time into
buffers kept between calls, and backward unrolls the chunk again from the saved
input instead of keeping every column matrix (at batch 128, crop 227, those
would take 1.8 GB for the five layers); only in training, and only a matrix of
one chunk below ``Unroller.KEEP_COLUMNS_BYTES``, is kept for backward. All of
that lives in ``nn/unroll.py`` (``Unroller``), beside the plain ``im2col`` and
``col2im`` to read first; ``Conv2d`` below is just the three products, and
``conv2d_reference`` the same products on the plain functions.
"""
from __future__ import annotations

import numpy as np

from . import init
from .backend import Array, get_array_module
from .module import Module, Parameter, check_input, check_integers
from .unroll import Unroller, col2im, conv_output_size, im2col

__all__ = ["Conv2d", "conv2d_reference", "conv2d_reference_backward", "conv_output_size", "im2col", "col2im"]


def _pair(value, name):
    """(h, w) from an int or a pair; the entries are checked by the caller (``check_integers``)."""
    if not isinstance(value, (tuple, list)):
        value = (value, value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) if isinstance(v, np.integer) else v for v in value)


class Conv2d(Module):
    """2-D convolution (cross-correlation, as every framework computes it).

    Weight shape (out_channels, in_channels // groups, kh, kw); bias (out_channels,).
    AlexNet's conv1 is ``Conv2d(3, 96, 11, stride=4)``; conv2 is
    ``Conv2d(96, 256, 5, padding=2, groups=2)`` (§3.5).
    Default initialization is He/Kaiming with zero bias; ``alexnet`` applies
    the paper's N(0, 0.01) scheme (§5) on top.

    ValueError (naming the layer and the argument) unless: channels, groups, kernel size and stride
    are integers >= 1 (an int or an (h, w) pair), padding integers >= 0, both channel counts are
    divisible by groups; in ``forward``, unless the padded input is at least as large as the kernel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, groups: int = 1,
                 bias: bool = True, dtype=np.float32, rng: np.random.Generator | None = None,
                 input_grad: bool = True) -> None:
        check_integers("Conv2d", 1, in_channels=in_channels, out_channels=out_channels, groups=groups,
                       kernel_size=_pair(kernel_size, "Conv2d: kernel_size"),
                       stride=_pair(stride, "Conv2d: stride"))
        check_integers("Conv2d", 0, padding=_pair(padding, "Conv2d: padding"))
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        # The first layer of a network needs no gradient for its input (the image): with
        # input_grad=False, backward skips that product and col2im and returns None.
        self.input_grad = input_grad
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, kh, kw), dtype=dtype))
        init.kaiming_normal_(self.weight, rng)
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None
        self._input = None
        self._out_shape = None
        # im2col and col2im, chunked and in reused buffers (nn/unroll.py); it keeps forward's columns
        # for backward when they are small.
        self.unroller = Unroller(self.kernel_size, self.stride, self.padding, groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, groups={self.groups}")

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        n, _, h, w = input_shape
        return (n, self.out_channels) + self.unroller.output_size(h, w)

    def forward(self, x: Array) -> Array:
        """out = W cols + b, per group, a chunk of images at a time."""
        check_input(self, x, 4, self.in_channels)
        xp = get_array_module(x)
        _, f, ho, wo = out_shape = self.output_shape(x.shape)
        if ho < 1 or wo < 1:
            raise ValueError(
                f"Conv2d: input of spatial size {tuple(x.shape[2:])} is smaller than the kernel "
                f"{self.kernel_size} with padding {self.padding}")
        g = self.groups
        weight = self.weight.data.reshape(g, f // g, -1)                          # (G, F/G, K)
        bias = 0 if self.bias is None else self.bias.data.reshape(1, -1, 1, 1)
        out = xp.empty(out_shape, dtype=x.dtype)
        products = self.unroller.chunk_scratch("products", f, x, x.dtype)
        for part, cols in self.unroller.columns(x, keep=self.training):    # 1. cols = im2col(x_pad)
            m = cols.shape[2]                                                     # (G, K, m), m = n*Ho*Wo
            product = xp.matmul(weight, cols, out=products[:f * m].reshape(g, f // g, m))   # 2. W cols
            product = product.reshape(f, -1, ho, wo).transpose(1, 0, 2, 3)       # (n, F, Ho, Wo)
            xp.add(product, bias, out=out[part])                                  # 3. + b
        self._input, self._out_shape = x, out_shape
        return out

    def backward(self, grad_out: Array) -> Array | None:
        """db = sum of g, dW = g cols^T, dcols = W^T g, dx = col2im(dcols).

        Returns dL/dx, or None when ``input_grad`` is False."""
        x = self._cached(self._input)
        self._check_grad(grad_out, self._out_shape)
        xp = get_array_module(grad_out)
        _, f, ho, wo = self._out_shape
        g = self.groups
        weight = self.weight.data.reshape(g, f // g, -1)                          # (G, F/G, K)
        grad_weight = None                                                        # dW^T, summed over the chunks
        grad_in = xp.empty(x.shape, dtype=grad_out.dtype) if self.input_grad else None
        grads = self.unroller.chunk_scratch("grads", f, x, grad_out.dtype)
        for part, cols in self.unroller.columns_again(x):      # 1. cols: forward's, kept or unrolled again
            m = cols.shape[2]
            grad = grads[:f * m].reshape(f, -1, ho, wo)
            xp.copyto(grad, grad_out[part].transpose(1, 0, 2, 3))
            grad = grad.reshape(g, f // g, m)                                     # g laid out like W cols
            if self.bias is not None:
                self.bias.grad += grad.sum(axis=2).reshape(-1)                    # 3. db = sum of g
            # 2. dW = g cols^T, computed as (cols g^T)^T: OpenBLAS is several times faster when the
            #    long n*Ho*Wo axis is the inner (reduced) axis of the left-hand operand this way.
            product = xp.matmul(cols, grad.transpose(0, 2, 1))                    # (G, K, F/G)
            if grad_weight is None:
                grad_weight = product
            else:
                grad_weight += product
            if self.input_grad:
                grad_cols = xp.matmul(weight.transpose(0, 2, 1), grad,            # 2. dcols = W^T g
                                      out=self.unroller.overwritable(cols))
                self.unroller.fold(grad_cols, out=grad_in[part])                  # 1. dx = col2im(dcols)
        if grad_weight is not None and self.weight.grad.flags.c_contiguous:   # (always, in nn)
            weight_grad = self.weight.grad.reshape(g, f // g, -1)      # a view: dW added in place,
            weight_grad += grad_weight.transpose(0, 2, 1)              # without a reordered copy
        elif grad_weight is not None:
            self.weight.grad += grad_weight.transpose(0, 2, 1).reshape(self.weight.data.shape)
        return grad_in


# -- the reference: the same three products on the plain im2col and col2im ----------------------

def _pad(x: Array, padding: tuple[int, int]) -> Array:
    ph, pw = padding
    return get_array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_reference(x: Array, weight: Array, bias: Array | None, stride: tuple[int, int] = (1, 1),
                     padding: tuple[int, int] = (0, 0), groups: int = 1) -> Array:
    """Conv2d's forward without chunks, buffers or threads: out = W cols + b, per group."""
    n, _, h, w = x.shape
    f, _, kh, kw = weight.shape
    cols = im2col(_pad(x, padding), (kh, kw), stride, groups)                     # 1. (G, K, N*Ho*Wo)
    out = weight.reshape(groups, f // groups, -1) @ cols                          # 2. (G, F/G, N*Ho*Wo)
    ho = conv_output_size(h, kh, stride[0], padding[0])
    wo = conv_output_size(w, kw, stride[1], padding[1])
    out = out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)              # 3.


def conv2d_reference_backward(x: Array, weight: Array, grad_out: Array, stride: tuple[int, int] = (1, 1),
                              padding: tuple[int, int] = (0, 0),
                              groups: int = 1) -> tuple[Array, Array, Array]:
    """(dL/dx, dL/dW, dL/db) of ``conv2d_reference`` for the output gradient ``grad_out``."""
    (ph, pw), (h, w) = padding, x.shape[2:]
    f, _, kh, kw = weight.shape
    x_pad = _pad(x, padding)
    cols = im2col(x_pad, (kh, kw), stride, groups)                                # (G, K, N*Ho*Wo)
    grad = grad_out.transpose(1, 0, 2, 3).reshape(groups, f // groups, -1)        # (G, F/G, N*Ho*Wo)
    grad_bias = grad.sum(axis=2).reshape(-1)                                      # 3. db = sum of g
    grad_weight = (grad @ cols.transpose(0, 2, 1)).reshape(weight.shape)          # 2. dW = g cols^T
    grad_cols = weight.reshape(groups, f // groups, -1).transpose(0, 2, 1) @ grad    # 2. dcols = W^T g
    grad_x = col2im(grad_cols, x_pad.shape, (kh, kw), stride)[:, :, ph:ph + h, pw:pw + w]   # 1.
    return grad_x, grad_weight, grad_bias

