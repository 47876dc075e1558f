"""A strict CPU stand-in for CuPy 14, for testing the GPU code path where no GPU is.

Put ``tests/fake_cupy`` on ``PYTHONPATH`` and ``import cupy`` gets this package. The project's
test and CI machinery does so only after checking that the real CuPy does not import: the real
CuPy, where present, always wins.

What it models, where host/device mistakes show:

- ``cupy.ndarray`` is its own type wrapping a NumPy array (never a NumPy subclass);
- ``np.asarray``/``np.array``/``__array__`` of it raise TypeError, as in CuPy;
- a NumPy array (0-d included) mixed into a ufunc, an operator or a function raises TypeError;
  so does basic-index assignment from a NumPy array;
- NumPy functions called on it dispatch to the cupy function of the same name
  (``__array_function__``/``__array_ufunc__``);
- the namespace, the ndarray's attributes and the ufunc methods are limited to CuPy 14.2's real
  names (``cupy_14_names.json``, written from the real wheel by ``dump_cupy_names.py``): any other
  name raises AttributeError; a real name the stand-in does not implement raises AttributeError
  saying "not modelled by the stand-in";
- one device: ``cuda.runtime.getDeviceCount()`` is 1; ``Device``, ``Stream``, ``Event``,
  ``get_current_stream``, ``alloc_pinned_memory`` exist as API;
- it counts, per call site, device-to-host syncs, host-to-device uploads, kernel launches,
  launches from threads other than the main one, and float64 results (``cupy._stand_in``).

What it does NOT model: asynchrony (every operation completes before it returns, so a missing
stream wait or event goes unnoticed), memory (no device memory, no pool, no out-of-memory),
numerics (NumPy computes every value: CuPy's summation order, TF32 and cuBLAS/cuDNN results
differ), compilation (no kernel is compiled or cached; ``ElementwiseKernel`` and ``RawKernel``
are not modelled), streams beyond their API (no ordering, no overlap), NCCL, and more than one
device.
"""

from __future__ import annotations

import functools as _functools
import json as _json
import numbers as _numbers
import os as _os
import sys as _sys

import numpy as _np

from . import _stand_in

__version__ = "14.2.0"
_IS_STAND_IN = True

with open(
    _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "cupy_14_names.json")
) as _fh:
    _NAMES = _json.load(_fh)
_REAL = frozenset(_NAMES["cupy"])
_REAL_NDARRAY = frozenset(_NAMES["cupy.ndarray"])
_REAL_UFUNC = frozenset(_NAMES["cupy.ufunc"])
_UFUNC_NAMES = frozenset(_NAMES["cupy ufuncs"])
_NUMPY_OWN = frozenset(_NAMES["cupy names that are numpy's"])


def _not_modelled(owner: str, name: str) -> AttributeError:
    return AttributeError(f"{owner}.{name} exists in CuPy 14.2 but is not modelled by the stand-in")


def _not_real(owner: str, name: str) -> AttributeError:
    return AttributeError(f"{owner} has no attribute {name!r} (not a CuPy 14.2 name)")


def _unsupported(value) -> TypeError:
    return TypeError(f"Unsupported type {type(value)}")


# ---------------------------------------------------------------------------------------------
# Unwrapping arguments and wrapping results


def _unwrap(value, inputs):
    """The NumPy value behind an argument; NumPy arrays are refused (they live on the host)."""
    if isinstance(value, ndarray):
        inputs.append(value._a)
        return value._a
    if isinstance(value, _np.ndarray):
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, inputs) for v in value)
    return value


def _wrap(a):
    if isinstance(a, _np.ndarray):
        out = object.__new__(ndarray)
        out._a = a
        return out
    if isinstance(a, _np.generic):  # CuPy gives 0-d arrays where NumPy gives scalars
        return _wrap(_np.asarray(a))
    if isinstance(a, tuple):
        return tuple(_wrap(v) for v in a)
    if isinstance(a, list):
        return [_wrap(v) for v in a]
    return a


def _is_view(result, inputs) -> bool:
    return any(_np.may_share_memory(result, a) for a in inputs)


def _count_results(result, inputs, wrote: bool) -> None:
    """One launch if the call made or wrote device data (see ``_stand_in`` for the rule)."""
    arrays = [
        r
        for r in (result if isinstance(result, tuple) else (result,))
        if isinstance(r, (_np.ndarray, _np.generic))
    ]
    if wrote:
        _stand_in.count_launch(arrays[0].dtype if arrays else None)
        return
    fresh = [a for a in arrays if isinstance(a, _np.generic) or not _is_view(a, inputs)]
    if fresh:
        _stand_in.count_launch(fresh[0].dtype)


def _call(func, args, kwargs, *, writes=False, launches=True):
    inputs: list = []
    np_args = _unwrap(list(args), inputs)
    np_kwargs = {k: _unwrap(v, inputs) for k, v in kwargs.items()}
    out_given = np_kwargs.get("out") is not None
    result = func(*np_args, **np_kwargs)
    if launches:
        _count_results(result, inputs, writes or out_given or result is None)
    if out_given:
        return kwargs["out"]
    return _wrap(result)


# ---------------------------------------------------------------------------------------------
# ndarray


def _binary(ufunc_name, reflected=False):
    def op(self, other):
        u = _ufunc(ufunc_name)
        return u(other, self) if reflected else u(self, other)

    op.__name__ = f"__{'r' if reflected else ''}{ufunc_name}__"
    return op


def _inplace(ufunc_name):
    def op(self, other):
        _ufunc(ufunc_name)(self, other, out=self)
        return self

    return op


def _unary(ufunc_name):
    def op(self):
        return _ufunc(ufunc_name)(self)

    return op


def _method(name, *, writes=False, np_function=None):
    np_method = getattr(_np.ndarray, name) if np_function is None else np_function

    def method(self, *args, **kwargs):
        return _call(np_method, (self, *args), kwargs, writes=writes)

    method.__name__ = name
    return method


def _key(key):
    """An index for NumPy: our arrays unwrapped; NumPy and list indices are uploads."""
    parts = key if isinstance(key, tuple) else (key,)
    out, advanced, mask = [], False, False
    for k in parts:
        if isinstance(k, ndarray):
            advanced = True
            mask = mask or k._a.dtype == bool
            out.append(k._a)
        elif isinstance(k, (_np.ndarray, list)):
            arr = _np.asarray(k)
            _stand_in.count_upload(arr.dtype)
            advanced = True
            mask = mask or arr.dtype == bool
            out.append(arr)
        else:
            out.append(k)
    return (tuple(out) if isinstance(key, tuple) else out[0]), advanced, mask


class ndarray:
    """CuPy's array, held as a NumPy array on the host (``._a``)."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise _not_modelled("cupy.ndarray", "__init__(memptr=, strides=)")
        self._a = _np.empty(shape, dtype, order=order)

    def __getattr__(self, name):
        if name in _REAL_NDARRAY:
            raise _not_modelled("cupy.ndarray", name)
        raise _not_real("'cupy.ndarray' object", name)

    # --- properties (no device work) ---
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: _wrap(self._a.T))
    mT = property(lambda self: _wrap(_np.swapaxes(self._a, -1, -2)))
    real = property(lambda self: _wrap(self._a.real))
    imag = property(lambda self: _wrap(self._a.imag))
    base = property(lambda self: None if self._a.base is None else _wrap(self._a.base))
    device = property(lambda self: cuda.Device(0))

    # --- host conversions: refused, or a sync ---
    def __array__(self, *args, **kwargs):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly."
        )

    def get(self, stream=None, order="C", out=None, blocking=True):
        _stand_in.count_sync()
        if out is not None:
            if not isinstance(out, _np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            if out.shape != self.shape or out.dtype != self.dtype:
                raise ValueError(
                    f"Shape/dtype mismatch: out {out.shape} {out.dtype}, array {self.shape} {self.dtype}"
                )
            _np.copyto(out, self._a)
            return out
        return _np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        _stand_in.count_upload(arr.dtype)
        _np.copyto(self._a, arr)

    def item(self, *args):
        _stand_in.count_sync()
        return self._a.item(*args)

    def tolist(self):
        _stand_in.count_sync()
        return self._a.tolist()

    def tobytes(self, order="C"):
        _stand_in.count_sync()
        return self._a.tobytes(order)

    def _scalar(self, kind):
        if self._a.size != 1:
            if kind is bool:
                raise ValueError(
                    "The truth value of an array with more than one element is ambiguous. Use a.any() or a.all()"
                )
            raise TypeError("only length-1 arrays can be converted to Python scalars")
        _stand_in.count_sync()
        return kind(self._a.reshape(()).item())

    def __bool__(self):
        return self._scalar(bool)

    def __int__(self):
        return self._scalar(int)

    def __float__(self):
        return self._scalar(float)

    def __complex__(self):
        return self._scalar(complex)

    def __repr__(self):
        _stand_in.count_sync()
        return repr(self._a)

    def __str__(self):
        _stand_in.count_sync()
        return str(self._a)

    def __format__(self, spec):
        _stand_in.count_sync()
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    __hash__ = None

    # --- NumPy interoperation ---
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        if name not in _UFUNC_NAMES:
            return NotImplemented
        u = _ufunc(name)
        if method == "__call__":
            return u(*inputs, **kwargs)
        if method not in _REAL_UFUNC:
            return NotImplemented
        return getattr(u, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        target = _this_module
        try:
            for part in func.__module__.split(".")[1:]:
                target = getattr(target, part)
            target = getattr(target, func.__name__)
        except AttributeError:
            return NotImplemented
        return target(*args, **kwargs)

    # --- indexing ---
    def __getitem__(self, key):
        np_key, advanced, mask = _key(key)
        if mask:
            _stand_in.count_sync()  # the output's size is read back from the device
        result = self._a[np_key]
        if isinstance(result, _np.generic) and not advanced:  # CuPy: a 0-d view, not a scalar
            result = self._a[(np_key if isinstance(np_key, tuple) else (np_key,)) + (Ellipsis,)]
        if advanced or not _is_view(result, [self._a]):
            _stand_in.count_launch(result.dtype)
        return _wrap(result)

    def __setitem__(self, key, value):
        np_key, _, mask = _key(key)
        if isinstance(value, _np.ndarray):
            raise TypeError(f"Unsupported type {type(value)} assigned to cupy.ndarray")
        inputs: list = []
        self._a[np_key] = _unwrap(value, inputs)
        _stand_in.count_launch(self._a.dtype)

    # --- operators (through the ufuncs, so mixing rules are theirs) ---
    __add__, __radd__, __iadd__ = _binary("add"), _binary("add", True), _inplace("add")
    __sub__, __rsub__, __isub__ = _binary("subtract"), _binary("subtract", True), _inplace("subtract")
    __mul__, __rmul__, __imul__ = _binary("multiply"), _binary("multiply", True), _inplace("multiply")
    __truediv__, __rtruediv__ = _binary("true_divide"), _binary("true_divide", True)
    __itruediv__ = _inplace("true_divide")
    __floordiv__, __rfloordiv__ = _binary("floor_divide"), _binary("floor_divide", True)
    __ifloordiv__ = _inplace("floor_divide")
    __mod__, __rmod__, __imod__ = _binary("remainder"), _binary("remainder", True), _inplace("remainder")
    __pow__, __rpow__, __ipow__ = _binary("power"), _binary("power", True), _inplace("power")
    __and__, __rand__, __iand__ = (
        _binary("bitwise_and"),
        _binary("bitwise_and", True),
        _inplace("bitwise_and"),
    )
    __or__, __ror__, __ior__ = _binary("bitwise_or"), _binary("bitwise_or", True), _inplace("bitwise_or")
    __xor__, __rxor__, __ixor__ = (
        _binary("bitwise_xor"),
        _binary("bitwise_xor", True),
        _inplace("bitwise_xor"),
    )
    __lshift__, __rlshift__ = _binary("left_shift"), _binary("left_shift", True)
    __rshift__, __rrshift__ = _binary("right_shift"), _binary("right_shift", True)
    __eq__, __ne__ = _binary("equal"), _binary("not_equal")
    __lt__, __le__ = _binary("less"), _binary("less_equal")
    __gt__, __ge__ = _binary("greater"), _binary("greater_equal")
    __neg__, __pos__, __abs__, __invert__ = (
        _unary("negative"),
        _unary("positive"),
        _unary("absolute"),
        _unary("invert"),
    )

    def __matmul__(self, other):
        return _this_module.matmul(self, other)

    def __rmatmul__(self, other):
        return _this_module.matmul(other, self)

    def __divmod__(self, other):
        return _ufunc("divmod")(self, other)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    # --- methods with NumPy's meaning ---
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        result = self._a.astype(
            dtype, order=order, copy=copy, **({} if casting is None else {"casting": casting})
        )
        if result is not self._a:
            _stand_in.count_launch(result.dtype)
        return self if result is self._a else _wrap(result)

    def view(self, dtype=None):
        return _wrap(self._a.view() if dtype is None else self._a.view(dtype))

    def fill(self, value):
        if isinstance(value, _np.ndarray):
            raise _unsupported(value)
        self._a.fill(value)
        _stand_in.count_launch(self._a.dtype)

    def nonzero(self):
        _stand_in.count_sync()
        return _call(_np.ndarray.nonzero, (self,), {})

    def reshape(self, *shape, order="C"):
        return _call(_np.reshape, (self, shape[0] if len(shape) == 1 else shape), {"order": order})


for _name in (
    "all any argmax argmin argpartition argsort clip conj conjugate copy cumprod cumsum diagonal dot flatten "
    "max mean min partition prod ravel repeat round searchsorted squeeze std sum swapaxes take trace "
    "transpose var"
).split():
    setattr(ndarray, _name, _method(_name))
for _name in ("sort", "put"):
    setattr(ndarray, _name, _method(_name, writes=True))
ndarray.ptp = _method("ptp", np_function=_np.ptp)  # NumPy 2's array has no ptp method; CuPy's has


# ---------------------------------------------------------------------------------------------
# ufuncs


class ufunc:
    """A CuPy ufunc: NumPy's of the same name, with CuPy's argument rules."""

    __slots__ = ("_u", "name")

    def __init__(self, np_ufunc, name):
        self._u = np_ufunc
        self.name = name

    def __getattr__(self, name):
        if name in _REAL_UFUNC:
            raise _not_modelled("cupy.ufunc", name)
        raise _not_real("'cupy.ufunc' object", name)

    nin = property(lambda self: self._u.nin)
    nout = property(lambda self: self._u.nout)
    nargs = property(lambda self: self._u.nargs)
    types = property(lambda self: self._u.types)

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    @staticmethod
    def _check(args):
        for a in args:
            if not isinstance(a, (ndarray, _numbers.Number, _np.generic)) and a is not None:
                raise _unsupported(a)

    def __call__(self, *args, **kwargs):
        self._check(args)
        if isinstance(kwargs.get("out"), tuple) and len(kwargs["out"]) == 1:
            kwargs["out"] = kwargs["out"][0]
        return _call(self._u, args, kwargs, writes=True)

    def _ufunc_method(method):  # noqa: N805  (a decorator inside the class body)
        def run(self, *args, **kwargs):
            self._check(args[:1])
            return _call(getattr(self._u, method), args, kwargs, writes=True)

        run.__name__ = method
        return run

    reduce = _ufunc_method("reduce")
    accumulate = _ufunc_method("accumulate")
    reduceat = _ufunc_method("reduceat")
    outer = _ufunc_method("outer")
    at = _ufunc_method("at")
    del _ufunc_method


@_functools.cache
def _ufunc(name):
    np_u = getattr(_np, name)
    if not isinstance(np_u, _np.ufunc):  # a few of CuPy's ufuncs are plain functions in NumPy
        return _function(name)
    return ufunc(np_u, name)


# ---------------------------------------------------------------------------------------------
# functions

_ALLOCATE_ONLY = frozenset({"empty", "empty_like"})
_WRITES = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"})
_DATA_DEPENDENT_SIZE = frozenset({"nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract"})


@_functools.cache
def _function(name):
    np_func = getattr(_np, name)

    @_functools.wraps(np_func)
    def function(*args, **kwargs):
        if name in _DATA_DEPENDENT_SIZE:
            _stand_in.count_sync()
        return _call(np_func, args, kwargs, writes=name in _WRITES, launches=name not in _ALLOCATE_ONLY)

    function.__module__ = "cupy"
    return function


def _upload(a, dtype=None):
    """Host data to the device: a copy, counted."""
    arr = _np.array(a, dtype=dtype, copy=True)
    _stand_in.count_upload(arr.dtype)
    return _wrap(arr)


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    if isinstance(a, ndarray):
        result = _np.asarray(a._a, dtype=dtype, order=order)
        if copy or result is not a._a:
            _stand_in.count_launch(result.dtype)
            return _wrap(_np.array(result, copy=True))
        return a
    return _upload(a, dtype)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        result = _np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        if result is not obj._a:
            _stand_in.count_launch(result.dtype)
        return obj if result is obj._a else _wrap(result)
    return _upload(_np.array(obj, dtype=dtype, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise _unsupported(a)
    result = _np.ascontiguousarray(a._a, dtype=dtype)
    if result is a._a:
        return a
    _stand_in.count_launch(result.dtype)
    return _wrap(result)


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return _this_module if any(isinstance(a, ndarray) for a in args) else _np


def copyto(dst, src, casting="same_kind", where=None):
    if not isinstance(dst, ndarray):
        raise _unsupported(dst)
    if isinstance(src, _np.ndarray):  # CuPy takes a NumPy array only when it holds one value
        if src.size != 1:
            raise ValueError("non-scalar numpy.ndarray cannot be used for copyto")
        src = src.reshape(())[()]
    inputs: list = []
    _np.copyto(
        dst._a,
        _unwrap(src, inputs),
        casting=casting,
        where=_unwrap(where, inputs) if where is not None else True,
    )
    _stand_in.count_launch(dst.dtype)


def matmul(a, b, out=None, **kwargs):
    """``cupy.matmul``, with the launches CuPy 14's ``_core/_routines_linalg.pyx`` makes.

    Up to 2-D: one cuBLAS GEMM, after a copy of an operand that is neither C- nor F-contiguous.
    Batched (3-D and more): a copy of every operand that is not C-contiguous or not of the result's
    dtype, then one ``gemmStridedBatchedEx``, or, when a batch dimension broadcasts, three pointer
    kernels and ``sgemmBatched``; a copy into ``out`` when the product cannot be written there.
    """
    for x in (a, b, out):
        if x is not None and not isinstance(x, ndarray):
            raise _unsupported(x)
    if kwargs:
        raise _not_modelled("cupy.matmul", "(" + ", ".join(kwargs) + "=)")
    result = _np.matmul(a._a, b._a)
    launches = 1
    if max(a.ndim, b.ndim) <= 2:
        launches += sum(
            x.ndim == 2 and not (x.flags.c_contiguous or x.flags.f_contiguous) for x in (a._a, b._a)
        )
    else:
        launches += sum(not x.flags.c_contiguous or x.dtype != result.dtype for x in (a._a, b._a))
        batch_a, batch_b = a.shape[:-2] if a.ndim > 1 else (), b.shape[:-2] if b.ndim > 1 else ()
        width = max(len(batch_a), len(batch_b))
        batch_a, batch_b = (1,) * (width - len(batch_a)) + batch_a, (1,) * (width - len(batch_b)) + batch_b
        if batch_a != batch_b:
            launches += 3
    if out is not None:
        if not (out._a.flags.c_contiguous and out.dtype == result.dtype) or any(
            _np.may_share_memory(out._a, x) for x in (a._a, b._a)
        ):
            launches += 1
        _np.copyto(out._a, result)
    for _ in range(launches):
        _stand_in.count_launch(result.dtype)
    return out if out is not None else _wrap(result)


def is_available():
    return True


def fuse(*args, **kwargs):
    """``cupy.fuse``: the function runs as it is (one launch counted per call on device arrays)."""

    def decorate(func):
        @_functools.wraps(func)
        def fused(*call_args, **call_kwargs):
            on_device = any(isinstance(a, ndarray) for a in call_args)
            if not on_device:
                return func(*call_args, **call_kwargs)
            with _stand_in.fused_region():
                result = func(*call_args, **call_kwargs)
            _stand_in.count_launch(getattr(result, "dtype", None))
            return result

        return fused

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return decorate(args[0])
    return decorate


from . import cuda as cuda  # noqa: E402  (they use the names above)
from . import lib as lib  # noqa: E402

_this_module = _sys.modules[__name__]
_DEFINED = frozenset(n for n in globals() if not n.startswith("_"))


def __getattr__(name):
    if name not in _REAL:
        raise _not_real("module 'cupy'", name)
    if name in _NUMPY_OWN:
        return getattr(_np, name)
    if name in _UFUNC_NAMES and hasattr(_np, name):
        return _ufunc(name)
    if callable(getattr(_np, name, None)) and not isinstance(getattr(_np, name), type):
        return _function(name)
    raise _not_modelled("cupy", name)


def __dir__():
    return sorted(_DEFINED | _REAL)
