"""Shared fixtures: the backend parametrization and the real-data location."""

import os
from pathlib import Path

import numpy as np
import pytest

from nn.backend import cupy_available, to_device

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir():
    """ALEXNET_DATA, or ../shared/data beside the repository; None when absent."""
    candidate = Path(os.environ.get("ALEXNET_DATA", REPO.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


def imagenette_dir():
    """The Imagenette photographs (shared_data_dir()/imagenette-224); None when absent."""
    shared = shared_data_dir()
    return shared / "imagenette-224" if shared is not None and (shared / "imagenette-224").is_dir() else None


def prepare_tiny72(tmp_path_factory):
    """A prepared 10-class subset of Imagenette: 5 train + 2 val images per class, S = 72 (skips the
    test when the photographs are absent)."""
    import data

    source = imagenette_dir()
    if source is None:
        pytest.skip("real ImageNet photographs not found: set ALEXNET_DATA or put them in ../shared/data")
    return data.prepare_subset(
        source,
        tmp_path_factory.mktemp("data") / "tiny72",
        per_class=5,
        val_per_class=2,
        size=72,
        workers=1,
        quiet=True,
    )


@pytest.fixture
def data_dir():
    found = shared_data_dir()
    if found is None:
        pytest.skip("real ImageNet photographs not found: set ALEXNET_DATA or put them in ../shared/data")
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
