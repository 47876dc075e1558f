"""Loading is bounded and checked; every command's output is one line when it cannot be written.

* Checkpoints: the model configuration within sane bounds, each array's ``.npy`` header against
  the shapes that configuration implies (a zip bomb is refused from its header), well-formed
  meta, finite parameters (on load and on save); non-finite logits in predict and evaluate.
* ONNX: floating, finite initializers only, no opset newer than onnx knows, metadata types.
* Output: export, import-onnx, predict --figure and visualize --out into a folder, below a regular
  file (ENOTDIR: the tests run as root, so permissions would not stop them) or on a full disk:
  ``python -m alexnet CMD: error: could not write PATH: ...`` and exit 74.
* predict goes on past unreadable images; import-onnx respects a run's lock and its checkpoint.
"""

import errno
import io
import json
import os
import re
import time
import zipfile

import numpy as np
import pytest
from conftest import prepare_tiny72
from PIL import Image

from alexnet import AlexNet
from alexnet.checkpoint import (
    MAX_CLASSES,
    MAX_CROP,
    MAX_WIDTH,
    CheckpointError,
    check_model_config,
    load_checkpoint,
    parameter_shapes,
    save_checkpoint,
)
from alexnet.cli import main as cli_main
from alexnet.rundir import RunLock
from nn import SGD

CROP, SIZE, CLASSES = 67, 72, 3
NAMES = ["tench", "goldfish", "shark"]


def _model(num_classes=CLASSES, seed=0):
    return AlexNet(num_classes=num_classes, crop=CROP, width=1 / 32, init="kaiming", seed=seed).eval()


def _save(path, model=None, optimizer=None, **meta):
    model = model or _model()
    meta = {"class_names": NAMES[: model.num_classes], "image_size": SIZE, **meta}
    mean = np.full((SIZE, SIZE, 3), 120, np.float32)
    save_checkpoint(path, model, meta, optimizer=optimizer, mean_image=mean)
    return path


def _arrays(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def _rewrite(path, change_meta=None, **arrays):
    """Rewrite a checkpoint with some arrays replaced and its meta dict changed by ``change_meta``."""
    content = _arrays(path)
    if change_meta is not None:
        meta = json.loads(str(content["meta"]))
        content["meta"] = np.array(json.dumps(change_meta(meta)))
    content.update(arrays)
    np.savez(path, **content)
    return path


def _photo(path, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(path)
    return path


def _one_line(capsys, command):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"python -m alexnet {command}: error:"), err
    return err


# -- the shapes a configuration implies, without building it ------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        dict(num_classes=3, crop=67, width=1 / 32),
        dict(num_classes=7, crop=99, groups=1, width=0.1),
        dict(num_classes=1000, crop=227),
    ],
)
def test_parameter_shapes_are_the_models(config):
    model = AlexNet(**config, seed=0)
    expected = {name: value.shape for name, value in model.state_dict().items()}
    shapes = parameter_shapes(model.config)
    assert shapes == expected and list(shapes) == list(expected)  # the order of the velocities too


# -- bad case 3: a zip bomb is refused from its header ---------------------------------------


def _declared_only(path, key, shape, dtype="<f4"):
    """Replace ``key``'s zip member by a .npy header declaring ``shape``, followed by 1 MiB of
    zeros (deflated to a few KiB): the start of a zip bomb, which no reader should decompress."""
    content = {name: value for name, value in _arrays(path).items() if name != key}
    np.savez(path, **content)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{key}.npy", buffer.getvalue() + bytes(2**20))


def test_zip_bomb_checkpoint_is_refused_before_reading_data(tmp_path, capsys):
    path = _save(tmp_path / "bomb.npz")
    _declared_only(path, "model/fc6.weight", (10**9,))
    expected = list(parameter_shapes(_model().config)["fc6.weight"])
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert time.perf_counter() - start < 1.0
    message = str(error.value)
    assert str(path) in message and "model/fc6.weight" in message
    assert "[1000000000]" in message and str(expected) in message
    photo = _photo(tmp_path / "x.png")
    assert cli_main(["predict", "--checkpoint", str(path), str(photo)]) == 1
    assert "model/fc6.weight" in _one_line(capsys, "predict")


def test_wrong_dtype_or_unexpected_entry_is_refused(tmp_path):
    path = _save(tmp_path / "int.npz")
    fc8 = _arrays(path)["model/fc8.weight"]
    _rewrite(path, **{"model/fc8.weight": fc8.astype(np.int32)})
    with pytest.raises(CheckpointError, match=r"model/fc8.weight is declared as int32 .* expected float32"):
        load_checkpoint(path)
    path = _save(tmp_path / "extra.npz")
    _rewrite(path, **{"payload": np.zeros(10)})
    with pytest.raises(CheckpointError, match=r"unexpected entry 'payload'"):
        load_checkpoint(path)


# -- the configuration and meta, checked before anything is built ----------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda m: dict(m, model_config=dict(m["model_config"], num_classes=10**7)),
            "num_classes is 10000000",
        ),
        (lambda m: dict(m, model_config=dict(m["model_config"], crop=10**5)), "crop is 100000"),
        (lambda m: dict(m, model_config=dict(m["model_config"], width=100.0)), "width is 100.0"),
        (lambda m: dict(m, model_config=dict(m["model_config"], groups=3)), "groups is 3"),
        (lambda m: dict(m, model_config=dict(m["model_config"], depth=9)), r"unknown keys \['depth'\]"),
        (lambda m: dict(m, model_config=[1, 2]), "model_config is a JSON list"),
        (lambda m: {k: v for k, v in m.items() if k != "model_config"}, "meta has no model_config"),
        (lambda m: [m], "meta is a JSON list, expected an object"),
        (lambda m: dict(m, dropout_rng={"drop7": m["dropout_rng"]["drop7"]}), r"dropout_rng is \['drop7'\]"),
        (lambda m: dict(m, class_names=["tench"]), "class_names is not a list of 3 strings"),
        (lambda m: dict(m, class_names=[{"a": 1}, None, 3]), "class_names is not a list of 3 strings"),
    ],
)
def test_bad_config_or_meta_is_one_line_naming_the_file_and_key(tmp_path, capsys, change, message):
    path = _rewrite(_save(tmp_path / "c.npz"), change)
    photo = _photo(tmp_path / "x.png")
    assert cli_main(["predict", "--checkpoint", str(path), str(photo)]) == 1
    err = _one_line(capsys, "predict")
    assert str(path) in err and re.search(message, err), err


def test_meta_that_is_not_json_names_the_file(tmp_path):
    path = _save(tmp_path / "j.npz")
    _rewrite(path, meta=np.array("{'single': quotes}"))
    with pytest.raises(CheckpointError, match=rf"{path}: entry 'meta' is not valid JSON"):
        load_checkpoint(path)


def test_config_bounds_accept_every_config_the_project_writes():
    for config in (_model().config, AlexNet(num_classes=MAX_CLASSES, crop=67, width=1 / 64).config):
        assert check_model_config(dict(config), "x") == config
    with pytest.raises(CheckpointError, match="crop is 66"):
        check_model_config({"num_classes": 3, "crop": 66}, "x")
    with pytest.raises(CheckpointError, match="num_classes is True"):
        check_model_config({"num_classes": True, "crop": 67}, "x")


@pytest.mark.parametrize(
    "flag, value, key, loaded",
    [
        ("--num-classes", "10000000", "num_classes", 10**7),
        ("--num-classes", "0", "num_classes", 0),
        ("--crop", "100000", "crop", 10**5),
        ("--crop", "66", "crop", 66),
        ("--width", "1e6", "width", 1e6),
        ("--width", "nan", "width", float("nan")),
    ],
)
def test_summary_flags_have_the_checkpoint_s_bounds(capsys, flag, value, key, loaded):
    """What the checkpoint loader refuses (check_model_config), the flag refuses in one line
    naming itself, before anything is built."""
    with pytest.raises(CheckpointError, match=f"model_config {key} is"):
        check_model_config({"num_classes": 3, "crop": 67, key: loaded}, "x")
    with pytest.raises(SystemExit) as stop:
        cli_main(["summary", flag, value])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert stop.value.code == 2 and len(errors) == 1
    assert f"argument {flag}: must be " in errors[0] and f"got {value}" in errors[0]
    bounds = {"num_classes": f"1..{MAX_CLASSES}", "crop": f"67..{MAX_CROP}", "width": f"(0, {MAX_WIDTH:g}]"}
    assert bounds[key] in errors[0]


def test_the_product_of_the_sizes_is_bounded_too(tmp_path, capsys):
    """Each of crop and width within its bound, but together 1.5 x 10^10 parameters: refused by
    the constructor before any weight is allocated, by the checkpoint loader naming the file, by
    summary in one line, and by train before any lock or folder exists."""
    from alexnet.model import MAX_PARAMETERS, parameter_count

    wide = {"num_classes": 1000, "crop": MAX_CROP, "width": MAX_WIDTH}
    count = parameter_count(wide)
    assert count > 15 * 10**9 and MAX_PARAMETERS == 10**9
    # The widest network at the paper's crop fits; the paper's own count is exact.
    assert parameter_count({"num_classes": 1000, "crop": 227, "width": MAX_WIDTH}) < MAX_PARAMETERS
    assert parameter_count({"num_classes": 1000, "crop": 227}) == 60_965_224
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"would have {count:,} parameters"):
        AlexNet(**wide)
    assert time.perf_counter() - started < 1.0  # nothing was allocated
    with pytest.raises(
        CheckpointError, match=r"^x\.npz: model_config: AlexNet with num_classes 1000, crop 1024"
    ):
        check_model_config(dict(wide), "x.npz")
    assert cli_main(["summary", "--crop", str(MAX_CROP), "--width", str(MAX_WIDTH)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more than the bound of 1,000,000,000" in err[0]
    out = tmp_path / "run"
    code = cli_main(
        ["train", "--data", str(tmp_path / "absent"), "--crop", "1024", "--width", "4", "--out", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith(
        "python -m alexnet train: error: --crop 1024 with --width 4 gives a network of at least"
    )
    assert not out.exists()


def test_visualize_seed_is_checked_like_train_s(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(
            [
                "visualize",
                "--checkpoint",
                str(tmp_path / "c.npz"),
                "--out",
                str(tmp_path / "v"),
                "--seed",
                "-1",
            ]
        )
    assert stop.value.code == 2
    assert "argument --seed: must be >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


# -- bad case 4: non-finite parameters and logits ----------------------------------------------


def test_nonfinite_parameter_is_refused_on_load_naming_it(tmp_path, capsys):
    path = _save(tmp_path / "nan.npz")
    fc8 = _arrays(path)["model/fc8.weight"].copy()
    fc8[1, 2] = np.nan
    _rewrite(path, **{"model/fc8.weight": fc8})
    with pytest.raises(CheckpointError, match=r"parameter model/fc8.weight holds NaN or infinite"):
        load_checkpoint(path)


def test_nonfinite_parameter_is_never_saved(tmp_path):
    path = _save(tmp_path / "good.npz")
    before = path.read_bytes()
    model = _model()
    model.conv3.bias.data[0] = np.inf
    with pytest.raises(CheckpointError, match=r"parameter model/conv3.bias holds NaN or infinite"):
        _save(path, model)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["good.npz"]


def test_predict_refuses_nonfinite_logits(tmp_path, capsys):
    model = _model()
    model.fc8.weight.data[:] = 3e38  # finite, but the logits overflow to infinity
    path = _save(tmp_path / "overflow.npz", model)
    photo = _photo(tmp_path / "x.png")
    assert cli_main(["predict", "--checkpoint", str(path), str(photo)]) == 1
    err = _one_line(capsys, "predict")
    assert "NaN or infinite" in err and "%" not in capsys.readouterr().out


def test_evaluate_refuses_nonfinite_logits(tmp_path_factory, tmp_path, capsys):
    subset = prepare_tiny72(tmp_path_factory)
    model = _model(num_classes=10)
    model.fc8.weight.data[:] = 3e38
    path = tmp_path / "overflow.npz"
    save_checkpoint(path, model, {"image_size": SIZE}, mean_image=np.full((SIZE, SIZE, 3), 120, np.float32))
    args = ["evaluate", "--checkpoint", str(path), "--data", str(subset), "--center-only", "--quiet"]
    assert cli_main(args) == 1
    assert "NaN or infinite" in _one_line(capsys, "evaluate")


# -- 2. one line, not a traceback, when an output cannot be written -------------------------


def _unwritable(tmp_path, name):
    """Places no output can go: a folder, a path below a regular file (ENOTDIR)."""
    folder = tmp_path / f"folder-{name}"
    folder.mkdir(exist_ok=True)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return [folder, blocker / name]


def _assert_could_not_write(capsys, command, status, target):
    err = _one_line(capsys, command)
    assert status == 74, err
    assert f"could not write {target}:" in err, err


def test_export_and_import_say_could_not_write(tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnx")
    checkpoint = _save(tmp_path / "c.npz")
    for target in _unwritable(tmp_path, "x.onnx"):
        status = cli_main(["export", "--checkpoint", str(checkpoint), "--onnx", str(target)])
        _assert_could_not_write(capsys, "export", status, target)
    good = tmp_path / "good.onnx"
    assert cli_main(["export", "--checkpoint", str(checkpoint), "--onnx", str(good)]) == 0
    capsys.readouterr()
    for target in _unwritable(tmp_path, "x.npz"):
        status = cli_main(["import-onnx", str(good), "--out", str(target)])
        _assert_could_not_write(capsys, "import-onnx", status, target)

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    target = tmp_path / "full.onnx"
    status = cli_main(["export", "--checkpoint", str(checkpoint), "--onnx", str(target)])
    _assert_could_not_write(capsys, "export", status, target)
    assert not list(tmp_path.glob("full.onnx*"))  # the temporary file is gone too


def test_predict_figure_and_visualize_say_could_not_write(tmp_path, capsys):
    checkpoint = _save(tmp_path / "c.npz")
    photo = _photo(tmp_path / "x.png")
    for target in _unwritable(tmp_path, "fig.png"):
        status = cli_main(["predict", "--checkpoint", str(checkpoint), str(photo), "--figure", str(target)])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 74 and len(err) == 1 and f"could not write {target}:" in err[0], err
    blocker = tmp_path / "a-file"
    for target in (blocker / "figures", blocker):
        status = cli_main(["visualize", "--checkpoint", str(checkpoint), "--out", str(target)])
        _assert_could_not_write(capsys, "visualize", status, target)


# -- 3. predict goes on past unreadable images -------------------------------------------------


def test_predict_reports_unreadable_images_and_goes_on(tmp_path, capsys):
    checkpoint = _save(tmp_path / "c.npz")
    good = [_photo(tmp_path / "a.png", 1), _photo(tmp_path / "b.png", 2)]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a JPEG")
    missing = tmp_path / "missing.png"
    status = cli_main(
        ["predict", "--checkpoint", str(checkpoint), str(good[0]), str(broken), str(missing), str(good[1])]
    )
    captured = capsys.readouterr()
    assert status == 1
    errors = captured.err.strip().splitlines()
    assert any(str(broken) in line and "cannot read" in line for line in errors), errors
    assert any(str(missing) in line and "no such image" in line for line in errors), errors
    assert "2 of 4 images could not be read" in errors[-1]
    printed = [line for line in captured.out.splitlines() if not line.startswith(" ")]
    assert printed == [str(good[0]), str(good[1])]
    assert captured.out.count("1. ") == 2

    # The same predictions as when the good images are given alone.
    assert cli_main(["predict", "--checkpoint", str(checkpoint), *map(str, good)]) == 0
    assert capsys.readouterr().out == captured.out


# -- ONNX: what should be refused ------------------------------------------------------------


def _onnx_file(tmp_path, model=None, class_names=None):
    onnx = pytest.importorskip("onnx")
    from alexnet.onnx_io import build_onnx_model

    proto = build_onnx_model(model or _model(), None, class_names or NAMES, None)
    return onnx, proto


def _import(tmp_path, proto, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    status = cli_main(["import-onnx", str(path), "--out", str(tmp_path / "m.npz")])
    assert status == 1 and not (tmp_path / "m.npz").exists()
    err = _one_line(capsys, "import-onnx")
    assert str(path) in err
    return err


def _replace_initializer(onnx, proto, name, array):
    from onnx import numpy_helper

    index = next(i for i, t in enumerate(proto.graph.initializer) if t.name == name)
    proto.graph.initializer[index].CopyFrom(numpy_helper.from_array(array, name))


def test_onnx_int_or_nonfinite_initializers_are_refused(tmp_path, capsys):
    onnx, proto = _onnx_file(tmp_path)
    weight = next(t for t in proto.graph.initializer if t.name == "fc8.weight")
    values = onnx.numpy_helper.to_array(weight)
    ints = onnx.ModelProto()
    ints.CopyFrom(proto)
    _replace_initializer(onnx, ints, "fc8.weight", np.round(values * 100).astype(np.int32))
    err = _import(tmp_path, ints, capsys)
    assert "fc8" in err and ("int32" in err or "checker" in err)

    nan = values.copy()
    nan[0, 0] = np.nan
    _replace_initializer(onnx, proto, "fc8.weight", nan)
    assert "parameter fc8.weight" in _import(tmp_path, proto, capsys)


def test_onnx_newer_opset_is_refused(tmp_path, capsys):
    onnx, proto = _onnx_file(tmp_path)
    proto.opset_import[0].version = 999
    assert "opset 999, newer than the installed onnx" in _import(tmp_path, proto, capsys)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("alexnet.model_config", "[1, 2]", "model_config is a JSON list"),
        ("alexnet.model_config", '{"num_classes": 3, "depth": 9}', r"unknown keys \['depth'\]"),
        ("alexnet.model_config", '{"crop": "67"}', "crop is '67'"),
        ("alexnet.class_names", '[{"a": 1}, null, 3]', "class_names is not a list of 3 strings"),
        ("alexnet.class_names", '["tench"]', "class_names is not a list of 3 strings"),
        (
            "alexnet.preprocessing",
            '{"mean": "pixel", "mean_pixel": [1, 2, 3], "image_size": "abc"}',
            "preprocessing image_size is 'abc', expected a positive integer",
        ),
    ],
)
def test_onnx_metadata_of_the_wrong_type_is_refused(tmp_path, capsys, key, value, message):
    _, proto = _onnx_file(tmp_path)
    entry = next((p for p in proto.metadata_props if p.key == key), None) or proto.metadata_props.add(key=key)
    entry.value = value
    err = _import(tmp_path, proto, capsys)
    assert re.search(message, err), err


# -- 4. import-onnx into a run folder ------------------------------------------------------------


def test_import_onnx_respects_a_runs_lock_and_its_checkpoint(tmp_path, capsys):
    _, proto = _onnx_file(tmp_path)
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(proto.SerializeToString())
    run = tmp_path / "run"
    run.mkdir()
    model = _model(seed=1)
    _save(run / "checkpoint.npz", model, SGD(model.parameters(), lr=0.01))
    before = (run / "checkpoint.npz").read_bytes()

    assert cli_main(["import-onnx", str(onnx_path), "--out", str(run / "checkpoint.npz")]) == 1
    err = _one_line(capsys, "import-onnx")
    assert "is a training checkpoint" in err and "--overwrite" in err
    assert (run / "checkpoint.npz").read_bytes() == before

    lock = RunLock(run).acquire()  # a training run holds the folder
    try:
        args = ["import-onnx", str(onnx_path), "--out", str(run / "imported.npz"), "--overwrite"]
        assert cli_main(args) == 1
        assert f"PID {os.getpid()}" in _one_line(capsys, "import-onnx")
        assert not (run / "imported.npz").exists()
    finally:
        lock.release()

    args = ["import-onnx", str(onnx_path), "--out", str(run / "checkpoint.npz"), "--overwrite"]
    assert cli_main(args) == 0
    assert not load_checkpoint(run / "checkpoint.npz").optimizer_state
    # Outside a run, an earlier import (no optimizer state) is replaced as before.
    assert cli_main(["import-onnx", str(onnx_path), "--out", str(tmp_path / "plain.npz")]) == 0
    assert cli_main(["import-onnx", str(onnx_path), "--out", str(tmp_path / "plain.npz")]) == 0
    assert not (tmp_path / ".lock").exists()
