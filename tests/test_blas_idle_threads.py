"""nn.configure_blas() makes OpenBLAS's idle worker threads sleep at once (nn/blas.py), and plain
``import nn`` changes nothing.

Measured, not assumed: a fresh process does a matrix product on two BLAS threads, then sleeps
0.1 s; the CPU time it uses while its main thread sleeps is the spinning of OpenBLAS's idle
worker. With NumPy loaded the default way (also after a plain ``import nn``) the worker spins
through most of that sleep; after ``nn.configure_blas()`` it must not.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

IDLE_CPU = """
import resource, statistics, sys, time
sys.path.insert(0, {root!r})
{first_import}
import numpy as np
matrix = np.ones((1024, 1024), np.float32)

def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

idle = []
for _ in range(5):
    matrix @ matrix
    before = cpu_seconds()
    time.sleep(0.1)
    idle.append(cpu_seconds() - before)
print(statistics.median(idle))
"""


def run_python(script, **env):
    """stdout of ``python -c script`` with this environment minus OPENBLAS_THREAD_TIMEOUT, plus ``env``."""
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def idle_cpu_seconds(first_import, **env):
    script = IDLE_CPU.format(root=str(ROOT), first_import=first_import)
    return float(run_python(script, OPENBLAS_NUM_THREADS="2", **env).split()[-1])


@pytest.fixture(scope="module")
def default_spin():
    """CPU seconds of 0.1 s of idleness with OpenBLAS's own default; skip where nothing spins."""
    if sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs Linux and at least 2 cores for two BLAS threads")
    spin = idle_cpu_seconds("")
    if spin < 0.03:
        pytest.skip(
            f"this BLAS's idle threads do not spin by default here ({spin:.3f} s of CPU in "
            f"0.1 s of sleep), so there is nothing to measure"
        )
    return spin


CONFIGURE = "import nn; nn.configure_blas()"


def test_configure_blas_makes_blas_workers_sleep(default_spin):
    quiet = idle_cpu_seconds(CONFIGURE)
    assert quiet < 0.2 * default_spin, (quiet, default_spin)


def test_plain_import_nn_does_not(default_spin):
    assert idle_cpu_seconds("import nn") > 0.5 * default_spin


def test_a_users_own_setting_is_kept(default_spin):
    # 30 is OpenBLAS's maximum (2^30 cycles): the worker spins through the whole 0.1 s again.
    assert idle_cpu_seconds(CONFIGURE, OPENBLAS_THREAD_TIMEOUT="30") > 0.5 * default_spin


def script(body):
    return f"import os, sys; sys.path.insert(0, {str(ROOT)!r}); {body}"


def test_the_variable_is_removed_again_and_recorded():
    out = run_python(
        script(
            "import nn; print(nn.configure_blas(), nn.blas.OPENBLAS_THREAD_TIMEOUT, "
            "os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
        )
    )
    assert out.split() == ["4", "4", "None"]


def test_a_users_setting_is_recorded_and_too_late_is_none():
    out = run_python(script("import nn; print(nn.configure_blas())"), OPENBLAS_THREAD_TIMEOUT="30")
    assert out.split() == ["30"]
    assert run_python(script("import numpy, nn; print(nn.configure_blas())")).split() == ["None"]


def test_plain_import_nn_changes_no_environment_and_loads_no_numpy():
    out = run_python(
        script(
            "before = dict(os.environ); import nn; import alexnet; "
            "print(dict(os.environ) == before, 'numpy' in sys.modules)"
        )
    )
    assert out.split() == ["True", "False"]


def test_python_m_alexnet_configures_blas_before_numpy_loads():
    """What ``python -m alexnet --help`` runs, with a look at the record afterwards."""
    quietly = "contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO())"
    out = run_python(
        script(
            "import runpy, contextlib, io; sys.argv = ['alexnet', '--help']\n"
            f"with {quietly}:\n"
            "    runpy.run_module('alexnet', run_name='__main__', alter_sys=True)\n"
            "import nn; print(nn.blas.OPENBLAS_THREAD_TIMEOUT, 'numpy' in sys.modules)"
        )
    )
    assert out.split() == ["4", "True"]
