"""The two towers of §3.2 as two real MPI processes: the scripts in tests/mpi/towers_*.py run under
``mpiexec -n 2`` from here (skipped, with the reason, when mpi4py or mpiexec is missing)."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import subprocess_env

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "mpi"


def mpiexec():
    """mpiexec on the PATH or beside this Python (the mpich wheel's); skips the test without it or mpi4py."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e .[mpi])")
    beside = Path(sys.executable).parent / "mpiexec"
    found = shutil.which("mpiexec") or (str(beside) if beside.exists() else None)
    if found is None:
        pytest.skip("mpiexec is not on PATH (pip install -e .[mpi] installs mpich's)")
    return found


def run_mpi(script, *args, ranks=2, timeout=180):
    """Run ``python -m mpi4py tests/mpi/<script> args`` on ``ranks`` processes (an exception on one
    rank aborts them all) with one BLAS thread each; returns the CompletedProcess, failing on rc != 0."""
    env = subprocess_env()
    cmd = [
        mpiexec(),
        "-n",
        str(ranks),
        sys.executable,
        "-m",
        "mpi4py",
        str(SCRIPTS / script),
        *map(str, args),
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_allgather_and_reduce_scatter_over_mpi():
    assert "towers_exchange OK on 2 ranks" in run_mpi("towers_exchange.py").stdout


def test_two_tower_processes_equal_one_process():
    """§3.2 on two real processes: float64 logits and gradients to 1e-10, float32 weights after a
    short training run up to rounding noise (the script asserts; this checks it ran to the end)."""
    out = run_mpi("towers_equivalence.py").stdout
    assert "towers_equivalence OK on 2 ranks" in out, out
