"""Evidence that AlexNet learns, and that its command line trains, resumes exactly, evaluates,
predicts and visualizes, on a tiny subset of real ImageNet photographs (Imagenette).

The subset: 10 classes x 5 training (+ 2 validation) images, prepared at S = 72 with crops of
67 (the smallest crop that leaves a map after pool5), and an AlexNet of width 1/16 or 1/8.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CROP, imagenette_dir, prepare_tiny72, subprocess_env, tiny_run_flags, train_command

import data
from alexnet import AlexNet
from alexnet.checkpoint import load_checkpoint
from alexnet.cli import main as cli_main
from nn import SGD, SoftmaxCrossEntropyLoss, load_npz
from nn.backend import cupy_available

REPO = Path(__file__).resolve().parents[1]
CROP = TINY_CROP
SMALL = tiny_run_flags()
pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A prepared 10-class subset: 5 train + 2 val images per class, S = 72."""
    return prepare_tiny72(tmp_path_factory)


def sigterm_at_first_checkpoint(command, out, env):
    """Start ``command``, send it SIGTERM as soon as ``out/checkpoint.npz`` exists, and return its
    (exit status, stderr); skip the test when the run finished before the signal arrived."""
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not (out / "checkpoint.npz").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    return proc.returncode, stderr


def alexnet_cli(tmp, *args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "alexnet", *map(str, args)],
        cwd=REPO,
        env=subprocess_env(tmp / "cache"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _arrays_equal(a, b):
    a, b = load_npz(a), load_npz(b)
    arrays = [k for k in a if k != "meta"]
    assert sorted(arrays) == sorted(k for k in b if k != "meta")
    return all(np.array_equal(a[k], b[k]) for k in arrays)


def _history(path):
    return [
        {k: v for k, v in h.items() if k not in ("images_per_s", "seconds")}
        for h in load_checkpoint(path).meta["history"]
    ]


# -- it learns ------------------------------------------------------------------------


def test_overfits_a_small_real_subset(tiny):
    """50 real photographs (centre crops, mean subtracted) are fitted to 100 % training accuracy
    by a reduced-width AlexNet (He init, inputs / 64, dropout on) within 200 SGD steps."""
    ds = data.PreparedDataset(tiny, "train")
    x = data.center_crop_batch(ds.images, ds.mean_image, CROP, input_scale=64.0)
    y = ds.labels
    model = AlexNet(num_classes=10, crop=CROP, width=0.125, init="kaiming", seed=0)
    optimizer = SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    loss = SoftmaxCrossEntropyLoss()
    accuracy, first_loss = 0.0, None
    for step in range(200):
        model.train()
        value = loss.forward(model.forward(x), y)
        first_loss = value if first_loss is None else first_loss
        optimizer.zero_grad()
        model.backward(loss.backward())
        optimizer.step()
        if step % 5 == 4:
            accuracy = float((model.eval().forward(x).argmax(axis=1) == y).mean())
            if accuracy == 1.0:
                break
    assert accuracy == 1.0, f"training accuracy {accuracy:.2f} after {step + 1} steps"
    assert value < first_loss / 3


# -- the command line --------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_run(tiny, tmp_path_factory):
    """Three uninterrupted epochs: the run every interrupted one must reproduce exactly."""
    tmp = tmp_path_factory.mktemp("reference")
    result = alexnet_cli(tmp, "train", "--data", tiny, *SMALL, "--epochs", 3, "--out", tmp / "run")
    assert result.returncode == 0, result.stderr
    return tmp / "run", result


def test_train_writes_log_curves_and_checkpoints(reference_run):
    out, result = reference_run
    assert {"checkpoint.npz", "best.npz", "log.jsonl", "curves.png"} <= {p.name for p in out.iterdir()}
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    for key in (
        "train_loss",
        "train_top1_error",
        "train_top5_error",
        "val_top1_error",
        "val_top5_error",
        "images_per_s",
        "lr",
    ):
        assert all(np.isfinite(line[key]) for line in lines), key
    assert "img/s" in result.stdout and "top-5 err" in result.stdout
    meta = load_checkpoint(out / "checkpoint.npz").meta
    assert meta["epoch"] == 3 and meta["schedule"]["best"] <= 1.0
    assert set(meta["dropout_rng"]) == {"drop6", "drop7"}


def test_sigkill_and_resume_gives_identical_weights(tiny, reference_run, tmp_path):
    """Killed (SIGKILL) after its first checkpoint, then resumed: the same weights, velocities
    and history as the run never interrupted (CPU, same seed, exact equality)."""
    out = tmp_path / "run"
    cmd = train_command(tiny, out, 3, *SMALL)
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=subprocess_env(tmp_path / "cache"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (out / "checkpoint.npz").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert (out / "checkpoint.npz").exists()
    assert load_checkpoint(out / "checkpoint.npz").meta["epoch"] < 3, "killed too late to test anything"
    resumed = alexnet_cli(tmp_path, "train", "--data", tiny, *SMALL, "--epochs", 3, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    reference, _ = reference_run
    assert _arrays_equal(out / "checkpoint.npz", reference / "checkpoint.npz")
    assert _history(out / "checkpoint.npz") == _history(reference / "checkpoint.npz")
    assert _arrays_equal(out / "best.npz", reference / "best.npz")


def test_sigterm_saves_mid_epoch_and_resume_is_exact(tiny, reference_run, tmp_path):
    out = tmp_path / "run"
    cmd = train_command(tiny, out, 3, *SMALL)
    returncode, stderr = sigterm_at_first_checkpoint(cmd, out, subprocess_env(tmp_path / "cache"))
    assert returncode == 130, stderr
    assert "checkpoint saved" in stderr
    resumed = alexnet_cli(tmp_path, "train", "--data", tiny, *SMALL, "--epochs", 3, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    reference, _ = reference_run
    assert _arrays_equal(out / "checkpoint.npz", reference / "checkpoint.npz")
    assert _history(out / "checkpoint.npz") == _history(reference / "checkpoint.npz")


def test_nonfinite_loss_stops_with_a_clear_message(tiny, tmp_path, capsys):
    status = cli_main(
        [
            "train",
            "--data",
            str(tiny),
            *SMALL,
            "--epochs",
            "2",
            "--lr",
            "1e12",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 3, err
    assert "epoch 1, step" in err and "diverged" in err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_nonfinite_loss_leaves_the_last_good_checkpoint(tiny, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert cli_main(["train", "--data", str(tiny), *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    good = (out / "checkpoint.npz").read_bytes()
    real_mean_loss, calls = SoftmaxCrossEntropyLoss.mean_loss, []

    def poisoned(self, logits, labels, labels_checked=False):
        calls.append(1)
        loss = real_mean_loss(self, logits, labels, labels_checked)
        return loss * np.nan if len(calls) == 2 else loss

    monkeypatch.setattr(SoftmaxCrossEntropyLoss, "mean_loss", poisoned)
    status = cli_main(["train", "--data", str(tiny), *SMALL, "--epochs", "2", "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert status == 3 and "the loss became nan at epoch 2, step 2" in err
    assert (out / "checkpoint.npz").read_bytes() == good


def test_evaluate_predict_visualize_summary(tiny, reference_run, tmp_path):
    run, _ = reference_run
    evaluated = alexnet_cli(tmp_path, "evaluate", "--checkpoint", run / "best.npz", "--data", tiny, "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    assert (
        "center crop" in evaluated.stdout and "10 crops" in evaluated.stdout and "Top-5" in evaluated.stdout
    )

    images = sorted((imagenette_dir() / "val").glob("*/*.JPEG"))[:2]
    predicted = alexnet_cli(
        tmp_path, "predict", "--checkpoint", run / "best.npz", *images, "--figure", tmp_path / "fig4.png"
    )
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.count("%") == 10 and (tmp_path / "fig4.png").stat().st_size > 0
    names = set(data.PreparedDataset(tiny, "train").class_names)
    assert any(name in predicted.stdout for name in names)

    shown = alexnet_cli(
        tmp_path,
        "visualize",
        "--checkpoint",
        run / "checkpoint.npz",
        "--out",
        tmp_path / "vis",
        "--queries",
        3,
        "--neighbours",
        4,
    )
    assert shown.returncode == 0, shown.stderr
    assert (tmp_path / "vis" / "conv1_kernels.png").exists() and (
        tmp_path / "vis" / "nearest_neighbours.png"
    ).exists()

    summary = alexnet_cli(tmp_path, "summary")
    assert summary.returncode == 0 and "60,965,224" in summary.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "/no/such/folder"], "no such folder"),
        (["train", "--data", "{tiny}", "--crop", "80"], "larger than the prepared images"),
        (["train", "--data", "{tiny}", "--device", "cuda"], "cuda"),
        (["evaluate", "--checkpoint", "/no/such.npz"], "does not exist"),
    ],
)
def test_bad_input_gives_a_clear_error(tiny, tmp_path, capsys, args, message):
    if "cuda" in args and cupy_available():
        pytest.skip("a GPU is usable here (CuPy sees one), so --device cuda trains instead of failing")
    args = [a.replace("{tiny}", str(tiny)) for a in args] + (
        ["--out", str(tmp_path)] if args[0] == "train" else []
    )
    assert cli_main(args) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("crop", ["60", "2000"])
def test_a_crop_the_network_cannot_take_is_refused_by_its_flag(tiny, tmp_path, capsys, crop):
    """Below the architecture's smallest crop (67: the map vanishes before pool5) or above the sane
    bound, --crop names itself and its range, before any file or lock exists."""
    with pytest.raises(SystemExit) as stop:
        cli_main(["train", "--data", str(tiny), "--crop", crop, "--out", str(tmp_path / "run")])
    assert stop.value.code == 2
    assert f"argument --crop: must be an integer in 67..1024, got {crop}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_help_documents_every_command():
    for command in ("train", "evaluate", "predict", "visualize", "summary"):
        with pytest.raises(SystemExit) as exit_info:
            cli_main([command, "--help"])
        assert exit_info.value.code == 0
