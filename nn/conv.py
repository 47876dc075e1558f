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
buffers the layer keeps between calls, and backward unrolls the chunk again
from the saved input instead of keeping every column matrix (at batch 128,
crop 227, those would take 1.8 GB for the five layers); only in training, and
only a matrix of one chunk below ``Conv2d.KEEP_COLUMNS_BYTES``, is kept for
backward.
"""
import threading

import numpy as np

from . import init
from .backend import get_array_module
from .module import Module, Parameter, check_input, check_integers
from .threads import over_batch


# Scratch buffers of Conv2d._buffer, one set per thread (two models may run side by side in two
# threads, e.g. the two towers of §3.2 as in-process ranks): (role, dtype, array module) -> (flat array, layout).
_SCRATCH = threading.local()


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


def im2col(x_padded, kernel_size, stride, groups, out=None):
    """Unroll windows into columns: (N, C, Hp, Wp) -> (G, C/G * kh * kw, N * Ho * Wo).

    A strided *view* presents every window without copying; copying it into a
    matrix is the single copy (into ``out``, a flat buffer of at least that many
    entries, when given). Rows are ordered (channel, i, j) like a kernel
    W[f, c, i, j]; columns are ordered (n, y, x). The copy is split over the
    channels between threads (``nn.threads``).
    """
    xp = get_array_module(x_padded)
    kh, kw = kernel_size
    sh, sw = stride
    n, c, hp, wp = x_padded.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    s_n, s_c, s_h, s_w = x_padded.strides
    windows = xp.lib.stride_tricks.as_strided(               # windows[c, i, j, n, y, x]
        x_padded, shape=(c, kh, kw, n, ho, wo),
        strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw))
    size = c * kh * kw * n * ho * wo
    cols = (xp.empty(size, dtype=x_padded.dtype) if out is None else out[:size]).reshape(windows.shape)
    over_batch(xp.copyto, cols, windows)
    return cols.reshape(groups, c // groups * kh * kw, n * ho * wo)


def col2im(cols, padded_shape, kernel_size, stride, out=None):
    """The adjoint of im2col: add every column entry back where it came from.

    (G, C/G * kh * kw, N * Ho * Wo) -> (N, C, Hp, Wp), in two passes over the kernel offsets:

    1. the kh kernel rows: ``row_sums[c, j, n, y * s + i, x] += cols[(c, i, j), (n, y, x)]``, an
       image Wo wide per kernel column j. At stride 1 each step adds whole contiguous
       (Ho, Wo) blocks, so NumPy runs long inner loops instead of one per output row;
    2. the kw kernel columns: ``image[c, n, :, x * s + j] += row_sums[c, j, n, :, x]``.

    Each pass adds whole slabs (all images, channels and output positions at once), split over the
    channels between threads; ``row_sums`` is made per slice of channels (a few MB, in cache).
    ``out``: a flat buffer of at least N * C * Hp * Wp entries to use.
    """
    xp = get_array_module(cols)
    kh, kw = kernel_size
    sh, sw = stride
    n, c, hp, wp = padded_shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    per_offset = cols.reshape(c, kh, kw, n, ho, wo)
    size = c * n * hp * wp
    image = (xp.empty(size, dtype=cols.dtype) if out is None else out[:size]).reshape(c, n, hp, wp)

    def add_back(per_offset, image):
        row_sums = xp.zeros((per_offset.shape[0], kw, n, hp, wo), dtype=per_offset.dtype)
        for i in range(kh):
            row_sums[:, :, :, i:i + sh * (ho - 1) + 1:sh] += per_offset[:, i]
        image[...] = 0
        for j in range(kw):
            image[:, :, :, j:j + sw * (wo - 1) + 1:sw] += row_sums[:, j]

    over_batch(add_back, per_offset, image)
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
        self._input = None
        self._out_shape = None
        self._kept_columns = None     # forward's column matrix, when kept for backward
        self._columns_store = None    # the array it lives in, reused by the next forward

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, groups={self.groups}")

    def output_shape(self, input_shape):
        n, _, h, w = input_shape
        ho = conv_output_size(h, self.kernel_size[0], self.stride[0], self.padding[0])
        wo = conv_output_size(w, self.kernel_size[1], self.stride[1], self.padding[1])
        return (n, self.out_channels, ho, wo)

    # On the CPU the batch is unrolled a few images at a time, so that the column matrix of one
    # chunk is at most about this many bytes (AlexNet's conv2 at batch 128, crop 227 would need 0.9 GB at
    # once); the chunk's buffers are kept and reused by the next call. On the GPU: one chunk.
    CHUNK_BYTES = 1 << 28

    # In training, a layer whose whole batch is unrolled as one chunk of at most this many bytes keeps
    # its column matrix, in an array of its own reused from step to step, for backward instead of
    # unrolling the input again. At the recipe's batch 128, crop 112 that is every layer (400 MiB in
    # all, conv2's 169 MiB the largest); at batch 128, crop 227 none (conv3's would be 190 MiB, the
    # others take several chunks), so the peak memory there does not grow.
    KEEP_COLUMNS_BYTES = 180 << 20

    def _chunks(self, x):
        """Slices of the batch, each unrolled and multiplied on its own."""
        xp = get_array_module(x)
        n, c, h, w = x.shape
        _, _, ho, wo = self.output_shape(x.shape)
        per_image = c * self.kernel_size[0] * self.kernel_size[1] * ho * wo * x.itemsize
        step = n if xp is not np else max(1, min(n, self.CHUNK_BYTES // per_image))
        return [slice(start, min(start + step, n)) for start in range(0, n, step)], step

    def _buffer(self, name, size, dtype, xp, layout=None):
        """A flat scratch array of at least ``size`` entries, kept between calls.

        Layers run one after another, so one buffer per role serves every Conv2d of a thread
        (another thread gets its own: a model in each of two threads must not share them). It is
        zeroed when it is made, and again when ``layout`` (the shape whose zero
        border a caller relies on) differs from the last call's.
        """
        key = (name, np.dtype(dtype).str, xp.__name__)
        buffers = _SCRATCH.__dict__.setdefault("buffers", {})
        held, held_layout = buffers.get(key, (None, None))
        if held is None or held.size < size:
            held = xp.zeros(size, dtype=dtype)
        elif layout != held_layout:
            held[...] = 0
        buffers[key] = (held, layout)
        return held

    def _columns(self, images, step, keep=False):
        """im2col of a chunk of images, padded on the way; both in reused buffers (the columns in
        this layer's own array when ``keep``: they must outlive the other layers' passes)."""
        xp = get_array_module(images)
        ph, pw = self.padding
        if ph or pw:
            n, c, h, w = images.shape
            shape = (n, c, h + 2 * ph, w + 2 * pw)
            padded = self._buffer("padded", step * c * shape[2] * shape[3], images.dtype, xp,
                                  (shape[1:], self.padding))
            padded = padded[:n * c * shape[2] * shape[3]].reshape(shape)   # border stays zero
            padded[:, :, ph:ph + h, pw:pw + w] = images
            images = padded
        _, _, ho, wo = self.output_shape(images.shape[:2] + tuple(
            d - 2 * p for d, p in zip(images.shape[2:], self.padding)))
        size = step * images.shape[1] * self.kernel_size[0] * self.kernel_size[1] * ho * wo
        if not keep:
            return im2col(images, self.kernel_size, self.stride, self.groups,
                          out=self._buffer("cols", size, images.dtype, xp))
        store = self._columns_store
        if store is None or store.size < size or store.dtype != images.dtype or get_array_module(store) is not xp:
            store = self._columns_store = xp.empty(size, dtype=images.dtype)
        return im2col(images, self.kernel_size, self.stride, self.groups, out=store)

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        xp = get_array_module(x)
        n, _, ho, wo = out_shape = self.output_shape(x.shape)
        if ho < 1 or wo < 1:
            raise ValueError(
                f"Conv2d: input of spatial size {tuple(x.shape[2:])} is smaller than the kernel "
                f"{self.kernel_size} with padding {self.padding}")
        g, f_g = self.groups, self.out_channels // self.groups
        weight = self.weight.data.reshape(g, f_g, -1)
        bias = 0 if self.bias is None else self.bias.data.reshape(1, -1, 1, 1)
        out = xp.empty(out_shape, dtype=x.dtype)
        chunks, step = self._chunks(x)
        column_bytes = n * self.in_channels * self.kernel_size[0] * self.kernel_size[1] * ho * wo * x.itemsize
        keep = self.training and len(chunks) == 1 and column_bytes <= self.KEEP_COLUMNS_BYTES
        self._kept_columns = None
        products = self._buffer("products", step * self.out_channels * ho * wo, x.dtype, xp)
        for part in chunks:
            cols = self._columns(x[part], step, keep)                           # (G, K, n*Ho*Wo)
            if keep:
                self._kept_columns = cols
            m = cols.shape[2]
            product = xp.matmul(weight, cols, out=products[:g * f_g * m].reshape(g, f_g, m))
            product = product.reshape(self.out_channels, -1, ho, wo).transpose(1, 0, 2, 3)
            xp.add(product, bias, out=out[part])                                # (n, F, Ho, Wo)
        self._input, self._out_shape = x, out_shape
        return out

    def backward(self, grad_out):
        x = self._cached(self._input)
        self._check_grad(grad_out, self._out_shape)
        xp = get_array_module(grad_out)
        g, f_g = self.groups, self.out_channels // self.groups
        _, _, ho, wo = self._out_shape
        weight = self.weight.data.reshape(g, f_g, -1)
        k = weight.shape[2]
        grad_weight = xp.zeros((g, k, f_g), dtype=self.weight.grad.dtype)
        grad_in = xp.empty(x.shape, dtype=grad_out.dtype) if self.input_grad else None
        chunks, step = self._chunks(x)
        grads = self._buffer("grads", step * self.out_channels * ho * wo, grad_out.dtype, xp)
        ph, pw = self.padding
        kept = self._kept_columns
        for part in chunks:
            cols = kept if kept is not None else self._columns(x[part], step)   # kept, or unrolled again
            m = cols.shape[2]
            grad = grads[:self.out_channels * m].reshape(self.out_channels, -1, ho, wo)
            xp.copyto(grad, grad_out[part].transpose(1, 0, 2, 3))
            grad = grad.reshape(g, f_g, m)                                      # (G, F/G, n*Ho*Wo)
            # dW = g cols^T, computed as (cols g^T)^T: OpenBLAS is several times faster when the
            # long n*Ho*Wo axis is the inner (reduced) axis of the left-hand operand this way.
            grad_weight += xp.matmul(cols, grad.transpose(0, 2, 1))
            if self.bias is not None:
                self.bias.grad += grad.sum(axis=2).reshape(-1)
            if not self.input_grad:
                continue
            if kept is not None:   # keep forward's columns intact (backward may run again)
                cols = self._buffer("cols", cols.size, cols.dtype, xp)[:cols.size].reshape(cols.shape)
            grad_cols = xp.matmul(weight.transpose(0, 2, 1), grad, out=cols)    # (G, K, n*Ho*Wo)
            n_part, c, h, w = x[part].shape
            padded_shape = (n_part, c, h + 2 * ph, w + 2 * pw)
            grad_padded = col2im(grad_cols, padded_shape, self.kernel_size, self.stride,
                                 out=self._buffer("image", step * c * padded_shape[2] * padded_shape[3],
                                                  grad_out.dtype, xp))
            grad_in[part] = grad_padded[:, :, ph:ph + h, pw:pw + w]
        self.weight.grad += grad_weight.transpose(0, 2, 1).reshape(self.weight.data.shape)
        return grad_in
