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
