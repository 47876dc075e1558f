"""Issue 10, the training side: nothing lost, nothing silent when `python -m alexnet train` is used
carelessly or unluckily. Each test failed on main before the fix it names.

Runs on a tiny prepared subset (4 classes x 4 training + 1 validation real photographs, S = 72,
crop 67, width 1/16): one epoch is one SGD step.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import imagenette_dir, prepare_imagenette, subprocess_env, tiny_run_flags, train_command

import data
from alexnet import rundir
from alexnet.checkpoint import load_checkpoint
from alexnet.cli import build_parser, given_options
from alexnet.cli import main as cli_main
from alexnet.rundir import RunDir, RunDirError, RunLock
from alexnet.train import EXIT_SAVE_FAILED

REPO = Path(__file__).resolve().parents[1]
SMALL = tiny_run_flags()


def _four_class_subset(tmp_path_factory, name, per_class):
    """4 classes of the Imagenette photographs, ``per_class`` + 1 images each, S = 72."""
    selection = dict(num_classes=4, per_class=per_class, val_per_class=1, size=72)
    return prepare_imagenette(tmp_path_factory, name, **selection)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _four_class_subset(tmp_path_factory, "tiny", per_class=4)


@pytest.fixture(scope="module")
def other_subset(tmp_path_factory):
    """Same source and S, other images (3 per class): a different subset."""
    return _four_class_subset(tmp_path_factory, "other", per_class=3)


@pytest.fixture(scope="module")
def one_epoch(tiny, tmp_path_factory):
    """A finished one-epoch run, copied by the tests that need a run to start from."""
    out = tmp_path_factory.mktemp("one") / "run"
    assert cli_main(["train", "--data", str(tiny), *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(one_epoch, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(one_epoch, out)
    return out


def train(*args):
    return cli_main(["train", *map(str, args)])


def _snapshot(out):
    return {name: (out / name).read_bytes() for name in rundir.OUTPUT_FILES if (out / name).exists()}


def _one_line_error(err):
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err, err
    return lines[-1]


# -- 2. an existing run is not overwritten ------------------------------------------------------


def test_an_existing_run_is_refused(tiny, run, capsys):
    before = _snapshot(run)
    assert train("--data", tiny, *SMALL, "--epochs", 1, "--out", run) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "already holds a training run" in line and "--resume" in line and "--overwrite" in line
    assert _snapshot(run) == before


def test_a_log_alone_is_a_run(tiny, tmp_path, capsys):
    (tmp_path / "log.jsonl").write_text('{"epoch": 1}\n')
    assert train("--data", tiny, *SMALL, "--epochs", 1, "--out", tmp_path) == 1
    assert "log.jsonl" in capsys.readouterr().err


def test_resuming_another_checkpoint_into_a_run_folder_is_refused(tiny, run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run, other)
    before = _snapshot(run)
    assert (
        train("--data", tiny, *SMALL, "--epochs", 2, "--out", run, "--resume", other / "checkpoint.npz") == 1
    )
    assert "already holds a training run" in capsys.readouterr().err
    assert _snapshot(run) == before


def test_overwrite_keeps_the_old_run_until_the_new_one_saves(tiny, run, capsys):
    before = _snapshot(run)
    # A new run that fails before its first save (here: a crop larger than S) leaves the old run as it was.
    assert train("--data", tiny, *SMALL, "--crop", 80, "--epochs", 1, "--out", run, "--overwrite") == 1
    assert "larger than the prepared images" in capsys.readouterr().err
    assert _snapshot(run) == before
    assert not list(run.glob("overwritten-*"))
    # A new run that saves replaces it, and nothing of the old run is left behind.
    assert train("--data", tiny, *SMALL, "--seed", 5, "--epochs", 1, "--out", run, "--overwrite") == 0
    capsys.readouterr()
    assert load_checkpoint(run / "checkpoint.npz").meta["args"]["seed"] == 5
    assert (run / "checkpoint.npz").read_bytes() != before["checkpoint.npz"]
    assert len((run / "log.jsonl").read_text().splitlines()) == 1
    assert not list(run.glob("overwritten-*"))


def test_overwrite_moves_all_old_files_at_the_first_write(run):
    before = _snapshot(run)
    folder = RunDir(run).open(overwrite=True)
    try:
        assert _snapshot(run) == before  # nothing moved yet
        folder.before_write()
        existing = list(run.glob("overwritten-*"))
        assert len(existing) == 1 and _snapshot(existing[0]) == before and not rundir.existing_run_files(run)
        folder.saved()
        assert not list(run.glob("overwritten-*"))
    finally:
        folder.close()


def test_overwrite_and_resume_together_are_refused(tiny, run, capsys):
    assert train("--data", tiny, *SMALL, "--out", run, "--overwrite", "--resume") == 1
    assert "give only one" in capsys.readouterr().err


# -- 3. one run per folder ------------------------------------------------------------------

HOLDER = (
    "import sys, time\n"
    "from alexnet.rundir import RunDir\n"
    "RunDir(sys.argv[1]).open()\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


def _hold_lock(folder):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_fails_at_once_naming_the_pid(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    holder = _hold_lock(out)
    try:
        start = time.perf_counter()
        assert train("--data", tiny, *SMALL, "--epochs", 1, "--out", out) == 1
        seconds = time.perf_counter() - start
        line = _one_line_error(capsys.readouterr().err)
        assert f"PID {holder.pid}" in line and "in use by another training run" in line
        assert seconds < 10
        assert not (out / "checkpoint.npz").exists()
    finally:
        holder.kill()
        holder.wait()


def test_two_real_runs_on_one_folder(tiny, tmp_path):
    """Two CLI processes at once on the same --out: exactly one trains, the other names its PID."""
    out = tmp_path / "run"
    env = subprocess_env()
    cmd = train_command(tiny, out, 8, *SMALL)
    first = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while not out.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    if first.poll() is not None:
        pytest.skip("the first run ended before the second could start")
    second = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    errors = {proc.pid: proc.communicate(timeout=180)[1] for proc in (first, second)}
    assert sorted([first.returncode, second.returncode]) == [0, 1], errors
    winner = first if first.returncode == 0 else second
    loser = second if winner is first else first
    if "already holds a training run" in errors[loser.pid]:
        pytest.skip("the runs did not overlap (the first had finished); the refusal itself is tested above")
    assert f"PID {winner.pid}" in errors[loser.pid], errors[loser.pid]
    assert load_checkpoint(out / "checkpoint.npz").meta["epoch"] == 8


def test_a_lock_left_by_a_killed_run_does_not_block(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    holder = _hold_lock(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (out / ".lock").read_text().strip() == str(holder.pid)  # the stale PID is still written there
    assert train("--data", tiny, *SMALL, "--epochs", 1, "--out", out) == 0
    assert (out / "checkpoint.npz").exists()
    assert (out / ".lock").read_text() == ""  # released at the end


def test_pid_file_fallback_without_flock(tmp_path, monkeypatch):
    """On a filesystem without flock (ENOLCK), the PID in .lock is the lock: a live one blocks, a
    dead one (stale) is taken over."""

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(rundir.fcntl, "flock", no_flock)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(f"{dead.pid}\n")
    lock = RunLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    lock.release()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(f"{alive.pid}\n")
        with pytest.raises(RunDirError, match=f"PID {alive.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        alive.kill()
        alive.wait()


# -- 5. an unwritable --out fails before training -------------------------------------------


def test_out_under_a_file_fails_before_training(tiny, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert train("--data", tiny, *SMALL, "--epochs", 1, "--out", tmp_path / "afile" / "run") == 1
    err = capsys.readouterr().err
    line = _one_line_error(err)
    assert "is not writable" in line and "afile" in line
    assert "training AlexNet" not in err  # failed before the data was even opened


def test_read_only_out_fails_before_training(tiny, tmp_path, monkeypatch, capsys):
    """A folder the user may not write to: one line, exit 1, before the data is opened. Root may
    write anywhere, so there the probe's PermissionError is simulated."""
    out = tmp_path / "run"
    out.mkdir()
    os.chmod(out, 0o555)
    if os.geteuid() == 0:
        real_open = os.open

        def refuse(path, *args, **kwargs):
            if ".write-probe-" in str(path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(rundir.os, "open", refuse)
    try:
        assert train("--data", tiny, *SMALL, "--epochs", 1, "--out", out) == 1
        err = capsys.readouterr().err
        assert f"--out {out} is not writable: Permission denied" in _one_line_error(err)
        assert "training AlexNet" not in err
    finally:
        os.chmod(out, 0o755)


# -- 6. disk full while saving ---------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
def test_disk_full_while_saving_keeps_the_last_checkpoint(tiny, run, monkeypatch, capsys, code):
    before = _snapshot(run)
    real_savez = np.savez

    def full_disk(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a file")  # something reaches the temporary file first
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(np, "savez", full_disk)
    status = train("--data", tiny, *SMALL, "--epochs", 2, "--out", run, "--resume")
    monkeypatch.setattr(np, "savez", real_savez)
    line = _one_line_error(capsys.readouterr().err)
    assert status == EXIT_SAVE_FAILED
    assert f"could not write {run}" in line and os.strerror(code) in line and errno.errorcode[code] in line
    assert _snapshot(run) == before
    assert not rundir.stale_temporaries(run)
    assert load_checkpoint(run / "checkpoint.npz").meta["epoch"] == 1


def test_a_failed_figure_leaves_no_temporary_file(tiny, tmp_path, monkeypatch, capsys):
    from matplotlib.figure import Figure

    def full_disk(self, handle, **kwargs):
        handle.write(b"\x89PNG half")  # plot_curves saves into atomic_write's temporary file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Figure, "savefig", full_disk)
    out = tmp_path / "run"
    assert train("--data", tiny, *SMALL, "--epochs", 1, "--out", out) == 0  # a figure never stops training
    assert "could not draw" in capsys.readouterr().err
    assert not rundir.stale_temporaries(out) and (out / "checkpoint.npz").exists()


# -- 7. flags on --resume ------------------------------------------------------------------


def test_resume_refuses_flags_that_change_the_run(tiny, run, capsys):
    before = _snapshot(run)
    assert (
        train(
            "--data",
            tiny,
            *SMALL[:2],
            "--width",
            0.5,
            "--seed",
            9,
            "--dropout",
            0.2,
            "--epochs",
            2,
            "--out",
            run,
            "--resume",
        )
        == 1
    )
    line = _one_line_error(capsys.readouterr().err)
    assert "--width 0.5 (the run has 0.0625)" in line and "--seed 9 (the run has 3)" in line
    assert "--dropout" in line
    assert _snapshot(run) == before


def test_resume_accepts_the_run_s_own_flags_and_applies_a_new_lr(tiny, run, capsys):
    lr_before = float(load_checkpoint(run / "checkpoint.npz").optimizer_state["lr"])
    assert train("--data", tiny, *SMALL, "--epochs", 2, "--out", run, "--resume", "--lr", 0.005) == 0
    assert "learning rate changed from 0.01 to 0.005" in capsys.readouterr().err
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["lr"] for line in lines] == [lr_before, 0.005]
    assert lines[1]["lr_changes"] == [{"epoch": 2, "step": 0, "from": lr_before, "to": 0.005}]
    meta = load_checkpoint(run / "checkpoint.npz").meta
    assert meta["lr_changes"][0]["to"] == 0.005 and meta["args"]["lr"] == 0.005
    # Repeating the run's own --lr changes nothing (the schedule's current rate is kept).
    assert train("--data", tiny, *SMALL, "--epochs", 3, "--out", run, "--resume", "--lr", 0.005) == 0
    assert "learning rate changed" not in capsys.readouterr().err
    assert len(load_checkpoint(run / "checkpoint.npz").meta["lr_changes"]) == 1


def test_a_checkpoint_older_than_a_flag_resumes_as_it_was_trained(tiny, run, capsys):
    """A checkpoint written before --lighting-std and --lrn-across-towers existed: it ran with the
    default lighting and the cross-tower LRN window, and a resume keeps both (and refuses to change them)."""
    from nn import load_npz, save_npz_atomic

    arrays = load_npz(run / "checkpoint.npz")
    meta = json.loads(str(arrays["meta"]))
    for key in ("lighting_std", "lrn_across_towers"):
        del meta["args"][key]
    meta["model_config"]["lrn_groups"] = 1
    arrays["meta"] = np.array(json.dumps(meta))
    save_npz_atomic(run / "checkpoint.npz", arrays)
    assert train("--data", tiny, *SMALL, "--epochs", 2, "--out", run, "--resume", "--lighting-std", 0) == 1
    assert "--lighting-std 0.0 (the run has 0.1)" in capsys.readouterr().err
    assert train("--data", tiny, *SMALL, "--epochs", 2, "--out", run, "--resume") == 0
    resumed = load_checkpoint(run / "checkpoint.npz")
    assert resumed.config["lrn_groups"] == 1 and resumed.meta["args"]["lrn_across_towers"] is True


def test_typed_flags_are_told_from_defaults():
    given = given_options(["train", "--data", "x", "--lr", "0.01", "-b", "3", "--resume"], "train")
    assert given == {"data": "--data", "lr": "--lr", "batch_size": "--batch-size", "resume": "--resume"}
    helps = build_parser()._actions[-1].choices["train"].format_help()
    assert "--overwrite" in helps and "refused" in helps


# -- 8. resume after the prepared folder moved ----------------------------------------------------


def test_resume_after_the_data_moved(tiny, other_subset, tmp_path, capsys):
    first = tmp_path / "first"
    shutil.copytree(tiny, first)
    out = tmp_path / "run"
    assert train("--data", first, *SMALL, "--epochs", 1, "--out", out) == 0
    moved = tmp_path / "moved"
    os.rename(first, moved)
    capsys.readouterr()
    before = _snapshot(out)
    # Without --data (the run's own is used): a sentence saying what to do.
    assert train("--epochs", 2, "--out", out, "--resume", "--quiet") == 1
    line = _one_line_error(capsys.readouterr().err)
    assert f"the run's data {first} no longer exists" in line and "--data NEW" in line
    # A different subset, or the same folder with another mean image: refused, the run untouched.
    assert train("--data", other_subset, "--epochs", 2, "--out", out, "--resume", "--quiet") == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "is not the subset this run was trained on" in line and "train images" in line
    tampered = tmp_path / "tampered"
    shutil.copytree(moved, tampered)
    np.save(tampered / "mean_image.npy", np.load(tampered / "mean_image.npy") + 1)
    assert train("--data", tampered, "--epochs", 2, "--out", out, "--resume", "--quiet") == 1
    assert "mean image" in capsys.readouterr().err
    assert _snapshot(out) == before
    # The same subset at its new place: accepted.
    assert train("--data", moved, "--epochs", 2, "--out", out, "--resume", "--quiet") == 0
    meta = load_checkpoint(out / "checkpoint.npz").meta
    assert meta["epoch"] == 2 and meta["data_path"] == str(moved) and meta["args"]["data"] == str(moved)


def test_a_checkpoint_without_a_fingerprint_is_checked_on_what_it_holds(tiny, other_subset, run, capsys):
    """Checkpoints written before this change hold the classes, S and the mean image only."""
    from alexnet.resume import check_same_subset

    checkpoint = load_checkpoint(run / "checkpoint.npz")
    del checkpoint.meta["data_fingerprint"]
    check_same_subset(checkpoint, tiny)
    with pytest.raises(ValueError, match="mean image"):
        check_same_subset(checkpoint, other_subset)


def test_data_is_required_without_resume(tmp_path, capsys):
    assert train("--out", tmp_path / "run") == 1
    assert "--data is required" in capsys.readouterr().err


# -- 12. leftovers of a killed save -------------------------------------------------------------


def test_stale_temporaries_are_removed_at_the_next_start(tiny, run, capsys):
    leftovers = ["checkpoint.npz.k3j_9x.tmp", "best.npz.abc.tmp", "log.jsonl.tmp", "curves.png.tmp.png"]
    kept = ["notes.tmp", "checkpoint.npz.bak", "my.npz.x.tmp"]
    for name in leftovers + kept:
        (run / name).write_bytes(b"x")
    (run / "sub").mkdir()
    (run / "sub" / "checkpoint.npz.a.tmp").write_bytes(b"x")
    assert train("--data", tiny, *SMALL, "--epochs", 2, "--out", run, "--resume") == 0
    assert "removed leftovers of an interrupted save" in capsys.readouterr().err
    assert not any((run / name).exists() for name in leftovers)
    assert all((run / name).exists() for name in kept) and (run / "sub" / "checkpoint.npz.a.tmp").exists()


def test_a_live_run_s_temporaries_are_not_touched(tmp_path):
    """Cleaning happens only with the lock held: a second opener fails before removing anything."""
    holder = _hold_lock(tmp_path)
    try:
        (tmp_path / "checkpoint.npz.live.tmp").write_bytes(b"being written")
        with pytest.raises(RunDirError):
            RunDir(tmp_path).open()
        assert (tmp_path / "checkpoint.npz.live.tmp").exists()
    finally:
        holder.kill()
        holder.wait()


# -- 13. messages name the flags of the command that was run --------------------------------


def test_train_classes_error_names_train_s_flag(tmp_path, capsys, monkeypatch):
    source = imagenette_dir()
    if source is None:
        pytest.skip("real ImageNet photographs not found")
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    assert train("--data", source, "--classes", 17, "--out", tmp_path / "run") == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "--classes 17" in line and "--num-classes" not in line and "has only 10" in line


def test_prepare_error_names_prepare_s_flag(tmp_path, capsys):
    source = imagenette_dir()
    if source is None:
        pytest.skip("real ImageNet photographs not found")
    from data.__main__ import main as data_main

    assert data_main(["prepare", str(source), str(tmp_path / "out"), "--num-classes", "17"]) == 2
    assert "--num-classes 17" in capsys.readouterr().err
    assert data_main(["prepare", str(source), str(tmp_path / "out"), "--random-classes", "12"]) == 2
    assert "--random-classes 12" in capsys.readouterr().err


# -- under MPI only rank 0 guards and writes ----------------------------------------------------


def test_a_process_that_writes_nothing_takes_no_lock(tmp_path):
    out = tmp_path / "run"
    with rundir.guarded_out(out, write=False) as nothing:
        assert nothing is None and not out.exists()
        with rundir.guarded_out(out) as run_dir:  # rank 0 beside it
            assert run_dir.lock.held and (out / ".lock").read_text().strip() == str(os.getpid())
        assert not run_dir.lock.held


# -- 10. flags name themselves, and are checked before anything is created ----------------------


@pytest.mark.parametrize(
    "flag, value, said",
    [
        ("--seed", "-1", "argument --seed: must be >= 0, got -1"),
        ("--seed", "x", "argument --seed: expected an integer, got 'x'"),
        ("--input-scale", "inf", "argument --input-scale: must be in [0.001, 10000], got inf"),
        ("--input-scale", "nan", "argument --input-scale: must be in [0.001, 10000], got nan"),
        ("--input-scale", "1e-30", "argument --input-scale: must be in [0.001, 10000], got 1e-30"),
        ("--lr", "inf", "argument --lr/--learning-rate: must be a positive finite number, got inf"),
    ],
)
def test_a_bad_flag_is_named_before_any_file_is_made(tiny, tmp_path, capsys, flag, value, said):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        train("--data", tiny, *SMALL, "--epochs", 1, "--out", out, flag, value)
    assert stop.value.code == 2
    assert said in _one_line_error(capsys.readouterr().err)
    assert not out.exists()  # no --out, no .lock


def test_a_one_class_subset_is_refused(tmp_path_factory, tmp_path, capsys):
    source = imagenette_dir()
    if source is None:
        pytest.skip("real ImageNet photographs not found")
    one = data.prepare_subset(
        source,
        tmp_path_factory.mktemp("data") / "one",
        num_classes=1,
        per_class=4,
        val_per_class=1,
        size=72,
        workers=1,
        quiet=True,
    )
    assert train("--data", one, *SMALL, "--epochs", 1, "--out", tmp_path / "run") == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "has 1 class" in line and "a classifier needs at least 2" in line
    assert not (tmp_path / "run" / "checkpoint.npz").exists()
