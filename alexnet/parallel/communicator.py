"""Several ranks (MPI processes, or threads of one process): the few collectives that
data-parallel training and the two towers of §3.2 need, behind one interface, :class:`Communicator`.

    comm = get_communicator()        # COMM_WORLD under mpiexec, a size-1 stand-in otherwise
    comm.rank, comm.size, comm.is_root
    comm.broadcast_(arrays)          # rank 0's values everywhere (in place)
    comm.allreduce_mean_(grads)      # ONE flat buffer, ONE all-reduce, divided by size (in place)
    comm.allreduce_sum(value)        # exact sums of counts and sums, for metrics
    comm.allgather(x, axis)          # every rank's x concatenated along axis, in rank order
    comm.reduce_scatter(x, axis)     # sum over ranks, then this rank's block: allgather's backward
    comm.allgather_object(obj)       # every rank's small Python object, as a list in rank order
    comm.abort(code)                 # kill every rank (no rank is left waiting in a collective)

Why one flat buffer: an all-reduce costs a latency per call plus bytes / bandwidth; AlexNet has
16 parameter arrays, and packing them (in a fixed order, the same on every rank) pays the latency
once. ChainerMN does the same.

MPI is optional (``pip install -e ".[mpi]"`` installs mpi4py and the mpich wheel). mpi4py is
imported only when the process was started by an MPI launcher (``mpiexec`` sets ``PMI_SIZE``,
Open MPI ``OMPI_COMM_WORLD_SIZE``...); a plain ``python ...`` gets :class:`SingleProcessCommunicator`,
the size-1 stand-in whose collectives return their input, so one process runs exactly as before.
A launcher asking for several processes without mpi4py is an error that says how to install it.
The third implementation, :class:`ThreadCommunicator`, is one rank of a :class:`ThreadGroup`: several
ranks as threads of one process, for tests and notebooks.

Arrays on a GPU (CuPy) are packed on the device, copied to ONE host buffer, reduced by MPI and
copied back: the pip MPI is not CUDA-aware, and handing it device pointers crashes. The NCCL
path (``cupy.cuda.nccl``), which would keep the buffer on the devices, is described in
docs/distributed.md and not implemented.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from data.shards import split_sizes
from nn import get_array_module

#: Environment variables through which MPI launchers announce the number of processes.
LAUNCHER_SIZE_VARIABLES = (
    "PMI_SIZE",
    "OMPI_COMM_WORLD_SIZE",
    "MV2_COMM_WORLD_SIZE",
    "PMIX_SIZE",
    "MPI_LOCALNRANKS",
)
INSTALL_HINT = 'pip install -e ".[mpi]"  (mpi4py and the mpich wheel, which provides mpiexec)'


def launcher_size() -> int:
    """The number of processes an MPI launcher started (1 when none did)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def _to_host(x):
    """A NumPy view/copy of ``x`` (CuPy arrays are copied to the host once)."""
    return x if isinstance(x, np.ndarray) else x.get()


def _pack(arrays, scratch=None):
    """One contiguous flat buffer holding every array (on the arrays' device), and their layout.
    A single contiguous 1-D array is its own buffer (no copy); ``scratch`` (a dict) keeps buffers
    between calls, so that a 244 MB buffer is not allocated and page-faulted every step."""
    xp = get_array_module(arrays[0])
    if len(arrays) == 1 and arrays[0].ndim == 1 and arrays[0].flags.c_contiguous:
        return arrays[0], [arrays[0].size]
    dtype = arrays[0].dtype
    for a in arrays:
        if a.dtype != dtype:
            raise TypeError(f"one flat buffer needs one dtype; got {dtype} and {a.dtype}")
    sizes = [a.size for a in arrays]
    key = (xp.__name__, dtype.str, sum(sizes))
    flat = scratch.get(key) if scratch is not None else None
    if flat is None:
        flat = xp.empty(sum(sizes), dtype)
        if scratch is not None:
            scratch.clear()  # keep one buffer: the gradients' (the same size every step)
            scratch[key] = flat
    offset = 0
    for a, n in zip(arrays, sizes):
        flat[offset : offset + n] = a.reshape(-1)
        offset += n
    return flat, sizes


def _unpack(flat, arrays, sizes, scale=None):
    """Copy ``flat`` back into ``arrays`` (multiplied by ``scale`` if given)."""
    if len(arrays) == 1 and flat is arrays[0]:
        if scale is not None:
            flat *= flat.dtype.type(scale)
        return
    xp = get_array_module(flat)
    offset = 0
    if scale is not None:
        for a, n in zip(arrays, sizes):
            xp.multiply(flat[offset : offset + n].reshape(a.shape), flat.dtype.type(scale), out=a)
            offset += n
        return
    for a, n in zip(arrays, sizes):
        a[...] = flat[offset : offset + n].reshape(a.shape)
        offset += n


class Communicator(ABC):
    """What a rank of a group of ``size`` processes (or threads) can ask of the others.

    Every rank calls the same collectives in the same order; arrays may be NumPy or CuPy and come
    back on the device they came from. Implementations: :class:`SingleProcessCommunicator` (one
    process), :class:`MPICommunicator` (``mpiexec -n N``), ``ThreadCommunicator`` (threads).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0  # rank among the processes on this machine (chooses the GPU)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @abstractmethod
    def barrier(self) -> None:
        """Return when every rank has called it."""

    @abstractmethod
    def broadcast_(self, arrays: Sequence, root: int = 0) -> list:
        """Give every rank rank ``root``'s values of ``arrays`` (a list), in place."""

    @abstractmethod
    def allreduce_mean_(self, arrays: Sequence) -> list:
        """Replace every array by its mean over the ranks, in place, with one all-reduce."""

    @abstractmethod
    def allreduce_sum(self, value):
        """The sum over ranks of a number or array (returned; exact for integers)."""

    @abstractmethod
    def allgather(self, x, axis: int = 0):
        """Every rank's ``x`` concatenated along ``axis`` in rank order (sizes may differ along axis)."""

    @abstractmethod
    def reduce_scatter(self, x, axis: int = 0, sizes: Sequence[int] | None = None):
        """The backward of :meth:`allgather`: ``x`` (the gathered shape) summed over the ranks,
        then this rank's block along ``axis``; ``sizes`` are the blocks' lengths (default: the even
        split of ``data.shards.split_sizes``)."""

    @abstractmethod
    def allgather_object(self, obj) -> list:
        """Every rank's ``obj`` (a small picklable value: a dict of settings), as a list in rank order."""

    @abstractmethod
    def abort(self, code: int = 1) -> None:
        """End every rank of the job at once (no rank is left waiting in a collective)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleProcessCommunicator(Communicator):
    """One process: rank 0 of a world of size 1. Every collective returns its input unchanged
    (the in-place ones do nothing), so code written for N processes runs as before with one."""

    def barrier(self) -> None:
        pass

    def broadcast_(self, arrays, root=0):
        return arrays

    def allreduce_mean_(self, arrays):
        return arrays

    def allreduce_sum(self, value):
        return value

    def allgather(self, x, axis=0):
        return x

    def reduce_scatter(self, x, axis=0, sizes=None):
        return x

    def allgather_object(self, obj):
        return [obj]

    def abort(self, code=1):
        os._exit(code)


class MPICommunicator(Communicator):
    """mpi4py's COMM_WORLD behind the :class:`Communicator` interface."""

    def __init__(self, comm) -> None:
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = local.Get_rank()
        local.Free()
        #: Bytes handed to collectives by this rank (payloads, not the wire traffic of the algorithm).
        self.bytes_reduced = 0
        self._scratch = {}

    def barrier(self):
        self.comm.Barrier()

    def broadcast_(self, arrays, root=0):
        arrays = list(arrays)
        by_dtype = {}
        for a in arrays:
            by_dtype.setdefault(np.dtype(a.dtype), []).append(a)
        for group in by_dtype.values():  # one Bcast per dtype (usually one)
            flat, sizes = _pack(group)
            host = np.ascontiguousarray(_to_host(flat))
            self.comm.Bcast(host, root=root)
            xp = get_array_module(flat)
            _unpack(xp.asarray(host), group, sizes)
        return arrays

    def allreduce_mean_(self, arrays):
        arrays = list(arrays)
        if not arrays:
            return arrays
        flat, sizes = _pack(arrays, self._scratch)
        xp = get_array_module(flat)
        host = _to_host(flat)  # NumPy: the buffer itself; CuPy: one copy to the host
        self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
        self.bytes_reduced += host.nbytes
        if xp is not np:
            flat.set(host)  # one copy back to the device
        _unpack(flat, arrays, sizes, scale=1.0 / self.size)
        return arrays

    def allreduce_sum(self, value):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            # a Python int in, one out (int64: exact for any count). The buffer Allreduce, not the
            # pickling allreduce, which holds the GIL while it waits: a rank's stop watchdog
            # (watchdog.py) could then never run while another rank is frozen.
            total = np.array([value], np.int64)
            self.comm.Allreduce(self.MPI.IN_PLACE, total, op=self.MPI.SUM)
            return int(total[0])
        xp = get_array_module(value) if hasattr(value, "dtype") else np
        host = np.array(_to_host(value) if hasattr(value, "dtype") else value)
        if host.dtype.kind not in "iufc":
            raise TypeError(f"allreduce_sum needs numbers, got {host.dtype}")
        if host.dtype.kind == "i":
            host = host.astype(np.int64)
        elif host.dtype.kind == "u":
            host = host.astype(np.uint64)
        host = np.ascontiguousarray(host)
        self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
        if not hasattr(value, "dtype"):
            return host.item()  # a Python number in, one out
        if host.ndim == 0 and xp is np:
            return host[()]
        return host if xp is np else xp.asarray(host)

    def allgather(self, x, axis=0):
        xp = get_array_module(x)
        axis = axis % x.ndim
        front = np.ascontiguousarray(np.moveaxis(_to_host(x), axis, 0))
        lengths = np.empty(self.size, np.int64)  # a buffer collective: it lets go of the GIL
        self.comm.Allgather(np.array([front.shape[0]], np.int64), lengths)
        lengths = [int(n) for n in lengths]
        row = int(np.prod(front.shape[1:], dtype=np.int64))
        out = np.empty((sum(lengths),) + front.shape[1:], front.dtype)
        counts = [n * row for n in lengths]
        self.comm.Allgatherv(front, [out, counts])
        self.bytes_reduced += front.nbytes
        result = np.moveaxis(out, 0, axis)
        return xp.asarray(np.ascontiguousarray(result)) if xp is not np else np.ascontiguousarray(result)

    def reduce_scatter(self, x, axis=0, sizes=None):
        xp = get_array_module(x)
        axis = axis % x.ndim
        front = np.ascontiguousarray(np.moveaxis(_to_host(x), axis, 0))
        sizes = split_sizes(front.shape[0], self.size) if sizes is None else [int(s) for s in sizes]
        if len(sizes) != self.size or sum(sizes) != front.shape[0]:
            raise ValueError(
                f"reduce_scatter: sizes {sizes} must be {self.size} blocks adding up to "
                f"{front.shape[0]} (the length of axis {axis})"
            )
        row = int(np.prod(front.shape[1:], dtype=np.int64))
        out = np.empty((sizes[self.rank],) + front.shape[1:], front.dtype)
        self.comm.Reduce_scatter(front, out, [n * row for n in sizes], op=self.MPI.SUM)
        self.bytes_reduced += front.nbytes
        result = np.ascontiguousarray(np.moveaxis(out, 0, axis))
        return result if xp is np else xp.asarray(result)

    def allgather_object(self, obj):
        return list(self.comm.allgather(obj))  # pickled: the objects may differ in size

    def abort(self, code=1):
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)
        os._exit(code)  # MPICH's Abort can return while the launcher kills the job: say nothing more


_COMMUNICATOR: Communicator | None = None


def get_communicator() -> Communicator:
    """The world's communicator: MPI's COMM_WORLD when an MPI launcher started this process,
    otherwise the size-1 :class:`SingleProcessCommunicator`. The same object on every call."""
    global _COMMUNICATOR
    if _COMMUNICATOR is not None:
        return _COMMUNICATOR
    requested = launcher_size()
    if requested <= 1 and not any(name in os.environ for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK")):
        _COMMUNICATOR = SingleProcessCommunicator()
        return _COMMUNICATOR
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if requested > 1:
            raise RuntimeError(
                f"{requested} processes were started (mpiexec -n {requested}) but mpi4py is "
                f"not installed, so they cannot talk to each other; install it with "
                f"{INSTALL_HINT}"
            ) from exc
        _COMMUNICATOR = SingleProcessCommunicator()
        return _COMMUNICATOR
    world = MPI.COMM_WORLD
    _COMMUNICATOR = MPICommunicator(world) if world.Get_size() > 1 else SingleProcessCommunicator()
    return _COMMUNICATOR


class AgreedError(ValueError):
    """A user error that every rank detects identically, from the same arguments and the same
    number of processes (a global batch that does not split, say).

    No rank is left waiting for another, so nothing needs aborting: under ``abort_on_error`` rank 0
    lets the error propagate (the command prints it as usual) and the other ranks exit with status
    1 in silence. Every process then ends normally, its output flushed, so the message cannot be
    lost as it can when ``MPI_Abort`` kills the job while the launcher still forwards stderr.
    """


def check_same_everywhere(comm: Communicator, fields: dict, describe: Callable | None = None) -> None:
    """Refuse, on every rank alike, a job whose ranks were not given the same ``fields`` (a dict
    ``{name: value}``: the settings, a fingerprint of the data).

    The dicts are all-gathered, so every rank holds every rank's and reaches the same verdict:
    an :class:`AgreedError` naming the first rank and field that differ from rank 0's, reported
    once by rank 0, with no abort. ``describe(name, ours, theirs)``, if given, words a difference
    (a phrase); the default shows both values."""
    gathered = comm.allgather_object(fields)
    reference = gathered[0]
    for rank, other in enumerate(gathered[1:], start=1):
        for name in sorted(set(reference) | set(other)):
            ours, theirs = reference.get(name), other.get(name)
            if ours == theirs:
                continue
            what = (
                describe(name, ours, theirs)
                if describe is not None
                else f"rank 0 has {ours!r}, rank {rank} has {theirs!r}"
            )
            raise AgreedError(
                f"rank {rank} differs from rank 0 in {name}: {what}. Every rank of the job must run "
                f"the same command on the same data"
            )


# The launcher forwards each rank's stderr asynchronously and MPI_Abort ends the job at once:
# a short pause between the two lets the last message reach the terminal.
ABORT_GRACE_SECONDS = 1.0


@contextmanager
def abort_on_error(
    comm: Communicator, brief: tuple = (), prefix: str = "error", exit_codes: dict | None = None
) -> Iterator[None]:
    """Any exception on one rank prints its message (and traceback, except for the ``brief``
    exception types: user errors) with the rank, and aborts EVERY rank, so no rank is left
    waiting forever in a collective. ``exit_codes``: ``{exception type: status}`` of the job for
    some types (default 1). With one process the exception just propagates; an
    :class:`AgreedError` is reported by rank 0 alone and ends every rank without an abort."""
    try:
        yield
    except BaseException as exc:
        if comm.size <= 1 or isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        if isinstance(exc, AgreedError):
            if comm.rank == 0:
                raise
            raise SystemExit(1) from None
        sys.stdout.flush()
        lines = (
            ""
            if isinstance(exc, brief)
            else "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        )
        sys.stderr.write(
            f"{lines}{prefix} (rank {comm.rank} of {comm.size}): {exc or type(exc).__name__}; "
            f"aborting all {comm.size} processes\n"
        )
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_SECONDS)
        code = next((c for kind, c in (exit_codes or {}).items() if isinstance(exc, kind)), 1)
        comm.abort(code)
        raise


# -- several ranks inside one process ------------------------------------------------------------
class ThreadGroup:
    """P in-process "ranks" that exchange arrays through shared memory, one thread each.

    ``ThreadGroup(2).run(fn)`` calls ``fn(comm)`` in two threads with ``comm.rank`` 0 and 1 and
    returns their results in rank order. Each ``comm`` is a :class:`ThreadCommunicator`, with the
    collectives of :class:`MPICommunicator`, so a tower model runs unchanged; this is for tests and
    notebooks, where starting ``mpiexec`` is not possible or too slow. NumPy's matrix products
    release the GIL, so the ranks do compute at the same time. If one rank raises, the others are
    released from their collective (``threading.BrokenBarrierError``) and ``run`` re-raises the
    first error.
    """

    def __init__(self, size: int = 2, timeout: float = 600) -> None:
        if int(size) < 1:
            raise ValueError(f"ThreadGroup: size must be at least 1, got {size!r}")
        self.size = int(size)
        self._barrier = threading.Barrier(self.size, timeout=timeout)
        self._slots = [None] * self.size

    def communicators(self) -> list[ThreadCommunicator]:
        return [ThreadCommunicator(self, rank) for rank in range(self.size)]

    def _exchange(self, rank, value, combine):
        """Every rank posts ``value``; each gets ``combine(list of all values)``."""
        self._slots[rank] = value
        self._barrier.wait()
        try:
            result = combine(list(self._slots))
        finally:
            self._barrier.wait()  # nobody overwrites a slot before every rank has read them
        return result

    def run(self, fn: Callable[[ThreadCommunicator], object]) -> list:
        results, errors = [None] * self.size, [None] * self.size
        self._barrier.reset()

        def target(comm):
            try:
                results[comm.rank] = fn(comm)
            except BaseException as exc:  # noqa: B902 - re-raised in the calling thread
                errors[comm.rank] = exc
                self._barrier.abort()

        threads = [
            threading.Thread(target=target, args=(comm,), name=f"rank{comm.rank}")
            for comm in self.communicators()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        first = next(
            (e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)),
            next((e for e in errors if e is not None), None),
        )
        if first is not None:
            raise first
        return results


def _sum(values):
    """The sum of ``values`` in rank order (a copy: the inputs are the ranks' own arrays)."""
    total = values[0].copy() if hasattr(values[0], "copy") else values[0]
    for other in values[1:]:
        total = total + other
    return total


class ThreadCommunicator(Communicator):
    """One rank of a :class:`ThreadGroup`. Beyond the interface, ``allreduce_sum`` also sums a
    list or tuple of numbers and arrays element by element."""

    def __init__(self, group: ThreadGroup, rank: int) -> None:
        self.group, self.rank, self.size = group, int(rank), group.size
        self.local_rank = self.rank  # every rank is on this machine

    def barrier(self):
        self.group._exchange(self.rank, None, lambda values: None)

    def broadcast_(self, arrays, root=0):
        arrays = list(arrays)
        sources = self.group._exchange(self.rank, [a.copy() for a in arrays], lambda values: values[root])
        for array, source in zip(arrays, sources):
            array[...] = source
        return arrays

    def allreduce_mean_(self, arrays):
        arrays = list(arrays)
        totals = self.allreduce_sum([a.copy() for a in arrays])
        for array, total in zip(arrays, totals):
            array[...] = total / self.size
        return arrays

    def allreduce_sum(self, value):
        def combine(values):
            if isinstance(values[0], (list, tuple)):
                return [_sum([v[i] for v in values]) for i in range(len(values[0]))]
            return _sum(values)

        return self.group._exchange(self.rank, value, combine)

    def allgather(self, x, axis=0):
        xp = get_array_module(x)
        return self.group._exchange(self.rank, x, lambda values: xp.concatenate(values, axis=axis))

    def reduce_scatter(self, x, axis=0, sizes=None):
        xp = get_array_module(x)
        length = x.shape[axis]
        sizes = split_sizes(length, self.size) if sizes is None else [int(s) for s in sizes]
        if len(sizes) != self.size or sum(sizes) != length:
            raise ValueError(
                f"reduce_scatter: sizes {sizes} must be {self.size} blocks adding up to "
                f"{length} (the length of axis {axis})"
            )
        start = sum(sizes[: self.rank])
        mine = xp.arange(start, start + sizes[self.rank])
        return self.group._exchange(
            self.rank, x, lambda values: xp.ascontiguousarray(xp.take(_sum(values), mine, axis=axis))
        )

    def allgather_object(self, obj):
        return self.group._exchange(self.rank, obj, list)

    def abort(self, code=1):
        self.group._barrier.abort()
        raise SystemExit(code)
