"""im2col and col2im: plainly, and as ``Conv2d`` runs them fast.

Read the first two functions first. ``im2col`` copies every kh x kw window of a padded
image into a column, and ``col2im``, its adjoint, adds every column entry back to the
pixel it came from; each is one loop over the kernel offsets (i, j):

    cols[(c, i, j), (n, y, x)] = x_pad[n, c, y*s + i, x*s + j]

They are the reference: ``nn.im2col`` / ``nn.col2im`` are these, and the tests check
the fast path below against them.

The rest of this module is how ``nn.Conv2d`` does the same faster and in less memory,
the same arithmetic in another order (see ``Unroller``):

- ``im2col_strided``: a strided *view* presents every window without a copy; copying it
  into a matrix is the single copy, split over the channels between threads;
- ``col2im_two_pass``: the kh x kw offsets added back as kh row passes, then kw column
  passes, over whole slabs;
- ``Unroller``: on the CPU the batch is unrolled a chunk of images at a time, padded and
  unrolled into scratch buffers kept between calls (one set per thread); backward unrolls a
  chunk again from the saved input instead of keeping every column matrix (at batch 128,
  crop 227 those would take 1.8 GB for the five layers), except in training for a layer
  whose whole batch is one small chunk, which keeps its columns for backward.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from .backend import Array, get_array_module
from .threads import over_batch


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2 * padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


# -- the reference: plain loops over the kernel offsets ----------------------------------------

def im2col(x_padded: Array, kernel_size: tuple[int, int], stride: tuple[int, int],
           groups: int = 1) -> Array:
    """Unroll windows into columns: (N, C, Hp, Wp) -> (G, C/G * kh * kw, N * Ho * Wo).

    Rows are ordered (c, i, j) like a kernel W[f, c, i, j]; columns are ordered (n, y, x).
    Kernel offset (i, j) of every window at once is the input shifted by (i, j) and read
    with the stride. The plain version, for reading and for tests; ``Conv2d`` runs
    ``im2col_strided``.
    """
    xp = get_array_module(x_padded)
    (kh, kw), (sh, sw) = kernel_size, stride
    n, c, hp, wp = x_padded.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = xp.empty((c, kh, kw, n, ho, wo), dtype=x_padded.dtype)
    for i in range(kh):
        for j in range(kw):
            shifted = x_padded[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]   # N, C, Ho, Wo
            cols[:, i, j] = shifted.transpose(1, 0, 2, 3)
    return cols.reshape(groups, c // groups * kh * kw, n * ho * wo)


def col2im(cols: Array, padded_shape: tuple[int, int, int, int], kernel_size: tuple[int, int],
           stride: tuple[int, int]) -> Array:
    """The adjoint of im2col: (G, C/G * kh * kw, N * Ho * Wo) -> (N, C, Hp, Wp).

    Every column entry is added back to the pixel it was copied from, so a pixel shared by
    overlapping windows collects several contributions. The plain version, for reading and
    for tests; ``Conv2d`` runs ``col2im_two_pass``.
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw) = kernel_size, stride
    n, c, hp, wp = padded_shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    per_offset = cols.reshape(c, kh, kw, n, ho, wo)
    image = xp.zeros((n, c, hp, wp), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            image[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += \
                per_offset[:, i, j].transpose(1, 0, 2, 3)
    return image


# -- the fast path ------------------------------------------------------------------------------

def im2col_strided(x_padded: Array, kernel_size: tuple[int, int], stride: tuple[int, int], groups: int,
                   out: Array | None = None) -> Array:
    """``im2col``, as one copy of a strided view: (N, C, Hp, Wp) -> (G, C/G * kh * kw, N * Ho * Wo).

    A strided *view* presents every window without copying; copying it into a matrix is the
    single copy (into ``out``, a flat buffer of at least that many entries, when given). The
    copy is split over the channels between threads (``nn.threads``).
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


def col2im_two_pass(cols: Array, padded_shape: tuple[int, int, int, int], kernel_size: tuple[int, int],
                    stride: tuple[int, int], padding: tuple[int, int] = (0, 0),
                    out: Array | None = None) -> Array:
    """``col2im``, in two passes over the kernel offsets, without the padding:
    (G, C/G * kh * kw, N * Ho * Wo) -> (N, C, Hp - 2 ph, Wp - 2 pw).

    1. the kh kernel rows: ``row_sums[c, j, n, y * s + i, x] += cols[(c, i, j), (n, y, x)]``, an
       image Wo wide per kernel column j. At stride 1 each step adds whole contiguous
       (Ho, Wo) blocks, so NumPy runs long inner loops instead of one per output row;
    2. the kw kernel columns: ``image[c, n, :, x * s + j] += row_sums[c, j, n, :, x]``, only into
       the rows and columns of the image itself (what would land on the padding is dropped).

    Each pass adds whole slabs (all images, channels and output positions at once), split over the
    channels between threads; ``row_sums`` is made per slice of channels (a few MB, in cache).
    ``out``: the (N, C, H, W) array to write the result into (any layout, e.g. a slice of a batch).
    """
    xp = get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, hp, wp = padded_shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    h, w = hp - 2 * ph, wp - 2 * pw
    per_offset = cols.reshape(c, kh, kw, n, ho, wo)
    if out is None:
        out = xp.empty((n, c, h, w), dtype=cols.dtype)
    image = out.transpose(1, 0, 2, 3)                                         # (C, N, H, W)
    # Kernel column j puts window column x on image column x * sw + j - pw: the x that land inside.
    inside = [(j, max(0, -(-(pw - j) // sw)), min(wo - 1, (pw + w - 1 - j) // sw)) for j in range(kw)]

    def add_back(per_offset, image):
        row_sums = xp.zeros((per_offset.shape[0], kw, n, hp, wo), dtype=per_offset.dtype)
        for i in range(kh):    # (a named slab: ``a[idx] += b`` would add a copy back on CuPy)
            slab = row_sums[:, :, :, i:i + sh * (ho - 1) + 1:sh]
            slab += per_offset[:, i]
        image[...] = 0
        for j, first, last in inside:
            if first <= last:
                start = first * sw + j - pw
                slab = image[:, :, :, start:start + sw * (last - first) + 1:sw]
                slab += row_sums[:, j, :, ph:ph + h, first:last + 1]

    over_batch(add_back, per_offset, image)
    return out


# Scratch buffers of ``scratch``, one set per thread (two models may run side by side in two
# threads, e.g. the two towers of §3.2 as in-process ranks): (role, dtype, array module) -> (flat array, layout).
_SCRATCH = threading.local()


def scratch(name: str, size: int, dtype, xp, layout=None) -> Array:
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


class Unroller:
    """One Conv2d's im2col and col2im: chunks of the batch, padding, scratch buffers, kept columns.

    ``columns(x)`` yields (chunk, cols) for forward, ``columns_again(x)`` the same for backward
    (forward's kept columns, or each chunk unrolled again), and ``fold`` is col2im of one chunk's
    column gradient, with the padding cut off again.
    """

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

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 groups: int) -> None:
        self.kernel_size, self.stride, self.padding, self.groups = kernel_size, stride, padding, groups
        self.kept = None       # forward's column matrix, when kept for backward
        self._store = None     # the array it lives in, reused by the next forward

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """(Ho, Wo) of an h x w input."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)

    def _column_bytes(self, x: Array) -> int:
        """Bytes of the column matrix of one image of ``x``."""
        ho, wo = self.output_size(*x.shape[2:])
        return x.shape[1] * self.kernel_size[0] * self.kernel_size[1] * ho * wo * x.itemsize

    def chunks(self, x: Array) -> list[slice]:
        """Slices of the batch, each unrolled and multiplied on its own (the first is the longest)."""
        n = x.shape[0]
        if get_array_module(x) is not np:
            return [slice(0, n)]
        step = max(1, min(n, self.CHUNK_BYTES // self._column_bytes(x)))
        return [slice(start, min(start + step, n)) for start in range(0, n, step)]

    def chunk_scratch(self, name: str, rows: int, x: Array, dtype) -> Array:
        """A scratch array for ``rows`` x (images of the longest chunk x Ho x Wo) entries."""
        part = self.chunks(x)[0]
        ho, wo = self.output_size(*x.shape[2:])
        return scratch(name, (part.stop - part.start) * rows * ho * wo, dtype, get_array_module(x))

    def columns(self, x: Array, keep: bool = False) -> Iterator[tuple[slice, Array]]:
        """Forward's unrolling: (chunk, im2col of the padded chunk, (G, K, n*Ho*Wo)) per chunk.

        ``keep`` (training): when the whole batch is one chunk of at most KEEP_COLUMNS_BYTES, its
        columns are kept for backward in this layer's own array (they must outlive the other layers'
        passes through the shared scratch buffers).
        """
        chunks = self.chunks(x)
        keep = keep and len(chunks) == 1 and x.shape[0] * self._column_bytes(x) <= self.KEEP_COLUMNS_BYTES
        self.kept = None
        for part in chunks:
            cols = self._unroll(x[part], keep)
            if keep:
                self.kept = cols
            yield part, cols

    def columns_again(self, x: Array) -> Iterator[tuple[slice, Array]]:
        """Backward's columns of the saved input ``x``: forward's kept ones, or each chunk unrolled again."""
        for part in self.chunks(x):
            yield part, self.kept if self.kept is not None else self._unroll(x[part])

    def overwritable(self, cols: Array) -> Array:
        """Where a product shaped like ``cols`` may be written: ``cols`` itself, unless they are the
        kept columns (those stay intact: backward may run again after one forward)."""
        if cols is not self.kept:
            return cols
        xp = get_array_module(cols)
        return scratch("cols", cols.size, cols.dtype, xp)[:cols.size].reshape(cols.shape)

    def fold(self, grad_cols: Array, out: Array) -> None:
        """col2im of one chunk's column gradient, without the padding: (G, K, n*Ho*Wo) -> ``out``
        (n, C, H, W), the chunk's rows of dL/dx."""
        n, c, h, w = out.shape
        (ph, pw) = self.padding
        padded_shape = (n, c, h + 2 * ph, w + 2 * pw)
        col2im_two_pass(grad_cols, padded_shape, self.kernel_size, self.stride, self.padding, out=out)

    def _unroll(self, images: Array, keep: bool = False) -> Array:
        """im2col of a chunk of images, padded on the way; both in reused buffers (the columns in
        this layer's own array when ``keep``)."""
        xp = get_array_module(images)
        (ph, pw), (kh, kw) = self.padding, self.kernel_size
        n, c, h, w = images.shape
        if ph or pw:
            shape = (n, c, h + 2 * ph, w + 2 * pw)
            size = n * c * shape[2] * shape[3]
            padded = scratch("padded", size, images.dtype, xp, (shape[1:], self.padding))
            padded = padded[:size].reshape(shape)                          # border stays zero
            padded[:, :, ph:ph + h, pw:pw + w] = images
            images = padded
        ho, wo = self.output_size(h, w)
        size = n * c * kh * kw * ho * wo
        if not keep:
            out = scratch("cols", size, images.dtype, xp)
        else:
            store = self._store
            if (store is None or store.size < size or store.dtype != images.dtype
                    or get_array_module(store) is not xp):
                store = self._store = xp.empty(size, dtype=images.dtype)
            out = store
        return im2col_strided(images, self.kernel_size, self.stride, self.groups, out=out)
