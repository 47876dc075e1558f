"""Kernel launches of the flat SGD step and of max-pooling backward, counted by the CuPy stand-in
(tests/fake_cupy; skipped where ``cupy`` is the real one or absent)."""

import numpy as np
import pytest

import nn

stand_in = pytest.importorskip("cupy._stand_in", reason="needs the CuPy stand-in (tests/fake_cupy) as cupy")


@pytest.fixture(autouse=True)
def cuda():
    nn.check_device("cuda")  # CuPy imported through nn.backend, as the CLI does


def launches(run):
    run()  # once to warm any cache
    stand_in.reset()
    run()
    return stand_in.counts().total("launches")


def test_sgd_step_and_zero_grad_are_a_few_launches_whatever_the_number_of_parameters():
    import cupy

    shapes = [(64, 3, 11, 11), (64,), (192, 64, 5, 5), (192,), (1000, 512), (1000,)] * 4  # 24 parameters
    params = [nn.Parameter(cupy.asarray(np.ones(s, np.float32))) for s in shapes]
    optimizer = nn.SGD(params, lr=0.01)
    assert launches(optimizer.zero_grad) == 1
    assert launches(optimizer.step) == 6  # one slice of GPU_CHUNK: six whole-buffer passes


def test_max_pool_backward_is_a_few_launches():
    import cupy

    pool = nn.MaxPool2d(3, 2)
    x = cupy.asarray(np.random.default_rng(0).standard_normal((4, 8, 27, 27)).astype(np.float32))
    grad = cupy.ones(pool(x).shape, dtype=cupy.float32)
    assert launches(lambda: pool.backward(grad)) <= 8  # the reference: 5 per offset, 45 in all
