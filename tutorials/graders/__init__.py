"""The exercises' graders: one verdict line per exercise, and messages that say what is wrong.

A notebook's grader cell hands the learner's function or class to a check written here::

    from graders import grade, nb02
    grade("linear", nb02.linear, MyLinear)

and prints one line::

    exercise linear: PASS (worst of 6 sub-checks: error 2.8e-10, below the tolerance 1e-06)
    exercise linear: FAIL (weight.grad after a second backward: error 5.0e-01, not below the tolerance 1e-06)
    exercise linear: FAIL (forward, 5x7 input: your function returned None; is a `return` missing?)
    exercise linear: not done yet (the stub above raises NotImplementedError: write it, then rerun ...)

A check (``nbNN.<exercise>``, one module per notebook) takes the learner's object and returns either one
error or a dict ``{sub-check name: error}``; an error is a float judged against the tolerance, or a pair
``(error, tolerance)`` for a sub-check with its own. Before any value is compared, :func:`compare` checks
what a wrong answer most often gets wrong first (None, the type, the shape, the dtype, NaN), and raises
:class:`Mismatch` naming the sub-check. Because the checks live here and not in the notebooks,
``tests/`` runs every one against a list of plausible wrong solutions, and against the published one
(``judge`` returns the verdict without printing it).
"""

from __future__ import annotations

import linecache
import re
import traceback
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = ["Mismatch", "Outcome", "compare", "during", "grade", "judge", "relative_error"]


class Mismatch(Exception):
    """The learner's answer has the wrong kind, shape or dtype; the message says which sub-check and how."""


@dataclass
class Outcome:
    verdict: str  # "PASS", "FAIL" or "not done yet"
    line: str  # the one line that grade() prints

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"


def relative_error(a, b) -> float:
    """||a - b|| / max(||a||, ||b||): 0 when equal, about 1 when unrelated (no shape or dtype checks: see
    :func:`compare`)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise Mismatch(f"{a.size} values, expected {b.size}")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-30))


def compare(what: str, got, expected, *, dtype: bool = True) -> float:
    """The relative error of ``got`` against ``expected``, once ``got`` is the right kind of answer.

    Raises :class:`Mismatch` (naming ``what``, the sub-check) for None, a non-array, a wrong shape (saying
    so when it is the transpose), a different dtype (``dtype=False`` accepts any floating dtype), and NaN
    or infinite entries."""
    if got is None:
        raise Mismatch(f"{what}: your function returned None; is a `return` missing?")
    expected = np.asarray(expected)
    if isinstance(got, (tuple, list)) and expected.ndim > 0 and len(got) != expected.shape[0]:
        raise Mismatch(
            f"{what}: got a {type(got).__name__} of {len(got)} items, expected an array of shape "
            f"{expected.shape}"
        )
    try:
        got = np.asarray(got)
    except Exception as exc:
        raise Mismatch(
            f"{what}: got a {type(got).__name__}, expected an array of shape {expected.shape}"
        ) from exc
    if got.dtype == object:
        raise Mismatch(f"{what}: got an array of Python objects, expected numbers of shape {expected.shape}")
    if got.shape != expected.shape:
        hint = " (the transpose?)" if got.ndim == 2 and got.shape == expected.shape[::-1] else ""
        raise Mismatch(f"{what}: shape {got.shape}, expected {expected.shape}{hint}")
    if expected.dtype.kind == "f" and got.dtype.kind != "f":
        raise Mismatch(f"{what}: dtype {got.dtype}, expected floating point ({expected.dtype})")
    if dtype and expected.dtype.kind == "f" and got.dtype != expected.dtype:
        raise Mismatch(
            f"{what}: dtype {got.dtype}, expected {expected.dtype} (keep the input's dtype: "
            f"{got.dtype} loses the precision this check needs)"
        )
    if got.dtype.kind in "fc" and not np.all(np.isfinite(got)):
        raise Mismatch(f"{what}: contains NaN or infinite values")
    return relative_error(got, expected)


@contextmanager
def during(what: str):
    """Names the sub-check in which the learner's code raised: ``with during("backward, stride 2"): ...``
    makes an exception's verdict line start with that name (the innermost ``during`` wins)."""
    try:
        yield
    except (NotImplementedError, Mismatch):
        raise
    except Exception as exc:
        if not hasattr(exc, "_grader_subcheck"):
            try:
                exc._grader_subcheck = what
            except AttributeError:  # an exception type without attributes: left unnamed
                pass
        raise


def judge(name: str, check, *args, tolerance: float = 1e-6) -> Outcome:
    """Runs ``check(*args)`` and decides; never raises for the learner's mistakes."""
    try:
        errors = check(*args)
    except NotImplementedError:
        return Outcome(
            "not done yet",
            f"exercise {name}: not done yet (the stub above raises "
            f"NotImplementedError: write it, then rerun that cell and this one)",
        )
    except Mismatch as exc:
        return Outcome("FAIL", f"exercise {name}: FAIL ({exc})")
    except Exception as exc:  # a learner's bug: say what and where, do not stop the notebook
        what = getattr(exc, "_grader_subcheck", None)
        label = f"{what}: " if what else ""
        return Outcome("FAIL", f"exercise {name}: FAIL ({label}{type(exc).__name__}: {exc}{_where(exc)})")
    if not isinstance(errors, dict):
        errors = {"": errors}
    judged = []  # (sub-check, error, its tolerance)
    for what, error in errors.items():
        error, limit = error if isinstance(error, tuple) else (error, tolerance)
        judged.append((what, float(error), limit))
    failed = [(what, error, limit) for what, error, limit in judged if not error < limit]  # NaN fails
    if failed:
        what, error, limit = failed[0]
        more = f"; {len(failed) - 1} more sub-checks failed" if len(failed) > 1 else ""
        label = f"{what}: " if what else ""
        return Outcome(
            "FAIL",
            f"exercise {name}: FAIL ({label}error {error:.2e}, not below the tolerance {limit:.0e}{more})",
        )
    what, error, limit = max(judged, key=lambda item: item[1] / item[2])
    scope = f"worst of {len(judged)} sub-checks: " if len(judged) > 1 else ""
    return Outcome(
        "PASS", f"exercise {name}: PASS ({scope}error {error:.2e}, below the tolerance {limit:.0e})"
    )


def grade(name: str, check, *args, tolerance: float = 1e-6):
    """Prints the verdict line of :func:`judge`; returns True (PASS), False (FAIL) or None (not done)."""
    outcome = judge(name, check, *args, tolerance=tolerance)
    print(outcome.line)
    return None if outcome.verdict == "not done yet" else outcome.passed


# A notebook cell's code has a file name like /tmp/ipykernel_123/4567.py (ipykernel) or <ipython-input-3-...>.
_CELL = re.compile(r"ipykernel_\d+|<ipython-input-")


def _where(exc: BaseException) -> str:
    """', at line N of your cell: `source`' for the innermost frame of the learner's own cell, if any."""
    cells = [frame for frame in traceback.extract_tb(exc.__traceback__) if _CELL.search(frame.filename)]
    if not cells:
        return ""
    frame = cells[-1]
    source = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    return (
        f", at line {frame.lineno} of your cell: `{source}`"
        if source
        else f", at line {frame.lineno} of your cell"
    )
