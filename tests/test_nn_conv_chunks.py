"""Conv2d unrolls the batch in chunks with reused buffers: the result must not depend on the chunking."""

import numpy as np
import pytest

import nn
from nn.unroll import Unroller


def _run(layer, x, grad):
    layer.weight.grad[...] = 0
    layer.bias.grad[...] = 0
    out = layer.forward(x)
    dx = layer.backward(grad)
    return out, dx, layer.weight.grad.copy(), layer.bias.grad.copy()


@pytest.mark.parametrize("groups,padding,stride", [(1, 0, 4), (2, 2, 1), (2, 1, 2)])
def test_chunked_conv_equals_one_chunk(monkeypatch, groups, padding, stride):
    rng = np.random.default_rng(0)
    layer = nn.Conv2d(4, 6, 3, stride=stride, padding=padding, groups=groups, dtype=np.float64, rng=rng)
    x = rng.standard_normal((7, 4, 11, 11))
    grad = rng.standard_normal(layer.output_shape(x.shape))
    whole = _run(layer, x, grad)
    per_image = 4 * 9 * np.prod(layer.output_shape(x.shape)[2:]) * 8
    monkeypatch.setattr(Unroller, "CHUNK_BYTES", int(3 * per_image))  # chunks of 3, 3, 1 images
    assert [p.stop - p.start for p in layer.unroller.chunks(x)] == [3, 3, 1]
    chunked = _run(layer, x, grad)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_reused_padding_buffer_is_clean_after_a_size_change():
    """A smaller input after a larger one: the old interior must not leak into the new border."""
    rng = np.random.default_rng(1)
    layer = nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    layer.forward(rng.standard_normal((2, 2, 9, 9)) + 100)
    small = rng.standard_normal((2, 2, 5, 5))
    fresh = nn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    fresh.weight.data[...] = layer.weight.data
    fresh.bias.data[...] = layer.bias.data
    np.testing.assert_allclose(layer.forward(small), fresh.forward(small), rtol=1e-12)


def test_two_threads_do_not_share_scratch_buffers():
    """Two models stepped at once in two threads (as alexnet.parallel.ThreadGroup runs the towers) give
    what each gives alone: the reused buffers belong to a thread, not to the module."""
    import threading

    rng = np.random.default_rng(1)
    layers = [
        nn.Conv2d(3, 8, 3, padding=1, dtype=np.float64, rng=np.random.default_rng(seed)) for seed in (2, 3)
    ]
    inputs = [rng.standard_normal((4, 3, 24, 24)) for _ in layers]
    grads = [rng.standard_normal(layer.output_shape(x.shape)) for layer, x in zip(layers, inputs)]
    alone = [_run(layer, x, g) for layer, x, g in zip(layers, inputs, grads)]
    together = [None, None]
    barrier = threading.Barrier(2)

    def work(i):
        barrier.wait()
        results = [_run(layers[i], inputs[i], grads[i]) for _ in range(20)]  # interleave many times
        together[i] = results

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(2):
        for repeat in together[i]:
            for a, b in zip(alone[i], repeat):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("groups,padding,stride", [(1, 0, 4), (2, 2, 1), (2, 1, 2)])
def test_kept_columns_give_the_recomputed_gradients(monkeypatch, groups, padding, stride):
    """Training keeps small column matrices for backward; the gradients are those of unrolling again,
    also when another layer runs in between and when backward runs twice after one forward."""
    rng = np.random.default_rng(4)
    layer = nn.Conv2d(4, 6, 3, stride=stride, padding=padding, groups=groups, dtype=np.float64, rng=rng)
    other = nn.Conv2d(4, 4, 3, padding=1, dtype=np.float64, rng=rng)  # shares the scratch buffers
    x = rng.standard_normal((3, 4, 11, 9))
    grad = rng.standard_normal(layer.output_shape(x.shape))
    recomputed = _run(layer, x, grad)  # default: kept (tiny)
    assert layer.unroller.kept is not None
    layer.weight.grad[...] = 0
    layer.bias.grad[...] = 0
    layer.forward(x)
    other.forward(x + 1)
    other.backward(rng.standard_normal(other.output_shape(x.shape)))
    twice = [layer.backward(grad), layer.backward(grad)]
    weight_grad_twice = layer.weight.grad.copy()
    monkeypatch.setattr(Unroller, "KEEP_COLUMNS_BYTES", 0)
    unrolled_again = _run(layer, x, grad)
    assert layer.unroller.kept is None
    for a, b in zip(recomputed, unrolled_again):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(twice[0], unrolled_again[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(twice[1], unrolled_again[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weight_grad_twice, 2 * unrolled_again[2], rtol=1e-12)


def test_eval_mode_keeps_no_columns():
    layer = nn.Conv2d(2, 3, 3, dtype=np.float64, rng=np.random.default_rng(5))
    layer.eval()
    layer.forward(np.ones((2, 2, 6, 6)))
    assert layer.unroller.kept is None
