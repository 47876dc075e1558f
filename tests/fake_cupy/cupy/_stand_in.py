"""The stand-in's counters: what the real CuPy would have done on the device, per call site.

    from cupy import _stand_in
    _stand_in.reset()
    ...                                  # run some code under the stand-in
    c = _stand_in.counts()               # a snapshot
    c.syncs["nn/loss.py:57"], c.total("launches")
    print(_stand_in.report())

Each field is a ``collections.Counter`` keyed by the call site ``"relative/path.py:LINE"``: the
first frame outside the stand-in package, its path relative to the current directory.

- ``launches``: one per array-producing or array-writing operation (a ufunc call or ufunc method,
  a reduction, a matmul, a copy, a fill, a creation other than ``empty``, an indexed read that
  gathers or an indexed write); a result that is a view of an input (basic slicing, reshape without
  copy, transpose, ``as_strided``, ``astype(copy=False)`` of the same dtype) and allocation alone
  (``empty``) cost none. A ``cupy.fuse`` call counts one, whatever runs inside it. The real CuPy
  may launch more than one kernel for some of these (sort, argsort, matmul of many batches):
  the count is a floor.
- ``syncs``: every device-to-host read (``get()``, ``asnumpy``, ``int()``/``float()``/``bool()``
  of an array, ``.item()``, ``.tolist()``, ``.tobytes()``, printing, formatting), every operation
  whose output size depends on the data (boolean-mask indexing, ``nonzero`` and relatives), and
  every explicit host wait (``Device``/``Stream``/``Event.synchronize()``,
  ``runtime.deviceSynchronize()``), from any thread.
- ``uploads``: every host-to-device copy (``asarray``/``array`` of host data, ``ndarray.set``, a
  NumPy or list index).
- ``off_main_thread_launches``: the launches made from a thread other than the main thread.
- ``float64_results``: the launches (and uploads) whose result is float64.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
from dataclasses import dataclass, field

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
FIELDS = ("syncs", "uploads", "launches", "off_main_thread_launches", "float64_results")


@dataclass
class Counts:
    syncs: collections.Counter = field(default_factory=collections.Counter)
    uploads: collections.Counter = field(default_factory=collections.Counter)
    launches: collections.Counter = field(default_factory=collections.Counter)
    off_main_thread_launches: collections.Counter = field(default_factory=collections.Counter)
    float64_results: collections.Counter = field(default_factory=collections.Counter)

    def total(self, name: str) -> int:
        """The sum over every call site of one field (e.g. ``total("syncs")``)."""
        if name not in FIELDS:
            raise ValueError(f"field must be one of {FIELDS}, got {name!r}")
        return sum(getattr(self, name).values())


_lock = threading.Lock()
_counts = Counts()
_quiet = threading.local()  # depth of the fused regions on this thread (nothing counts inside)


def reset() -> None:
    """Set every counter to zero."""
    global _counts
    with _lock:
        _counts = Counts()


def counts() -> Counts:
    """A snapshot of the counters (later operations do not change it)."""
    with _lock:
        return Counts(*(collections.Counter(getattr(_counts, name)) for name in FIELDS))


def report() -> str:
    """The counters as lines of text: per field its total, then its call sites, most first."""
    snapshot = counts()
    lines = []
    for name in FIELDS:
        counter = getattr(snapshot, name)
        lines.append(f"{name}: {snapshot.total(name)}")
        for site, n in counter.most_common():
            lines.append(f"  {n:6d}  {site}")
    return "\n".join(lines)


def _call_site() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "?"
    path = frame.f_code.co_filename
    try:
        rel = os.path.relpath(path)
    except ValueError:
        rel = path
    return f"{path if rel.startswith('..') else rel}:{frame.f_lineno}"


def _add(name: str, site: str) -> None:
    with _lock:
        getattr(_counts, name)[site] += 1


def quiet() -> bool:
    return getattr(_quiet, "depth", 0) > 0


class fused_region:
    """Inside: nothing counts (the whole region is one launch, counted by the caller)."""

    def __enter__(self):
        _quiet.depth = getattr(_quiet, "depth", 0) + 1

    def __exit__(self, *exc):
        _quiet.depth -= 1


def count_launch(dtype=None) -> None:
    if quiet():
        return
    site = _call_site()
    _add("launches", site)
    if threading.current_thread() is not threading.main_thread():
        _add("off_main_thread_launches", site)
    if dtype is not None and dtype == "float64":
        _add("float64_results", site)


def count_sync() -> None:
    if not quiet():
        _add("syncs", _call_site())


def count_upload(dtype=None) -> None:
    if quiet():
        return
    site = _call_site()
    _add("uploads", site)
    if dtype is not None and dtype == "float64":
        _add("float64_results", site)
