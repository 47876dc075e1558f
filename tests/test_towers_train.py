"""``mpiexec -n 2 python -m alexnet train --towers``: the two towers of §3.2 train, write ordinary
checkpoints from rank 0, resume, and end where the one-process ``--groups 2`` run ends.

The data: 5 classes (an odd count, so fc8's outputs split 3 + 2) of small synthetic JPEGs,
prepared at S = 72 and cropped to 67, an AlexNet of width 1/16. Skipped without mpi4py/mpiexec.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import subprocess_env, tiny_run_flags
from test_towers_mpi import mpiexec

import data
from alexnet.checkpoint import load_checkpoint
from nn import load_npz

REPO = Path(__file__).resolve().parents[1]
ARGS = tiny_run_flags(batch_size=8) + ["-j", "1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """5 classes x (6 train + 2 val) 80 x 96 JPEGs of coloured noise, prepared at S = 72."""
    from PIL import Image

    root = tmp_path_factory.mktemp("towers_images")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 2)):
        for label in range(5):
            folder = root / split / f"n0000000{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = rng.integers(0, 256, (80, 96, 3)) // 2 + 25 * label
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"img{index}.JPEG", quality=90)
    return data.prepare_subset(
        root, tmp_path_factory.mktemp("prepared") / "tiny72", size=72, workers=1, quiet=True
    )


def train(ranks, *args, timeout=180):
    prefix = [mpiexec(), "-n", str(ranks)] if ranks else []
    done = subprocess.run(
        prefix + [sys.executable, "-m", "alexnet", "train", *map(str, args)],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done


def arrays(path):
    return {k: v for k, v in load_npz(path).items() if k != "meta"}


def rel_error(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.fixture(scope="module")
def towers_run(tiny, tmp_path_factory):
    """Two epochs of ``mpiexec -n 2 ... train --towers``: (the completed process, its output folder)."""
    out = tmp_path_factory.mktemp("towers_run") / "towers"
    return train(2, "--towers", "--data", tiny, *ARGS, "--epochs", "2", "--out", out), out


def test_towers_train_resume_and_match_one_process(tiny, towers_run, tmp_path):
    full, out = towers_run
    assert full.returncode == 0, full.stderr
    assert "two towers (§3.2) on two processes" in full.stderr
    assert full.stdout.count("epoch ") == 2, full.stdout  # rank 0 alone prints
    assert {p.name for p in out.iterdir()} >= {"checkpoint.npz", "best.npz", "log.jsonl", "curves.png"}
    assert len((out / "log.jsonl").read_text().splitlines()) == 2

    # an ordinary one-process checkpoint: every array at its one-process shape, the two-group config
    checkpoint = load_checkpoint(out / "checkpoint.npz")
    model = checkpoint.build_model()
    assert model.groups == 2 and model.fc8.weight.data.shape == (5, 256)

    # the same run in one process ends with the same weights and velocities (float32 noise)
    one = train(0, "--data", tiny, *ARGS, "--epochs", "2", "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    towers_arrays, one_arrays = arrays(out / "checkpoint.npz"), arrays(tmp_path / "one" / "checkpoint.npz")
    assert sorted(towers_arrays) == sorted(one_arrays)
    worst = max(
        rel_error(towers_arrays[k], one_arrays[k]) for k in one_arrays if k.startswith(("model/", "optim"))
    )
    assert worst < 1e-4, worst
    history = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    one_history = [json.loads(line) for line in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    for mine, theirs in zip(history, one_history):
        assert mine["train_top1_error"] == theirs["train_top1_error"]
        assert abs(mine["val_loss"] - theirs["val_loss"]) < 1e-4 * abs(theirs["val_loss"])

    # one epoch, then --resume with the towers: bit-identical to the uninterrupted towers run
    first = train(2, "--towers", "--data", tiny, *ARGS, "--epochs", "1", "--out", tmp_path / "resumed")
    assert first.returncode == 0, first.stderr
    after_one_epoch = tmp_path / "after_one_epoch.npz"
    shutil.copy(tmp_path / "resumed" / "checkpoint.npz", after_one_epoch)
    second = train(
        2, "--towers", "--data", tiny, *ARGS, "--epochs", "2", "--out", tmp_path / "resumed", "--resume"
    )
    assert second.returncode == 0, second.stderr
    assert "resuming at epoch 2" in second.stderr
    resumed = arrays(tmp_path / "resumed" / "checkpoint.npz")
    for key, value in towers_arrays.items():
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)

    # and the towers' one-epoch checkpoint continues in ONE process (the flag may change on resume)
    third = train(
        0,
        "--data",
        tiny,
        *ARGS,
        "--epochs",
        "2",
        "--out",
        tmp_path / "continued",
        "--resume",
        after_one_epoch,
    )
    assert third.returncode == 0, third.stderr
    continued = arrays(tmp_path / "continued" / "checkpoint.npz")
    assert max(rel_error(continued[k], one_arrays[k]) for k in one_arrays if k.startswith("model/")) < 1e-4


def test_towers_refuse_one_process_and_one_group(tiny, tmp_path):
    alone = train(0, "--towers", "--data", tiny, *ARGS, "--epochs", "1", "--out", tmp_path / "a", timeout=60)
    assert alone.returncode != 0
    assert "mpiexec -n 2" in alone.stderr and "1 process" in alone.stderr
    one_group = train(
        2,
        "--towers",
        "--groups",
        "1",
        "--data",
        tiny,
        *ARGS,
        "--epochs",
        "1",
        "--out",
        tmp_path / "b",
        timeout=60,
    )
    assert one_group.returncode != 0
    assert "cannot be combined with --groups 1" in one_group.stderr


def test_help_documents_towers():
    done = subprocess.run(
        [sys.executable, "-m", "alexnet", "train", "--help"],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "--towers" in done.stdout and "mpiexec -n 2" in done.stdout


def test_sigterm_on_one_tower_stops_both_after_the_same_step(tiny, towers_run, tmp_path):
    """SIGTERM reaches rank 1 only, in epoch 2 step 2 (tests/mpi/sigterm_on_rank.py): the towers agree
    to stop after that step, rank 0 writes one mid-epoch checkpoint, and resuming it with --towers ends
    bit-identical to the uninterrupted run."""
    out = tmp_path / "stopped"
    done = subprocess.run(
        [
            mpiexec(),
            "-n",
            "2",
            sys.executable,
            "tests/mpi/sigterm_on_rank.py",
            "1",
            "1",
            "1",
            "--",
            "train",
            "--towers",
            "--data",
            str(tiny),
            *ARGS,
            "--epochs",
            "2",
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.count("stopped at epoch 2, step 2") == 1, done.stderr
    meta = load_checkpoint(out / "checkpoint.npz").meta
    assert (meta["epoch"], meta["step"]) == (1, 2) and meta["partial"]["count"] == 16
    resumed = train(2, "--towers", "--data", tiny, *ARGS, "--epochs", "2", "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    reference = arrays(towers_run[1] / "checkpoint.npz")
    finished = arrays(out / "checkpoint.npz")
    for key, value in reference.items():
        np.testing.assert_array_equal(finished[key], value, err_msg=key)
    ours = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (towers_run[1] / "log.jsonl").read_text().splitlines()]
    assert [h["train_loss"] for h in ours] == pytest.approx([h["train_loss"] for h in theirs], rel=1e-12)
