"""ONNX export and import (alexnet/onnx_io/), checked by an independent implementation: ONNX Runtime.

* Export: a reduced-width AlexNet (LRN across all maps, and LRN per tower as Split/LRN/Concat)
  runs in ONNX Runtime on random inputs and on real photographs; its logits equal ours to
  float32 precision.
* Import: graphs built with ``onnx.helper`` in the shape of the ONNX model zoo's ``bvlcalexnet``
  (Caffe's BVLC AlexNet via Caffe2: input ``data_0`` 1x3x224x224, ``conv1_w_0``/``conv1_b_0``
  initializers, LRN across all maps with Caffe's k = 1, max-pooling padded at the end (Caffe
  rounds up), a Reshape by ``OC2_DUMMY_1`` before fc6, Gemm with transB, Dropout nodes with
  their mask outputs, Softmax output ``prob_1``), reduced widths, random weights: imported,
  then our forward against ONNX Runtime on the same inputs.
* Round trip export -> import: identical weights, bit for bit.
* Bad files (unknown op, wrong shapes, truncated, CaffeNet's layer order): one-line errors.
* The preprocessing of an imported Caffe model: BGR and the mean pixel, checked on a hand case.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install '.[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install '.[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import data  # noqa: E402
from alexnet import AlexNet  # noqa: E402
from alexnet.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from alexnet.cli import main as cli_main  # noqa: E402
from alexnet.imagenet_classes import imagenet_names, imagenet_wnids, readable_names, wnid_of_path  # noqa: E402
from alexnet.onnx_io import OnnxError, build_onnx_model, import_onnx, save_onnx_atomic  # noqa: E402
from alexnet.predict import preprocess  # noqa: E402
from alexnet.preprocessing import InputSpec, checkpoint_spec  # noqa: E402
from nn import softmax  # noqa: E402

WIDTH = 1 / 8
CROP, SIZE = 67, 72


def _session(path_or_model):
    source = path_or_model if isinstance(path_or_model, (str, Path)) else path_or_model.SerializeToString()
    return ort.InferenceSession(
        str(source) if isinstance(source, Path) else source, providers=["CPUExecutionProvider"]
    )


def _assert_float32_equal(theirs, ours):
    """Equal to float32 precision: every logit within 1e-5 of the largest magnitude (the
    operators sum hundreds of products in another order)."""
    scale = max(1.0, float(np.abs(ours).max()))
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5 * scale)


def _photos(data_dir, count=4):
    found = sorted((data_dir / "imagenette-224" / "val").glob("*/*.JPEG"))[::97][:count]
    if len(found) < count:
        pytest.skip(f"fewer than {count} photographs in {data_dir / 'imagenette-224'}")
    return found


def _ours(model, crop=CROP, num_classes=10, seed=0, lrn_groups=2):
    return AlexNet(
        num_classes=num_classes, crop=crop, width=WIDTH, init="kaiming", seed=seed, lrn_groups=lrn_groups
    ).eval()


def _pixel_inputs(count, crop, seed=0):
    """Mean-centred 0..255-scale pixels (so LRN's k + alpha * sum is far from k: LRN matters)."""
    return (np.random.default_rng(seed).normal(0, 60, (count, 3, crop, crop))).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Export, checked by ONNX Runtime
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lrn_groups", [1, 2])
def test_export_runs_in_onnxruntime_like_ours(lrn_groups, tmp_path, data_dir):
    model = _ours(None, lrn_groups=lrn_groups)
    mean = np.random.default_rng(1).uniform(80, 160, (SIZE, SIZE, 3)).astype(np.float32)
    spec = InputSpec(SIZE, CROP, "rgb", 1.0, mean_image=mean)
    onnx_model = build_onnx_model(model, spec, [f"class {i}" for i in range(10)], None, softmax=True)
    path = save_onnx_atomic(onnx_model, tmp_path / "alexnet.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    ops = [n.op_type for n in onnx_model.graph.node]
    assert ops.count("LRN") == (2 if lrn_groups == 1 else 4) and ops.count("Conv") == 5
    assert ("Split" in ops and "Concat" in ops) == (lrn_groups == 2)
    lrn = next(n for n in onnx_model.graph.node if n.op_type == "LRN")
    alpha = next(a.f for a in lrn.attribute if a.name == "alpha")
    assert alpha == pytest.approx(5 * 1e-4)  # ONNX divides alpha by the size; the paper does not
    assert {i.name for i in onnx_model.graph.initializer} >= {"conv1.weight", "conv2.bias", "fc8.weight"}

    session = _session(path)
    random_x = _pixel_inputs(5, CROP)
    images = np.stack([data.load_image_square(p, SIZE) for p in _photos(data_dir)])
    photo_x = data.center_crop_batch(images, mean, CROP)
    for x in (random_x, photo_x):
        logits, prob = session.run(None, {"input": x})
        ours = model.forward(x)
        _assert_float32_equal(logits, ours)
        np.testing.assert_allclose(prob, softmax(ours), atol=1e-6)
    # The test can tell the two LRN modes apart: the other mode is far outside the tolerance.
    other = _ours(None, lrn_groups=3 - lrn_groups)
    other.load_state_dict(model.state_dict())
    logits = session.run(None, {"input": random_x})[0]
    assert np.abs(other.forward(random_x) - logits).max() > 100 * 1e-5 * np.abs(logits).max()


def test_export_import_round_trip_is_exact(tmp_path):
    model = _ours(None, lrn_groups=2, num_classes=7)
    model.conv1.weight.data[...] = np.random.default_rng(5).normal(0, 1, model.conv1.weight.data.shape)
    mean = np.random.default_rng(2).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)
    wnids = imagenet_wnids()[10:17]
    names = [f"name {i}" for i in range(7)]
    save_checkpoint(
        tmp_path / "ours.npz",
        model,
        {"class_names": names, "wnids": wnids, "image_size": SIZE, "args": {"input_scale": 64.0}},
        mean_image=mean,
    )
    assert (
        cli_main(
            ["export", "--checkpoint", str(tmp_path / "ours.npz"), "--onnx", str(tmp_path / "ours.onnx")]
        )
        == 0
    )
    assert cli_main(["import-onnx", str(tmp_path / "ours.onnx"), "--out", str(tmp_path / "back.npz")]) == 0
    back = load_checkpoint(tmp_path / "back.npz")
    original = model.state_dict()
    imported = back.build_model().state_dict()
    assert original.keys() == imported.keys()
    for key in original:
        assert original[key].dtype == imported[key].dtype and np.array_equal(original[key], imported[key]), (
            key
        )
    assert back.config == model.config
    assert back.class_names == names and back.meta["wnids"] == wnids
    spec = checkpoint_spec(back)
    assert spec.channel_order == "rgb" and spec.input_scale == 64.0 and np.array_equal(spec.mean_image, mean)
    # Exporting the imported checkpoint writes the same graph again.
    first = onnx.load(str(tmp_path / "ours.onnx"))
    assert (
        cli_main(
            ["export", "--checkpoint", str(tmp_path / "back.npz"), "--onnx", str(tmp_path / "again.onnx")]
        )
        == 0
    )
    assert onnx.load(str(tmp_path / "again.onnx")).graph == first.graph


# ---------------------------------------------------------------------------------------------
# Import of graphs shaped like the model zoo's bvlcalexnet
# ---------------------------------------------------------------------------------------------
def zoo_alexnet(
    rng,
    width=WIDTH,
    num_classes=1000,
    input_side=224,
    opset=12,
    pool_end_pads=(1, 0, 0),
    caffenet_order=False,
    dynamic=False,
):
    """A graph laid out like bvlcalexnet-{9,12}.onnx (Caffe -> Caffe2 -> ONNX), with random weights."""
    c1, c2, c3, c4, c5 = (max(2, int(round(c * width / 2)) * 2) for c in (96, 256, 384, 384, 256))
    hidden = int(round(4096 * width))
    fc6_in = c5 * 6 * 6
    inits, nodes = [], []

    def weight(name, *shape, scale):
        inits.append(numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name))

    def conv(index, inp, cin, cout, k, stride, pad, group):
        weight(f"conv{index}_w_0", cout, cin // group, k, k, scale=np.sqrt(2 / (cin // group * k * k)))
        weight(f"conv{index}_b_0", cout, scale=0.1)
        nodes.append(
            helper.make_node(
                "Conv",
                [inp, f"conv{index}_w_0", f"conv{index}_b_0"],
                [f"conv{index}_1"],
                name=f"conv{index}_1",
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[pad] * 4,
                dilations=[1, 1],
                group=group,
            )
        )
        nodes.append(helper.make_node("Relu", [f"conv{index}_1"], [f"conv{index}_2"], name=f"conv{index}_2"))
        return f"conv{index}_2"

    def lrn(index, inp):
        nodes.append(
            helper.make_node(
                "LRN",
                [inp],
                [f"norm{index}_1"],
                name=f"norm{index}_1",
                size=5,
                alpha=1e-4,
                beta=0.75,
                bias=1.0,
            )
        )
        return f"norm{index}_1"

    def pool(index, inp, end_pad):
        nodes.append(
            helper.make_node(
                "MaxPool",
                [inp],
                [f"pool{index}_1"],
                name=f"pool{index}_1",
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[0, 0, end_pad, end_pad],
            )
        )
        return f"pool{index}_1"

    def fc(name, inp, fan_in, fan_out):
        weight(f"{name}_w_0", fan_out, fan_in, scale=np.sqrt(2 / fan_in))
        weight(f"{name}_b_0", fan_out, scale=0.1)
        attrs = {"transB": 1, **({"broadcast": 1} if opset < 7 else {})}
        nodes.append(
            helper.make_node(
                "Gemm", [inp, f"{name}_w_0", f"{name}_b_0"], [f"{name}_1"], name=f"{name}_1", **attrs
            )
        )
        return f"{name}_1"

    def dropout(name, inp):
        attrs = {"ratio": 0.5} if opset < 12 else {}
        nodes.append(
            helper.make_node("Dropout", [inp], [f"{name}_3", f"_{name}_mask_1"], name=f"{name}_3", **attrs)
        )
        return f"{name}_3"

    x = conv(1, "data_0", 3, c1, 11, 4, 0, 1)
    x = pool(1, lrn(1, x), pool_end_pads[0]) if not caffenet_order else lrn(1, pool(1, x, pool_end_pads[0]))
    x = conv(2, x, c1, c2, 5, 1, 2, 2)
    x = pool(2, lrn(2, x), pool_end_pads[1])
    x = conv(3, x, c2, c3, 3, 1, 1, 1)
    x = conv(4, x, c3, c4, 3, 1, 1, 2)
    x = pool(5, conv(5, x, c4, c5, 3, 1, 1, 2), pool_end_pads[2])
    inits.append(numpy_helper.from_array(np.array([1, fc6_in], np.int64), "OC2_DUMMY_1"))
    nodes.append(helper.make_node("Reshape", [x, "OC2_DUMMY_1"], ["OC2_DUMMY_0"], name="OC2_DUMMY_0"))
    x = dropout("fc6", helper_relu(nodes, fc("fc6", "OC2_DUMMY_0", fc6_in, hidden), "fc6_2"))
    x = dropout("fc7", helper_relu(nodes, fc("fc7", x, hidden, hidden), "fc7_2"))
    x = fc("fc8", x, hidden, num_classes)
    nodes.append(helper.make_node("Softmax", [x], ["prob_1"], name="prob_1", axis=1))
    side = "height" if dynamic else input_side
    graph = helper.make_graph(
        nodes,
        "bvlc_alexnet",
        [
            helper.make_tensor_value_info(
                "data_0", TensorProto.FLOAT, [1, 3, side, side if not dynamic else "width"]
            )
        ],
        [helper.make_tensor_value_info("prob_1", TensorProto.FLOAT, [1, num_classes])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="onnx-caffe2"
    )
    model.ir_version = 7 if opset >= 12 else 4
    onnx.checker.check_model(model)
    return model


def helper_relu(nodes, inp, out):
    nodes.append(helper.make_node("Relu", [inp], [out], name=out))
    return out


def _with_input_side(model, side):
    """A copy of ``model`` whose input is declared side x side (to run it in ONNX Runtime at our crop)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    dims = copy.graph.input[0].type.tensor_type.shape.dim
    for d in dims[2:]:
        d.Clear()
        d.dim_value = side
    return copy


@pytest.mark.parametrize("opset, pool_end_pads", [(12, (1, 0, 0)), (9, (1, 1, 1))])
def test_import_zoo_shaped_alexnet_matches_onnxruntime(opset, pool_end_pads, tmp_path, data_dir):
    zoo = zoo_alexnet(np.random.default_rng(opset), opset=opset, pool_end_pads=pool_end_pads)
    path = tmp_path / "bvlcalexnet.onnx"
    onnx.save(zoo, str(path))
    assert _session(path).run(None, {"data_0": _pixel_inputs(1, 224)})[0].shape == (1, 1000)  # valid at 224

    model, spec, meta, notes = import_onnx(path, quiet=True)
    config = model.config
    assert (config["crop"], config["groups"], config["lrn_groups"], config["width"]) == (227, 2, 1, WIDTH)
    assert config["lrn"] == {
        "size": 5,
        "alpha": 2e-5,
        "beta": 0.75,
        "k": 1.0,
    }  # Caffe's alpha 1e-4 / 5, k = 1
    assert any("224 x 224" in n and "227" in n for n in notes)
    assert spec.channel_order == "bgr" and spec.mean_pixel == (104.0, 117.0, 123.0) and spec.input_scale == 1
    assert any("no preprocessing metadata" in n for n in notes)
    assert meta["wnids"] == imagenet_wnids() and meta["class_names"][:2] == ["tench", "goldfish"]
    np.testing.assert_array_equal(
        model.conv2.weight.data,
        numpy_helper.to_array(next(i for i in zoo.graph.initializer if i.name == "conv2_w_0")),
    )

    # The same inputs through ONNX Runtime (the file re-declared at 227, where its padded pooling
    # is our pooling) and through our layers: random pixels and photographs preprocessed the
    # Caffe way (BGR minus the mean pixel), one image per run as the Reshape fixes batch 1.
    session = _session(_with_input_side(zoo, 227))
    photos = [p for p in _photos(data_dir, 2)]
    _, photo_x = preprocess(photos, 256, spec.mean_image_rgb(), 227, 1.0, "bgr")
    model.eval()
    for x in np.concatenate([_pixel_inputs(2, 227, seed=3), photo_x]):
        prob = session.run(None, {"data_0": x[None]})[0]
        _assert_float32_equal(prob, softmax(model.forward(x[None])))
    logits_ours = model.forward(photo_x[:1])
    dropout_free = [n for n in zoo.graph.node if n.op_type != "Dropout"]
    assert len(dropout_free) < len(zoo.graph.node) and np.isfinite(logits_ours).all()


def test_import_dynamic_input_and_declared_227(tmp_path):
    for kwargs, crop in (({"dynamic": True}, 227), ({"input_side": 227, "pool_end_pads": (0, 0, 0)}, 227)):
        zoo = zoo_alexnet(np.random.default_rng(0), num_classes=12, **kwargs)
        onnx.save(zoo, str(tmp_path / "m.onnx"))
        model, spec, meta, notes = import_onnx(
            tmp_path / "m.onnx", quiet=True, channel_order="rgb", mean_pixel=[120, 115, 100]
        )
        assert model.config["crop"] == crop and model.config["num_classes"] == 12
        assert spec.channel_order == "rgb" and spec.mean_pixel == (120, 115, 100)
        assert meta["class_names"] == [str(i) for i in range(12)] and meta["wnids"] is None
        x = _pixel_inputs(1, 227, seed=4)
        prob = _session(_with_input_side(zoo, 227)).run(None, {"data_0": x})[0]
        _assert_float32_equal(prob, softmax(model.eval().forward(x)))


def test_imported_caffe_model_through_predict_evaluate_visualize(tmp_path, data_dir, monkeypatch, capsys):
    samples = data_dir / "imagenet-samples"
    if not samples.is_dir():
        pytest.skip(f"{samples} not found")
    onnx.save(zoo_alexnet(np.random.default_rng(1)), str(tmp_path / "zoo.onnx"))
    assert cli_main(["import-onnx", str(tmp_path / "zoo.onnx"), "--out", str(tmp_path / "zoo.npz")]) == 0
    err = capsys.readouterr().err
    assert "BGR" in err and "104,117,123" in err
    photos = sorted(samples.glob("n0*_*.JPEG"))[:5]
    assert (
        cli_main(
            [
                "predict",
                "--checkpoint",
                str(tmp_path / "zoo.npz"),
                str(photos[0]),
                "--figure",
                str(tmp_path / "fig4.png"),
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "true class: tench (rank" in out and "n0" not in out.replace(str(photos[0]), "")
    assert "input: BGR" in err and (tmp_path / "fig4.png").stat().st_size > 0
    # predict fed the network BGR minus the mean pixel: its top line is what that input gives
    checkpoint = load_checkpoint(tmp_path / "zoo.npz")
    model, spec = checkpoint.build_model().eval(), checkpoint_spec(checkpoint)
    lines = {}
    for order in ("bgr", "rgb"):
        _, x = preprocess(photos[:1], 256, spec.mean_image_rgb(), 227, 1.0, order)
        p = softmax(model.forward(x))[0]
        lines[order] = f"  1. {100 * p.max():6.2f}%  {checkpoint.class_names[int(p.argmax())]}"
    assert lines["bgr"] in out.splitlines() and lines["rgb"] != lines["bgr"]
    # evaluate: 5 of the 1000 classes in a flat <wnid>_name.JPEG folder, mapped onto the model's classes.
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in photos:
        shutil.copy(p, flat / p.name)
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    assert (
        cli_main(
            [
                "evaluate",
                "--checkpoint",
                str(tmp_path / "zoo.npz"),
                "--data",
                str(flat),
                "--split",
                "train",
                "--center-only",
                "--quiet",
                "-j",
                "0",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "5 images" in out and "onto the model's 1000 classes" in err
    assert (
        cli_main(["visualize", "--checkpoint", str(tmp_path / "zoo.npz"), "--out", str(tmp_path / "vis")])
        == 0
    )
    assert (tmp_path / "vis" / "conv1_kernels.png").stat().st_size > 0


def test_evaluate_feeds_bgr_minus_the_mean_pixel_and_maps_labels(tmp_path, data_dir):
    """evaluate_model on a dataset seen through a Caffe checkpoint's preprocessing: the network gets
    the centre crops minus the mean pixel with the channels reversed; labels follow the model's classes."""
    from alexnet.evaluate import evaluate_model
    from alexnet.preprocessing import dataset_for

    photos = sorted((data_dir / "imagenet-samples").glob("n0*_*.JPEG"))[100:104]
    if len(photos) < 4:
        pytest.skip("imagenet-samples not found")
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in photos:
        shutil.copy(p, flat / p.name)
    dataset = data.PreparedDataset(
        data.prepare_subset(flat, tmp_path / "prepared", size=SIZE, workers=0, quiet=True), "train"
    )
    spec = InputSpec(SIZE, CROP, "bgr", 2.0, mean_pixel=(104.0, 117.0, 123.0))
    view, note = dataset_for(spec, dataset, imagenet_wnids())
    assert "1000 classes" in note
    assert list(view.labels) == [imagenet_wnids().index(p.name[:9]) for p in photos]

    class Recorder:
        seen = []

        def eval(self):
            return self

        def forward(self, x):
            self.seen.append(np.array(x))
            return np.zeros((len(x), 1000), np.float32)

    evaluate_model(
        Recorder(), view, CROP, spec.input_scale, batch_size=3, ten_crop=False, to_network=spec.to_network
    )
    images = dataset.images.astype(np.float32)
    mid = (SIZE - CROP) // 2
    rgb = images[:, mid : mid + CROP, mid : mid + CROP] - np.array([123.0, 117.0, 104.0], np.float32)
    expected = (rgb[..., ::-1] / 2.0).transpose(0, 3, 1, 2)  # B, G, R channels first
    np.testing.assert_allclose(np.concatenate(Recorder.seen), expected, rtol=0, atol=1e-4)


def test_caffe_preprocessing_hand_case(tmp_path):
    """A solid R=200, G=100, B=50 image, BGR with the mean pixel B,G,R = 104,117,123: the network's
    channel 0 is blue - 104, channel 1 green - 117, channel 2 red - 123."""
    from PIL import Image

    Image.new("RGB", (80, 90), (200, 100, 50)).save(tmp_path / "solid.png")
    spec = InputSpec(72, 67, "bgr", 1.0, mean_pixel=(104.0, 117.0, 123.0))
    _, x = preprocess([tmp_path / "solid.png"], 72, spec.mean_image_rgb(), 67, 1.0, "bgr")
    assert (
        np.allclose(x[0, 0], 50 - 104) and np.allclose(x[0, 1], 100 - 117) and np.allclose(x[0, 2], 200 - 123)
    )
    _, rgb = preprocess([tmp_path / "solid.png"], 72, spec.mean_image_rgb(), 67, 1.0, "rgb")
    np.testing.assert_array_equal(spec.to_network(rgb), x)
    with pytest.raises(ValueError, match="channel order"):
        InputSpec(72, 67, "gbr", 1.0, mean_pixel=(1, 2, 3))


# ---------------------------------------------------------------------------------------------
# Bad files: one-line errors
# ---------------------------------------------------------------------------------------------
def _import_error(tmp_path, model_or_bytes, capsys):
    path = tmp_path / "bad.onnx"
    path.write_bytes(
        model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    )
    status = cli_main(["import-onnx", str(path), "--out", str(tmp_path / "bad.npz")])
    err = capsys.readouterr().err.strip()
    assert status == 1 and not (tmp_path / "bad.npz").exists()
    assert len(err.splitlines()) == 1 and err.startswith("python -m alexnet import-onnx: error:"), err
    return err


def test_bad_files_get_one_line_errors(tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = zoo_alexnet(rng)

    unknown = onnx.ModelProto()
    unknown.CopyFrom(good)
    relu = next(n for n in unknown.graph.node if n.op_type == "Relu")
    relu.op_type = "LeakyRelu"
    assert "op type LeakyRelu" in _import_error(tmp_path, unknown, capsys)

    wrong = onnx.ModelProto()
    wrong.CopyFrom(good)
    index = next(i for i, t in enumerate(wrong.graph.initializer) if t.name == "conv1_w_0")
    shape = numpy_helper.to_array(wrong.graph.initializer[index]).shape
    wrong.graph.initializer[index].CopyFrom(
        numpy_helper.from_array(np.zeros((shape[0], 3, 7, 7), np.float32), "conv1_w_0")
    )
    conv1 = next(n for n in wrong.graph.node if n.name == "conv1_1")
    next(a for a in conv1.attribute if a.name == "kernel_shape").ints[:] = [7, 7]
    assert "wrong shapes: conv1" in _import_error(tmp_path, wrong, capsys)

    fc6 = onnx.ModelProto()
    fc6.CopyFrom(good)
    index = next(i for i, t in enumerate(fc6.graph.initializer) if t.name == "fc6_w_0")
    w = numpy_helper.to_array(fc6.graph.initializer[index])
    fc6.graph.initializer[index].CopyFrom(
        numpy_helper.from_array(np.zeros((w.shape[0], w.shape[1] + 1), np.float32), "fc6_w_0")
    )
    assert "wrong shapes" in _import_error(tmp_path, fc6, capsys)

    data_bytes = good.SerializeToString()
    assert "truncated or corrupt" in _import_error(tmp_path, data_bytes[: len(data_bytes) // 2], capsys)
    assert "truncated or corrupt" in _import_error(tmp_path, data_bytes[:200], capsys)

    caffenet = zoo_alexnet(np.random.default_rng(0), caffenet_order=True)
    assert "CaffeNet" in _import_error(tmp_path, caffenet, capsys)

    # Preprocessing a checkpoint cannot express: per-channel standard deviations (torchvision style).
    ours = build_onnx_model(
        _ours(None), InputSpec(SIZE, CROP, "rgb", 1.0, mean_pixel=(124, 116, 104)), None, None
    )
    pre = next(p for p in ours.metadata_props if p.key == "alexnet.preprocessing")
    pre.value = pre.value.replace('"input_scale"', '"std": [58.4, 57.1, 57.4], "input_scale"')
    assert "divides the channels by different values" in _import_error(tmp_path, ours, capsys)
    pre.value = pre.value.replace('"std": [58.4, 57.1, 57.4], ', "").replace('"rgb"', '"yuv"')
    assert "channel order 'yuv' cannot be expressed" in _import_error(tmp_path, ours, capsys)

    missing = cli_main(["import-onnx", str(tmp_path / "nothing.onnx"), "--out", str(tmp_path / "x.npz")])
    assert missing == 1 and "does not exist" in capsys.readouterr().err


def test_per_tower_lrn_imports_as_lrn_groups_2(tmp_path):
    model = _ours(None, lrn_groups=2, num_classes=1000)
    path = save_onnx_atomic(build_onnx_model(model, None, None, None), tmp_path / "m.onnx")
    back, spec, meta, notes = import_onnx(path, quiet=True)
    assert back.config["lrn_groups"] == 2 and back.norm1.groups == 2
    # No preprocessing in a file of ours: RGB (as everything trained here) and an assumed mean, said aloud.
    assert spec.channel_order == "rgb" and spec.mean_pixel == (123.0, 117.0, 104.0)
    assert meta["class_names"][0] == "tench" and any("without preprocessing metadata" in n for n in notes)
    # Split/LRN/Concat in a one-tower network (conv2, conv4, conv5 ungrouped) cannot be expressed.
    broken = build_onnx_model(model, None, None, None)
    for node in broken.graph.node:
        for attr in node.attribute:
            if node.op_type == "Conv" and attr.name == "group":
                attr.i = 1
    for init in broken.graph.initializer:
        if init.name in ("conv2.weight", "conv4.weight", "conv5.weight"):
            w = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.concatenate([w, w], axis=1), init.name))
    save_onnx_atomic(broken, tmp_path / "broken.onnx")
    with pytest.raises(OnnxError, match="per tower"):
        import_onnx(tmp_path / "broken.onnx", quiet=True)


def test_without_onnx_the_commands_say_what_to_install(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    assert cli_main(["import-onnx", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "m.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install" in err and "[onnx]" in err


# ---------------------------------------------------------------------------------------------
# Class names and WordNet IDs
# ---------------------------------------------------------------------------------------------
def test_packaged_imagenet_class_names(data_dir):
    wnids, names = imagenet_wnids(), imagenet_names()
    assert len(wnids) == len(set(wnids)) == 1000 and wnids == sorted(wnids)
    assert names[wnids.index("n02105641")] == "Old English sheepdog" and names[0] == "tench"
    synsets = data_dir / "imagenet-samples" / "synsets.txt"
    if synsets.is_file():
        rows = [line.split("\t") for line in synsets.read_text().splitlines() if line.strip()]
        assert [w for w, _ in rows] == wnids
    assert readable_names(["n01440764", "my cat"], ["n01440764", "n99999999"]) == ["tench", "my cat"]
    assert readable_names(None, ["n01443537"]) == ["goldfish"]
    assert wnid_of_path("x/n01440764_tench.JPEG") == "n01440764"
    assert wnid_of_path("val/n01440764/ILSVRC2012_val_1.JPEG") == "n01440764"
    assert wnid_of_path("photos/cat.jpg") is None
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    assert "imagenet_classes.txt" in cfg["options.package_data"]["alexnet"]
    assert "onnx" in cfg["options.extras_require"] and "onnxruntime" in cfg["options.extras_require"]["test"]
