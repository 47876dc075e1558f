"""Shared fixtures and helpers: the backend parametrization, the real-data location, and tiny
training runs started as subprocesses."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from nn.backend import cupy_available, to_device

REPO = Path(__file__).resolve().parents[1]
NO_PHOTOS = "real ImageNet photographs not found: set ALEXNET_DATA or put them in ../shared/data"


def shared_data_dir():
    """ALEXNET_DATA, or ../shared/data beside the repository; None when absent."""
    candidate = Path(os.environ.get("ALEXNET_DATA", REPO.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


def imagenette_dir():
    """The Imagenette photographs (shared_data_dir()/imagenette-224); None when absent."""
    shared = shared_data_dir()
    return shared / "imagenette-224" if shared is not None and (shared / "imagenette-224").is_dir() else None


def prepare_imagenette(tmp_path_factory, name, **selection):
    """A subset of the Imagenette photographs prepared with ``data.prepare_subset(**selection)``
    (one process, quiet) into a fresh folder ``name``; skips the test when they are absent."""
    import data

    source = imagenette_dir()
    if source is None:
        pytest.skip(NO_PHOTOS)
    out = tmp_path_factory.mktemp("data") / name
    return data.prepare_subset(source, out, workers=1, quiet=True, **selection)


def prepare_tiny72(tmp_path_factory):
    """A prepared 10-class subset of Imagenette: 5 train + 2 val images per class, S = 72 (skips the
    test when the photographs are absent)."""
    return prepare_imagenette(tmp_path_factory, "tiny72", per_class=5, val_per_class=2, size=72)


# -- tiny training runs -------------------------------------------------------------------------------

#: The crop of a tiny run on an S = 72 subset: the smallest that leaves a map after pool5.
TINY_CROP = 67


def tiny_run_flags(width=0.0625, batch_size=16):
    """The flags of a tiny training run on an S = 72 subset: crop 67, an AlexNet of ``width`` (1/16),
    He init, inputs / 64, seed 3, no progress bar: one epoch of 50 images is a few SGD steps."""
    flags = f"--crop {TINY_CROP} --width {width} -b {batch_size} --init kaiming --input-scale 64 --seed 3"
    return flags.split() + ["--quiet"]


def train_command(data, out, epochs, *flags):
    """``python -m alexnet train --data DATA FLAGS --epochs EPOCHS --out OUT`` as a list (prefix it
    with ``mpiexec -n N`` for several processes)."""
    command = [sys.executable, "-m", "alexnet", "train", "--data", data, *flags, "--epochs", epochs]
    return [str(part) for part in command + ["--out", out]]


def subprocess_env(cache=None):
    """The environment of a command started by a test: this checkout first on the path, one BLAS
    thread (several spin on a shared 2-core box), no display; ``cache``: ALEXNET_CACHE."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    if cache is not None:
        env["ALEXNET_CACHE"] = str(cache)
    return env


@pytest.fixture
def one_blas_thread():
    """One BLAS thread in this process (``pytestmark = pytest.mark.usefixtures("one_blas_thread")``):
    BLAS threads spinning on a shared 2-core box make every step several times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def slow_data_cli(delay):
    """``python -m data`` as a command list (its arguments follow), with every image decode
    slowed by ``delay`` seconds: a ``prepare`` slow enough to be interrupted or raced."""
    script = (
        "import sys, time\n"
        "import data.prepare as prepare\n"
        "real = prepare.load_image_square\n"
        "def slow(path, size):\n"
        f"    time.sleep({delay})\n"
        "    return real(path, size)\n"
        "prepare.load_image_square = slow\n"
        "from data.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return [sys.executable, "-c", script]


@pytest.fixture
def data_dir():
    found = shared_data_dir()
    if found is None:
        pytest.skip(NO_PHOTOS)
    return found


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """Run a test once with NumPy and once with CuPy (skipped without a GPU)."""
    if request.param == "cuda" and not cupy_available():
        pytest.skip("CuPy with a CUDA GPU is not available on this machine")
    return request.param


@pytest.fixture
def to_dev(device):
    """Move a NumPy array to the test's device."""
    return lambda array: to_device(np.asarray(array), device)
