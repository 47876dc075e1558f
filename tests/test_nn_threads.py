"""nn.threads: splitting element-wise passes over the batch gives the same numbers as one thread."""

import numpy as np
import pytest

import nn
from nn import threads


@pytest.fixture
def thread_count():
    before = threads.get_num_threads()
    yield threads.set_num_threads
    threads.set_num_threads(before)


def test_over_batch_covers_every_image_once(thread_count):
    thread_count(3)
    x = np.arange(7 * 5000, dtype=np.float64).reshape(7, 5000)
    out = np.zeros_like(x)

    def double(part_in, part_out):
        part_out += 2 * part_in

    threads.over_batch(double, x, out)
    np.testing.assert_array_equal(out, 2 * x)


def test_over_batch_passes_errors_on(thread_count):
    thread_count(2)

    def fail(part):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        threads.over_batch(fail, np.zeros((4, 1 << 15)))


def test_set_num_threads_rejects_nonsense():
    with pytest.raises(ValueError, match="positive integer"):
        threads.set_num_threads(0)


def test_blas_thread_setting_sizes_the_pool(monkeypatch):
    monkeypatch.setattr(threads, "_num_threads", None)
    monkeypatch.setitem(__import__("sys").modules, "threadpoolctl", None)  # force the variables
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert threads.get_num_threads() == 1


@pytest.mark.parametrize(
    "layer",
    [nn.ReLU(), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5, groups=2)],
    ids=["relu", "maxpool", "lrn"],
)
def test_layers_give_the_same_result_with_one_and_two_threads(thread_count, layer):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 8, 27, 27)).astype(np.float32)
    x[:, :, 3, 4] = x[:, :, 3, 5] = 9.0  # ties: first maximum wins either way
    results = []
    for count in (1, 2):
        thread_count(count)
        out = layer.forward(x)
        grad = layer.backward(np.ones_like(out))
        results.append((out, grad))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
