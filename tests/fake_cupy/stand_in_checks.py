"""Checks of the CuPy stand-in itself. Run under it only (tests/test_fake_cupy.py does so, in a
process of their own, so that the stand-in never enters the main test process):

    PYTHONPATH=tests/fake_cupy:. python -m pytest -q tests/fake_cupy/stand_in_checks.py
"""

import json
import os
import sys
import threading
from pathlib import Path

import cupy
import numpy as np
import pytest
from cupy import _stand_in

HERE = Path(__file__).resolve().parent
NAMES = json.loads((HERE / "cupy_14_names.json").read_text())


def _site(back=1):
    """The call site ``back`` lines above the caller's line, as the counters write it."""
    frame = sys._getframe(1)
    return f"{os.path.relpath(frame.f_code.co_filename)}:{frame.f_lineno - back}"


def test_this_is_the_stand_in():
    assert cupy._IS_STAND_IN and Path(cupy.__file__).resolve().parent == HERE / "cupy"
    assert cupy.cuda.runtime.getDeviceCount() == 1
    assert cupy.cuda.runtime.getDeviceProperties(0)["name"] == b"stand-in"


def test_the_array_is_its_own_type():
    x = cupy.zeros((2, 3), dtype=cupy.float32)
    assert type(x) is cupy.ndarray and not isinstance(x, np.ndarray)
    assert np.ndarray not in cupy.ndarray.__mro__
    assert x.shape == (2, 3) and x.dtype == np.float32 and x.size == 6 and x.ndim == 2


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda x: x.__array__(), np.ascontiguousarray])
def test_implicit_conversion_to_numpy_raises(convert):
    with pytest.raises(TypeError, match="Implicit conversion"):
        convert(cupy.ones(3))


def _mixes():
    h = np.ones((2, 3), dtype=np.float32)
    zero_d = np.array(2.0, dtype=np.float32)
    return [
        ("cupy + numpy", lambda x: x + h),
        ("numpy + cupy", lambda x: h + x),
        ("cupy * 0-d numpy", lambda x: x * zero_d),
        ("0-d numpy * cupy", lambda x: zero_d * x),
        ("cupy.add", lambda x: cupy.add(x, h)),
        ("cupy.maximum 0-d", lambda x: cupy.maximum(x, zero_d)),
        ("np.maximum", lambda x: np.maximum(x, h)),
        ("in-place +=", lambda x: x.__iadd__(h)),
        ("matmul", lambda x: cupy.matmul(x, h.T)),
        ("@", lambda x: x @ h.T),
        ("concatenate", lambda x: cupy.concatenate([x, h])),
        ("np.concatenate", lambda x: np.concatenate([x, h])),
        ("where", lambda x: cupy.where(x > 0, x, h)),
        ("take with out=", lambda x: cupy.multiply(x, 2, out=h)),
        ("basic-index assignment", lambda x: x.__setitem__(slice(None), h)),
        ("basic-index assignment, 0-d", lambda x: x.__setitem__((0, 0), zero_d)),
        ("fill", lambda x: x.fill(zero_d)),
        ("ascontiguousarray of numpy", lambda x: cupy.ascontiguousarray(h)),
    ]


@pytest.mark.parametrize("name, mix", _mixes(), ids=[name for name, _ in _mixes()])
def test_mixing_numpy_arrays_in_raises(name, mix):
    with pytest.raises(TypeError):
        mix(cupy.ones((2, 3), dtype=cupy.float32))


def test_scalars_mix_as_in_cupy():
    x = cupy.ones(3, dtype=cupy.float32)
    assert (x * 2).dtype == np.float32 and (x + np.float32(1)).dtype == np.float32
    assert (x + np.float64(1)).dtype == np.float64  # NumPy 2's rule for a NumPy scalar
    assert cupy.allclose(x * 2, cupy.full(3, 2.0, dtype=cupy.float32))
    cupy.copyto(x, np.array([5.0], dtype=np.float32))  # CuPy takes a one-value NumPy array here
    assert x.get().tolist() == [5.0, 5.0, 5.0]
    with pytest.raises(ValueError):
        cupy.copyto(x, np.ones(3, dtype=np.float32))


def test_numpy_functions_dispatch_to_cupy():
    x = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
    for result in (np.sum(x), np.exp(x), np.concatenate([x, x]), np.maximum(x, 0), np.transpose(x)):
        assert type(result) is cupy.ndarray
    assert float(np.sum(x)) == 15.0
    assert type(x.sum()) is cupy.ndarray and x.sum().shape == ()  # a 0-d array, never a scalar


def test_names_are_cupy_14s():
    with pytest.raises(AttributeError, match="not a CuPy 14.2 name"):
        cupy.no_such_function  # noqa: B018
    with pytest.raises(AttributeError, match="not modelled by the stand-in"):
        cupy.ElementwiseKernel  # noqa: B018
    with pytest.raises(AttributeError, match="not modelled by the stand-in"):
        cupy.get_default_memory_pool  # noqa: B018
    x = cupy.ones(3)
    with pytest.raises(AttributeError, match="not a CuPy 14.2 name"):
        x.resize  # noqa: B018  (NumPy has it, CuPy does not)
    with pytest.raises(AttributeError, match="not modelled by the stand-in"):
        x.data  # noqa: B018
    with pytest.raises(AttributeError, match="not a CuPy 14.2 name"):
        cupy.add.identity  # noqa: B018
    with pytest.raises(AttributeError, match="not a CuPy 14.2 name"):
        cupy.cuda.synchronize  # noqa: B018
    with pytest.raises(AttributeError, match="not modelled by the stand-in"):
        cupy.cuda.runtime.memGetInfo  # noqa: B018
    assert cupy.float32 is np.float32 and cupy.newaxis is None and cupy.pi == np.pi


def test_everything_the_stand_in_defines_is_a_real_name():
    def public(names):
        return {n for n in names if not n.startswith("_")}

    assert public(vars(cupy)) <= set(NAMES["cupy"])
    assert public(vars(cupy.cuda)) <= set(NAMES["cupy.cuda"])
    assert public(vars(cupy.cuda.runtime)) <= set(NAMES["cupy.cuda.runtime"])
    assert public(vars(cupy.lib.stride_tricks)) <= set(NAMES["cupy.lib.stride_tricks"])
    own = set(vars(cupy.ndarray)) - {"__getattr__", "_a", "_scalar"}  # the stand-in's machinery
    assert own <= set(NAMES["cupy.ndarray"]), own - set(NAMES["cupy.ndarray"])
    own = public(vars(cupy.ufunc)) | {"reduce", "outer", "at", "accumulate", "reduceat"}
    assert own <= set(NAMES["cupy.ufunc"])
    for instance in (cupy.cuda.Stream(non_blocking=True), cupy.cuda.Event(), cupy.cuda.Device()):
        cls = type(instance)
        defined = public(vars(cls)) | public(getattr(instance, "__dict__", {}))
        assert defined <= set(NAMES[f"cupy.cuda.{cls.__name__}"]), cls


def test_the_device_api_runs():
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    pinned = cupy.cuda.alloc_pinned_memory(host.nbytes)
    staging = np.frombuffer(pinned, dtype=np.float32, count=host.size).reshape(host.shape)
    staging[...] = host
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        assert cupy.cuda.get_current_stream() is stream
        x = cupy.empty(host.shape, dtype=cupy.float32)
        x.set(staging, stream=stream)
        done = stream.record()
    assert cupy.cuda.get_current_stream() is cupy.cuda.Stream.null
    cupy.cuda.get_current_stream().wait_event(done)
    event = cupy.cuda.Event()
    event.record(stream)
    event.synchronize()
    stream.synchronize()
    cupy.cuda.Device(0).synchronize()
    assert cupy.cuda.get_elapsed_time(done, event) >= 0
    out = np.empty_like(host)
    assert x.get(out=out) is out and np.array_equal(out, host)
    assert np.array_equal(cupy.asarray(host, blocking=True).get(), host)
    assert cupy.cuda.get_device_id() == 0 and x.device == cupy.cuda.Device(0)
    with pytest.raises(TypeError):
        x.set(host.astype(np.float64))
    with pytest.raises(TypeError):
        x.set(cupy.asarray(host))


def test_a_host_copy_is_a_copy():
    host = np.zeros(3, dtype=np.float32)
    x = cupy.asarray(host)
    host[:] = 1
    assert x.get().tolist() == [0.0, 0.0, 0.0]


def test_counters_count_a_known_snippet_exactly():
    _stand_in.reset()
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = cupy.asarray(host)
    upload = _site()
    y = x * 2 + 1
    two = _site()
    v = y.T[1:]  # a view: no launch
    s = v.sum()
    one = _site()
    f = float(s)
    sync = _site()
    z = cupy.empty((3, 4), dtype=cupy.float32)  # allocation alone: no launch
    z[...] = y
    write = _site()
    d = x.astype(cupy.float64)
    f64 = _site()
    worker = threading.Thread(target=lambda: x + 1)
    worker_site = _site()
    worker.start()
    worker.join()
    picked = y[y > 3]  # a boolean mask: a gather, and a sync for its size
    mask = _site()
    text = repr(z)
    shown = _site()

    c = _stand_in.counts()
    assert c.uploads == {upload: 1}
    assert c.launches == {two: 2, one: 1, write: 1, f64: 1, worker_site: 1, mask: 2}
    assert c.off_main_thread_launches == {worker_site: 1}
    assert c.float64_results == {f64: 1}
    assert c.syncs == {sync: 1, mask: 1, shown: 1}
    assert (c.total("launches"), c.total("syncs"), c.total("uploads")) == (8, 3, 1)
    assert f == 117.0 and d.dtype == np.float64 and picked.shape == (10,) and "array" in text
    _stand_in.reset()
    assert _stand_in.counts().total("launches") == 0
    assert c.total("launches") == 8  # a snapshot is not changed by later operations


def test_report_lists_totals_and_sites():
    _stand_in.reset()
    x = cupy.ones(4)
    site = _site()
    int(x.sum())
    text = _stand_in.report()
    assert "launches: 2" in text and "syncs: 1" in text and site in text
    with pytest.raises(ValueError):
        _stand_in.counts().total("kernels")


def test_fuse_is_one_launch_and_plain_python_on_numpy():
    @cupy.fuse()
    def axpy(a, x, y):
        return a * x + y

    x = cupy.ones(3, dtype=cupy.float32)
    _stand_in.reset()
    out = axpy(2, x, x)
    assert _stand_in.counts().total("launches") == 1 and out.get().tolist() == [3.0, 3.0, 3.0]
    host = axpy(2, np.ones(3), np.ones(3))
    assert type(host) is np.ndarray and host.tolist() == [3.0, 3.0, 3.0]


def test_an_element_is_a_0d_view():
    x = cupy.arange(6).reshape(2, 3)
    _stand_in.reset()
    element, row = x[1, 2], x[1]
    assert element.shape == () and row.shape == (3,) and _stand_in.counts().total("launches") == 0
    assert int(element) == 5


def test_host_reads_are_syncs():
    x = cupy.arange(4)
    _stand_in.reset()
    x.get(), cupy.asnumpy(x), x[1].item(), x.tolist(), bool(x[0]), int(x[1]), f"{x[2]:d}", str(x)
    assert _stand_in.counts().total("syncs") == 8
    with pytest.raises(TypeError):
        range(x[1])  # CuPy's array has no __index__


def test_matmul_counts_the_copies_and_pointer_kernels_cupy_makes():
    w = cupy.ones((2, 3, 4), dtype=cupy.float32)
    cols = cupy.ones((2, 4, 5), dtype=cupy.float32)
    grad = cupy.ones((2, 3, 5), dtype=cupy.float32)
    cases = [
        (lambda: cupy.matmul(w, cols), 1),  # gemmStridedBatchedEx alone
        (lambda: cupy.matmul(cols, grad.transpose(0, 2, 1)), 2),  # + a C-contiguous copy of grad^T
        (lambda: cupy.matmul(w[0], cols), 4),  # a broadcast batch: 3 pointer kernels + sgemmBatched
        (lambda: w[0] @ cols[0], 1),  # 2-D: one GEMM
        (lambda: w[0].T @ grad[0], 1),  # an F-contiguous operand needs no copy
        (lambda: w[0] @ cols[0][:, ::2], 2),  # neither C- nor F-contiguous: a copy
    ]
    for product, launches in cases:
        _stand_in.reset()
        result = product()
        assert _stand_in.counts().total("launches") == launches, (result.shape, launches)
    out = cupy.empty((2, 3, 5), dtype=cupy.float32)
    _stand_in.reset()
    assert cupy.matmul(w, cols, out=out) is out and _stand_in.counts().total("launches") == 1
    assert np.array_equal(out.get(), np.full((2, 3, 5), 4.0, dtype=np.float32))
