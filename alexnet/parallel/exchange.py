"""What crosses between the two towers of §3.2, as layers with a hand-written backward pass.

§3.2 puts half of every layer's kernels on each of two GPUs; "the GPUs communicate only in
certain layers". Model-parallel, each process (rank) holds one tower and computes one slice
of a layer's outputs: tower g's conv1 makes maps [g*C/2, (g+1)*C/2) of the 96, and so on.
Where the next layer needs *every* map (conv3, fc6, fc7, fc8, the loss), the towers exchange
their slices: an **all-gather** along the channel (or feature) axis, in rank order, so that
every rank holds the same full tensor that the one-process network computes.

    forward   y = concat(x_0, x_1, ..., x_{P-1})   on every rank      (all-gather)

Backward. Each rank r continues from its own copy y^(r) and computes its own part of the
loss: the total loss depends on x_g through every rank's copy, so

    dL/dx_g = sum_r (dL/dy^(r))[slice g]                                (reduce-scatter)

every rank adds up the gradients of all copies and keeps its slice. ``AllGather`` does that
(``downstream="split"``). At the logits the downstream is not split: every rank computes the
SAME loss on the same full logits, so every rank's dL/dy is already the full gradient and
summing would count it P times; there ``downstream="replicated"`` keeps this rank's slice
without communicating.

Sizes need not divide evenly (an odd number of classes in fc8): ``sizes`` lists each rank's
length along the axis, the pieces are padded to the longest for the collective and trimmed after.

Bytes. Each layer records what THIS rank sends per call: an all-gather or a reduce-scatter of a
full tensor of B bytes over P ranks sends (P - 1)/P * B from every rank (ring or direct exchange;
the minimum, whatever the MPI library does inside). With two ranks that is one slice each way.

The communicator is any :class:`~alexnet.parallel.communicator.Communicator`: MPI's
(``get_communicator()`` under ``mpiexec``) or a ``ThreadGroup``'s, which runs P ranks as threads of
one Python process for tests and notebooks.
"""

from __future__ import annotations

from collections.abc import Sequence

from nn import Module, get_array_module

from .communicator import Communicator


def _pad_along(x, axis, length):
    xp = get_array_module(x)
    missing = length - x.shape[axis]
    if missing == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, missing)
    return xp.pad(x, widths)


def allgather_uneven(comm: Communicator, x, axis: int, sizes: Sequence[int]):
    """All-gather ``x`` along ``axis`` when rank r holds ``sizes[r]`` entries there."""
    longest = max(sizes)
    if all(size == longest for size in sizes):
        return comm.allgather(x, axis)
    xp = get_array_module(x)
    gathered = comm.allgather(_pad_along(x, axis, longest), axis)
    keep = xp.concatenate([xp.arange(r * longest, r * longest + size) for r, size in enumerate(sizes)])
    return xp.take(gathered, keep, axis=axis)


def reduce_scatter_uneven(comm: Communicator, x, axis: int, sizes: Sequence[int]):
    """Sum ``x`` over the ranks and keep rank r's ``sizes[r]`` entries along ``axis``."""
    longest = max(sizes)
    if all(size == longest for size in sizes):
        return comm.reduce_scatter(x, axis)
    xp = get_array_module(x)
    bounds = [sum(sizes[:r]) for r in range(len(sizes) + 1)]
    pieces = [
        _pad_along(xp.take(x, xp.arange(bounds[r], bounds[r + 1]), axis=axis), axis, longest)
        for r in range(len(sizes))
    ]
    mine = comm.reduce_scatter(xp.concatenate(pieces, axis=axis), axis)
    return xp.take(mine, xp.arange(sizes[comm.rank]), axis=axis)


class AllGather(Module):
    """Gather every rank's slice along ``axis`` in rank order (forward); the backward of §3.2's exchange.

    ``downstream="split"``: each rank computes its own part of what follows (conv3's, fc6's, fc7's,
    fc8's output slice), so backward sums every rank's gradient and keeps this rank's slice
    (reduce-scatter). ``downstream="replicated"``: every rank computes the same thing from the
    gathered tensor (the loss on the full logits), so backward just keeps this rank's slice.
    ``sizes``: each rank's length along ``axis`` when they differ (None: equal, taken from the input).

    After each call ``bytes_forward`` / ``bytes_backward`` hold the bytes this rank sent.
    """

    DOWNSTREAM = ("split", "replicated")

    def __init__(
        self, comm: Communicator, axis: int = 1, downstream: str = "split", sizes: Sequence[int] | None = None
    ):
        if downstream not in self.DOWNSTREAM:
            raise ValueError(f"AllGather: downstream must be one of {self.DOWNSTREAM}, got {downstream!r}")
        if sizes is not None and len(sizes) != comm.size:
            raise ValueError(f"AllGather: sizes must list one length per rank ({comm.size}), got {sizes!r}")
        self.comm, self.axis, self.downstream = comm, int(axis), downstream
        self.sizes = None if sizes is None else [int(size) for size in sizes]
        self.bytes_forward = self.bytes_backward = 0
        self._sizes = None
        self._out_shape = None

    def extra_repr(self) -> str:
        return f"axis={self.axis}, downstream={self.downstream!r}, ranks={self.comm.size}"

    def _sizes_for(self, x):
        if self.sizes is None:
            return [x.shape[self.axis]] * self.comm.size
        if x.shape[self.axis] != self.sizes[self.comm.rank]:
            raise ValueError(
                f"AllGather: rank {self.comm.rank} expects {self.sizes[self.comm.rank]} entries "
                f"on axis {self.axis}, got input of shape {tuple(x.shape)}"
            )
        return self.sizes

    def sent_bytes(self, full_shape: tuple, itemsize: int) -> int:
        """Bytes one rank sends to all-gather (or reduce-scatter) a tensor of ``full_shape``:
        (P - 1) pieces of the longest rank's size (equal sizes: (P - 1)/P of the tensor)."""
        sizes = self.sizes or [full_shape[self.axis] // self.comm.size] * self.comm.size
        piece = itemsize * max(sizes)
        for axis, length in enumerate(full_shape):
            if axis != self.axis:
                piece *= length
        return (self.comm.size - 1) * piece

    def forward(self, x):
        if x.ndim <= self.axis:
            raise ValueError(
                f"AllGather: axis {self.axis} does not exist in an input of shape {tuple(x.shape)}"
            )
        sizes = self._sizes_for(x)
        out = allgather_uneven(self.comm, x, self.axis, sizes)
        self._sizes, self._out_shape = sizes, out.shape
        self.bytes_forward = self.sent_bytes(out.shape, x.dtype.itemsize)
        return out

    def backward(self, grad_out):
        sizes = self._cached(self._sizes)
        self._check_grad(grad_out, self._out_shape)
        rank = self.comm.rank
        if self.downstream == "replicated":
            xp = get_array_module(grad_out)
            start = sum(sizes[:rank])
            self.bytes_backward = 0
            mine = xp.arange(start, start + sizes[rank])
            return xp.ascontiguousarray(xp.take(grad_out, mine, axis=self.axis))
        grad_in = reduce_scatter_uneven(self.comm, grad_out, self.axis, sizes)
        self.bytes_backward = self.sent_bytes(grad_out.shape, grad_out.dtype.itemsize)
        return grad_in
