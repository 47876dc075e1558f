"""One code path for NumPy (CPU) and CuPy (GPU).

Every layer asks its input which array module it belongs to::

    xp = get_array_module(x)      # numpy or cupy
    out = xp.maximum(x, 0)

so the same line runs on either device. Nothing here is a global switch: the
device of a computation is the device of its arrays, and a module is moved with
``module.to("cuda")`` / ``module.to("cpu")``.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

# In type hints: a NumPy or CuPy array (CuPy is optional, so no narrower type is named).
Array = Any

DEVICES = ("cpu", "cuda")

_cupy = None
_cupy_import_error = None


def _import_cupy() -> ModuleType | None:
    """Import CuPy once; remember why it failed so the error can say so."""
    global _cupy, _cupy_import_error
    if _cupy is None and _cupy_import_error is None:
        try:
            import cupy  # noqa: F401  (optional dependency)

            _cupy = cupy
        except Exception as exc:  # ImportError, or a broken CUDA install
            _cupy_import_error = exc
    return _cupy


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    cupy = _import_cupy()
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def check_device(device: str) -> str:
    """Validate a device name; for "cuda", say exactly what is missing."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda":
        cupy = _import_cupy()
        if cupy is None:
            raise RuntimeError(
                "device 'cuda' needs CuPy, which could not be imported "
                f"({_cupy_import_error}). Install it with `pip install -e .[gpu]` "
                "(cupy-cuda12x) on a machine with an NVIDIA GPU, or use device 'cpu'."
            )
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            raise RuntimeError(
                f"CuPy is installed but no CUDA GPU is usable ({exc}); use device 'cpu'."
            ) from exc
        if count == 0:
            raise RuntimeError("CuPy is installed but no CUDA GPU is visible; use device 'cpu'.")
    return device


def get_array_module(x: Array) -> ModuleType:
    """numpy for a NumPy array (or anything else), cupy for a CuPy array.

    A CuPy array exists only once ``cupy`` has been imported, by whoever made it, so the module
    already imported is asked (whatever the order of imports was), and nothing is imported here.
    """
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, getattr(cupy, "ndarray", ())):
        return cupy
    return np


def device_of(x: Array) -> str:
    """ "cuda" for a CuPy array, "cpu" otherwise."""
    return "cuda" if get_array_module(x) is not np else "cpu"


def asnumpy(x: Array) -> np.ndarray:
    """A NumPy array with the same values (copies from the GPU if needed)."""
    if get_array_module(x) is not np:
        return x.get()
    return np.asarray(x)


def to_device(x: Array, device: str) -> Array:
    """Return ``x`` on ``device`` ("cpu" or "cuda"), copying only when it moves."""
    check_device(device)
    if device == "cpu":
        return asnumpy(x)
    return _cupy.asarray(x)


def is_floating(x: Array) -> bool:
    return x.dtype.kind == "f"


def array_module(device: str) -> ModuleType:
    """The array module of ``device``: numpy for "cpu", cupy for "cuda" (``check_device`` first)."""
    check_device(device)
    return np if device == "cpu" else _cupy
