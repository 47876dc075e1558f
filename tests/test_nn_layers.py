"""Each layer's forward pass against a naive implementation or a hand-computed case.

Every test runs on NumPy and, where a GPU is present, on CuPy (the ``device``
fixture); the naive references are plain loops over NumPy arrays.
"""

import numpy as np
import pytest

import nn
from nn.backend import asnumpy
from nn.conv import col2im, im2col


def naive_conv(x, weight, bias, stride, padding, groups):
    """One output element at a time. stride and padding: an int or an (h, w) pair; bias may be None
    (also the reference of tests/test_nn_fuzz.py)."""
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, f, ho, wo))
    per_group = f // groups
    for b in range(n):
        for k in range(f):
            g = k // per_group
            for y in range(ho):
                for z in range(wo):
                    window = x_pad[b, g * cg : (g + 1) * cg, y * sh : y * sh + kh, z * sw : z * sw + kw]
                    out[b, k, y, z] = (window * weight[k]).sum() + (bias[k] if bias is not None else 0.0)
    return out


@pytest.mark.parametrize(
    "cin,cout,k,stride,pad,groups,h,w",
    [
        (3, 4, 3, 1, 0, 1, 5, 6),
        (2, 6, 3, 2, 1, 1, 7, 8),
        (4, 6, 5, 1, 2, 2, 6, 5),  # conv2-like: groups=2, pad 2
        (3, 4, 11, 4, 0, 1, 23, 19),  # conv1-like: 11x11 stride 4, non-square
        (6, 4, 3, 1, 1, 2, 4, 4),  # conv4/5-like
    ],
)
def test_conv_matches_naive_loops(device, to_dev, cin, cout, k, stride, pad, groups, h, w):
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, dtype=np.float64, rng=rng)
    nn.init.normal_(conv.bias, 1.0, rng)
    x = rng.normal(size=(2, cin, h, w))
    expected = naive_conv(x, conv.weight.data, conv.bias.data, stride, pad, groups)
    out = conv.to(device)(to_dev(x))
    assert out.shape == expected.shape
    np.testing.assert_allclose(asnumpy(out), expected, rtol=1e-12, atol=1e-12)


def test_conv_keeps_float32(device, to_dev):
    conv = nn.Conv2d(3, 4, 3).to(device)
    out = conv(to_dev(np.ones((1, 3, 5, 5), np.float32)))
    assert out.dtype == np.float32
    assert conv.backward(out).dtype == np.float32


def test_im2col_and_col2im_are_adjoint(device, to_dev):
    """<im2col(x), c> = <x, col2im(c)>: col2im really is im2col's transpose."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 9, 8))
    cols = asnumpy(im2col(to_dev(x), (3, 3), (2, 2), 2))
    c = rng.normal(size=cols.shape)
    back = asnumpy(col2im(to_dev(c), x.shape, (3, 3), (2, 2)))
    assert np.isclose((cols * c).sum(), (x * back).sum(), rtol=1e-12)


@pytest.mark.parametrize(
    "shape,kernel,stride,groups",
    [
        ((1, 3, 7, 6), (5, 5), (1, 1), 1),  # conv2-like offsets, batch 1, non-square
        ((2, 4, 9, 8), (3, 2), (2, 3), 2),  # strided, rectangular kernel, two groups
        ((3, 40, 5, 5), (3, 3), (1, 1), 2),  # enough channels to be split between threads
    ],
)
def test_col2im_matches_a_naive_loop(shape, kernel, stride, groups):
    """Every column entry is added back to the pixel it was copied from (overlaps accumulate)."""
    rng = np.random.default_rng(2)
    n, c, hp, wp = shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = rng.normal(size=(groups, c // groups * kh * kw, n * ho * wo))
    per_entry = cols.reshape(c, kh, kw, n, ho, wo)
    expected = np.zeros(shape)
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                for b in range(n):
                    for y in range(ho):
                        for x in range(wo):
                            expected[b, ch, y * sh + i, x * sw + j] += per_entry[ch, i, j, b, y, x]
    np.testing.assert_allclose(col2im(cols, shape, kernel, stride), expected, rtol=1e-12, atol=1e-12)


def test_im2col_column_is_a_window():
    x = np.arange(2 * 2 * 5 * 5, dtype=np.float64).reshape(2, 2, 5, 5)
    cols = im2col(x, (3, 3), (2, 2), 1)  # (1, 2*3*3, 2*2*2)
    # column (n=1, y=1, x=0) is the window at rows 2..4, cols 0..2 of image 1
    column = cols[0][:, 1 * 4 + 1 * 2 + 0]
    np.testing.assert_array_equal(column, x[1, :, 2:5, 0:3].ravel())


def test_relu_and_tanh(device, to_dev):
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    relu = nn.ReLU()
    np.testing.assert_array_equal(asnumpy(relu(to_dev(x))), [[0, 0, 0, 0.5, 3.0]])
    np.testing.assert_array_equal(asnumpy(relu.backward(to_dev(np.ones_like(x)))), [[0, 0, 0, 1, 1]])
    tanh = nn.Tanh()
    np.testing.assert_allclose(asnumpy(tanh(to_dev(x))), np.tanh(x))
    np.testing.assert_allclose(asnumpy(tanh.backward(to_dev(np.ones_like(x)))), 1 - np.tanh(x) ** 2)


def naive_maxpool(x, k, s):
    n, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((n, c, ho, wo))
    for y in range(ho):
        for z in range(wo):
            out[:, :, y, z] = x[:, :, y * s : y * s + k, z * s : z * s + k].max(axis=(2, 3))
    return out


@pytest.mark.parametrize("k,s,h,w", [(3, 2, 13, 13), (3, 2, 8, 11), (2, 2, 6, 6), (3, 1, 5, 7)])
def test_maxpool_matches_naive(device, to_dev, k, s, h, w):
    x = np.random.default_rng(2).normal(size=(2, 3, h, w))
    pool = nn.MaxPool2d(k, s)
    out = pool(to_dev(x))
    np.testing.assert_array_equal(asnumpy(out), naive_maxpool(x, k, s))


def test_maxpool_output_size_is_floor():
    # AlexNet: 55 -> 27 -> 13 -> 6 with z = 3, s = 2 (§3.4)
    pool = nn.MaxPool2d(3, 2)
    assert pool.output_shape((1, 1, 55, 55))[2:] == (27, 27)
    assert pool.output_shape((1, 1, 27, 27))[2:] == (13, 13)
    assert pool.output_shape((1, 1, 13, 13))[2:] == (6, 6)


def test_maxpool_gradient_goes_to_one_maximum_and_overlaps_accumulate(device, to_dev):
    # one 5x5 map, two overlapping 3x3 windows per axis; the 9 is the max of all four windows
    x = np.array(
        [[1, 2, 3, 0, 0], [0, 0, 0, 0, 0], [0, 0, 9, 0, 0], [0, 0, 0, 0, 0], [4, 4, 0, 0, 5]],
        dtype=np.float64,
    )[None, None]
    pool = nn.MaxPool2d(3, 2)
    out = pool(to_dev(x))
    np.testing.assert_array_equal(asnumpy(out)[0, 0], [[9, 9], [9, 9]])
    grad = pool.backward(to_dev(np.array([[[[1.0, 2.0], [3.0, 4.0]]]])))
    expected = np.zeros((5, 5))
    expected[2, 2] = 10.0  # all four windows send their gradient to the shared maximum
    np.testing.assert_array_equal(asnumpy(grad)[0, 0], expected)


def test_maxpool_ties_send_gradient_to_a_single_input(device, to_dev):
    x = np.ones((1, 1, 3, 3))
    pool = nn.MaxPool2d(3, 2)
    pool(to_dev(x))
    grad = asnumpy(pool.backward(to_dev(np.full((1, 1, 1, 1), 7.0))))
    assert grad.sum() == 7.0 and np.count_nonzero(grad) == 1
    assert grad[0, 0, 0, 0] == 7.0  # the first maximum in row-major order


@pytest.mark.parametrize(
    "k,s,shape",
    [
        (3, 2, (4, 6, 13, 13)),
        (3, 2, (3, 2, 8, 11)),
        (2, 2, (2, 3, 6, 7)),
        (3, 1, (2, 2, 5, 7)),
        ((3, 2), (2, 1), (70, 8, 27, 27)),
    ],
)
def test_maxpool_backward_equals_the_per_offset_reference_bit_for_bit(device, to_dev, k, s, shape):
    """The one scatter-add of MaxPool2d.backward against ``max_pool_backward_reference`` (one offset at
    a time), on inputs full of ties (three values only), in float32: the same winners and, on the CPU,
    the same sums in the same order. The last case is split over threads (nn.threads)."""
    from nn.pooling import max_pool_backward_reference

    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, size=shape).astype(np.float32)
    pool = nn.MaxPool2d(k, s)
    out = pool(to_dev(x))
    grad_out = rng.standard_normal(out.shape).astype(np.float32)
    ours = asnumpy(pool.backward(to_dev(grad_out)))
    reference = max_pool_backward_reference(x, asnumpy(out), grad_out, pool.kernel_size, pool.stride)
    if device == "cpu":
        np.testing.assert_array_equal(ours.view(np.int32), reference.view(np.int32))
    else:  # the GPU's scatter-add adds in any order
        np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-6)
    assert np.count_nonzero(reference) > 0.1 * reference.size


def naive_lrn(a, n, alpha, beta, k):
    """§3.3 written out with the sum's explicit bounds."""
    out = np.empty_like(a)
    channels = a.shape[1]
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        total = (a[:, lo : hi + 1] ** 2).sum(axis=1)
        out[:, i] = a[:, i] / (k + alpha * total) ** beta
    return out


@pytest.mark.parametrize("channels,alpha", [(8, 1e-4), (4, 1.0), (96, 0.3), (2, 1.0)])
def test_lrn_matches_the_paper_formula(device, to_dev, channels, alpha):
    a = np.abs(np.random.default_rng(3).normal(size=(2, channels, 3, 4))) * 3
    lrn = nn.LocalResponseNorm(5, alpha=alpha, beta=0.75, k=2.0)
    np.testing.assert_allclose(asnumpy(lrn(to_dev(a))), naive_lrn(a, 5, alpha, 0.75, 2.0), rtol=1e-12)


def test_lrn_groups_keep_the_window_inside_each_tower(device, to_dev):
    """groups=2: each half of the channels is normalized on its own (§3.2: one GPU's maps)."""
    a = np.abs(np.random.default_rng(5).normal(size=(2, 12, 3, 2))) * 3
    lrn = nn.LocalResponseNorm(5, alpha=0.5, beta=0.75, k=2.0, groups=2)
    expected = np.concatenate(
        [naive_lrn(a[:, :6], 5, 0.5, 0.75, 2.0), naive_lrn(a[:, 6:], 5, 0.5, 0.75, 2.0)], axis=1
    )
    np.testing.assert_allclose(asnumpy(lrn(to_dev(a))), expected, rtol=1e-12)
    # ...which differs from the window running across all 12 maps at the two towers' border
    across = naive_lrn(a, 5, 0.5, 0.75, 2.0)
    assert not np.allclose(across[:, 4:8], expected[:, 4:8])
    np.testing.assert_allclose(across[:, :4], expected[:, :4], rtol=1e-12)


def test_lrn_groups_must_divide_the_channels():
    with pytest.raises(ValueError, match="do not split into groups=2"):
        nn.LocalResponseNorm(groups=2)(np.ones((1, 5, 2, 2)))
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.LocalResponseNorm(groups=0)


def test_lrn_hand_computed():
    # three channels, one pixel, n = 3 (window i-1..i+1), alpha = 1, beta = 1, k = 1
    a = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    out = nn.LocalResponseNorm(3, alpha=1.0, beta=1.0, k=1.0)(a).ravel()
    np.testing.assert_allclose(out, [1 / (1 + 1 + 4), 2 / (1 + 1 + 4 + 9), 3 / (1 + 4 + 9)])


def test_lrn_alpha_convention():
    """The paper's alpha multiplies the sum; PyTorch/Caffe's multiplies the mean (alpha / n)."""
    a = np.random.default_rng(4).normal(size=(1, 7, 2, 2))
    paper = nn.LocalResponseNorm(5, alpha=5e-4)
    torch_style = nn.LocalResponseNorm(5, alpha=5e-4 * 5, alpha_over_n=True)
    np.testing.assert_allclose(paper(a), torch_style(a), rtol=1e-14)
    assert nn.LocalResponseNorm(5, alpha=1e-4).alpha == 1e-4


def test_dropout_train_and_eval(device, to_dev):
    x = np.ones((200, 100), np.float32)
    drop = nn.Dropout(0.5, rng=np.random.default_rng(5))
    out = asnumpy(drop(to_dev(x)))
    kept = out != 0
    assert 0.45 < kept.mean() < 0.55
    np.testing.assert_array_equal(out[kept], 2.0)  # inverted: kept units are divided by 1 - p
    grad = asnumpy(drop.backward(to_dev(np.full_like(x, 3.0))))
    np.testing.assert_array_equal(grad, np.where(kept, 6.0, 0.0))
    drop.eval()
    np.testing.assert_array_equal(asnumpy(drop(to_dev(x))), x)


def test_dropout_paper_mode_scales_at_test_time():
    x = np.ones((50, 40))
    drop = nn.Dropout(0.5, mode="paper", rng=np.random.default_rng(6))
    assert set(np.unique(drop(x))) <= {0.0, 1.0}
    drop.eval()
    np.testing.assert_array_equal(drop(x), 0.5 * x)


def test_dropout_is_reproducible_with_a_seed():
    x = np.ones((8, 8))
    a = nn.Dropout(0.5, rng=np.random.default_rng(7))(x)
    b = nn.Dropout(0.5, rng=np.random.default_rng(7))(x)
    np.testing.assert_array_equal(a, b)


def test_dropout_draws_its_mask_with_draw_mask_unless_given_a_mask_source():
    x = np.arange(1.0, 13.0).reshape(3, 4)
    drawn = nn.Dropout(0.25, rng=np.random.default_rng(9)).draw_mask((3, 4), np.float64)
    u = np.random.default_rng(9).random((3, 4), dtype=np.float32)  # the same numbers, by hand
    np.testing.assert_array_equal(drawn, (u >= 0.25) / 0.75)
    layer = nn.Dropout(0.25, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(layer(x), x * drawn)
    given = np.array([[0.0, 2.0, 0.0, 2.0]] * 3)
    layer.mask_source = lambda shape, dtype: given  # e.g. rows of a larger draw
    np.testing.assert_array_equal(layer(x), x * given)
    np.testing.assert_array_equal(layer.backward(np.ones((3, 4))), given)


def test_linear_and_flatten(device, to_dev):
    rng = np.random.default_rng(8)
    lin = nn.Linear(4, 3, dtype=np.float64, rng=rng)
    nn.init.normal_(lin.bias, 1.0, rng)
    x = rng.normal(size=(2, 4))
    lin.to(device)
    out = asnumpy(lin(to_dev(x)))
    np.testing.assert_allclose(out, x @ asnumpy(lin.weight.data).T + asnumpy(lin.bias.data))
    g = rng.normal(size=(2, 3))
    grad_x = asnumpy(lin.backward(to_dev(g)))
    np.testing.assert_allclose(grad_x, g @ asnumpy(lin.weight.data))
    np.testing.assert_allclose(asnumpy(lin.weight.grad), g.T @ x)
    np.testing.assert_allclose(asnumpy(lin.bias.grad), g.sum(axis=0))
    flat = nn.Flatten()
    y = rng.normal(size=(2, 3, 2, 2))
    np.testing.assert_array_equal(asnumpy(flat(to_dev(y))), y.reshape(2, 12))
    np.testing.assert_array_equal(asnumpy(flat.backward(to_dev(y.reshape(2, 12)))), y)


def test_backward_accumulates_parameter_gradients():
    rng = np.random.default_rng(9)
    lin = nn.Linear(3, 2, dtype=np.float64, rng=rng)
    x, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    lin(x)
    lin.backward(g)
    lin.backward(g)
    np.testing.assert_allclose(lin.weight.grad, 2 * g.T @ x)
    lin.zero_grad()
    assert not lin.weight.grad.any()


def test_softmax_cross_entropy_hand_computed(device, to_dev):
    loss = nn.SoftmaxCrossEntropyLoss()
    # equal logits: loss = log K; gradient (1/K - onehot) / N
    value = loss(to_dev(np.zeros((2, 4))), to_dev(np.array([1, 3])))
    assert value == pytest.approx(np.log(4))
    grad = asnumpy(loss.backward())
    expected = np.full((2, 4), 0.25)
    expected[0, 1] -= 1
    expected[1, 3] -= 1
    np.testing.assert_allclose(grad, expected / 2)


def test_softmax_cross_entropy_is_stable_for_large_logits():
    loss = nn.SoftmaxCrossEntropyLoss()
    value = loss.forward(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    assert value == pytest.approx(500.0)  # (0 + 1000) / 2
    assert np.isfinite(loss.backward()).all()


def test_sgd_is_the_papers_update_rule(device, to_dev):
    """v <- 0.9 v - 0.0005 eps w - eps g ;  w <- w + v (§5), two steps by hand."""
    w0, g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 2.0])
    param = nn.Parameter(to_dev(w0.copy()))
    opt = nn.SGD([param], lr=0.1, momentum=0.9, weight_decay=0.0005)
    param.grad[...] = to_dev(g1)
    opt.step()
    v1 = -0.0005 * 0.1 * w0 - 0.1 * g1
    w1 = w0 + v1
    np.testing.assert_allclose(asnumpy(param.data), w1)
    opt.lr = 0.01  # the rate is divided by 10
    param.grad[...] = to_dev(g2)
    opt.step()
    v2 = 0.9 * v1 - 0.0005 * 0.01 * w1 - 0.01 * g2
    np.testing.assert_allclose(asnumpy(param.data), w1 + v2)


def test_sgd_state_dict_resumes_exactly():
    rng = np.random.default_rng(10)
    grads = [rng.normal(size=3) for _ in range(4)]

    def run(steps, opt_state=None, w=None):
        param = nn.Parameter(np.zeros(3) if w is None else w.copy())
        opt = nn.SGD([param], lr=0.05)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        for g in steps:
            param.grad[...] = g
            opt.step()
        return param.data, opt.state_dict()

    straight, _ = run(grads)
    half, state = run(grads[:2])
    resumed, _ = run(grads[2:], state, half)
    np.testing.assert_array_equal(straight, resumed)


def test_reduce_on_plateau_divides_by_ten_three_times():
    param = nn.Parameter(np.zeros(1))
    opt = nn.SGD([param], lr=0.01)
    sched = nn.ReduceLROnPlateau(opt, patience=0, max_reductions=3)
    lrs = []
    for err in [0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7]:
        sched.step(err)
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-5, 1e-5])
    assert sched.reductions == 3 and sched.finished


def test_step_lr():
    opt = nn.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = nn.StepLR(opt, step_size=2, gamma=0.1)
    lrs = []
    for _ in range(5):
        sched.step()
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [1.0, 0.1, 0.1, 0.01, 0.01])


def test_initializers():
    rng = np.random.default_rng(11)
    w = nn.Parameter(np.zeros((256, 48, 5, 5), np.float32))
    nn.init.normal_(w, 0.01, rng)
    assert abs(w.data.std() - 0.01) < 2e-4 and abs(w.data.mean()) < 2e-4
    nn.init.kaiming_normal_(w, rng)
    assert abs(w.data.std() - np.sqrt(2 / (48 * 25))) < 1e-3
    nn.init.constant_(w, 1.0)
    assert (w.data == 1).all() and w.data.dtype == np.float32


def test_first_layer_can_skip_its_input_gradient():
    rng = np.random.default_rng(12)
    full = nn.Conv2d(3, 4, 5, stride=2, dtype=np.float64, rng=np.random.default_rng(0))
    first = nn.Conv2d(3, 4, 5, stride=2, dtype=np.float64, rng=np.random.default_rng(0), input_grad=False)
    x = rng.normal(size=(2, 3, 11, 11))
    g = rng.normal(size=full(x).shape)
    first(x)
    assert first.backward(g) is None
    assert full.backward(g) is not None
    np.testing.assert_allclose(first.weight.grad, full.weight.grad, rtol=1e-12)


def test_conv_weight_gradient_adds_into_a_gradient_array_of_any_layout():
    """Conv2d adds dW through a reshaped view of ``weight.grad``, which only a C-contiguous array
    allows; a gradient array of another layout (set by hand) must receive the same sum."""
    rng = np.random.default_rng(13)
    layers = [
        nn.Conv2d(4, 6, 3, padding=1, groups=2, dtype=np.float64, rng=np.random.default_rng(0))
        for _ in range(2)
    ]
    start = rng.normal(size=layers[0].weight.data.shape)
    layers[0].weight.grad = start.copy()
    layers[1].weight.grad = np.asfortranarray(start)
    assert not layers[1].weight.grad.flags.c_contiguous
    x = rng.normal(size=(2, 4, 5, 5))
    g = rng.normal(size=(2, 6, 5, 5))
    for layer in layers:
        layer(x)
        layer.backward(g)
    np.testing.assert_array_equal(layers[0].weight.grad, layers[1].weight.grad)
    _, dw, _ = nn.conv.conv2d_reference_backward(x, layers[0].weight.data, g, (1, 1), (1, 1), 2)
    np.testing.assert_allclose(layers[0].weight.grad, start + dw, rtol=1e-12)


@pytest.mark.parametrize("mode,test_scale", [("inverted", 1.0), ("paper", 0.5)])
def test_dropout_backward_at_test_time(mode, test_scale):
    drop = nn.Dropout(0.5, mode=mode).eval()
    x = np.random.default_rng(13).normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_array_equal(drop(x), test_scale * x)
    grad = drop.backward(np.full_like(x, 2.0))
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, np.full_like(x, 2.0 * test_scale))
