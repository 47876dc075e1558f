"""Conv2d's fast path (nn/unroll.py: strided im2col, two-pass col2im, chunks, scratch buffers, kept
columns) against the plain reference: nn.im2col / nn.col2im and nn.conv.conv2d_reference, which are
themselves checked against test_nn_layers.naive_conv and the adjoint identities of a linear map."""

import numpy as np
import pytest
from test_nn_layers import naive_conv

import nn
from nn.conv import conv2d_reference, conv2d_reference_backward
from nn.unroll import Unroller, col2im, col2im_two_pass, im2col, im2col_strided

# (N, C, H, W), F, kernel, stride, padding, groups: square and not, strided, padded, grouped.
CASES = [
    ((2, 3, 9, 9), 4, (3, 3), (1, 1), (0, 0), 1),
    ((3, 4, 11, 11), 6, (3, 3), (2, 2), (1, 1), 2),
    ((2, 6, 13, 10), 6, (5, 3), (1, 2), (2, 1), 3),
    ((1, 3, 23, 23), 8, (11, 11), (4, 4), (0, 0), 1),
    ((4, 2, 7, 12), 4, (2, 4), (3, 1), (1, 2), 2),
]


def _case(shape, f, kernel, stride, padding, groups, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    weight = rng.standard_normal((f, shape[1] // groups) + kernel)
    bias = rng.standard_normal(f)
    return rng, x, weight, bias


@pytest.mark.parametrize("shape,f,kernel,stride,padding,groups", CASES)
def test_strided_im2col_and_two_pass_col2im_equal_the_plain_ones(shape, f, kernel, stride, padding, groups):
    rng, x, _, _ = _case(shape, f, kernel, stride, padding, groups)
    cols = im2col(x, kernel, stride, groups)
    np.testing.assert_array_equal(im2col_strided(x, kernel, stride, groups), cols)
    c = rng.standard_normal(cols.shape)
    plain = col2im(c, x.shape, kernel, stride)
    np.testing.assert_allclose(col2im_two_pass(c, x.shape, kernel, stride), plain, rtol=1e-12, atol=1e-12)
    # Taking x as the padded image: the padding is cut off, and the result written into ``out``
    # of any layout (here the middle rows of a channels-last batch), nothing around it touched.
    (ph, pw), (n, ch, hp, wp) = padding, x.shape
    if hp > 2 * ph and wp > 2 * pw:
        batch = np.full((n + 2, hp - 2 * ph, wp - 2 * pw, ch), 7.0).transpose(0, 3, 1, 2)
        out = batch[1:-1]
        assert col2im_two_pass(c, x.shape, kernel, stride, padding, out=out) is out
        np.testing.assert_allclose(out, plain[:, :, ph : hp - ph, pw : wp - pw], rtol=1e-12, atol=1e-12)
        assert (batch[0] == 7).all() and (batch[-1] == 7).all()


def test_nn_im2col_and_col2im_are_the_plain_ones():
    assert nn.im2col is im2col and nn.col2im is col2im


@pytest.mark.parametrize("shape,f,kernel,stride,padding,groups", CASES)
def test_reference_forward_is_the_naive_convolution(shape, f, kernel, stride, padding, groups):
    _, x, weight, bias = _case(shape, f, kernel, stride, padding, groups)
    np.testing.assert_allclose(
        conv2d_reference(x, weight, bias, stride, padding, groups),
        naive_conv(x, weight, bias, stride, padding, groups),
        rtol=1e-10,
        atol=1e-10,
    )


@pytest.mark.parametrize("shape,f,kernel,stride,padding,groups", CASES)
def test_reference_gradients_are_the_adjoints(shape, f, kernel, stride, padding, groups):
    """The convolution is linear in x and in W, so for any U, V: <g, conv(U, W)> = <dx, U> and
    <g, conv(x, V)> = <dW, V>; and <g, b broadcast> = <db, b>."""
    rng, x, weight, bias = _case(shape, f, kernel, stride, padding, groups)
    grad_out = rng.standard_normal(naive_conv(x, weight, None, stride, padding, groups).shape)
    dx, dw, db = conv2d_reference_backward(x, weight, grad_out, stride, padding, groups)
    u, v = rng.standard_normal(x.shape), rng.standard_normal(weight.shape)
    np.testing.assert_allclose(
        np.sum(grad_out * naive_conv(u, weight, None, stride, padding, groups)), np.sum(dx * u), rtol=1e-10
    )
    np.testing.assert_allclose(
        np.sum(grad_out * naive_conv(x, v, None, stride, padding, groups)), np.sum(dw * v), rtol=1e-10
    )
    np.testing.assert_allclose(np.sum(grad_out * bias.reshape(1, -1, 1, 1)), np.sum(db * bias), rtol=1e-10)


def _layer(shape, f, kernel, stride, padding, groups, weight, bias):
    layer = nn.Conv2d(shape[1], f, kernel, stride=stride, padding=padding, groups=groups, dtype=np.float64)
    layer.weight.data[...] = weight
    layer.bias.data[...] = bias
    return layer


@pytest.mark.parametrize("keep", [True, False], ids=["kept-columns", "unrolled-again"])
@pytest.mark.parametrize("chunk_images", [None, 1, 2], ids=["one-chunk", "chunks-of-1", "chunks-of-2"])
@pytest.mark.parametrize("shape,f,kernel,stride,padding,groups", CASES)
def test_conv2d_equals_the_reference(
    monkeypatch, shape, f, kernel, stride, padding, groups, chunk_images, keep
):
    rng, x, weight, bias = _case(shape, f, kernel, stride, padding, groups)
    layer = _layer(shape, f, kernel, stride, padding, groups, weight, bias)
    if chunk_images is not None:
        per_image = layer.unroller._column_bytes(x)
        monkeypatch.setattr(Unroller, "CHUNK_BYTES", chunk_images * per_image)
        assert layer.unroller.chunks(x)[0] == slice(0, min(chunk_images, shape[0]))
    if not keep:
        monkeypatch.setattr(Unroller, "KEEP_COLUMNS_BYTES", 0)
    out = layer.forward(x)
    assert (layer.unroller.kept is not None) == (keep and len(layer.unroller.chunks(x)) == 1)
    np.testing.assert_allclose(
        out, conv2d_reference(x, weight, bias, stride, padding, groups), rtol=1e-12, atol=1e-12
    )
    grad_out = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_reference_backward(x, weight, grad_out, stride, padding, groups)
    for _ in range(2):  # backward twice after one forward: the kept columns must survive the first
        layer.zero_grad()
        np.testing.assert_allclose(layer.backward(grad_out), dx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.weight.grad, dw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.bias.grad, db, rtol=1e-12, atol=1e-12)


def test_conv2d_in_eval_mode_and_without_input_gradient_equals_the_reference():
    shape, f, kernel, stride, padding, groups = CASES[1]
    rng, x, weight, bias = _case(shape, f, kernel, stride, padding, groups, seed=3)
    layer = _layer(shape, f, kernel, stride, padding, groups, weight, bias)
    layer.eval()
    np.testing.assert_allclose(
        layer.forward(x), conv2d_reference(x, weight, bias, stride, padding, groups), rtol=1e-12, atol=1e-12
    )
    assert layer.unroller.kept is None
    layer.train()
    layer.input_grad = False
    layer.forward(x)
    grad_out = rng.standard_normal(layer.output_shape(x.shape))
    assert layer.backward(grad_out) is None
    _, dw, db = conv2d_reference_backward(x, weight, grad_out, stride, padding, groups)
    np.testing.assert_allclose(layer.weight.grad, dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, db, rtol=1e-12, atol=1e-12)
