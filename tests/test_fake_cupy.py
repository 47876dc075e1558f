"""The GPU code path without a GPU: everything ``--device cuda`` runs, under the CuPy stand-in.

``tests/fake_cupy/cupy`` is a strict CPU imitation of CuPy 14.2 (its docstring says what it models
and what not). Each check here runs in a process of its own with the stand-in first on
``PYTHONPATH``, so it never enters this test process, and only where the real CuPy is absent:
where it is installed, the gpu-marked tests run on it directly and these skip.

- the stand-in's own checks (``tests/fake_cupy/stand_in_checks.py``);
- device detection in a fresh process, whatever was imported first;
- the CuPy variants of the tests (``pytest -m gpu``);
- ``nn.gradcheck`` and ``alexnet.gradcheck`` with ``--device cuda``;
- ``alexnet train --device cuda`` on a tiny synthetic subset, its resume (the weights equal a
  CPU run's: the stand-in computes with NumPy), ``evaluate``, ``predict`` and ``visualize``;
- ``benchmarks/gpu_check.sh --quick`` (the steps the checks above do not cover).
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data
from nn import load_npz

REPO = Path(__file__).resolve().parents[1]
STAND_IN = REPO / "tests" / "fake_cupy"


def _real_cupy_installed():
    spec = importlib.util.find_spec("cupy")
    return spec is not None and not str(spec.origin).startswith(str(STAND_IN))


pytestmark = pytest.mark.skipif(
    _real_cupy_installed(), reason="the real CuPy is installed: the gpu-marked tests run on it instead"
)


def stand_in_env(tmp, stand_in=True, **extra):
    env = dict(
        os.environ,
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
        ALEXNET_CACHE=str(tmp / "cache"),
        **extra,
    )
    env["PYTHONPATH"] = os.pathsep.join([str(STAND_IN)] * stand_in + [str(REPO), env.get("PYTHONPATH", "")])
    return env


def run(tmp, *command, timeout=240, stand_in=True, **extra):
    result = subprocess.run(
        [str(c) for c in command],
        cwd=REPO,
        env=stand_in_env(tmp, stand_in, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def make_image_folder(root, classes=3, train=4, val=2, seed=0):
    """A raw ImageNet-style tree of random JPEGs (``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for c in range(classes):
            folder = Path(root) / split / f"n{c + 1:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, size=(80, 90, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"n{c + 1:08d}_{i}.JPEG")
    return Path(root)


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory):
    raw = make_image_folder(tmp_path_factory.mktemp("raw"))
    prepared = data.prepare_subset(raw, raw.parent / "prepared", size=72, workers=1, quiet=True)
    return raw, prepared


def test_the_stand_in_itself(tmp_path):
    out = run(
        tmp_path,
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        STAND_IN / "stand_in_checks.py",
    )
    assert re.search(r"\d+ passed", out) and "failed" not in out


DETECTION = """
import sys
{first}
import numpy as np
x = cupy.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
assert "nn.backend" not in sys.modules or nn.backend._cupy is None  # no check_device has run
assert nn.get_array_module(x) is cupy and nn.backend.device_of(x) == "cuda"
host = nn.asnumpy(x)
assert type(host) is np.ndarray and host.tolist() == [[0, 1, 2], [3, 4, 5]]
y = nn.ReLU().forward(x - 2)  # the layer picks its xp from its input
assert type(y) is cupy.ndarray and y.get().tolist() == [[0, 0, 0], [1, 2, 3]]
print("detected")
"""


@pytest.mark.parametrize(
    "first", ["import cupy\nimport nn", "import nn\nimport cupy"], ids=["cupy-first", "nn-first"]
)
def test_cupy_arrays_are_recognised_whatever_the_import_order(tmp_path, first):
    out = run(tmp_path, sys.executable, "-c", DETECTION.format(first=first))
    assert "detected" in out


def test_the_cupy_variants_of_the_tests(tmp_path):
    out = run(tmp_path, sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/")
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 40 and "failed" not in out, out[-2000:]


@pytest.mark.parametrize("tool", ["nn.gradcheck", "alexnet.gradcheck"])
def test_the_gradient_checks_on_cuda(tmp_path, tool):
    out = run(tmp_path, sys.executable, "-m", tool, "--device", "cuda")
    assert re.search(r"\b[1-9]\d* passed, 0 failed", out) and " cupy " in out


def test_train_resume_evaluate_predict_visualize_on_cuda(tmp_path, tiny_synthetic):
    raw, prepared = tiny_synthetic
    common = ["--data", prepared, "--crop", "67", "-b", "4", "--width", "0.25", "--seed", "3", "--quiet"]
    cli = [sys.executable, "-m", "alexnet"]
    run(tmp_path, *cli, "train", *common, "--epochs", "1", "--device", "cuda", "--out", tmp_path / "gpu")
    run(
        tmp_path,
        *cli,
        "train",
        "--resume",
        tmp_path / "gpu" / "checkpoint.npz",
        "--out",
        tmp_path / "gpu",
        "--epochs",
        "2",
        "--device",
        "cuda",
        "--quiet",
    )
    run(tmp_path, *cli, "train", *common, "--epochs", "2", "--device", "cpu", "--out", tmp_path / "cpu")
    gpu, cpu = load_npz(tmp_path / "gpu" / "checkpoint.npz"), load_npz(tmp_path / "cpu" / "checkpoint.npz")
    weights = [k for k in cpu if k.startswith("model")]
    assert weights and all(np.array_equal(gpu[k], cpu[k]) for k in weights)

    out = run(
        tmp_path,
        *cli,
        "evaluate",
        "--checkpoint",
        tmp_path / "gpu" / "best.npz",
        "--device",
        "cuda",
        "--quiet",
    )
    assert "center crop" in out and "10 crops" in out
    image = next((raw / "val").glob("*/*.JPEG"))
    out = run(
        tmp_path, *cli, "predict", "--checkpoint", tmp_path / "gpu" / "best.npz", image, "--device", "cuda"
    )
    assert out.count("%") == 3  # three classes: the top-5 list holds three
    run(
        tmp_path,
        *cli,
        "visualize",
        "--checkpoint",
        tmp_path / "gpu" / "checkpoint.npz",
        "--out",
        tmp_path / "vis",
        "--queries",
        "2",
        "--neighbours",
        "3",
        "--device",
        "cuda",
    )
    assert (tmp_path / "vis" / "conv1_kernels.png").stat().st_size > 0
    assert (tmp_path / "vis" / "nearest_neighbours.png").stat().st_size > 0


def test_gpu_check_quick_runs_end_to_end_under_the_stand_in(tmp_path):
    """Steps 3-6 of ``gpu_check.sh --quick`` (1 and 2 are the tests above) on its synthetic folder:
    each passes, or (the benchmark against cuDNN) is skipped with the reason."""
    report = tmp_path / "report.txt"
    run(
        tmp_path,
        "bash",
        REPO / "benchmarks" / "gpu_check.sh",
        "--quick",
        "synthetic",
        report,
        timeout=300,
        stand_in=False,  # the script puts it on the path itself
        GPU_CHECK_DEVICE="stand-in",
        GPU_CHECK_ONLY="3 4 5 6",
        CUPY_CACHE_DIR=str(tmp_path / "cupy_cache"),
        TMPDIR=str(tmp_path),
    )
    text = report.read_text()
    summary = text.split("## summary", 1)[1]
    for name in (
        "3. CPU vs cuda",
        "4c. one epoch on cuda",
        "4d. resume",
        "4e. evaluate",
        "4f. predict",
        "5. one training step",
    ):
        assert re.search(rf"^{re.escape(name)}.*: pass, \d+ s$", summary, re.M), (name, summary)
    assert (
        "6. per-layer benchmark against PyTorch+cuDNN (FP32): skipped (the CuPy stand-in has no device time"
        in summary
    )
    assert "FAIL" not in summary and "| stand-in" in text  # the header names the card
    launches = re.search(r"^  launches +(\d+\.\d)$", text, re.M)
    assert launches and float(launches.group(1)) > 0  # step 5 reports the stand-in's counters
