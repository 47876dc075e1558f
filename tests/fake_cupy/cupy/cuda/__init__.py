"""``cupy.cuda`` for one stand-in device: devices, streams, events and pinned memory as API only.

Every operation of the stand-in has finished when it returns, so streams order nothing and
events time host work; what this module keeps is the API, so that code written for overlap
runs, and the host waits (``synchronize``) count as syncs.
"""

from __future__ import annotations

import threading as _threading
import time as _time

from .. import _NAMES, _not_modelled, _not_real, _stand_in
from . import runtime

_REAL = frozenset(_NAMES["cupy.cuda"])
_current = _threading.local()


class Device:
    """The one device (id 0)."""

    def __init__(self, device=None):
        device = 0 if device is None else int(device)
        if device != 0:
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {device}")
        self.id = device

    compute_capability = "90"

    def use(self):
        pass

    def synchronize(self):
        _stand_in.count_sync()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class Event:
    """An event; ``record`` notes the host time (nothing runs later than it is issued)."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._time = None
        self._disable_timing = disable_timing

    def record(self, stream=None):
        self._time = _time.perf_counter()

    def synchronize(self):
        _stand_in.count_sync()

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events (host time, under the stand-in)."""
    if start_event._time is None or end_event._time is None:
        raise runtime.CUDARuntimeError("cudaErrorInvalidResourceHandle: event not recorded")
    return (end_event._time - start_event._time) * 1000.0


class Stream:
    """A stream; usable as a context manager, which makes it the thread's current stream."""

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self._null = null
        self._non_blocking = non_blocking
        self._previous = []

    is_non_blocking = property(lambda self: self._non_blocking)
    ptds = False
    priority = 0

    def synchronize(self):
        _stand_in.count_sync()

    def record(self, event=None):
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):
        pass

    @property
    def done(self):
        return True

    def use(self):
        _current.stream = self
        return self

    def __enter__(self):
        self._previous.append(get_current_stream())
        _current.stream = self
        return self

    def __exit__(self, *exc):
        _current.stream = self._previous.pop()
        return False

    def __repr__(self):
        return f"<Stream {'null' if self._null else id(self)} (stand-in)>"


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    return getattr(_current, "stream", Stream.null)


def get_device_id():
    return 0


def is_available():
    return True


class PinnedMemoryPointer(bytearray):
    """Page-locked host memory (a plain bytearray here): ``np.frombuffer`` views it."""

    @property
    def size(self):
        return len(self)


def alloc_pinned_memory(size):
    return PinnedMemoryPointer(int(size))


_DEFINED = frozenset(n for n in globals() if not n.startswith("_"))


def __getattr__(name):
    if name in _REAL:
        raise _not_modelled("cupy.cuda", name)
    raise _not_real("module 'cupy.cuda'", name)
