"""alexnet.parallel.towers: the two towers of §3.2 as two ranks, against the one-process AlexNet(groups=2).

The ranks here are threads of one process (alexnet.parallel.ThreadGroup), which run the very same
collective calls as MPI processes; tests/test_towers_mpi.py repeats the key checks under
``mpiexec -n 2``.
"""

import numpy as np
import pytest

from alexnet.checkpoint import load_checkpoint, save_checkpoint
from alexnet.model import AlexNet
from alexnet.parallel import (
    EXCHANGES,
    ThreadGroup,
    TowerAlexNet,
    exchange_bytes,
    join_state_dicts,
    split_state_dict,
    tower_parameter_table,
)
from nn import SGD, SoftmaxCrossEntropyLoss

SMALL = dict(num_classes=10, crop=67, width=1 / 16, seed=3)


class OneRankOfTwo:
    """A communicator that only answers rank and size (building a tower from a reference needs no
    collective)."""

    def __init__(self, rank):
        self.rank, self.size, self.is_root = rank, 2, rank == 0


def rel_error(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def batch(n=4, crop=67, classes=10, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, crop, crop)).astype(dtype), rng.integers(0, classes, n)


def one_process_step(model, x, y):
    criterion = SoftmaxCrossEntropyLoss()
    logits = model.forward(x)
    loss = criterion.forward(logits, y)
    model.zero_grad()
    model.backward(criterion.backward())
    return logits, loss


@pytest.fixture(scope="module")
def full():
    """The paper's network (1000 classes, crop 227, two groups), built once for this module."""
    return AlexNet(seed=0)


def test_each_tower_holds_half_of_every_layer_at_full_size(full):
    towers = [TowerAlexNet(OneRankOfTwo(rank), reference=full) for rank in range(2)]
    shapes = {name: tuple(p.data.shape) for name, p in towers[1].named_parameters()}
    assert shapes["conv1.weight"] == (48, 3, 11, 11)  # 48 kernels, each seeing the whole image
    assert shapes["conv2.weight"] == (128, 48, 5, 5)  # group g of conv2
    assert shapes["conv3.weight"] == (192, 256, 3, 3)  # half of conv3, reading all 256 maps
    assert shapes["conv4.weight"] == (192, 192, 3, 3)
    assert shapes["conv5.weight"] == (128, 192, 3, 3)
    assert shapes["fc6.weight"] == (2048, 9216)  # fc6's input: both pool5 halves
    assert shapes["fc7.weight"] == (2048, 4096)
    assert shapes["fc8.weight"] == (500, 4096)
    assert sum(t.num_parameters() for t in towers) == full.num_parameters() == 60_965_224
    table = tower_parameter_table(full)
    assert ("conv3.weight", (384, 256, 3, 3), (192, 256, 3, 3), (192, 256, 3, 3)) == table[4][:4]
    # tower 1's conv2 is the second group of the one-process grouped conv2, its conv3 the second half
    np.testing.assert_array_equal(towers[1].conv2.weight.data, full.conv2.weight.data[128:])
    np.testing.assert_array_equal(towers[1].conv3.weight.data, full.conv3.weight.data[192:])


def test_split_and_join_are_inverse_and_keep_the_order():
    state = AlexNet(**SMALL).state_dict()
    shares = [split_state_dict(state, rank) for rank in range(2)]
    joined = join_state_dicts(shares)
    assert list(joined) == list(state)
    for name in state:
        np.testing.assert_array_equal(joined[name], state[name])
    half = state["conv1.weight"].shape[0] // 2
    np.testing.assert_array_equal(shares[0]["conv1.weight"], state["conv1.weight"][:half])
    optimizer_state = {"lr": np.float64(0.01), "velocity.0": np.arange(6.0).reshape(3, 2)}
    pieces = [split_state_dict(optimizer_state, rank) for rank in range(2)]
    assert pieces[0]["velocity.0"].shape == (2, 2) and pieces[1]["velocity.0"].shape == (1, 2)
    np.testing.assert_array_equal(join_state_dicts(pieces)["velocity.0"], optimizer_state["velocity.0"])
    with pytest.raises(ValueError, match="disagree on lr"):
        join_state_dicts([{"lr": np.float64(0.1)}, {"lr": np.float64(0.2)}])


def run_towers(kwargs, x, y, steps=0, lr=0.01, training=True):
    """On two thread ranks: logits, loss and full gradients of one forward/backward; then ``steps``
    SGD steps on the same batch and the full weights."""

    def rank_fn(comm):
        model = TowerAlexNet(comm, **kwargs)
        model.train(training)
        logits, loss = one_process_step(model, x, y)
        grads = model.gather_rows({name: p.grad for name, p in model.named_parameters()})
        masks = model.drop6._mask, model.drop7._mask
        optimizer = SGD(model.parameters(), lr=lr)
        for _ in range(steps):
            optimizer.step()
            one_process_step(model, x, y)
        return logits, loss, grads, model.full_state_dict(), masks, model.traffic()

    return ThreadGroup(2).run(rank_fn)


@pytest.mark.parametrize("num_classes", [10, 5])
def test_two_towers_equal_one_process_in_float64(num_classes):
    """The key check: logits and every parameter gradient equal the one-process two-group AlexNet's
    for the same weights and dropout masks, to 1e-10 relative (float64)."""
    kwargs = dict(SMALL, num_classes=num_classes, dtype=np.float64)
    x, y = batch(classes=num_classes)
    reference = AlexNet(**kwargs)
    logits, loss = one_process_step(reference, x, y)
    assert (reference.drop6._mask == 0).any(), "dropout must be on for this test to mean anything"
    for rank, (t_logits, t_loss, t_grads, _, _, _) in enumerate(run_towers(kwargs, x, y)):
        assert rel_error(t_logits, logits) < 1e-10, rank
        assert abs(t_loss - loss) < 1e-10 * abs(loss)
        for name, param in reference.named_parameters():
            assert rel_error(t_grads[name], param.grad) < 1e-10, (rank, name)


def test_towers_are_built_from_the_reference_config_not_the_paper_constants():
    """A reference network with other LRN constants than §3.3's: the towers compute ITS function
    (logits and every gradient to 1e-10), so no setting of the reference is typed again in the towers."""
    lrn = {"size": 3, "alpha": 1e-3, "beta": 0.5, "k": 1.5}
    kwargs = dict(SMALL, dtype=np.float64, init="kaiming", lrn=lrn)
    x, y = batch()
    reference = AlexNet(**kwargs)
    logits, loss = one_process_step(reference, x, y)
    paper = AlexNet(**dict(kwargs, lrn=None))
    assert rel_error(paper.forward(x), logits) > 1e-2, "the LRN settings must change the function"
    for rank, (t_logits, t_loss, t_grads, _, _, _) in enumerate(run_towers(kwargs, x, y)):
        assert rel_error(t_logits, logits) < 1e-10, rank
        assert abs(t_loss - loss) < 1e-10 * abs(loss)
        for name, param in reference.named_parameters():
            assert rel_error(t_grads[name], param.grad) < 1e-10, (rank, name)


def test_dropout_masks_are_the_one_process_masks_columns():
    kwargs = dict(SMALL, dtype=np.float64)
    x, y = batch()
    reference = AlexNet(**kwargs)
    one_process_step(reference, x, y)
    for rank, result in enumerate(run_towers(kwargs, x, y)):
        mask6, mask7 = result[4]
        half = reference.fc6.out_features // 2
        columns = slice(rank * half, (rank + 1) * half)
        np.testing.assert_array_equal(mask6, reference.drop6._mask[:, columns])
        np.testing.assert_array_equal(mask7, reference.drop7._mask[:, columns])


def test_eval_mode_logits_equal_one_process():
    kwargs = dict(SMALL, dtype=np.float64)
    x, y = batch()
    reference = AlexNet(**kwargs).eval()
    logits = reference.forward(x)
    for result in run_towers(kwargs, x, y, training=False):
        assert rel_error(result[0], logits) < 1e-10


def test_short_training_run_ends_with_the_same_weights():
    """Five SGD steps (momentum, weight decay, dropout on) in float32: the same weights up to float32
    rounding noise; in float64 to 1e-10."""
    for dtype, tolerance in ((np.float32, 2e-5), (np.float64, 1e-10)):
        kwargs = dict(SMALL, dtype=dtype, init="kaiming")
        x, y = batch(n=8, dtype=dtype)
        reference = AlexNet(**kwargs)
        optimizer = SGD(reference.parameters(), lr=0.01)
        one_process_step(reference, x, y)
        for _ in range(5):
            optimizer.step()
            one_process_step(reference, x, y)
        start = AlexNet(**kwargs).state_dict()
        for result in run_towers(kwargs, x, y, steps=5):
            final = result[3]
            for name, value in reference.state_dict().items():
                moved = np.abs(value - start[name]).max()
                assert moved > 0 or name.endswith("bias")
                assert rel_error(final[name], value) < tolerance, (dtype.__name__, name)


def test_bytes_crossing_each_exchange():
    kwargs = dict(SMALL, dtype=np.float64)
    x, y = batch()
    reference = AlexNet(**kwargs)
    traffic = run_towers(kwargs, x, y)[0][5]
    assert [t["exchange"] for t in traffic] == list(EXCHANGES)
    s = reference.spatial
    per = {t["exchange"]: t for t in traffic}
    # each rank sends its half of the gathered tensor: N x C/2 x H x W float64 values
    assert per["gather2"]["bytes_forward"] == 4 * (reference.conv2.out_channels // 2) * s["pool2"] ** 2 * 8
    assert per["gather5"]["bytes_forward"] == 4 * (reference.conv5.out_channels // 2) * s["pool5"] ** 2 * 8
    assert per["gather6"]["bytes_forward"] == per["gather7"]["bytes_forward"] == 4 * 128 * 8
    assert per["gather8"]["bytes_forward"] == 4 * 5 * 8 and per["gather8"]["bytes_backward"] == 0
    for name in ("gather2", "gather5", "gather6", "gather7"):
        assert per[name]["bytes_backward"] == per[name]["bytes_forward"]
    predicted = exchange_bytes(reference, batch=4, itemsize=8)  # from the shapes alone
    assert [(p["bytes_forward"], p["bytes_backward"]) for p in predicted] == [
        (t["bytes_forward"], t["bytes_backward"]) for t in traffic
    ]


def test_what_crosses_at_full_size_is_small_next_to_fc6_and_fc7(full):
    """The paper's reason for the split, in numbers: at batch 128, crop 227, float32, one rank sends
    about 31 MB per step, against 218 MB of fc6 and fc7 weights (234 MB with fc8: 58.6M values) that
    data-parallel training would all-reduce as gradients every step."""
    sizes = full
    per = {p["exchange"]: p for p in exchange_bytes(sizes, batch=128)}
    assert per["gather2"]["bytes_forward"] == 128 * 128 * 13 * 13 * 4
    assert per["gather5"]["bytes_forward"] == 128 * 128 * 6 * 6 * 4
    assert per["gather6"]["bytes_forward"] == 128 * 2048 * 4
    assert per["gather8"]["bytes_forward"] == 128 * 500 * 4
    total = sum(p["bytes_forward"] + p["bytes_backward"] for p in per.values())
    fc_weights = (
        sizes.fc6.weight.size + sizes.fc6.bias.size + sizes.fc7.weight.size + sizes.fc7.bias.size
    ) * 4
    assert 30e6 < total < 32e6 and fc_weights == (9216 * 4096 + 4096 * 4096 + 2 * 4096) * 4
    assert fc_weights > 6.5 * total


def test_checkpoint_from_the_towers_is_a_normal_one_process_checkpoint(tmp_path):
    kwargs = dict(SMALL, dtype=np.float32)
    x, y = batch(dtype=np.float32)
    path = tmp_path / "towers.npz"

    def rank_fn(comm):
        model = TowerAlexNet(comm, **kwargs)
        optimizer = SGD(model.parameters(), lr=0.01)
        one_process_step(model, x, y)
        optimizer.step()
        view, optimizer_view = model.full_model_view(), model.full_optimizer_view(optimizer)
        if comm.is_root:
            save_checkpoint(path, view, {"epoch": 1}, optimizer_view)
        comm.barrier()
        resumed = load_checkpoint(path)  # every rank splits the same file again
        again = TowerAlexNet(comm, reference=resumed.build_model())
        return model.state_dict(), again.state_dict(), optimizer.state_dict(), resumed

    results = ThreadGroup(2).run(rank_fn)
    checkpoint = results[0][3]
    one_process = checkpoint.build_model()  # the one-process tools load it
    assert one_process.groups == 2 and one_process.config["lrn_groups"] == 2
    reference = AlexNet(**kwargs)
    reference_optimizer = SGD(reference.parameters(), lr=0.01)
    one_process_step(reference, x, y)
    reference_optimizer.step()
    for name, value in reference.state_dict().items():
        assert rel_error(one_process.state_dict()[name], value) < 1e-5, name
    velocities = join_state_dicts([r[2] for r in results])
    for key, value in reference_optimizer.state_dict().items():
        np.testing.assert_allclose(checkpoint.optimizer_state[key], velocities[key])
        assert rel_error(np.asarray(checkpoint.optimizer_state[key]), np.asarray(value)) < 1e-5, key
    for before, after, _, _ in results:
        for name in before:
            np.testing.assert_array_equal(before[name], after[name])


def test_the_towers_refuse_what_they_cannot_be():
    with pytest.raises(ValueError, match="exactly 2 processes"):
        TowerAlexNet(type("Three", (), {"rank": 0, "size": 3})(), **SMALL)
    with pytest.raises(ValueError, match="groups must be 2"):
        TowerAlexNet(OneRankOfTwo(0), groups=1, **SMALL)
    with pytest.raises(ValueError, match="one-group AlexNet"):
        TowerAlexNet(OneRankOfTwo(0), reference=AlexNet(groups=1, **SMALL))
    with pytest.raises(ValueError, match="LRN across the towers"):
        TowerAlexNet(OneRankOfTwo(0), reference=AlexNet(lrn_groups=1, **SMALL))


def test_without_a_seed_both_towers_agree_on_one():
    def rank_fn(comm):
        return TowerAlexNet(comm, **dict(SMALL, seed=None)).full_state_dict()

    first, second = ThreadGroup(2).run(rank_fn)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_the_tutorial_exercise_solution_matches_the_measured_bytes():
    """The block of tutorials/solutions/12_two_gpus.py (fc6_exchange_bytes) against exchange_bytes' gather5."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tutorials" / "solutions" / "12_two_gpus.py"
    namespace = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    for batch, crop, width, itemsize in [(4, 67, 1 / 16, 8), (7, 150, 0.5, 2), (3, 99, 0.25, 4)]:
        model = AlexNet(num_classes=10, crop=crop, width=width, seed=0)
        expected = {t["exchange"]: t for t in exchange_bytes(model, batch, itemsize)}["gather5"][
            "bytes_forward"
        ]
        assert namespace["fc6_exchange_bytes"](batch, crop, width, itemsize) == expected
    assert namespace["fc6_exchange_bytes"](128, 227) == 128 * 128 * 6 * 6 * 4
