"""AlexNet's architecture (§3.5, Figure 2), initialization (§5), summary and gradients."""

import copy

import numpy as np
import pytest

from alexnet import AlexNet, layer_rows, spatial_sizes
from alexnet.summary import totals
from nn import Conv2d, Dropout, Linear, SoftmaxCrossEntropyLoss


@pytest.fixture(scope="module")
def full_model():
    """The paper's network: 1000 classes, 227 x 227, two groups, paper init (built once)."""
    return AlexNet(seed=0)


def test_parameter_count_is_60965224(full_model):
    assert full_model.num_parameters() == 60_965_224


def test_conv1_output_is_55_at_227_not_224():
    assert spatial_sizes(227)["conv1"] == 55
    assert spatial_sizes(224)["conv1"] == 54  # why the default crop is 227
    sizes = spatial_sizes(227)
    assert (sizes["pool1"], sizes["conv2"], sizes["pool2"], sizes["conv5"], sizes["pool5"]) == (
        27,
        27,
        13,
        13,
        6,
    )


def test_layers_follow_figure_2(full_model):
    m = full_model
    expected = {  # name: (in, out, kernel, stride, padding, groups)
        "conv1": (3, 96, 11, 4, 0, 1),
        "conv2": (96, 256, 5, 1, 2, 2),
        "conv3": (256, 384, 3, 1, 1, 1),
        "conv4": (384, 384, 3, 1, 1, 2),
        "conv5": (384, 256, 3, 1, 1, 2),
    }
    for name, (cin, cout, k, s, p, g) in expected.items():
        conv = getattr(m, name)
        assert isinstance(conv, Conv2d)
        assert (
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.groups,
        ) == (cin, cout, (k, k), (s, s), (p, p), g)
    assert m.conv2.weight.shape == (256, 48, 5, 5)  # 5x5x48 (§3.5)
    assert m.conv4.weight.shape == (384, 192, 3, 3)  # 3x3x192
    assert (m.fc6.in_features, m.fc6.out_features) == (256 * 6 * 6, 4096)
    assert (m.fc7.out_features, m.fc8.out_features) == (4096, 1000)
    names = [name for name, _ in m.named_children()]
    assert names == [
        "conv1",
        "relu1",
        "norm1",
        "pool1",
        "conv2",
        "relu2",
        "norm2",
        "pool2",
        "conv3",
        "relu3",
        "conv4",
        "relu4",
        "conv5",
        "relu5",
        "pool5",
        "flatten",
        "fc6",
        "relu6",
        "drop6",
        "fc7",
        "relu7",
        "drop7",
        "fc8",
    ]
    assert (m.norm1.size, m.norm1.alpha, m.norm1.beta, m.norm1.k) == (5, 1e-4, 0.75, 2.0)  # §3.3
    assert m.drop6.p == m.drop7.p == 0.5  # §4.2


def test_summary_numbers(full_model):
    rows = {row.name: row for row in layer_rows(full_model)}
    assert rows["conv1"].output_shape == (96, 55, 55)
    assert rows["conv1"].parameters == 96 * 3 * 11 * 11 + 96 == 34_944
    assert rows["conv1"].macs == 55 * 55 * 96 * 3 * 11 * 11
    assert rows["conv2"].macs == 27 * 27 * 256 * 48 * 5 * 5
    assert rows["pool5"].output_shape == (256, 6, 6)
    assert rows["fc6"].parameters == 9216 * 4096 + 4096
    params, macs, neurons = totals(layer_rows(full_model))
    assert params == 60_965_224
    assert macs == 724_406_816
    assert neurons == 659_272  # "about 650,000 neurons" (§3.5)
    text = full_model.summary(verbose=False)
    assert "60,965,224" in text and "96 x 55 x 55" in text and "227" in text


def test_paper_init_biases_and_std(full_model):
    """§5: weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7 and 0 in conv1, conv3, fc8."""
    for name, layer in full_model.learned_layers():
        bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert np.all(layer.bias.data == bias), name
        w = layer.weight.data
        assert abs(w.std() - 0.01) < 0.0005, (name, w.std())
        assert abs(w.mean()) < 0.0005, name


def test_kaiming_init():
    m = AlexNet(num_classes=10, crop=112, width=0.25, init="kaiming", seed=1)
    for name, layer in m.learned_layers():
        assert np.all(layer.bias.data == 0), name
        fan_in = int(np.prod(layer.weight.shape[1:]))
        assert abs(layer.weight.data.std() / np.sqrt(2 / fan_in) - 1) < 0.1, name


def test_seed_fixes_weights_and_dropout():
    a = AlexNet(num_classes=5, crop=67, width=1 / 16, seed=7)
    b = AlexNet(num_classes=5, crop=67, width=1 / 16, seed=7)
    for (na, va), (nb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and np.array_equal(va, vb)
    assert a.rng_state() == b.rng_state()
    x = np.random.default_rng(0).normal(size=(2, 3, 67, 67)).astype(np.float32)
    assert np.array_equal(a.forward(x), b.forward(x))  # same dropout masks in train mode


def test_reduced_width_single_tower_and_other_crops():
    m = AlexNet(num_classes=10, crop=112, width=0.25, groups=1, seed=0)
    assert all(getattr(m, f"conv{i}").groups == 1 for i in range(1, 6))
    assert m.conv1.out_channels == 24 and m.fc6.out_features == 1024
    assert m.fc6.in_features == m.conv5.out_channels * 2 * 2  # 112 -> 2 x 2 after pool5
    x = np.random.default_rng(0).normal(size=(3, 3, 112, 112)).astype(np.float32)
    out = m.forward(x)
    assert out.shape == (3, 10) and out.dtype == np.float32
    assert m.backward(np.ones_like(out)).shape == x.shape  # Sequential semantics
    two = AlexNet(num_classes=10, crop=112, width=0.3, groups=2)
    assert all(getattr(two, f"conv{i}").out_channels % 2 == 0 for i in range(1, 6))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"crop": 64}, "too small"),
        ({"init": "xavier"}, "init"),
        ({"groups": 3}, "groups"),
        ({"width": 0}, "width"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AlexNet(**{"num_classes": 10, "crop": 67, "width": 1 / 16, **kwargs})


def test_fc7_features_are_the_last_hidden_layer_in_eval_mode():
    m = AlexNet(num_classes=5, crop=67, width=1 / 16, seed=0, init="kaiming").train()
    x = np.random.default_rng(1).normal(size=(4, 3, 67, 67)).astype(np.float32)
    f1, f2 = m.fc7_features(x), m.fc7_features(x)
    assert f1.shape == (4, m.fc7.out_features)
    assert np.array_equal(f1, f2) and (f1 >= 0).all()  # eval mode (no dropout), after the ReLU
    assert m.training  # mode restored
    m.eval()
    logits = m.forward(x)
    assert np.allclose(logits, m.fc8.forward(f1), atol=1e-5)  # fc8 reads exactly these features


def test_gradient_check_end_to_end_float64():
    """Central differences of the loss along random directions agree with backward (float64).

    The model is in training mode (dropout active); every evaluation restores the dropout
    generators' state so that all of them see the same masks.
    """
    model = AlexNet(num_classes=5, crop=67, width=1 / 16, init="kaiming", seed=0, dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 67, 67))
    labels = np.array([1, 3])
    loss = SoftmaxCrossEntropyLoss()
    states = copy.deepcopy(model.rng_state())

    def objective(inp):
        model.set_rng_state(copy.deepcopy(states))
        return loss.forward(model.forward(inp), labels)

    objective(x)
    model.zero_grad()
    grad_x = model.backward(loss.backward())
    assert grad_x.shape == x.shape
    tensors = [("input", x, grad_x)] + [(n, p.data, p.grad.copy()) for n, p in model.named_parameters()]
    eps, worst = 1e-6, 0.0
    for name, array, analytic in tensors:
        original = array.copy()
        numeric, exact = [], []
        for _ in range(2):
            direction = rng.normal(size=array.shape)
            direction /= np.linalg.norm(direction)
            array[...] = original + eps * direction
            plus = objective(x)
            array[...] = original - eps * direction
            minus = objective(x)
            array[...] = original
            numeric.append((plus - minus) / (2 * eps))
            exact.append(float((analytic * direction).sum()))
        numeric, exact = np.array(numeric), np.array(exact)
        error = np.linalg.norm(numeric - exact) / max(np.linalg.norm(numeric), np.linalg.norm(exact), 1e-12)
        worst = max(worst, error)
        assert error < 1e-5, (name, error, numeric, exact)
    assert worst < 1e-5


def test_dropout_layers_have_their_own_generators():
    m = AlexNet(num_classes=5, crop=67, width=1 / 16, seed=0)
    drops = [layer for _, layer in m.dropout_layers()]
    assert len(drops) == 2 and all(isinstance(d, Dropout) for d in drops)
    assert drops[0].generator is not drops[1].generator
    assert isinstance(m.fc8, Linear)


def test_lrn_windows_stay_inside_each_tower_unless_asked(tmp_path):
    """§3.2: each GPU normalizes its own maps; lrn_groups=1 is Caffe's cross-tower window."""
    towers = AlexNet(num_classes=3, crop=67, width=1 / 16, seed=0)
    assert towers.norm1.groups == towers.norm2.groups == 2 and towers.config["lrn_groups"] == 2
    across = AlexNet(num_classes=3, crop=67, width=1 / 16, seed=0, lrn_groups=1)
    assert across.norm1.groups == 1
    assert AlexNet(num_classes=3, crop=67, width=1 / 16, groups=1).norm1.groups == 1
    maps = np.abs(np.random.default_rng(0).normal(size=(2, 6, 4, 4))) * 100  # conv1's 6 maps, 3 per tower
    assert not np.allclose(towers.norm1(maps), across.norm1(maps))  # a different function
    with pytest.raises(ValueError, match="lrn_groups"):
        AlexNet(num_classes=3, crop=67, width=1 / 16, lrn_groups=3)
    # A checkpoint from before the option existed (no lrn_groups in its config) loads cross-tower.
    from alexnet.checkpoint import Checkpoint, save_checkpoint

    path = tmp_path / "old.npz"
    save_checkpoint(path, across, {"epoch": 0})
    import json

    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["meta"]))
    del meta["model_config"]["lrn_groups"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    assert Checkpoint(path).build_model().norm1.groups == 1
