"""Gradient checks: every layer's backward against central differences in float64."""

import subprocess
import sys

import numpy as np
import pytest

import nn
from nn.gradcheck import _standard_cases, check_module, relative_error, run_case

CASES = _standard_cases()


@pytest.mark.parametrize("name,factory", CASES, ids=[name for name, _ in CASES])
def test_layer_gradients(device, name, factory):
    result = run_case(factory, device=device)
    assert result.max_error < 1e-6, f"{name}\n{result}"
    # every parameter and the input were compared
    module = factory(np.random.default_rng(0))[0]
    assert {t.name for t in result.tensors} == {"input"} | {n for n, _ in module.named_parameters()}


def test_elementwise_and_direction_modes_agree_on_a_correct_layer():
    conv = nn.Conv2d(2, 2, 3, groups=2, dtype=np.float64, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(1, 2, 4, 4))
    elementwise = check_module(conv, x, max_elements=10_000)
    directions = check_module(conv, x, max_elements=0, directions=12)
    assert all(t.mode == "elementwise" for t in elementwise.tensors)
    assert all(t.mode == "directions" for t in directions.tensors)
    assert elementwise.passed and directions.passed


class BrokenLRN(nn.LocalResponseNorm):
    """The classic mistake: forgetting that a_i also appears in its own denominator."""

    def backward(self, grad_out):
        x, scale, out = self._cached(self._input, self._scale, self._out)
        return grad_out * scale**-self.beta


class BrokenConv(nn.Conv2d):
    """Off by one percent: even a small systematic error must be caught."""

    def backward(self, grad_out):
        grad = super().backward(grad_out)
        return grad * 1.01


@pytest.mark.parametrize(
    "module,shape",
    [
        (BrokenLRN(5, alpha=1.0), (2, 4, 3, 3)),
        (BrokenConv(2, 3, 3, dtype=np.float64), (1, 2, 5, 5)),
    ],
)
def test_the_check_catches_a_wrong_backward(module, shape):
    x = np.random.default_rng(0).normal(size=shape)
    result = check_module(module, x)
    assert not result.passed and result.max_error > 1e-3


def test_relative_error():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([1.0, 0.0], [0.0, 1.0]) == pytest.approx(np.sqrt(2))
    assert relative_error([0.0], [0.0]) == 0.0


def test_command_line_checks_every_layer():
    done = subprocess.run(
        [sys.executable, "-m", "nn.gradcheck", "--device", "cpu", "--no-alexnet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LRN alpha=1, 4 channels" in done.stdout
    assert f"{len(CASES)} passed, 0 failed" in done.stdout


def test_command_line_checks_a_users_layer_and_fails_on_a_bad_one(tmp_path):
    (tmp_path / "mylayers.py").write_text(
        "import numpy as np, nn\n"
        "class Square(nn.Module):\n"
        "    def forward(self, x):\n"
        "        self.x = x\n"
        "        return x * x\n"
        "    def backward(self, g):\n"
        "        return g * self.x        # wrong: should be 2 * x\n"
        "def good():\n"
        "    return nn.Tanh(), np.linspace(-1, 1, 12).reshape(3, 4)\n"
        "def bad():\n"
        "    return Square()\n"
    )
    env_path = {"PYTHONPATH": f"{tmp_path}:{nn.__path__[0]}/.."}
    import os

    env = dict(os.environ, **env_path)
    ok = subprocess.run(
        [sys.executable, "-m", "nn.gradcheck", "--device", "cpu", "--layer", "mylayers:good"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "nn.gradcheck",
            "--device",
            "cpu",
            "--layer",
            "mylayers:bad",
            "--input-shape",
            "2,3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 1 and "FAIL" in bad.stdout


def test_the_reduced_alexnet_end_to_end():
    """alexnet.gradcheck's case (``python -m alexnet.gradcheck`` adds it to the table): every
    parameter of the whole network and its input pass."""
    from alexnet.gradcheck import reduced_alexnet

    result = run_case(reduced_alexnet, device="cpu")
    assert result.passed, str(result)
    model = reduced_alexnet()[0]
    assert {t.name for t in result.tensors} == {"input"} | {n for n, _ in model.named_parameters()}


def test_nn_imports_nothing_from_the_packages_built_on_it():
    """nn is the layers only: no module of nn imports alexnet, data or mpi4py, at its top or inside a
    function (the import statements themselves, read with ast)."""
    import ast
    from pathlib import Path

    found = []
    for path in sorted(Path(nn.__path__[0]).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.name}: {name}"
                for name in names
                if name.split(".")[0] in ("alexnet", "data", "mpi4py")
            ]
    assert found == []
