"""``cupy.lib.stride_tricks``: views with chosen strides (no launch: a view is no kernel)."""

from __future__ import annotations

import numpy as np

from .. import _wrap
from .. import ndarray as _ndarray


def _view(make, x, *args, **kwargs):
    if not isinstance(x, _ndarray):
        raise TypeError(f"Unsupported type {type(x)}")
    return _wrap(make(x._a, *args, **kwargs))


def as_strided(x, shape=None, strides=None):
    return _view(np.lib.stride_tricks.as_strided, x, shape=shape, strides=strides)


def sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    return _view(np.lib.stride_tricks.sliding_window_view, x, window_shape, axis=axis, writeable=writeable)
