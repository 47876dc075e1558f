"""TrainConfig (alexnet/config.py): the train parser is generated from it, presets, the resume
policy, and checkpoints written before it existed still resume, evaluate and predict."""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import prepare_tiny72, tiny_run_flags
from synthetic import write_random_source

import data
from alexnet.checkpoint import load_checkpoint
from alexnet.cli import build_parser, train_config
from alexnet.cli import main as cli_main
from alexnet.config import CHANGEABLE, CHECKED, PRESETS, RECORDED, TrainConfig, flag_names
from data.dataset import subset_differences
from nn import load_npz

REPO = Path(__file__).resolve().parents[1]
OLD_RUN = REPO / "tests" / "data" / "run-42f7efb"
# The command line that wrote OLD_RUN (tests/data/README.md), but --data and --out.
OLD_COMMAND = tiny_run_flags(width=0.03125)
pytestmark = pytest.mark.usefixtures("one_blas_thread")
REDUCED = {"image_size": 128, "crop": 112, "init": "kaiming", "input_scale": 64.0, "epochs": 6}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return prepare_tiny72(tmp_path_factory)


@pytest.fixture(scope="module")
def old_run_data(tmp_path_factory):
    """The subset OLD_RUN was trained on, made again (tests/data/README.md): random pixels in
    Imagenette's class folders, 5 train + 2 val images per class, prepared at S = 72."""
    source = write_random_source(tmp_path_factory.mktemp("random") / "source")
    out = tmp_path_factory.mktemp("data") / "tiny72"
    return data.prepare_subset(source, out, per_class=5, val_per_class=2, size=72, workers=1, quiet=True)


def parse(*argv):
    argv = ["train", *map(str, argv)]
    return train_config(build_parser().parse_args(argv), argv)


def train(*argv):
    return cli_main(["train", *map(str, argv)])


# -- the parser is TrainConfig's ---------------------------------------------------------------------


def test_the_parser_s_defaults_are_the_config_s():
    config, given = parse()
    assert config == TrainConfig() and given == {}
    assert TrainConfig().lr == 0.01 and TrainConfig().crop == 227 and TrainConfig().lighting_std == 0.1


def test_typed_flags_reach_the_config_under_their_field_names():
    config, given = parse(
        "--data",
        "d",
        "-b",
        "7",
        "--learning-rate",
        "0.5",
        "--weight-decay",
        "0",
        "--towers",
        "-j",
        "3",
        "--resume",
    )
    assert (config.data, config.batch_size, config.lr, config.wd, config.towers, config.workers) == (
        "d",
        7,
        0.5,
        0.0,
        True,
        3,
    )
    assert config.resume == "auto"
    assert given == {
        "data": "--data",
        "batch_size": "--batch-size",
        "lr": "--lr",
        "wd": "--wd",
        "towers": "--towers",
        "workers": "--workers",
        "resume": "--resume",
    }


def test_field_names_are_what_checkpoints_store():
    """Every setting an existing checkpoint records is a field (argparse's own entries aside)."""
    stored = set(load_checkpoint(OLD_RUN / "checkpoint.npz").meta["args"]) - {"command", "func"}
    assert stored == {f.name for f in dataclasses.fields(TrainConfig)}


def test_a_config_built_in_code_is_given_where_it_differs_from_the_defaults():
    given = TrainConfig(lr=0.1, seed=0, batch_size=3).non_defaults()
    assert given == {"lr": "--lr", "batch_size": "--batch-size"}


def test_resume_does_not_import_the_command_line():
    code = "import sys, alexnet.resume, alexnet.train; sys.exit('alexnet.cli' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# -- presets ---------------------------------------------------------------------------------------


def test_preset_reduced_is_the_readme_recipe():
    config, given = parse("--preset", "reduced")
    assert config == TrainConfig(**REDUCED) == TrainConfig.from_preset("reduced")
    assert given == {
        "image_size": "--image-size",
        "crop": "--crop",
        "init": "--init",
        "input_scale": "--input-scale",
        "epochs": "--epochs",
    }
    assert parse("--preset", "paper")[0] == TrainConfig()


def test_a_flag_overrides_the_preset():
    config, given = parse("--crop", "99", "--preset", "reduced", "--epochs", "2")
    assert config == TrainConfig(**{**REDUCED, "crop": 99, "epochs": 2})
    assert TrainConfig.from_preset("reduced", crop=99, epochs=2) == config
    assert given["crop"] == "--crop" and given["epochs"] == "--epochs"


def test_an_unknown_preset_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["train", "--preset", "huge"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --preset: invalid choice: 'huge' (choose from 'paper', 'reduced')" in err
    with pytest.raises(ValueError, match=r"unknown preset 'huge' \(choose from paper, reduced\)"):
        TrainConfig.from_preset("huge")
    assert list(PRESETS) == ["paper", "reduced"]


def test_preset_reduced_trains_and_resume_refuses_a_preset_that_changes_the_run(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    small = ["--crop", 67, "--width", 0.03125, "-b", 16, "--quiet", "--out", out]  # S = 72 < 112
    assert train("--data", tiny, "--preset", "reduced", *small, "--epochs", 1) == 0
    meta = load_checkpoint(out / "checkpoint.npz").meta
    assert {k: meta["args"][k] for k in ("image_size", "init", "input_scale", "crop", "epochs")} == {
        "image_size": 128,
        "init": "kaiming",
        "input_scale": 64.0,
        "crop": 67,
        "epochs": 1,
    }
    assert meta["epoch"] == 1
    capsys.readouterr()
    # --preset paper would change the run: refused, naming the flags it stands for.
    assert train("--data", tiny, "--preset", "paper", *small, "--epochs", 2, "--resume") == 1
    err = capsys.readouterr().err
    assert "--init 'paper' (the run has 'kaiming')" in err and "--input-scale 1.0 (the run has 64.0)" in err
    refused = err.split("would change it: ")[1].split(". Drop them")[0]
    assert "--image-size 256 (the run has 128)" in refused and "--crop" not in refused
    assert load_checkpoint(out / "checkpoint.npz").meta["epoch"] == 1
    # The run's own command line again, with --resume: accepted (the preset's --epochs is changeable).
    assert train("--data", tiny, "--preset", "reduced", *small, "--epochs", 2, "--resume") == 0
    assert load_checkpoint(out / "checkpoint.npz").meta["epoch"] == 2


# -- the resume policy -------------------------------------------------------------------------------


def test_the_resume_error_lists_exactly_the_changeable_flags(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert train("--data", tiny, *OLD_COMMAND, "--epochs", 1, "--out", out) == 0
    capsys.readouterr()
    assert train("--data", tiny, *OLD_COMMAND, "--seed", 4, "--epochs", 2, "--out", out, "--resume") == 1
    err = capsys.readouterr().err
    listed = err.split("On resume only ")[1].split(" may be given")[0]
    flags = {word.strip(",") for word in listed.split() if word.startswith("--")}
    names = flag_names()
    assert flags == {names[key] for key in CHANGEABLE + RECORDED + CHECKED}


def test_the_resume_help_names_the_changeable_flags():
    resume = {f.name: f for f in dataclasses.fields(TrainConfig)}["resume"]
    listed = resume.metadata["help"].split("May be given with it: ")[1].split(" Any other flag")[0]
    flags = {word.strip(",;") for word in listed.split() if word.startswith("--")}
    names = flag_names()
    assert flags == {names[key] for key in CHANGEABLE + RECORDED + CHECKED} - {"--resume", "--overwrite"}


# -- checkpoints written before TrainConfig ----------------------------------------------------------


def test_an_old_checkpoint_resumes_evaluates_and_predicts(old_run_data, tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    shutil.copy(OLD_RUN / "checkpoint.npz", out / "checkpoint.npz")
    old = load_checkpoint(out / "checkpoint.npz")
    assert old.meta["epoch"] == 1 and "command" in old.meta["args"]  # written by argparse's namespace
    # The subset made again is the one the old run recorded (same pixels, same checksums).
    assert subset_differences(old_run_data, old.meta["data_fingerprint"], require_checksums=True) == []
    # One more epoch with the new code, from the old checkpoint ...
    assert train("--data", old_run_data, "--epochs", 2, "--out", out, "--resume", "--quiet") == 0
    resumed = load_checkpoint(out / "checkpoint.npz")
    assert resumed.meta["epoch"] == 2 and len(resumed.meta["history"]) == 2
    assert resumed.meta["history"][0] == old.meta["history"][0]
    assert {k: resumed.meta["args"][k] for k in ("width", "seed", "init", "crop", "lr")} == {
        "width": 0.03125,
        "seed": 3,
        "init": "kaiming",
        "crop": 67,
        "lr": 0.01,
    }
    # ... is the run the new code trains in two epochs without stopping (CPU, same seed): on the
    # machine that wrote the old file the arrays are identical; elsewhere BLAS may round differently.
    fresh = tmp_path / "fresh"
    assert train("--data", old_run_data, *OLD_COMMAND, "--epochs", 2, "--out", fresh) == 0
    a, b = load_npz(out / "checkpoint.npz"), load_npz(fresh / "checkpoint.npz")
    weights = [k for k in a if k.startswith(("model/", "optimizer/"))]
    assert weights and sorted(weights) == sorted(k for k in b if k.startswith(("model/", "optimizer/")))
    for key in weights:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6, err_msg=key)
    # The old file itself, as evaluate and predict load it.
    model = old.build_model()
    assert model.config["width"] == 0.03125 and model.num_parameters() > 0
    evaluated = subprocess.run(
        [
            sys.executable,
            "-m",
            "alexnet",
            "evaluate",
            "--checkpoint",
            OLD_RUN / "checkpoint.npz",
            "--data",
            old_run_data,
            "--quiet",
            "--center-only",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "center crop" in evaluated.stdout
    from PIL import Image

    image = tmp_path / "photo.png"
    Image.fromarray(np.load(old_run_data / "val_images.npy")[0]).save(image)
    predicted = subprocess.run(
        [
            sys.executable,
            "-m",
            "alexnet",
            "predict",
            "--checkpoint",
            OLD_RUN / "checkpoint.npz",
            image,
            "--topk",
            "3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.count("%") == 3
    assert json.loads(str(load_npz(OLD_RUN / "checkpoint.npz")["meta"]))["format_version"] == 1
