"""The flat buffers of nn/flat.py and the SGD step on them, against the per-parameter reference."""

import copy

import numpy as np
import pytest

import nn
from nn import FlatParameters, Parameter, asnumpy, sgd_step_reference
from nn.backend import device_of


def small_net(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, groups=1, dtype=dtype, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5, dtype=dtype, rng=rng),
    )


def random_grads(params, rng, to_dev=lambda a: a):
    for p in params:
        p.grad[...] = to_dev(rng.standard_normal(p.data.shape).astype(p.data.dtype))


def test_parameters_and_gradients_become_views_of_one_buffer_each():
    model = small_net()
    before = [p.data.copy() for p in model.parameters()]
    grads = [np.full(p.data.shape, i, np.float32) for i, p in enumerate(model.parameters())]
    for p, g in zip(model.parameters(), grads):
        p.grad[...] = g
    flat = FlatParameters(model.parameters())
    assert flat.data.shape == (model.num_parameters(),) and flat.grad.shape == flat.data.shape
    offset = 0
    for p, value, grad in zip(model.parameters(), before, grads):
        assert p.data.base is flat.data and p.grad.base is flat.grad_buffer
        np.testing.assert_array_equal(p.data, value)  # the values moved in unchanged
        np.testing.assert_array_equal(p.grad, grad)
        np.testing.assert_array_equal(flat.data[offset : offset + p.size], value.reshape(-1))
        offset += p.size
    flat.data[0] = 123.0  # writing the buffer is writing the parameter, and back
    assert model.parameters()[0].data.reshape(-1)[0] == 123.0


def test_zero_grad_is_one_fill_and_leaves_the_spare_slots():
    model = small_net()
    flat = FlatParameters(model.parameters(), spare=2)
    for p in model.parameters():
        p.grad += 1.0  # in place, as backward does
    assert flat.grad.sum() == model.num_parameters()
    flat.spare[...] = 7.0
    flat.zero_grad()
    assert not flat.grad.any() and all(not p.grad.any() for p in model.parameters())
    np.testing.assert_array_equal(flat.spare, [7.0, 7.0])


def test_mixed_dtypes_are_refused_by_name():
    with pytest.raises(ValueError, match="one dtype on one device; got float32 on cpu, float64 on cpu"):
        FlatParameters([Parameter(np.zeros(2, np.float32)), Parameter(np.zeros(2, np.float64))])


def test_flat_sgd_equals_the_per_parameter_rule_bit_for_bit(device, to_dev):
    """Several steps with a learning-rate change, float32, on the AlexNet-sized chunking too: every
    entry sees the same operations in the same order, so the results are identical, not close."""
    rng = np.random.default_rng(3)
    shapes = [(700, 600), (600,), (3, 5, 7, 7), (1,)]  # 420 000 entries: several CPU chunks and slices
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [Parameter(to_dev(v.copy())) for v in values]
    reference = [Parameter(to_dev(v.copy())) for v in values]
    optimizer = nn.SGD(ours, lr=0.1, momentum=0.9, weight_decay=5e-4)
    velocities = [p.data * 0 for p in reference]
    for step in range(5):
        if step == 3:
            optimizer.lr = 0.01  # the schedule divides it by 10
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for a, b, g in zip(ours, reference, grads):
            a.grad[...] = to_dev(g)
            b.grad[...] = to_dev(g)
        optimizer.step()
        sgd_step_reference(reference, velocities, optimizer.lr, 0.9, 5e-4)
        for a, b, va, vb in zip(ours, reference, optimizer.velocities, velocities):
            np.testing.assert_array_equal(asnumpy(a.data), asnumpy(b.data))
            np.testing.assert_array_equal(asnumpy(va), asnumpy(vb))


def test_load_state_dict_writes_into_the_views_and_training_continues():
    model = small_net()
    optimizer = nn.SGD(model.parameters(), lr=0.1)
    views = [(p.data, p.grad) for p in model.parameters()]
    state = small_net(seed=5).state_dict()
    model.load_state_dict(state)
    assert optimizer.flat.linked()
    assert all(p.data is d and p.grad is g for p, (d, g) in zip(model.parameters(), views))
    np.testing.assert_array_equal(
        optimizer.flat.data, np.concatenate([v.reshape(-1) for v in state.values()])
    )


def test_a_replaced_array_is_copied_back_into_its_view_before_the_next_step():
    model = small_net()
    twin = copy.deepcopy(model)
    optimizer = nn.SGD(model.parameters(), lr=0.1)
    reference = nn.SGD(twin.parameters(), lr=0.1)
    rng = np.random.default_rng(1)
    first = model.parameters()[0]
    replacement = rng.standard_normal(first.data.shape).astype(np.float32)
    first.data = replacement.copy()  # user code assigning a new array
    twin.parameters()[0].data[...] = replacement
    assert not optimizer.flat.linked()
    for _ in range(2):
        random_grads(model.parameters(), np.random.default_rng(2))
        random_grads(twin.parameters(), np.random.default_rng(2))
        optimizer.step()
        reference.step()
    assert optimizer.flat.linked() and first.data.base is optimizer.flat.data
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_astype_rebuilds_the_buffers_and_moves_the_velocities():
    model = small_net()
    optimizer = nn.SGD(model.parameters(), lr=0.1)
    random_grads(model.parameters(), np.random.default_rng(0))
    optimizer.step()
    velocities = [v.astype(np.float64) for v in optimizer.velocities]
    model.astype(np.float64)
    random_grads(model.parameters(), np.random.default_rng(1))
    optimizer.step()  # relinks first: float64 buffers, velocities cast with them
    assert optimizer.flat.data.dtype == np.float64 and optimizer.velocity.dtype == np.float64
    assert all(p.data.base is optimizer.flat.data for p in model.parameters())
    for v, before in zip(optimizer.velocities, velocities):
        assert v.base is optimizer.velocity and not np.array_equal(v, before)


def test_to_the_same_device_keeps_the_views():
    model = small_net()
    optimizer = nn.SGD(model.parameters(), lr=0.1)
    model.to("cpu")
    assert optimizer.flat.linked()


def test_a_shape_change_is_refused():
    model = small_net()
    optimizer = nn.SGD(model.parameters(), lr=0.1)
    model.parameters()[1].data = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="changed shape"):
        optimizer.step()


def test_sgd_state_dict_keeps_its_keys_and_loads_into_the_flat_velocity():
    model = small_net()
    optimizer = nn.SGD(model.parameters(), lr=0.1)
    random_grads(model.parameters(), np.random.default_rng(0))
    optimizer.step()
    state = optimizer.state_dict()
    assert sorted(state) == sorted(["lr", "momentum", "weight_decay"] + [f"velocity.{i}" for i in range(4)])
    other = small_net()
    restored = nn.SGD(other.parameters(), lr=0.5).load_state_dict(state)
    assert restored.lr == 0.1
    np.testing.assert_array_equal(restored.velocity, optimizer.velocity)
    assert all(v.base is restored.velocity for v in restored.velocities)


def test_moving_the_model_after_the_optimizer_moves_the_buffers_and_velocities(device):
    """model.to(device) after the optimizer was made: the next step relinks on the new device,
    with the velocities built so far, and computes what an optimizer made there would."""
    model, twin = small_net(), small_net()
    optimizer, reference = nn.SGD(model.parameters(), lr=0.1), nn.SGD(twin.parameters(), lr=0.1)
    for params in (model.parameters(), twin.parameters()):
        random_grads(params, np.random.default_rng(0))
    optimizer.step()
    reference.step()
    model.to(device)
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(p.data.shape).astype(np.float32) for p in twin.parameters()]
    for p, g in zip(model.parameters(), grads):
        p.grad[...] = nn.to_device(g, device)
    for p, g in zip(twin.parameters(), grads):
        p.grad[...] = g
    optimizer.step()
    reference.step()
    assert optimizer.flat.device == device and device_of(optimizer.velocity) == device
    assert optimizer.flat.linked()
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(asnumpy(a.data), b.data)
