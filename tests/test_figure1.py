"""benchmarks/figure1_relu_tanh.py: Figure 1 (§3.1), ReLU against tanh, at small scale."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nn
from nn.gradcheck import check_module

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import figure1_relu_tanh as fig1  # noqa: E402


def test_tanh_layer_gradient_check():
    result = check_module(nn.Tanh(), np.random.default_rng(0).normal(scale=2, size=(3, 4, 5)))
    assert result.max_error < 1e-7, result


def test_whole_tanh_network_gradient_check():
    net = fig1.build_network("tanh", seed=0)
    rng = np.random.default_rng(1)
    x, labels = rng.normal(size=(2, 3, 32, 32)), np.array([3, 7])
    # every tensor along 3 random directions (entry by entry would cost minutes)
    result = check_module(
        net, x, loss=nn.SoftmaxCrossEntropyLoss(), labels=labels, max_elements=0, directions=3
    )
    assert result.max_error < 1e-6, result


def test_error_rate_on_a_hand_case():
    logits = np.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 3.0, 2.0]])
    # predictions 1, 0, 2, 1 against labels 1, 2, 2, 0: two of four wrong
    assert fig1.error_rate(logits, np.array([1, 2, 2, 0])) == 0.5
    assert fig1.error_rate(logits, np.array([1, 0, 2, 1])) == 0.0


def test_epochs_to_target_on_hand_curves():
    curve = [0.9, 0.6, 0.26, 0.25, 0.3, 0.1]
    assert fig1.epochs_to(curve) == 4  # counted from 1; 0.25 itself counts as reached
    assert fig1.epochs_to(curve, target=0.5) == 3
    assert fig1.epochs_to(curve, target=0.2) == 6
    assert fig1.epochs_to([0.9, 0.8], target=0.25) is None
    assert fig1.epochs_to([]) is None


def test_sweep_prefers_fewer_epochs_then_lower_mean_error():
    fast = {"errors": [0.5, 0.2], "diverged": False}
    slow_but_low = {"errors": [0.26, 0.26, 0.1], "diverged": False}
    never = {"errors": [0.3, 0.3], "diverged": False}
    diverged = {"errors": [0.9], "diverged": True}
    assert (
        fig1.sweep_key(fast) < fig1.sweep_key(slow_but_low) < fig1.sweep_key(never) < fig1.sweep_key(diverged)
    )
    tie_a, tie_b = {"errors": [0.5, 0.2], "diverged": False}, {"errors": [0.4, 0.2], "diverged": False}
    assert fig1.sweep_key(tie_b) < fig1.sweep_key(tie_a)


def test_both_activations_start_from_the_same_weights():
    relu, tanh = fig1.build_network("relu", seed=3), fig1.build_network("tanh", seed=3)
    other = fig1.build_network("relu", seed=4)
    for (name, a), (_, b), (_, c) in zip(
        relu.named_parameters(), tanh.named_parameters(), other.named_parameters()
    ):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        if name.endswith("weight"):
            assert not np.array_equal(a.data, c.data), name
            fan_in = nn.init.fan_in(a.shape)
            assert abs(a.data.std() * np.sqrt(fan_in) - 1) < 0.15, name  # N(0, 1 / fan-in)
            he = dict(fig1.build_network("tanh", seed=3, init="he").named_parameters())[name]
            np.testing.assert_allclose(
                he.data, a.data * np.sqrt(2), rtol=1e-6, err_msg=name
            )  # N(0, 2 / fan-in)


def test_training_lowers_the_training_error_on_a_separable_set():
    # 10 patterns without noise, 3 shifted copies each: separable; seeded, so the same every time
    images, labels = fig1.synthetic_images(images_per_class=3, seed=0, noise=0)
    x = fig1.to_network_input(images)
    config = fig1.Config(epochs=6, batch=10, progress=False)
    result = fig1.train(x, labels, "relu", lr=0.01, seed=0, config=config)
    errors = result["errors"]
    assert len(errors) == 6 and not result["diverged"]
    assert errors[0] >= 0.7 and errors[-1] <= 0.4, errors


def test_quick_path_on_synthetic_data(tmp_path):
    config = fig1.quick_config(synthetic=True, images_per_class=3, epochs=2, seeds=2, progress=False,
                               rates_relu=(0.003, 0.03), rates_tanh=(0.03,))  # fmt: skip
    results = fig1.run(config)
    assert results["data"].startswith("synthetic") and results["images"] == 30
    for activation in ("relu", "tanh"):
        entry = results["activations"][activation]
        assert len(entry["seeds"]) == 2
        for run in entry["seeds"]:
            assert len(run["errors"]) == 2 and all(0 <= e <= 1 for e in run["errors"])
            assert run["epochs_to_target"] == fig1.epochs_to(run["errors"], config.target)
        best = min(entry["sweep"], key=lambda lr: fig1.sweep_key(entry["sweep"][lr]))
        assert entry["rate"] == float(best)
    relu = results["activations"]["relu"]
    relu_row = next(line for line in fig1.table(results).splitlines() if line.startswith("| ReLU"))
    per_seed = ", ".join(
        "-" if r["epochs_to_target"] is None else str(r["epochs_to_target"]) for r in relu["seeds"]
    )
    assert f"| {relu['rate']:g} | {per_seed} |" in relu_row and "0.003 (" in relu_row and "0.03 (" in relu_row
    png = fig1.plot(results, tmp_path / "fig.png")
    assert Image.open(png).size == (600, 420)
    json.dumps(results)  # every number is JSON


def test_command_line_writes_the_figure_and_the_numbers(tmp_path, capsys):
    out = tmp_path / "figure1"
    argv = [
        "--synthetic",
        "--quick",
        "--images-per-class",
        "2",
        "--epochs",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert fig1.main(argv) == 0
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["config"]["epochs"] == 1 and results["images"] == 20
    assert out.with_suffix(".png").stat().st_size > 0
    assert "synthetic" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        fig1.main(["--out", str(out), "--rates-relu", "0.1,-1"])
    assert "learning rates must be > 0" in capsys.readouterr().err


def test_photos_are_decoded_once_and_cached(tmp_path):
    rng = np.random.default_rng(0)
    for c in range(10):
        folder = tmp_path / "photos" / "train" / f"n{c:08d}"
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(folder / f"{i}.JPEG")
    images, labels = fig1.load_photos(tmp_path / "photos", 2, cache=tmp_path / "cache", progress=False)
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2
    for jpeg in (tmp_path / "photos").rglob("*.JPEG"):
        jpeg.write_bytes(b"")  # the second call must not decode them again
    again, _ = fig1.load_photos(tmp_path / "photos", 2, cache=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(again, images)
    with pytest.raises(ValueError, match="more than class"):
        fig1.load_photos(tmp_path / "photos", 3, cache=tmp_path / "cache", progress=False)
