"""Data-parallel training over MPI: N processes train ONE model on the same global batches.

    mpiexec -n N python -m alexnet train --data D -b 128 ...    (no extra flag)

Each step, on every rank r of N:

    rows r of global batch k   (the loader builds only them; augmentation drawn for the whole batch)
    forward, loss, backward    (dropout: the whole batch's mask, rows r kept: BatchRowsMask)
    ONE all-reduce of every gradient packed in one flat buffer, averaged   -> the batch's gradient
    the same SGD step on every rank (same weights, same velocities)

so the N-process run computes what one process computes with the same global batch, up to the
order of floating-point sums. Parameters and velocities are broadcast from rank 0 before the
first step. Validation is split the same way and its counts are summed (exact; not a mean of
means). Only rank 0 prints and writes files. :class:`DataParallel` holds these pieces; with one
process (the size-1 Communicator) every method is a no-op or the identity, so the one-process
trainer runs exactly as before.
"""

from __future__ import annotations

import numpy as np

from nn import Dropout, Linear, Module, get_array_module

from ..metrics import RunningStats
from .communicator import AgreedError, Communicator


def check_global_batch(batch_size: int, size: int) -> None:
    """``-b`` is the global batch: it must split evenly over the processes (every rank finds the
    same answer, so it is an :class:`AgreedError`: reported once, no abort)."""
    if size > 1 and batch_size % size:
        raise AgreedError(
            f"-b/--batch-size {batch_size} is the global batch and must be divisible by the "
            f"{size} processes (each takes batch / {size}); try -b "
            f"{batch_size - batch_size % size} or -b {batch_size + size - batch_size % size}"
        )


def select_gpu(comm: Communicator) -> None:
    """Rank r uses GPU ``local_rank % count`` of its machine (CuPy)."""
    import cupy

    count = cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(comm.local_rank % count).use()


def dropout_feature_shapes(model: Module) -> dict:
    """name -> the feature shape each Dropout layer sees (the preceding Linear's outputs)."""
    shapes, features = {}, None
    for name, module in model.named_children():
        if isinstance(module, Linear):
            features = (module.weight.data.shape[0],)
        elif isinstance(module, Dropout):
            shapes[name] = features
    return shapes


class BatchRowsMask:
    """A ``Dropout.mask_source`` for data-parallel training: the mask the layer draws for the WHOLE
    global batch of ``total`` rows, of which this rank keeps rows ``start:stop``. Every rank then
    draws the same numbers (their generators stay in step, so one checkpointed state serves them
    all) and each example gets the mask it would get in one process."""

    def __init__(self, layer: Dropout, start: int, stop: int, total: int) -> None:
        self.layer, self.start, self.stop, self.total = layer, int(start), int(stop), int(total)

    def __call__(self, shape: tuple, dtype) -> np.ndarray:
        if self.stop - self.start != shape[0]:
            raise ValueError(
                f"Dropout: rows {self.start}:{self.stop} of the batch do not match a batch of {shape[0]}"
            )
        return self.layer.draw_mask((self.total,) + tuple(shape[1:]), dtype)[self.start : self.stop]


class DataParallel:
    """The data-parallel pieces of one training run (``comm.size == 1``: all no-ops)."""

    def __init__(self, comm: Communicator, model: Module, optimizer) -> None:
        self.comm, self.model, self.optimizer = comm, model, optimizer
        self.params = list(model.parameters())
        self.dropouts = [
            (name, layer) for name, layer in model.named_children() if isinstance(layer, Dropout)
        ]
        self.feature_shapes = dropout_feature_shapes(model)
        self.stop_seen = False  # did any rank ask to stop in the last step's all-reduce?
        if self.active:
            # The gradients already live in one flat buffer (the optimizer's FlatParameters,
            # nn/flat.py); two spare slots after them carry the batch loss and the stop flag, so
            # that the all-reduce runs on that buffer in place: no packing copy per step.
            self.flat_parameters().reserve_spare(2)

    def flat_parameters(self):
        """The optimizer's FlatParameters: the buffers this rank's gradients are views of."""
        flat = getattr(self.optimizer, "flat", None)
        if flat is None or [id(p) for p in flat.params] != [id(p) for p in self.params]:
            raise ValueError(
                "DataParallel: the optimizer must hold the model's parameters, in the model's order, "
                "in flat buffers (nn.SGD(model.parameters(), ...))"
            )
        return flat

    @property
    def active(self) -> bool:
        return self.comm.size > 1

    def broadcast_state(self) -> None:
        """Rank 0's weights and SGD velocities on every rank (before the first step)."""
        if self.active:
            self.optimizer.relink()
            flat = self.flat_parameters()  # every weight and every velocity: two flat buffers
            self.comm.broadcast_([flat.data, self.optimizer.velocity])

    def set_rows(self, start: int, stop: int, total: int) -> None:
        """Make the dropout layers draw the global batch's masks and keep this rank's rows."""
        if self.active:
            for _, layer in self.dropouts:
                layer.mask_source = BatchRowsMask(layer, start, stop, total)

    def step(self, model_step, x, y, rows: tuple, stop_requested: bool) -> tuple:
        """Forward + backward on this rank's rows, then ONE all-reduce of the gradients (with the
        batch loss and the stop flag riding in the same buffer). Returns (local loss, logits,
        global loss); ``self.stop_seen`` says whether any rank asked to stop.

        ``model_step(x, y)`` runs forward, loss, zero_grad and backward and returns
        ``(loss, logits)``. Each rank's gradient is the mean over its n_r rows; the batch's
        gradient is sum_r n_r mean_r / n, i.e. the mean over ranks of mean_r * (N n_r / n),
        which is mean_r itself when the batch splits evenly (every batch but maybe the last).
        """
        start, stop, total = rows
        count = stop - start
        self.set_rows(start, stop, total)
        if count:
            loss, logits = model_step(x, y)
        else:  # nothing to compute here, but the dropout generators must stay in step
            self.optimizer.zero_grad()
            for name, layer in self.dropouts:  # the draw of the whole batch, none of it kept
                layer.draw_mask((total,) + tuple(self.feature_shapes[name]))
            loss, logits = 0.0, None
        if not self.active:
            self.stop_seen = stop_requested
            return loss, logits, loss
        self.optimizer.relink()  # something may have replaced a gradient array (e.g. model.to)
        flat = self.flat_parameters()
        buffer, extra, dtype = flat.grad_buffer, flat.spare, flat.grad.dtype
        weight = count * self.comm.size / total
        if weight != 1:
            flat.grad *= dtype.type(weight)
        extra[0] = loss * weight if count else 0.0
        extra[1] = 1.0 if stop_requested else 0.0
        self.comm.allreduce_mean_([buffer])  # ONE all-reduce: every gradient, the loss, the flag
        extra = np.asarray(extra.get() if get_array_module(buffer) is not np else extra, np.float64)
        self.stop_seen = bool(extra[1] > 0)
        return loss, logits, float(extra[0])

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        return bool(self.comm.allreduce_sum(int(bool(flag)))) if self.active else bool(flag)

    def global_stats(self, stats: RunningStats) -> RunningStats:
        """The RunningStats of all ranks together (exact sums of losses and counts)."""
        if not self.active:
            return stats
        total = self.comm.allreduce_sum(
            np.array([stats.loss_sum, stats.top1, stats.top5, stats.count], np.float64)
        )
        return RunningStats(loss_sum=total[0], top1=int(total[1]), top5=int(total[2]), count=int(total[3]))
