"""A stop request ends the job in bounded time, even when a rank is frozen.

Ctrl-C or SIGTERM is honoured at the next step boundary: the ranks agree on it in that step's
all-reduce, save a checkpoint and exit (alexnet/train.py). If another rank is frozen (SIGSTOP, a
hung device, a lost node), the all-reduce never returns, and this rank would wait in it forever.
:class:`StopWatchdog` bounds that wait: once a stop was requested, a rank that makes no progress
(reaches no step boundary) for ``stop_timeout()`` seconds, or three times its longest step so far
if that is longer (a slow step is not a hang), prints one line saying so and aborts the whole job
(``comm.abort``: MPI kills every rank, the frozen one too). The last checkpoint saved stays as it was.

The watch must last until every rank has left the training loop. A rank can freeze inside the
very all-reduce that agrees on the stop, after its contribution was sent: the others then complete
it and stop. If they left the watchdog there, they would wait for the frozen rank in
``MPI_Finalize`` at exit, which mpi4py calls from the interpreter's last exit hook, where no Python
thread runs any more. So after an agreed stop every rank calls :meth:`StopWatchdog.settle`: a
barrier, still watched; past it, every rank is known to be alive and about to finalize.

Why a thread woken through ``signal.set_wakeup_fd``: Python runs a signal handler only when the
main thread comes back to the interpreter, and a rank waiting inside MPI's all-reduce never does.
The interpreter's C-level handler still writes the signal's number to the wakeup descriptor at
once, and a thread blocked reading it wakes up (mpi4py releases the GIL inside collectives).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

from .communicator import ABORT_GRACE_SECONDS, Communicator

#: The environment variable that sets the bound, in seconds (tests lower it).
STOP_TIMEOUT_VARIABLE = "ALEXNET_STOP_TIMEOUT"
#: The bound when the variable is not set: far above a checkpoint save of the full network.
STOP_TIMEOUT_SECONDS = 30.0
#: Signals that request a stop (alexnet/train.py's StopFlag).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_timeout() -> float:
    """Seconds a rank may go without progress after a stop request ($ALEXNET_STOP_TIMEOUT or 30)."""
    text = os.environ.get(STOP_TIMEOUT_VARIABLE)
    try:
        value = float(text) if text else STOP_TIMEOUT_SECONDS
    except ValueError:
        value = STOP_TIMEOUT_SECONDS
    return value if value > 0 else STOP_TIMEOUT_SECONDS


class StopWatchdog:
    """``with StopWatchdog(comm) as watchdog:`` around the training loop, ``watchdog.progress()`` at
    every step boundary. Armed by SIGINT/SIGTERM; inactive with one process (no other rank to wait
    for) and outside the main thread (where no wakeup descriptor can be set)."""

    def __init__(
        self, comm: Communicator, timeout: float | None = None, code: int = 1, prefix: str = "error"
    ):
        self.comm, self.code, self.prefix = comm, code, prefix
        self.timeout = stop_timeout() if timeout is None else float(timeout)
        self.longest_step = 0.0
        self._last = time.monotonic()
        self._after_step = False  # the last boundary ended an SGD step
        self._signalled_at = None
        self._done = threading.Event()
        self._thread = self._reader = self._writer = None
        self._previous_fd = None

    @property
    def active(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> StopWatchdog:
        if self.comm.size <= 1:
            return self
        reader, writer = socket.socketpair()
        writer.setblocking(False)  # the C handler must never block
        try:
            self._previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            reader.close()
            writer.close()
            return self
        self._reader, self._writer = reader, writer
        self._last = time.monotonic()
        self._after_step = False
        self._thread = threading.Thread(target=self._watch, name="stop-watchdog", daemon=True)
        self._thread.start()
        return self

    def progress(self, step: bool = True) -> None:
        """This rank reached a step boundary. ``step``: the interval since the last call was one
        SGD step, which sets the bound; not the epoch's end (validation, saving, the curves)."""
        now = time.monotonic()
        # Only step-to-step intervals measure a step: the first step after the start or after an
        # epoch's end also holds the loader's start and first allocations, which can take many
        # steps' time on a loaded machine. A hang after the request must not lengthen the bound.
        if step and self._after_step and self._signalled_at is None:
            self.longest_step = max(self.longest_step, now - self._last)
        self._after_step = step
        self._last = now

    def settle(self) -> None:
        """Every rank agreed to stop: wait, still watched, until every rank has got this far (a
        barrier, which lets go of the GIL), so that none can be left waiting for a frozen rank in
        ``MPI_Finalize``, where the watchdog could not act. Nothing to do when inactive."""
        if self._thread is None:
            return
        self.progress(step=False)
        self.comm.barrier()

    def bound(self) -> float:
        """Seconds allowed without progress once a stop was requested."""
        return max(self.timeout, 3 * self.longest_step)

    def _watch(self) -> None:
        while True:  # the wakeup descriptor carries every handled signal: wait for a stop request
            try:
                got = self._reader.recv(1)
            except OSError:
                return
            if not got or self._done.is_set():
                return
            if got[0] in STOP_SIGNALS:
                break
        self._signalled_at = time.monotonic()
        name = signal.Signals(got[0]).name
        while True:
            bound = self.bound()
            remaining = max(self._signalled_at, self._last) + bound - time.monotonic()
            if remaining <= 0:
                break
            if self._done.wait(remaining):
                return
        sys.stdout.flush()
        sys.stderr.write(
            f"{self.prefix} (rank {self.comm.rank} of {self.comm.size}): no step finished within "
            f"{bound:.0f} s of {name} (another rank is stopped or hung): aborting all "
            f"{self.comm.size} processes; the last checkpoint saved is left as it was\n"
        )
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_SECONDS)
        self.comm.abort(self.code)

    def __exit__(self, *exc) -> bool:
        if self._thread is None:
            return False
        self._done.set()
        signal.set_wakeup_fd(self._previous_fd)
        try:
            self._writer.send(b"\0")  # wake the thread if it still waits for a signal
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._reader.close()
        self._writer.close()
        self._thread = None
        return False


__all__ = ["STOP_TIMEOUT_SECONDS", "STOP_TIMEOUT_VARIABLE", "StopWatchdog", "stop_timeout"]
