"""The graders of notebooks 01-06 against wrong answers: every plausible mistake in each list FAILs, and the
published solution (``tutorials/solutions/NN_*.py``) PASSes.

A wrong solution is the published one with one edit, written as (what the learner wrote, instead of what):
the test first checks that the solution still contains the original text, so a changed solution cannot turn
a wrong answer into a silent copy of the right one. Nothing here executes a notebook."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import nn

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
sys.path.insert(0, str(TUTORIALS))
from graders import judge, nb01, nb02, nb03, nb04, nb05, nb06  # noqa: E402

_spec = importlib.util.spec_from_file_location("tutorials_execute", TUTORIALS / "execute.py")
execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute)

# exercise name: (notebook, check, names the stub cell defines, in the order the check takes them)
EXERCISES = {
    "conv-parameters": ("01", nb01.conv_parameters, ["conv_parameters"]),
    "linear": ("02", nb02.linear, ["MyLinear"]),
    "conv-im2col": ("03", nb03.conv_im2col, ["conv2d_im2col"]),
    "conv-backward": ("03", nb03.conv_backward, ["conv2d_im2col_backward"]),
    "activation-backward": ("04", nb04.activation_backward, ["relu_backward", "tanh_backward"]),
    "lrn-loop": ("05", nb05.lrn_loop, ["lrn_loop"]),
    "lrn-backward": ("05", nb05.lrn_backward, ["lrn_backward"]),
    "avg-pool": ("06", nb06.avg_pool, ["AvgPool2d"]),
    "maxpool-backward": ("06", nb06.maxpool_backward, ["maxpool_backward"]),
}

# exercise name: {mistake: (original text of the solution, the learner's text)}
WRONG = {
    "conv-parameters": {
        "bias forgotten": (" + out_channels\n", "\n"),
        "groups ignored": ("(in_channels // groups)", "in_channels"),
        "kernel not squared": ("kernel * kernel", "kernel"),
        "out_channels divided by groups too": (
            "out_channels * (in_channels // groups)",
            "(out_channels // groups) * (in_channels // groups)",
        ),
        "one bias per group": (" + out_channels\n", " + groups\n"),
        "multiplied by groups": ("(in_channels // groups)", "(in_channels * groups)"),
        "a float count (/ instead of //)": ("(in_channels // groups)", "(in_channels / groups)"),
        "returns None": ("    return out_channels", "    out_channels"),
    },
    "linear": {
        "overwrites .grad instead of adding": ("self.weight.grad += ", "self.weight.grad = "),
        "overwrites bias.grad": ("self.bias.grad += ", "self.bias.grad = "),
        "bias gradient not summed over the batch": ("grad_out.sum(axis=0)", "grad_out[0]"),
        "bias gradient averaged": ("grad_out.sum(axis=0)", "grad_out.mean(axis=0)"),
        "weight gradient averaged over the batch": (
            "grad_out.T @ self._input",
            "grad_out.T @ self._input / len(grad_out)",
        ),
        "weight gradient transposed": ("grad_out.T @ self._input", "(grad_out.T @ self._input).T"),
        "dx through the transposed weight": (
            "return grad_out @ self.weight.data",
            "return grad_out @ self.weight.data.T",
        ),
        "bias forgotten in forward": (" + self.bias.data", ""),
        "forward with W instead of W^T": ("x @ self.weight.data.T", "x @ self.weight.data"),
        "backward returns nothing": ("return grad_out @ self.weight.data", "grad_out @ self.weight.data"),
        "caches the output instead of the input": (
            "self._input = x\n        return x @ self.weight.data.T + self.bias.data",
            "self._input = x @ self.weight.data.T + self.bias.data\n        return self._input",
        ),
        "caches only the first input": ("self._input = x", "self._input = getattr(self, '_input', x)"),
        "float32 output": (
            "return x @ self.weight.data.T + self.bias.data",
            "return (x @ self.weight.data.T + self.bias.data).astype(np.float32)",
        ),
        "changes grad_out in place": (
            "return grad_out @ self.weight.data",
            "grad_out *= 1.0001\n        return grad_out @ self.weight.data",
        ),
    },
    "conv-im2col": {
        "output width from the height": (
            ", (w + 2 * padding - k) // stride + 1",
            ", (h + 2 * padding - k) // stride + 1",
        ),
        "padding forgotten": ("np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))", "x"),
        "padding on the height only": (
            "(padding, padding), (padding, padding)",
            "(padding, padding), (0, 0)",
        ),
        "stride ignored in im2col": ("(stride, stride), 1)", "(1, 1), 1)"),
        "output size without the + 1": (
            "ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1",
            "ho, wo = (h + 2 * padding - k) // stride, (w + 2 * padding - k) // stride",
        ),
        "reshaped in the wrong order": (
            "out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)",
            "out.reshape(n, f, ho, wo)",
        ),
        "batch and kernel axes not swapped back": (
            "out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)",
            "out.reshape(f, n, ho, wo)",
        ),
        "bias forgotten": (" + bias[:, None]", ""),
        "kernels flipped (a true convolution)": (
            "weight.reshape(f, -1)",
            "weight[:, :, ::-1, ::-1].reshape(f, -1)",
        ),
        "kernel flattened in (i, j, c) order": (
            "weight.reshape(f, -1)",
            "weight.transpose(0, 2, 3, 1).reshape(f, -1)",
        ),
        "float32 output": (
            "return out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)",
            "return out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3).astype(np.float32)",
        ),
        "returns None": ("    return out.reshape", "    out.reshape"),
        "pads the input in place": ("padded = np.pad(x, ", "x += 0.5; padded = np.pad(x, "),
    },
    "conv-backward": {
        "padding's gradient kept": ("dx_padded[:, :, padding:padding + h, padding:padding + w]", "dx_padded"),
        "padding cut as [p:-p] (empty when p = 0)": (
            "dx_padded[:, :, padding:padding + h, padding:padding + w]",
            "dx_padded[:, :, padding:-padding, padding:-padding]",
        ),
        "padding cut on the height only": (
            "dx_padded[:, :, padding:padding + h, padding:padding + w]",
            "dx_padded[:, :, padding:padding + h, :w]",
        ),
        "stride ignored in col2im": ("(k, k), (stride, stride))\n", "(k, k), (1, 1))\n"),
        "dW transposed": ("(G @ cols.T).reshape(weight.shape)", "(cols @ G.T).reshape(weight.shape)"),
        "G reshaped without moving the kernel axis first": (
            "grad_out.transpose(1, 0, 2, 3).reshape(f, -1)",
            "grad_out.reshape(f, -1)",
        ),
        "db of the first image only": ("db = G.sum(axis=1)", "db = grad_out[0].sum(axis=(1, 2))"),
        "db not summed over the batch": ("db = G.sum(axis=1)", "db = grad_out.sum(axis=(2, 3))"),
        "db averaged": ("db = G.sum(axis=1)", "db = G.mean(axis=1)"),
        "dcols through W instead of W^T": (
            "dcols = weight.reshape(f, -1).T @ G",
            "dcols = (G.T @ weight.reshape(f, -1)).T[::-1]",
        ),
        "results in the wrong order": ("return dx, dW, db", "return dW, dx, db"),
        "returns only dx": ("return dx, dW, db", "return dx"),
        "returns None": ("return dx, dW, db", "pass"),
        "float32 dW": ("return dx, dW, db", "return dx, dW.astype(np.float32), db"),
        "scales grad_out in place": (
            "G = grad_out.transpose",
            "grad_out *= 1.0; grad_out += 1e-3; G = grad_out.transpose",
        ),
    },
    "activation-backward": {
        "ReLU mask from grad_out": ("grad_out * (x > 0)", "grad_out * (grad_out > 0)"),
        "ReLU gradient 1 at x = 0": ("grad_out * (x > 0)", "grad_out * (x >= 0)"),
        "ReLU mask without grad_out": ("grad_out * (x > 0)", "(x > 0).astype(x.dtype)"),
        "ReLU applied to grad_out": ("grad_out * (x > 0)", "np.maximum(grad_out, 0)"),
        "ReLU in place": ("return grad_out * (x > 0)", "grad_out[x <= 0] = 0\n    return grad_out"),
        "tanh' from y as if it were x": ("grad_out * (1 - y ** 2)", "grad_out * (1 - np.tanh(y) ** 2)"),
        "tanh' without the square": ("grad_out * (1 - y ** 2)", "grad_out * (1 - y)"),
        "tanh' squared wrongly": ("grad_out * (1 - y ** 2)", "grad_out * (1 - y) ** 2"),
        "tanh without grad_out": ("grad_out * (1 - y ** 2)", "1 - y ** 2"),
        "tanh float64 for float32 input": (
            "grad_out * (1 - y ** 2)",
            "grad_out.astype(np.float64) * (1 - y ** 2)",
        ),
        "ReLU float32 always": ("grad_out * (x > 0)", "(grad_out * (x > 0)).astype(np.float32)"),
        "tanh returns None": ("    return grad_out * (1 - y ** 2)", "    grad_out * (1 - y ** 2)"),
    },
    "lrn-loop": {
        "alpha / n (Caffe's and PyTorch's convention)": ("(k + alpha * ", "(k + alpha / n * "),
        "groups ignored": (
            "first, last = (i // block) * block, (i // block + 1) * block - 1",
            "first, last = 0, channels - 1",
        ),
        "window end excluded": ("a[:, lo:hi + 1]", "a[:, lo:hi]"),
        "symmetric window for even n": ("i + (n - 1) // 2)", "i + n // 2)"),
        "window of n // 2 after and (n - 1) // 2 before": (
            "max(first, i - n // 2), min(last, i + (n - 1) // 2)",
            "max(first, i - (n - 1) // 2), min(last, i + n // 2)",
        ),
        "sum of a, not of a squared": ("(a[:, lo:hi + 1] ** 2).sum(axis=1)", "a[:, lo:hi + 1].sum(axis=1)"),
        "mean instead of sum": ("(a[:, lo:hi + 1] ** 2).sum(axis=1)", "(a[:, lo:hi + 1] ** 2).mean(axis=1)"),
        "beta forgotten": (") ** beta", ")"),
        "k forgotten": ("(k + alpha * ", "(0.0 + alpha * "),
        "k and beta hard-coded": (
            "(k + alpha * (a[:, lo:hi + 1] ** 2).sum(axis=1)) ** beta",
            "(2.0 + alpha * (a[:, lo:hi + 1] ** 2).sum(axis=1)) ** 0.75",
        ),
        "the centre map left out of its window": (
            "(a[:, lo:hi + 1] ** 2).sum(axis=1)",
            "(a[:, lo:hi + 1] ** 2).sum(axis=1) - a[:, i] ** 2",
        ),
        "window over the wrong axis": (
            "(a[:, lo:hi + 1] ** 2).sum(axis=1)",
            "(a[:, lo:hi + 1] ** 2).sum(axis=1)[:, :1]",
        ),
        "squares the input in place": (
            "b = np.empty_like(a)",
            "a **= 1.0; a += 0.0; a[:, 0] *= 1.01; b = np.empty_like(a)",
        ),
        "float32 output": ("b = np.empty_like(a)", "b = np.empty_like(a, dtype=np.float32)"),
        "returns None": ("    return b", "    pass"),
    },
    "lrn-backward": {
        "coupling term forgotten": ("grad_in[:, j] -= 2 * alpha", "grad_in[:, j] -= 0 * alpha"),
        "factor 2 missing": ("grad_in[:, j] -= 2 * alpha * beta", "grad_in[:, j] -= alpha * beta"),
        "beta missing from the coupling": ("grad_in[:, j] -= 2 * alpha * beta", "grad_in[:, j] -= 2 * alpha"),
        "coupling with the wrong sign": ("grad_in[:, j] -= 2", "grad_in[:, j] += 2"),
        "a_i instead of a_j in the coupling": (
            "a[:, j] * ratio[:, lo:hi + 1].sum(axis=1)",
            "(a[:, lo:hi + 1] * ratio[:, lo:hi + 1]).sum(axis=1)",
        ),
        "g_j b_j / s_j instead of the sum over i": ("ratio[:, lo:hi + 1].sum(axis=1)", "ratio[:, j]"),
        "window not mirrored for even n": (
            "lo, hi = max(first, j - after), min(last, j + before)",
            "lo, hi = max(first, j - before), min(last, j + after)",
        ),
        "mirrored window's end excluded": ("ratio[:, lo:hi + 1]", "ratio[:, lo:hi]"),
        "groups ignored": (
            "first, last = (i // block) * block, (i // block + 1) * block - 1",
            "first, last = 0, channels - 1",
        ),
        "groups ignored in the coupling only": (
            "first, last = (j // block) * block, (j // block + 1) * block - 1",
            "first, last = 0, channels - 1",
        ),
        "s^(-beta - 1) written as s^(-beta)": (
            "ratio = grad_out * a * s ** -beta / s",
            "ratio = grad_out * a * s ** -beta",
        ),
        "direct term without the power": ("grad_in = grad_out * s ** -beta", "grad_in = grad_out / s"),
        "alpha / n": ("s[:, i] = k + alpha * ", "s[:, i] = k + alpha / n * "),
        "changes grad_out in place": (
            "grad_in = grad_out * s ** -beta",
            "grad_in = grad_out; grad_in *= s ** -beta",
        ),
        "float32 result": ("    return grad_in", "    return grad_in.astype(np.float32)"),
        "returns None": ("    return grad_in", "    pass"),
    },
    "avg-pool": {
        "divides by z instead of z^2": ("return out / (z * z)", "return out / z"),
        "backward without the 1/z^2": ("+= grad_out / (z * z)", "+= grad_out"),
        "backward overwrites overlaps instead of adding": ("+= grad_out / (z * z)", "= grad_out / (z * z)"),
        "stride ignored (stride = z)": (
            "z, s = self.kernel_size, self.stride\n        self._input_shape",
            "z, s = self.kernel_size, self.kernel_size\n        self._input_shape",
        ),
        "output size rounded up": (
            "ho, wo = (x.shape[2] - z) // s + 1, (x.shape[3] - z) // s + 1",
            "ho, wo = -(-(x.shape[2] - z) // s) + 1, -(-(x.shape[3] - z) // s) + 1",
        ),
        "output width from the height": ("(x.shape[3] - z) // s + 1", "(x.shape[2] - z) // s + 1"),
        "forward sums instead of averaging": ("return out / (z * z)", "return out"),
        "kernel size and stride hard-coded": (
            "z, s = self.kernel_size, self.stride\n        self._input_shape",
            "z, s = 3, 2\n        self._input_shape",
        ),
        "caches only the first input's shape": (
            "self._input_shape = x.shape",
            "self._input_shape = getattr(self, '_input_shape', x.shape)",
        ),
        "float32 forward": ("return out / (z * z)", "return (out / (z * z)).astype(np.float32)"),
        "backward returns None": ("        return grad_in", "        pass"),
        "divides the input in place": (
            "out = np.zeros(x.shape[:2]",
            "x /= 1.0; x[0, 0, 0, 0] += 1; out = np.zeros(x.shape[:2]",
        ),
    },
    "maxpool-backward": {
        "ties to the last maximum": (
            "    for i in range(z):                                       # offsets in row-major order: the first "
            "maximum wins\n        for j in range(z):",
            "    for i in reversed(range(z)):\n        for j in reversed(range(z)):",
        ),
        "ties in column-major order": (
            "    for i in range(z):                                       # offsets in row-major order: the first "
            "maximum wins\n        for j in range(z):",
            "    for j in range(z):\n        for i in range(z):",
        ),
        "every tied maximum gets the whole gradient": (
            "wins = unrouted & (x[at(i, j)] == out)",
            "wins = x[at(i, j)] == out",
        ),
        "found windows not marked as routed": ("unrouted &= ~wins", "pass"),
        "overlapping windows overwrite instead of adding": (
            "grad_in[at(i, j)] += grad_out * wins",
            "grad_in[at(i, j)] = grad_out * wins",
        ),
        "stride ignored in the windows": (
            "slice(i, i + s * (ho - 1) + 1, s), slice(j, j + s * (wo - 1) + 1, s)",
            "slice(i, i + z * (ho - 1) + 1, z), slice(j, j + z * (wo - 1) + 1, z)",
        ),
        "output width from the height": (
            "slice(j, j + s * (wo - 1) + 1, s)",
            "slice(j, j + s * (ho - 1) + 1, s)",
        ),
        "ones instead of the upstream gradient": ("+= grad_out * wins", "+= 1.0 * wins"),
        "float32 result": (
            "grad_in = np.zeros(x.shape, dtype=grad_out.dtype)",
            "grad_in = np.zeros(x.shape, dtype=np.float32)",
        ),
        "returns None": ("    return grad_in", "    pass"),
        "changes x in place": ("out = np.max(", "x -= 0.0; x[0, 0, 0, 0] = 99.0; out = np.max("),
    },
}

# mistakes that no single edit of the solution expresses: the learner's whole cell
WRONG_CELLS = {
    "maxpool-backward": {
        "ties split evenly": """
def maxpool_backward(x, grad_out, kernel_size=3, stride=2):
    z, s = kernel_size, stride
    grad_in = np.zeros(x.shape, dtype=grad_out.dtype)
    for Y in range(grad_out.shape[2]):
        for X in range(grad_out.shape[3]):
            window = x[:, :, Y * s:Y * s + z, X * s:X * s + z]
            is_max = window == window.max(axis=(2, 3), keepdims=True)
            share = grad_out[:, :, Y, X][:, :, None, None] / is_max.sum(axis=(2, 3), keepdims=True)
            grad_in[:, :, Y * s:Y * s + z, X * s:X * s + z] += is_max * share
    return grad_in
""",
        "every tied maximum gets the whole gradient (a loop over the windows)": """
def maxpool_backward(x, grad_out, kernel_size=3, stride=2):
    z, s = kernel_size, stride
    grad_in = np.zeros(x.shape, dtype=grad_out.dtype)
    for Y in range(grad_out.shape[2]):
        for X in range(grad_out.shape[3]):
            window = x[:, :, Y * s:Y * s + z, X * s:X * s + z]
            is_max = window == window.max(axis=(2, 3), keepdims=True)
            grad_in[:, :, Y * s:Y * s + z, X * s:X * s + z] += is_max * grad_out[:, :, Y, X][:, :, None, None]
    return grad_in
""",
    },
    "lrn-backward": {
        "window not mirrored for even n (j's own window instead of the i whose window holds j)": """
def lrn_backward(a, grad_out, n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1):
    channels = a.shape[1]
    block = channels // groups

    def window(i):
        first, last = (i // block) * block, (i // block + 1) * block - 1
        return range(max(first, i - n // 2), min(last, i + (n - 1) // 2) + 1)

    s = np.stack([k + alpha * sum(a[:, j] ** 2 for j in window(i)) for i in range(channels)], axis=1)
    ratio = grad_out * a * s ** -beta / s
    grad_in = grad_out * s ** -beta
    for j in range(channels):
        for i in window(j):
            grad_in[:, j] -= 2 * alpha * beta * a[:, j] * ratio[:, i]
    return grad_in
""",
        "numerator only (denominator treated as a constant)": """
def lrn_backward(a, grad_out, n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1):
    return grad_out / (k + alpha * nn.normalization.window_sum(a * a, n // 2, (n - 1) // 2)) ** beta
""",
    },
    "conv-im2col": {
        "the naive loop without padding or stride": """
def conv2d_im2col(x, weight, bias, stride, padding):
    n, c, h, w = x.shape
    f, _, k, _ = weight.shape
    out = np.zeros((n, f, h - k + 1, w - k + 1))
    for y in range(h - k + 1):
        for xx in range(w - k + 1):
            out[:, :, y, xx] = np.tensordot(x[:, :, y:y + k, xx:xx + k], weight, axes=([1, 2, 3], [1, 2, 3])) + bias
    return out
""",
    },
    "linear": {
        "zeroes the gradients in backward": """
class MyLinear(nn.Module):
    def __init__(self, in_features, out_features, rng=None):
        rng = rng or np.random.default_rng()
        self.weight = nn.Parameter(rng.normal(0, 0.1, size=(out_features, in_features)))
        self.bias = nn.Parameter(np.zeros(out_features))

    def forward(self, x):
        self._input = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, grad_out):
        self.zero_grad()
        self.weight.grad += grad_out.T @ self._input
        self.bias.grad += grad_out.sum(axis=0)
        return grad_out @ self.weight.data
""",
    },
}


def _solution(name):
    notebook = execute.notebook_path(EXERCISES[name][0])
    return execute.solution_blocks(notebook)[name] + "\n"


def _judge(name, source):
    _, check, names = EXERCISES[name]
    namespace = {"np": np, "nn": nn}  # what an exercise cell may use besides its own names
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return judge(name, check, *[namespace[n] for n in names])


@pytest.mark.parametrize("name", EXERCISES)
def test_the_published_solution_passes(name):
    outcome = _judge(name, _solution(name))
    assert outcome.verdict == "PASS", outcome.line


def _wrong_cases():
    for name, mistakes in WRONG.items():
        for mistake, edit in mistakes.items():
            yield pytest.param(name, edit, None, id=f"{name}: {mistake}")
    for name, cells in WRONG_CELLS.items():
        for mistake, source in cells.items():
            yield pytest.param(name, None, source, id=f"{name}: {mistake}")


@pytest.mark.parametrize("name, edit, source", list(_wrong_cases()))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # wrong answers may take powers of negatives
def test_a_wrong_solution_fails(name, edit, source):
    if edit is not None:
        original, learners = edit
        solution = _solution(name)
        assert solution.count(original) >= 1, (
            f"the solution no longer contains {original!r}: update this case"
        )
        source = solution.replace(original, learners, 1)
    outcome = _judge(name, source)
    assert outcome.verdict == "FAIL", outcome.line


def test_every_exercise_of_01_to_06_is_in_the_lists():
    names = []
    for number in ["01", "02", "03", "04", "05", "06"]:
        names += list(execute.solution_blocks(execute.notebook_path(number)))
    assert sorted(names) == sorted(EXERCISES)
    assert all(len(WRONG.get(n, {})) + len(WRONG_CELLS.get(n, {})) >= 8 for n in EXERCISES)


def test_messages_name_the_sub_check_none_the_shape_and_the_dtype():
    line = _judge(
        "conv-im2col", _solution("conv-im2col").replace("    return out.reshape", "    out.reshape")
    ).line
    assert "output, x 2x6x9x9, 4 kernels 5x5, stride 1, padding 2: your function returned None" in line
    line = _judge("linear", _solution("linear").replace("self.weight.grad += ", "self.weight.grad = ")).line
    assert "weight.grad after a second backward (backward adds into .grad)" in line
    solution = _solution("activation-backward")
    line = _judge(
        "activation-backward",
        solution.replace("grad_out * (1 - y ** 2)", "grad_out.astype(np.float64) * (1 - y ** 2)"),
    ).line
    assert "tanh_backward, 3x6 float32 input: dtype float64, expected float32" in line
    line = _judge("conv-backward", _solution("conv-backward").replace("return dx, dW, db", "return dx")).line
    assert "got a ndarray, expected a tuple of 3: (dx, dW, db)" in line
