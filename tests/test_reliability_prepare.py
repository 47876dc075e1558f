"""``python -m data prepare`` never deletes what it did not make, runs alone on its OUT, sees
photographs upright, says what is wrong in one line, and says what cannot work."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import slow_data_cli
from PIL import Image
from synthetic import make_source

from data import PreparedDataset, load_image_square, prepare_subset
from data.__main__ import main as cli_main
from data.locking import FileLock

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def prepare_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "data", "prepare", *map(str, args), "--workers", "0", "--quiet"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ------------------------------------------------------------ nothing the user owns is deleted


def test_out_that_is_src_or_holds_it_is_refused_and_nothing_is_deleted(tmp_path):
    parent = tmp_path / "parent"
    src = make_source(parent / "photos")
    (parent / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(parent)
    before = listing(parent)
    for out, relation in (
        (parent, "contains the source folder"),
        (src, "is the source folder"),
        (src / "train" / "prepared", "lies inside the source folder"),
        (tmp_path / "link", "contains the source folder"),  # symlinks are resolved
    ):
        result = prepare_cli(src, out, "--size", "8", "--overwrite")
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and relation in lines[0], lines
        assert f"OUT {out}" in lines[0] and str(src) in lines[0] and "choose an OUT outside SRC" in lines[0]
        assert listing(parent) == before  # photos/, notes.txt and every image are still there


def test_overwrite_replaces_only_a_prepared_subset(tmp_path):
    src = make_source(tmp_path / "src")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / "holiday").mkdir()
    for flags in ((), ("--overwrite",)):
        result = prepare_cli(src, mine, "--size", "8", *flags)
        assert result.returncode == 2
        message = result.stderr.strip()
        assert (
            "is not a prepared subset: it holds 2 entries prepare never writes (holiday, notes.txt)"
            in message
        )
        assert "--overwrite replaces only such a folder" in message and "pass --overwrite" not in message
        assert listing(mine) == ["holiday", "notes.txt"]
    # a prepared subset into which the user put a file of their own is not replaced either
    out = prepare_subset(src, tmp_path / "out", size=8, workers=0, quiet=True)
    (out / "README.txt").write_text("my notes on this subset")
    result = prepare_cli(src, out, "--size", "8", "--per-class", "2", "--overwrite")
    assert result.returncode == 2 and "(README.txt)" in result.stderr
    assert (out / "README.txt").read_text() == "my notes on this subset"
    # a pure prepared subset is replaced, and an empty folder is used
    (out / "README.txt").unlink()
    assert prepare_cli(src, out, "--size", "8", "--per-class", "2", "--overwrite").returncode == 0
    assert len(PreparedDataset(out)) == 4
    (tmp_path / "empty").mkdir()
    assert prepare_cli(src, tmp_path / "empty", "--size", "8").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mine", "out", "src"]  # no lock left


# ------------------------------------------------------------ one run at a time on an OUT

# The real command, with the source scan made slow so that the two runs surely overlap.
SLOW_SCAN = """
import sys, time
import data.prepare as prepare
real = prepare.scan_source
def slow(src):
    time.sleep(4)
    return real(src)
prepare.scan_source = slow
from data.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def start_prepare(src, out, *flags, code=SLOW_SCAN):
    return subprocess.Popen(
        [sys.executable, "-c", code, "prepare", str(src), str(out), "--size", "8", "--workers", "0", *flags],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_concurrent_prepares_one_runs_the_other_names_its_pid(tmp_path):
    src = make_source(tmp_path / "src")
    out = tmp_path / "out"
    runs = [start_prepare(src, out, "--per-class", "1"), start_prepare(src, out, "--per-class", "2")]
    results = [(proc, *proc.communicate(timeout=120)) for proc in runs]
    winners = [r for r in results if r[0].returncode == 0]
    losers = [r for r in results if r[0].returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, [(p.returncode, err) for p, _, err in results]
    winner, loser = winners[0][0], losers[0]
    assert loser[0].returncode == 2
    lines = loser[2].strip().splitlines()
    assert len(lines) == 1, lines
    assert f"is being prepared by another run (PID {winner.pid} holds {out}.lock)" in lines[0]
    per_class = 1 if winner is runs[0] else 2
    assert json.loads((out / "meta.json").read_text())["args"]["per_class"] == per_class
    assert len(PreparedDataset(out)) == 2 * per_class
    assert not Path(f"{out}.lock").exists()


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    src = make_source(tmp_path / "src")
    out = tmp_path / "out"
    lock = Path(f"{out}.lock")
    proc = start_prepare(src, out)
    deadline = time.time() + 60
    while not (lock.exists() and lock.read_text().strip() == str(proc.pid)):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert lock.read_text().strip() == str(proc.pid)  # left behind, with a dead PID in it
    prepare_subset(src, out, size=8, workers=0, quiet=True)
    assert len(PreparedDataset(out)) == 6 and not lock.exists()


def test_decoding_workers_that_outlive_a_killed_run_do_not_hold_its_lock(tmp_path):
    src = make_source(tmp_path / "src", train=40, val=0)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*slow_data_cli(0.2), "prepare", str(src), str(out), "--size", "8", "--workers", "2"],
        env=ENV,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its workers stay in this process group, to be killed at the end
    )
    try:
        deadline = time.time() + 60
        while not (tmp_path / f"out.tmp-{proc.pid}" / "train_images.npy").exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # the workers are decoding now
        proc.kill()  # the parent only: its workers are orphaned, still running
        proc.wait(timeout=30)
        prepare_subset(src, out, size=8, workers=0, quiet=True)
        assert len(PreparedDataset(out)) == 80
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_removable_lock_is_taken_again_after_release(tmp_path):
    path = tmp_path / "x.lock"
    first = FileLock(path, remove=True).acquire()
    assert path.read_text().strip() == str(os.getpid())
    stale_fd = os.open(path, os.O_RDWR)  # a process that opened the file just before the release
    first.release()
    assert not path.exists()
    second = FileLock(path, remove=True).acquire()
    assert path.exists() and os.fstat(stale_fd).st_ino != os.stat(path).st_ino
    with pytest.raises(RuntimeError, match=f"PID {os.getpid()} holds"):
        FileLock(path, remove=True).acquire()
    second.release()
    os.close(stale_fd)


# ------------------------------------------------------------ photographs as people take them


def asymmetric_image(width=48, height=64):
    """Smooth (so that JPEG noise stays small) and with no symmetry: a turn shows."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([255 * x / width, 255 * y / height, np.full(x.shape, 60.0)], -1)
    img[: height // 4, : width // 3] = (250, 250, 20)  # a block in the top-left corner
    return img.astype(np.uint8)


def save_sideways(path, upright):
    """What a phone does: store the sensor's pixels turned and record the turn as orientation 6
    (to be viewed, rotate 90° clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright).transpose(Image.ROTATE_90).save(path, quality=95, exif=exif.tobytes())


def test_a_sideways_phone_photo_is_prepared_upright(tmp_path):
    upright = asymmetric_image()
    src = tmp_path / "src" / "train"
    for w in ("n00000001", "n00000002"):
        (src / w).mkdir(parents=True)
    save_sideways(src / "n00000001" / "phone.jpg", upright)
    Image.fromarray(upright).save(src / "n00000002" / "upright.jpg", quality=95)
    with Image.open(src / "n00000001" / "phone.jpg") as im:
        assert im.size == (64, 48)  # stored sideways
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = prepare_subset(tmp_path / "src", tmp_path / "out", size=32, workers=0, quiet=True)
    images = PreparedDataset(out).images
    phone, reference = images[0].astype(float), images[1].astype(float)
    assert np.abs(phone - reference).mean() < 2.0  # the same picture, within JPEG noise
    turned = load_image_square(src / "n00000001" / "phone.jpg", 32).astype(float)
    assert np.abs(turned - reference).mean() < 2.0  # predict's loader: the same function
    stored = np.asarray(Image.open(src / "n00000001" / "phone.jpg").resize((32, 32)), float)
    assert np.abs(stored - np.asarray(Image.fromarray(upright).resize((32, 32)), float)).mean() > 30


# ------------------------------------------------------------ messages that say what is wrong


def test_a_truncated_jpeg_says_truncated(tmp_path):
    src = make_source(tmp_path / "src")
    good = tmp_path / "good.jpg"
    Image.fromarray(asymmetric_image()).save(good, quality=95)
    data = good.read_bytes()
    bad = src / "train" / "n00000001" / "cut.jpg"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="the image file is truncated") as caught:
        load_image_square(bad, 8)
    assert "cannot be converted" not in str(caught.value)
    with pytest.warns(UserWarning, match="cut.jpg: ValueError: the image file is truncated"):
        out = prepare_subset(src, tmp_path / "out", size=8, workers=0, quiet=True)
    (skipped,) = json.loads((out / "meta.json").read_text())["skipped"]
    assert "truncated" in skipped["reason"] and "mode" not in skipped["reason"]


def test_class_folders_not_named_by_wnids_are_explained_with_the_way_out(tmp_path):
    src = make_source(tmp_path / "pets", classes=("cats", "dogs"), val=0)
    result = prepare_cli(src, tmp_path / "out", "--size", "8")
    assert result.returncode == 2
    message = result.stderr
    assert "no images found" not in message
    assert "holds 2 folders of images (cats, dogs) but none is named by a WordNet ID" in message
    assert "cats -> n00000001, dogs -> n00000002" in message and f"{src}/synsets.txt" in message
    # the advice works
    (src / "train" / "cats").rename(src / "train" / "n00000001")
    (src / "train" / "dogs").rename(src / "train" / "n00000002")
    (src / "synsets.txt").write_text("n00000001 cats\nn00000002 dogs\n")
    assert prepare_cli(src, tmp_path / "out", "--size", "8").returncode == 0
    assert PreparedDataset(tmp_path / "out").class_names == ["cats", "dogs"]


@pytest.mark.parametrize("size", ["100000", "0", "-3"])
def test_an_absurd_size_is_refused_before_anything_is_created(tmp_path, size, capsys):
    src = make_source(tmp_path / "src")
    with pytest.raises(SystemExit) as caught:
        cli_main(["prepare", str(src), str(tmp_path / "out" / "deep"), "--size", size])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument --size: {size} is out of range: S must be an integer from 1 to 1024" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    with pytest.raises(ValueError, match=f"image size {size} is out of range: S must be .* from 1 to 1024"):
        prepare_subset(src, tmp_path / "out", size=int(size), workers=0, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_info_into_a_closed_pipe_exits_quietly(tmp_path):
    out = prepare_subset(make_source(tmp_path / "src"), tmp_path / "out", size=8, workers=0, quiet=True)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already gone: every write gets EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "data", "info", str(out)],
            env=ENV,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")
    # and through a real `| head -1`, whichever way the race between the two ends goes
    shell = f"set -o pipefail; {sys.executable} -m data info {out} 2>{tmp_path}/err | head -1"
    piped = subprocess.run(["bash", "-c", shell], env=ENV, capture_output=True, text=True, timeout=60)
    assert piped.returncode in (0, 141) and (tmp_path / "err").read_text() == ""
    assert piped.stdout.startswith("PreparedDataset(") and piped.stdout.count("\n") == 1


# ------------------------------------------------------------ what cannot work is said


def test_one_class_and_val_copies_of_train_are_warned_and_recorded(tmp_path):
    src = make_source(tmp_path / "src", classes=("n00000001",), train=3, val=2)
    for i in range(2):  # val holds copies of training images (another name, another format)
        Image.open(src / "train" / "n00000001" / f"{i}.png").save(src / "val" / "n00000001" / f"{i}.bmp")
    with pytest.warns(UserWarning) as caught:
        out = prepare_subset(src, tmp_path / "out", size=8, workers=0, quiet=True)
    messages = [str(w.message) for w in caught]
    assert any("single class (n00000001)" in m for m in messages)
    assert any("2 of 4 validation images have exactly the pixels of a training image" in m for m in messages)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["duplicate_val_images"] == 2 and len(meta["warnings"]) == 2
    # a subset with two classes and fresh validation images warns of nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = prepare_subset(
            make_source(tmp_path / "ok"), tmp_path / "clean", size=8, workers=0, quiet=True
        )
    meta = json.loads((clean / "meta.json").read_text())
    assert meta["duplicate_val_images"] == 0 and meta["warnings"] == []
