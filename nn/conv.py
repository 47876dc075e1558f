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
"""
import numpy as np

from . import init
from .backend import get_array_module
from .module import Module, Parameter, check_input, check_integers


def _pair(value, name):
    """(h, w) from an int or a pair; the entries are checked by the caller (``check_integers``)."""
    if not isinstance(value, (tuple, list)):
        value = (value, value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) if isinstance(v, np.integer) else v for v in value)


def conv_output_size(size, kernel, stride, padding):
    """floor((size + 2 * padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x_padded, kernel_size, stride, groups):
    """Unroll windows into columns: (N, C, Hp, Wp) -> (G, C/G * kh * kw, N * Ho * Wo).

    A strided *view* presents every window without copying; the reshape into a
    matrix is the single copy. Rows are ordered (channel, i, j) like a kernel
    W[f, c, i, j]; columns are ordered (n, y, x).
    """
    xp = get_array_module(x_padded)
    kh, kw = kernel_size
    sh, sw = stride
    n, c, hp, wp = x_padded.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cg = c // groups
    s_n, s_c, s_h, s_w = x_padded.strides
    windows = xp.lib.stride_tricks.as_strided(
        x_padded,
        shape=(n, groups, cg, kh, kw, ho, wo),
        strides=(s_n, cg * s_c, s_c, s_h, s_w, s_h * sh, s_w * sw),
    )
    return windows.transpose(1, 2, 3, 4, 0, 5, 6).reshape(groups, cg * kh * kw, n * ho * wo)


def col2im(cols, padded_shape, kernel_size, stride):
    """The adjoint of im2col: add every column entry back where it came from.

    (G, C/G * kh * kw, N * Ho * Wo) -> (N, C, Hp, Wp). The loop runs over the
    kh * kw kernel offsets only; each step adds a whole strided slab (all images,
    channels and output positions at once).
    """
    xp = get_array_module(cols)
    kh, kw = kernel_size
    sh, sw = stride
    n, c, hp, wp = padded_shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    per_offset = cols.reshape(c, kh, kw, n, ho, wo)
    image = xp.zeros((c, n, hp, wp), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            image[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += per_offset[:, i, j]
    return image.transpose(1, 0, 2, 3)


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

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 bias=True, dtype=np.float32, rng=None, input_grad=True):
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
        self._cols = None
        self._padded_shape = None
        self._out_shape = None

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, groups={self.groups}")

    def output_shape(self, input_shape):
        n, _, h, w = input_shape
        ho = conv_output_size(h, self.kernel_size[0], self.stride[0], self.padding[0])
        wo = conv_output_size(w, self.kernel_size[1], self.stride[1], self.padding[1])
        return (n, self.out_channels, ho, wo)

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        xp = get_array_module(x)
        n, _, ho, wo = out_shape = self.output_shape(x.shape)
        if ho < 1 or wo < 1:
            raise ValueError(
                f"Conv2d: input of spatial size {tuple(x.shape[2:])} is smaller than the kernel "
                f"{self.kernel_size} with padding {self.padding}")
        ph, pw = self.padding
        x_padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if (ph or pw) else x
        cols = im2col(x_padded, self.kernel_size, self.stride, self.groups)
        g, f_g = self.groups, self.out_channels // self.groups
        out = xp.matmul(self.weight.data.reshape(g, f_g, -1), cols)          # (G, F/G, N*Ho*Wo)
        if self.bias is not None:
            out += self.bias.data.reshape(g, f_g, 1)
        self._cols, self._padded_shape, self._out_shape = cols, x_padded.shape, out_shape
        return xp.ascontiguousarray(out.reshape(self.out_channels, n, ho, wo).transpose(1, 0, 2, 3))

    def backward(self, grad_out):
        cols, padded_shape = self._cached(self._cols, self._padded_shape)
        self._check_grad(grad_out, self._out_shape)
        xp = get_array_module(grad_out)
        g, f_g = self.groups, self.out_channels // self.groups
        grad = grad_out.transpose(1, 0, 2, 3).reshape(g, f_g, -1)            # (G, F/G, N*Ho*Wo)
        # dW = g cols^T, computed as (cols g^T)^T: OpenBLAS is several times faster when the long
        # N*Ho*Wo axis is the inner (reduced) axis of the left-hand operand in this orientation.
        self.weight.grad += xp.matmul(cols, grad.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(self.weight.data.shape)
        if self.bias is not None:
            self.bias.grad += grad_out.sum(axis=(0, 2, 3))
        if not self.input_grad:
            return None
        weight = self.weight.data.reshape(g, f_g, -1)
        grad_cols = xp.matmul(weight.transpose(0, 2, 1), grad)               # (G, K, N*Ho*Wo)
        grad_padded = col2im(grad_cols, padded_shape, self.kernel_size, self.stride)
        ph, pw = self.padding
        _, _, hp, wp = padded_shape
        return xp.ascontiguousarray(grad_padded[:, :, ph:hp - ph, pw:wp - pw])
