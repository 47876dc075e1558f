"""The Module machinery: parameters, modes, saving, devices and clear errors."""

import os

import numpy as np
import pytest

import nn
from nn import backend


def small_net():
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(4 * 3 * 3, 2, rng=rng),
    )


def test_named_parameters_and_count():
    net = small_net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "5.weight", "5.bias"]
    assert net.num_parameters() == 4 * 3 * 9 + 4 + 2 * 36 + 2
    assert len(net) == 6 and isinstance(net[1], nn.ReLU)


def test_train_eval_propagates():
    net = small_net().eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_round_trip_through_an_atomic_file(tmp_path):
    net, other = small_net(), small_net()
    for p in other.parameters():
        p.data += 1
    path = tmp_path / "model.npz"
    nn.save_npz_atomic(path, net.state_dict())
    other.load_state_dict(nn.load_npz(path))
    for (name, a), (_, b) in zip(net.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_failed_save_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "ckpt.npz"
    nn.save_npz_atomic(path, {"w": np.arange(3)})

    class Unsaveable:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        nn.save_npz_atomic(path, {"w": np.arange(5), "bad": Unsaveable()})
    np.testing.assert_array_equal(nn.load_npz(path)["w"], np.arange(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_load_state_dict_rejects_wrong_names_and_shapes():
    net = small_net()
    state = net.state_dict()
    state["0.weight"] = np.zeros((4, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"0\.weight.*\(4, 3, 5, 5\).*\(4, 3, 3, 3\)"):
        net.load_state_dict(state)
    del state["0.weight"]
    with pytest.raises(KeyError, match="missing"):
        net.load_state_dict(state)


@pytest.mark.parametrize(
    "layer,x,pattern",
    [
        (
            nn.Conv2d(3, 8, 3),
            np.zeros((2, 4, 9, 9), np.float32),
            r"Conv2d expects 3 channels.*\(2, 4, 9, 9\)",
        ),
        (nn.Conv2d(3, 8, 3), np.zeros((4, 9, 9), np.float32), r"Conv2d expects a 4-D input.*\(4, 9, 9\)"),
        (
            nn.Conv2d(3, 8, 3),
            np.zeros((1, 3, 9, 9), np.float64),
            r"Conv2d has float32 parameters but got a float64",
        ),
        (nn.Conv2d(3, 8, 5), np.zeros((1, 3, 4, 4), np.float32), r"smaller than the kernel"),
        (nn.Linear(10, 2), np.zeros((3, 11), np.float32), r"Linear expects 10 features.*\(3, 11\)"),
        (nn.MaxPool2d(3, 2), np.zeros((1, 1, 2, 2), np.float32), r"smaller than the window"),
        (nn.LocalResponseNorm(), np.zeros((2, 3), np.float32), r"LocalResponseNorm expects a 4-D input"),
    ],
)
def test_bad_input_gives_a_clear_error(layer, x, pattern):
    with pytest.raises(ValueError, match=pattern):
        layer(x)


def test_integer_input_is_rejected():
    with pytest.raises(ValueError, match="floating-point"):
        nn.Conv2d(3, 4, 3)(np.zeros((1, 3, 5, 5), np.uint8))


@pytest.mark.parametrize(
    "layer",
    [
        nn.Conv2d(3, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.LocalResponseNorm(),
        nn.Dropout(),
        nn.Linear(3, 2),
        nn.Flatten(),
        nn.SoftmaxCrossEntropyLoss(),
    ],
)
def test_backward_before_forward_is_a_clear_error(layer):
    with pytest.raises(RuntimeError, match=f"{type(layer).__name__}.backward called before forward"):
        layer.backward(np.zeros((1, 2), np.float32))


def test_backward_with_a_wrong_gradient_shape():
    relu = nn.ReLU()
    relu(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"ReLU.backward: grad_out has shape \(3, 2\), expected .*\(2, 3\)"):
        relu.backward(np.ones((3, 2), np.float32))


def test_loss_rejects_bad_labels():
    loss = nn.SoftmaxCrossEntropyLoss()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        loss(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="integer labels"):
        loss(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\)"):
        loss(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_asking_for_cuda_says_what_is_missing():
    if backend.cupy_available():
        pytest.skip("a GPU is present here")
    with pytest.raises(RuntimeError, match="CuPy|GPU"):
        small_net().to("cuda")
    with pytest.raises(ValueError, match="device must be one of"):
        backend.check_device("tpu")


def test_module_moves_between_devices(device):
    net = small_net().to(device)
    assert net.device == device
    x = nn.to_device(np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32), device)
    net.eval()
    out_here = nn.asnumpy(net(x))
    net.to("cpu")
    np.testing.assert_allclose(nn.asnumpy(net(nn.asnumpy(x))), out_here, rtol=1e-5, atol=1e-6)
