"""Property-based tests (Hypothesis) of the layers: random legal configurations, forward and
backward against naive loop implementations in float64; illegal configurations raise the
documented ValueError; and a deliberately broken layer is caught by the same properties.

Configurations: batch 1-3, 1-7 channels, groups, kernels larger than the unpadded input, strides
larger than the kernel, 1 x 1 maps, non-square maps and kernels. The example budget is fixed and
derandomized (the same examples every run), so the file's time is bounded (a few seconds).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_nn_layers import naive_conv

import nn

BUDGET = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
#: For the broken layers: stop at the first failing example (no shrinking, which only costs time here).
NO_SHRINK = settings(BUDGET, phases=[Phase.explicit, Phase.reuse, Phase.generate])
RTOL, ATOL = 1e-9, 1e-11


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=RTOL, atol=ATOL)


# -- naive references (loops over every output element, float64; the convolution's forward is
# test_nn_layers.naive_conv) ------------------------------------------------------------------


def conv_backward_naive(x, w, grad, stride, padding, groups):
    """dL/dx, dL/dw, dL/db by sending every output's gradient back through the window it read."""
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph : ph + h, pw : pw + wd] = x
    dxp, dw, db = np.zeros_like(xp), np.zeros_like(w), np.zeros(f)
    per_group = f // groups
    for i in range(n):
        for k in range(f):
            g = k // per_group
            for y in range(grad.shape[2]):
                for z in range(grad.shape[3]):
                    region = (
                        i,
                        slice(g * cg, (g + 1) * cg),
                        slice(y * sh, y * sh + kh),
                        slice(z * sw, z * sw + kw),
                    )
                    dw[k] += grad[i, k, y, z] * xp[region]
                    dxp[region] += grad[i, k, y, z] * w[k]
                    db[k] += grad[i, k, y, z]
    return dxp[:, :, ph : ph + h, pw : pw + wd], dw, db


def maxpool_naive(x, kernel, stride):
    """Forward and the map 'output position -> (row, col) of its maximum' (first one in row-major order)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out, where = np.zeros((n, c, ho, wo)), {}
    for i in range(n):
        for k in range(c):
            for y in range(ho):
                for z in range(wo):
                    window = x[i, k, y * sh : y * sh + kh, z * sw : z * sw + kw]
                    r, q = np.unravel_index(np.argmax(window), window.shape)
                    out[i, k, y, z] = window[r, q]
                    where[i, k, y, z] = (y * sh + r, z * sw + q)
    return out, where


def lrn_window(i, channels, size, groups):
    """Channels j in the window of channel i: i - size//2 .. i + (size-1)//2, inside i's group block."""
    block = channels // groups
    lo_block = (i // block) * block
    lo, hi = max(lo_block, i - size // 2), min(lo_block + block - 1, i + (size - 1) // 2)
    return range(lo, hi + 1)


def lrn_naive(x, size, alpha, beta, k, groups):
    out, scale = np.zeros_like(x), np.zeros_like(x)
    channels = x.shape[1]
    for i in range(channels):
        scale[:, i] = k + alpha * sum(x[:, j] ** 2 for j in lrn_window(i, channels, size, groups))
        out[:, i] = x[:, i] * scale[:, i] ** -beta
    return out, scale


def lrn_backward_naive(x, grad, size, alpha, beta, k, groups):
    """dL/da_j = sum_i g_i db_i/da_j, with the Jacobian written out entry by entry."""
    _, scale = lrn_naive(x, size, alpha, beta, k, groups)
    channels = x.shape[1]
    dx = np.zeros_like(x)
    for i in range(channels):
        for j in range(channels):
            jacobian = (scale[:, i] ** -beta) if i == j else 0.0
            if j in lrn_window(i, channels, size, groups):
                jacobian = jacobian - 2 * alpha * beta * x[:, i] * x[:, j] * scale[:, i] ** (-beta - 1)
            dx[:, j] += grad[:, i] * jacobian
    return dx


# -- strategies ---------------------------------------------------------------------------------


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    cin = groups * draw(st.integers(1, 7 // groups))
    cout = groups * draw(st.integers(1, 7 // groups))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    # The input may be smaller than the kernel as long as the padded input is not.
    h = draw(st.integers(max(1, kh - 2 * ph), 8))
    w = draw(st.integers(max(1, kw - 2 * pw), 8))
    return dict(
        n=draw(st.integers(1, 3)),
        cin=cin,
        cout=cout,
        groups=groups,
        kernel=(kh, kw),
        stride=(sh, sw),
        padding=(ph, pw),
        hw=(h, w),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
    )


@st.composite
def pool_configs(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return dict(
        n=draw(st.integers(1, 3)),
        c=draw(st.integers(1, 7)),
        kernel=(kh, kw),
        stride=(draw(st.integers(1, 5)), draw(st.integers(1, 5))),
        hw=(draw(st.integers(kh, 9)), draw(st.integers(kw, 9))),
        seed=draw(st.integers(0, 2**31)),
    )


@st.composite
def lrn_configs(draw):
    groups = draw(st.integers(1, 3))
    return dict(
        n=draw(st.integers(1, 3)),
        c=groups * draw(st.integers(1, 7 // groups)),
        groups=groups,
        size=draw(st.integers(1, 7)),
        alpha=draw(st.sampled_from([1e-4, 0.1, 1.0])),
        beta=draw(st.sampled_from([0.75, 0.5, 1.0])),
        k=draw(st.sampled_from([2.0, 1.0, 0.5])),
        hw=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        seed=draw(st.integers(0, 2**31)),
    )


# -- the properties (each one a function of the layer class, so a broken class can be fed in) ----------


def conv_property(layer_class, budget=BUDGET, seen=None):
    @budget
    @given(conv_configs())
    def check(cfg):
        rng = np.random.default_rng(cfg["seed"])
        if seen is not None:
            (h, w), (kh, kw), (sh, sw) = cfg["hw"], cfg["kernel"], cfg["stride"]
            seen.update(
                name
                for name, case in [
                    ("kernel larger than the input", kh > h or kw > w),
                    ("stride larger than the kernel", sh > kh or sw > kw),
                    ("groups", cfg["groups"] > 1),
                    ("1x1 map", (h, w) == (1, 1)),
                    ("non-square map", h != w),
                    ("non-square kernel", kh != kw),
                    ("batch 3", cfg["n"] == 3),
                    ("7 channels", cfg["cin"] == 7),
                ]
                if case
            )
        layer = layer_class(
            cfg["cin"],
            cfg["cout"],
            cfg["kernel"],
            stride=cfg["stride"],
            padding=cfg["padding"],
            groups=cfg["groups"],
            bias=cfg["bias"],
            dtype=np.float64,
            rng=rng,
        )
        layer.weight.data[...] = rng.normal(size=layer.weight.data.shape)
        if layer.bias is not None:
            layer.bias.data[...] = rng.normal(size=layer.bias.data.shape)
        x = rng.normal(size=(cfg["n"], cfg["cin"], *cfg["hw"]))
        out = layer.forward(x)
        bias = layer.bias.data if layer.bias is not None else None
        close(out, naive_conv(x, layer.weight.data, bias, cfg["stride"], cfg["padding"], cfg["groups"]))
        grad = rng.normal(size=out.shape)
        layer.zero_grad()
        dx = layer.backward(grad)
        ref_dx, ref_dw, ref_db = conv_backward_naive(
            x, layer.weight.data, grad, cfg["stride"], cfg["padding"], cfg["groups"]
        )
        close(dx, ref_dx)
        close(layer.weight.grad, ref_dw)
        if layer.bias is not None:
            close(layer.bias.grad, ref_db)

    return check


def pool_property(layer_class, budget=BUDGET, seen=None):
    @budget
    @given(pool_configs())
    def check(cfg):
        rng = np.random.default_rng(cfg["seed"])
        if seen is not None:
            (h, w), (kh, kw), (sh, sw) = cfg["hw"], cfg["kernel"], cfg["stride"]
            seen.update(
                name
                for name, case in [
                    ("stride larger than the kernel", sh > kh or sw > kw),
                    ("overlapping", sh < kh or sw < kw),
                    (
                        "1x1 map",
                        (h, w) == (1, 1)
                        or layer_class(cfg["kernel"], cfg["stride"]).output_shape((1, 1, h, w))[2:] == (1, 1),
                    ),
                    ("non-square", h != w or kh != kw),
                ]
                if case
            )
        layer = layer_class(cfg["kernel"], cfg["stride"])
        x = rng.normal(size=(cfg["n"], cfg["c"], *cfg["hw"]))  # continuous values: no ties
        out = layer.forward(x)
        ref, where = maxpool_naive(x, cfg["kernel"], cfg["stride"])
        close(out, ref)
        grad = rng.normal(size=out.shape)
        ref_dx = np.zeros_like(x)
        for (i, k, y, z), (r, q) in where.items():
            ref_dx[i, k, r, q] += grad[i, k, y, z]
        close(layer.backward(grad), ref_dx)

    return check


def lrn_property(layer_class, budget=BUDGET, seen=None):
    @budget
    @given(lrn_configs())
    def check(cfg):
        rng = np.random.default_rng(cfg["seed"])
        if seen is not None:
            seen.update(
                name
                for name, case in [
                    ("groups", cfg["groups"] > 1),
                    ("even size", cfg["size"] % 2 == 0),
                    ("window wider than a group", cfg["size"] > cfg["c"] // cfg["groups"]),
                    ("1x1 map", cfg["hw"] == (1, 1)),
                ]
                if case
            )
        params = {key: cfg[key] for key in ("size", "alpha", "beta", "k", "groups")}
        layer = layer_class(**params)
        x = rng.normal(scale=3.0, size=(cfg["n"], cfg["c"], *cfg["hw"]))
        out = layer.forward(x)
        close(out, lrn_naive(x, **params)[0])
        grad = rng.normal(size=out.shape)
        close(layer.backward(grad), lrn_backward_naive(x, grad, **params))

    return check


def linear_property(layer_class, budget=BUDGET, seen=None):
    @budget
    @given(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.booleans(), st.integers(0, 2**31))
    def check(n, fin, fout, bias, seed):
        rng = np.random.default_rng(seed)
        layer = layer_class(fin, fout, bias=bias, dtype=np.float64, rng=rng)
        if bias:
            layer.bias.data[...] = rng.normal(size=fout)
        x, w = rng.normal(size=(n, fin)), layer.weight.data
        ref = np.array(
            [
                [
                    sum(x[i, j] * w[k, j] for j in range(fin)) + (layer.bias.data[k] if bias else 0.0)
                    for k in range(fout)
                ]
                for i in range(n)
            ]
        )
        close(layer.forward(x), ref)
        grad = rng.normal(size=(n, fout))
        layer.zero_grad()
        dx = layer.backward(grad)
        close(dx, [[sum(grad[i, k] * w[k, j] for k in range(fout)) for j in range(fin)] for i in range(n)])
        close(
            layer.weight.grad,
            [[sum(grad[i, k] * x[i, j] for i in range(n)) for j in range(fin)] for k in range(fout)],
        )
        if bias:
            close(layer.bias.grad, grad.sum(axis=0))

    return check


def test_conv2d_matches_the_naive_loops():
    seen = set()
    conv_property(nn.Conv2d, seen=seen)()
    assert seen == {
        "kernel larger than the input",
        "stride larger than the kernel",
        "groups",
        "1x1 map",
        "non-square map",
        "non-square kernel",
        "batch 3",
        "7 channels",
    }


def test_maxpool2d_matches_the_naive_loops():
    seen = set()
    pool_property(nn.MaxPool2d, seen=seen)()
    assert seen == {"stride larger than the kernel", "overlapping", "1x1 map", "non-square"}


def test_local_response_norm_matches_the_naive_loops():
    seen = set()
    lrn_property(nn.LocalResponseNorm, seen=seen)()
    assert seen == {"groups", "even size", "window wider than a group", "1x1 map"}


def test_linear_matches_the_naive_loops():
    linear_property(nn.Linear)()


# -- a deliberately broken layer is caught ---------------------------------------------------------


class LastRowForgotten(nn.Conv2d):
    """dL/dx with the last input row left out (an off-by-one in a backward loop's range)."""

    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        grad_in[:, :, -1, :] = 0
        return grad_in


class UnmirroredWindow(nn.LocalResponseNorm):
    """Backward sums over window(j) instead of {i : j in window(i)}: wrong only for even sizes."""

    def backward(self, grad_out):
        self.before, self.after = self.after, self.before
        try:
            return super().backward(grad_out)
        finally:
            self.before, self.after = self.after, self.before


class FirstWindowOffByOne(nn.MaxPool2d):
    """Every window's gradient sent one column too far right when that column exists."""

    def backward(self, grad_out):
        grad_in = super().backward(grad_out)
        return np.concatenate([np.zeros_like(grad_in[..., :1]), grad_in[..., :-1]], axis=-1)


@pytest.mark.parametrize(
    "prop, broken",
    [
        (conv_property, LastRowForgotten),
        (lrn_property, UnmirroredWindow),
        (pool_property, FirstWindowOffByOne),
    ],
)
def test_a_broken_backward_is_caught(prop, broken):
    with pytest.raises(AssertionError):
        prop(broken, budget=NO_SHRINK)()


# -- illegal configurations raise the documented ValueError ------------------------------------------


@BUDGET
@given(st.data())
def test_illegal_conv_configurations_raise_valueerror(data):
    bad = data.draw(
        st.sampled_from(["groups", "divisible", "kernel", "stride", "padding", "channels", "input"])
    )
    cin, cout, groups = 4, 4, 2
    kwargs = dict(kernel_size=3, stride=1, padding=0)
    if bad == "groups":
        groups = data.draw(st.integers(-2, 0))
    elif bad == "divisible":
        groups = data.draw(st.integers(2, 5))
        cin = groups * data.draw(st.integers(1, 3)) + data.draw(st.integers(1, groups - 1))
    elif bad == "kernel":
        kwargs["kernel_size"] = (data.draw(st.integers(-2, 0)), 3)
    elif bad == "stride":
        kwargs["stride"] = (2, data.draw(st.integers(-2, 0)))
    elif bad == "padding":
        kwargs["padding"] = data.draw(st.integers(-3, -1))
    elif bad == "channels":
        cout = data.draw(st.integers(-2, 0))
    with pytest.raises(ValueError, match="Conv2d"):
        layer = nn.Conv2d(cin, cout, groups=groups, dtype=np.float64, **kwargs)
        if bad == "input":  # the padded input is smaller than the kernel
            kh, kw = data.draw(st.integers(2, 6)), data.draw(st.integers(1, 6))
            layer = nn.Conv2d(cin, cout, (kh, kw), padding=(0, 0), groups=groups, dtype=np.float64)
            layer.forward(np.zeros((1, cin, data.draw(st.integers(1, kh - 1)), kw)))


@BUDGET
@given(st.sampled_from(["kernel", "stride", "input"]), st.integers(-2, 0), st.integers(2, 5))
def test_illegal_pool_configurations_raise_valueerror(bad, nonpositive, size):
    with pytest.raises(ValueError, match="MaxPool2d"):
        if bad == "kernel":
            nn.MaxPool2d(nonpositive, 1)
        elif bad == "stride":
            nn.MaxPool2d(2, (1, nonpositive))
        else:
            nn.MaxPool2d((size, 1), 1).forward(np.zeros((1, 1, size - 1, 3)))


@BUDGET
@given(st.sampled_from(["size", "groups", "k", "alpha", "split"]), st.integers(2, 4))
def test_illegal_lrn_configurations_raise_valueerror(bad, groups):
    with pytest.raises(ValueError, match="LocalResponseNorm"):
        if bad == "size":
            nn.LocalResponseNorm(size=1 - groups)
        elif bad == "groups":
            nn.LocalResponseNorm(groups=2 - groups)
        elif bad == "k":
            nn.LocalResponseNorm(k=-0.5 * (groups - 2))
        elif bad == "alpha":
            nn.LocalResponseNorm(alpha=-1e-4 * groups)
        else:
            nn.LocalResponseNorm(groups=groups).forward(np.zeros((1, groups * 2 + 1, 1, 1)))


@BUDGET
@given(st.integers(-2, 0), st.integers(1, 4), st.booleans())
def test_illegal_linear_configurations_raise_valueerror(nonpositive, features, wrong_input):
    with pytest.raises(ValueError, match="Linear"):
        if wrong_input:
            nn.Linear(features, 2, dtype=np.float64).forward(np.zeros((3, features + 1)))
        else:
            nn.Linear(nonpositive, features)
