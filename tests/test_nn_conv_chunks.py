"""Conv2d unrolls the batch in chunks with reused buffers: the result must not depend on the chunking."""
import numpy as np
import pytest

import nn


def _run(layer, x, grad):
    layer.weight.grad[...] = 0
    layer.bias.grad[...] = 0
    out = layer.forward(x)
    dx = layer.backward(grad)
    return out, dx, layer.weight.grad.copy(), layer.bias.grad.copy()


@pytest.mark.parametrize("groups,padding,stride", [(1, 0, 4), (2, 2, 1), (2, 1, 2)])
def test_chunked_conv_equals_one_chunk(monkeypatch, groups, padding, stride):
    rng = np.random.default_rng(0)
    layer = nn.Conv2d(4, 6, 3, stride=stride, padding=padding, groups=groups,
                      dtype=np.float64, rng=rng)
    x = rng.standard_normal((7, 4, 11, 11))
    grad = rng.standard_normal(layer.output_shape(x.shape))
    whole = _run(layer, x, grad)
    per_image = 4 * 9 * np.prod(layer.output_shape(x.shape)[2:]) * 8
    monkeypatch.setattr(nn.Conv2d, "CHUNK_BYTES", int(3 * per_image))   # chunks of 3, 3, 1 images
    assert [p.stop - p.start for p in layer._chunks(x)[0]] == [3, 3, 1]
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
