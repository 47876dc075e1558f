"""The Communicator (alexnet/parallel/communicator.py): its values under ``mpiexec -n 2`` (run from
pytest in a subprocess), the size-1 stand-in, and the error without mpi4py."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import prepare_imagenette, subprocess_env

from alexnet.parallel import BatchRowsMask, DataParallel, SingleProcessCommunicator, shard_rows
from alexnet.parallel import communicator as distributed

REPO = Path(__file__).resolve().parents[1]


def find_mpiexec():
    """mpiexec on the PATH, or the one the mpich wheel put beside this Python."""
    found = shutil.which("mpiexec")
    beside = Path(sys.executable).parent / "mpiexec"
    return found or (str(beside) if beside.exists() else None)


MPIEXEC = find_mpiexec()


def mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return MPIEXEC is not None


needs_mpi = pytest.mark.skipif(
    not mpi_available(), reason='needs mpi4py and mpiexec: pip install -e ".[mpi]"'
)


def mpiexec(n, *args, timeout=120, env=None):
    return subprocess.run(
        [MPIEXEC, "-n", str(n), sys.executable, *map(str, args)],
        cwd=REPO,
        env=env or subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@needs_mpi
def test_collectives_give_the_known_values_on_two_ranks():
    result = mpiexec(2, "tests/mpi/comm_checks.py", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "comm checks passed" in result.stdout


def test_one_process_stand_in_returns_its_input():
    comm = SingleProcessCommunicator()
    assert (comm.rank, comm.size, comm.is_root) == (0, 1, True)
    a = np.arange(4.0)
    assert comm.allreduce_mean_([a])[0] is a and np.array_equal(a, np.arange(4.0))
    assert comm.broadcast_([a])[0] is a
    assert comm.allreduce_sum(3) == 3
    assert comm.allgather(a, 0) is a and comm.reduce_scatter(a, 0) is a


def test_without_a_launcher_no_mpi_is_imported(monkeypatch):
    for name in distributed.LAUNCHER_SIZE_VARIABLES + ("PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distributed, "_COMMUNICATOR", None)
    comm = distributed.get_communicator()
    assert type(comm) is SingleProcessCommunicator and comm.size == 1


def test_two_processes_without_mpi4py_say_how_to_install_it():
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"
        "from alexnet.parallel import get_communicator\nget_communicator()"
    )
    env = dict(subprocess_env(), PMI_SIZE="2", PMI_RANK="0")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert 'pip install -e ".[mpi]"' in result.stderr and "2 processes" in result.stderr


@pytest.mark.parametrize("total, size", [(128, 2), (7, 2), (1, 2), (10, 4), (5, 1)])
def test_shard_rows_cover_the_batch_in_rank_order(total, size):
    blocks = [shard_rows(total, r, size) for r in range(size)]
    assert blocks[0][0] == 0 and blocks[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    lengths = [stop - start for start, stop in blocks]
    assert max(lengths) - min(lengths) <= 1


# -- each rank's share, without MPI: the shares put together are the one-process batch ----------


def _prepared(tmp_path_factory):
    import data

    subset = prepare_imagenette(tmp_path_factory, "s40", per_class=3, val_per_class=1, size=40)
    return data.PreparedDataset(subset, "train")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return _prepared(tmp_path_factory)


@pytest.mark.parametrize("train, size", [(True, 2), (True, 3), (False, 2)])
def test_rank_shares_of_a_batch_are_the_rows_of_the_one_process_batch(small_set, train, size):
    import data

    whole = data.Loader(small_set, 8, crop=32, train=train, seed=4, workers=0)  # 30 images: 8, 8, 8, 6
    shares = [
        data.Loader(small_set, 8, crop=32, train=train, seed=4, workers=0, shard=(r, size))
        for r in range(size)
    ]
    for loader in [whole] + shares:
        loader.set_epoch(2)
    batches = [list(loader) for loader in shares]
    for k, (x, y) in enumerate(whole):
        parts = [b[k] for b in batches]
        assert [len(p[1]) for p in parts] == [
            shares[r].rows_of(k)[1] - shares[r].rows_of(k)[0] for r in range(size)
        ]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), x)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), y)


def test_dropout_shards_draw_the_rows_of_the_whole_batch_mask():
    from nn import Dropout

    x = np.ones((7, 5), np.float32)
    whole = Dropout(0.5, rng=np.random.default_rng(1))
    expected = [whole.forward(x) for _ in range(2)]
    for start, stop in [(0, 4), (4, 7)]:
        layer = Dropout(0.5, rng=np.random.default_rng(1))
        layer.mask_source = BatchRowsMask(layer, start, stop, 7)
        for step in range(2):
            assert np.array_equal(layer.forward(x[start:stop]), expected[step][start:stop])
    skipper = Dropout(0.5, rng=np.random.default_rng(1))
    skipper.draw_mask((7, 5))  # what DataParallel.step draws on a rank with no rows
    assert np.array_equal(skipper.forward(x), expected[1])
    with pytest.raises(ValueError, match="rows 0:4 of the batch do not match a batch of 3"):
        BatchRowsMask(skipper, 0, 4, 7)((3, 5), np.float32)


def test_a_rank_without_rows_keeps_its_dropout_generators_in_step():
    """DataParallel.step on an empty share draws (and drops) the whole batch's masks, so the next
    batch's masks are the one-process masks; on a full share it uses the rows of the whole draw."""
    from alexnet import AlexNet
    from nn import SGD

    class TwoRanks(SingleProcessCommunicator):  # size 2 for the bookkeeping; the sums are local
        size = 2

    def fresh():
        model = AlexNet(num_classes=4, crop=67, width=1 / 16, seed=2, dtype=np.float64)
        return model, DataParallel(TwoRanks(), model, SGD(model.parameters(), lr=0.01))

    alone = AlexNet(num_classes=4, crop=67, width=1 / 16, seed=2, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((3, 3, 67, 67))
    masks = []
    for _ in range(2):
        alone.forward(x)
        masks.append(alone.drop6._mask)
    model, dp = fresh()

    def model_step(xs, ys):
        model.forward(xs)
        return 0.0, None

    dp.step(model_step, x[:0], None, (3, 3, 3), False)  # batch 1: no rows here
    dp.step(model_step, x[1:], None, (1, 3, 3), False)  # batch 2: rows 1:3
    np.testing.assert_array_equal(model.drop6._mask, masks[1][1:])


def test_the_stop_watchdog_bound_counts_only_step_to_step_intervals(monkeypatch):
    """The first step after the start, or after an epoch's end, holds the loader's start-up: it
    must not stretch the bound (on a loaded machine it can take many steps' time)."""
    from alexnet.parallel import SingleProcessCommunicator, watchdog

    clock = [0.0]
    monkeypatch.setattr(watchdog.time, "monotonic", lambda: clock[0])
    dog = watchdog.StopWatchdog(SingleProcessCommunicator(), timeout=3)
    clock[0] = 20.0
    dog.progress(True)  # the first step: 20 s of start-up, not a step's length
    assert dog.longest_step == 0 and dog.bound() == 3
    clock[0] = 21.0
    dog.progress(True)
    assert dog.longest_step == 1
    clock[0] = 40.0
    dog.progress(False)  # the epoch's end (validation, saving)
    clock[0] = 50.0
    dog.progress(True)  # the next epoch's first step: not counted either
    assert dog.longest_step == 1
    clock[0] = 52.0
    dog.progress(True)
    assert dog.longest_step == 2 and dog.bound() == 6


@needs_mpi
def test_a_rank_frozen_after_the_stop_agreement_cannot_hang_the_exit():
    """Rank 1 sends its share of the stop agreement, then freezes; rank 0 completes it and leaves
    the loop. Without ``StopWatchdog.settle`` rank 0 waited for rank 1 in MPI_Finalize for ever
    (the cause of the frozen-rank test's failures under load); with it the watchdog ends the job."""
    command = [MPIEXEC, "-n", "2", sys.executable, "tests/mpi/frozen_after_agreement.py"]
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # on failure the whole job, the stopped rank too, is killed below
    )
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "no step finished within 2 s of SIGTERM (another rank is stopped or hung)" in stderr
