"""data.Loader: shapes, order, reproducibility per (seed, epoch), evaluation crops."""

import numpy as np
import pytest
from PIL import Image

from data import Loader, PreparedDataset, center_crop_batch, prepare_subset, ten_crop_batch


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    rng = np.random.default_rng(0)
    for c in range(3):
        folder = root / "src" / f"n0000000{c}"
        folder.mkdir(parents=True)
        for i in range(7):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return PreparedDataset(prepare_subset(root / "src", root / "out", size=16, workers=0, quiet=True))


def collect(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def test_shapes_len_and_labels(dataset):
    loader = Loader(dataset, 4, crop=12, seed=1)
    assert len(loader) == 6 and len(Loader(dataset, 4, crop=12, drop_last=True)) == 5
    batches = collect(loader)
    assert len(batches) == 6 and batches[-1][0].shape == (1, 3, 12, 12)
    x, y = batches[0]
    assert x.shape == (4, 3, 12, 12) and x.dtype == np.float32 and y.dtype == np.int64
    order = loader.epoch_order(0)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), dataset.labels[order])
    assert sorted(order.tolist()) == list(range(21))
    assert len(collect(Loader(dataset, 4, crop=12, drop_last=True))) == 5


def test_same_seed_and_epoch_give_same_batches_regardless_of_threads(dataset):
    a = collect(Loader(dataset, 5, crop=12, seed=3, workers=2, prefetch=3))
    b = collect(Loader(dataset, 5, crop=12, seed=3, workers=0))
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    c = collect(Loader(dataset, 5, crop=12, seed=4))
    assert not np.array_equal(a[0][0], c[0][0])


def test_epochs_differ_and_resume_exactly(dataset):
    loader = Loader(dataset, 5, crop=12, seed=7)
    epoch0, epoch1 = collect(loader), collect(loader)
    assert loader.epoch == 2 and loader.state_dict() == {"seed": 7, "epoch": 2}
    assert not np.array_equal(epoch0[0][1], epoch1[0][1]) or not np.array_equal(epoch0[0][0], epoch1[0][0])
    resumed = Loader(dataset, 5, crop=12, seed=0)
    resumed.load_state_dict({"seed": 7, "epoch": 1})
    for (xa, ya), (xb, yb) in zip(epoch1, collect(resumed)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    loader.set_epoch(0)
    np.testing.assert_array_equal(collect(loader)[2][0], epoch0[2][0])


def test_evaluation_center_and_ten_crop(dataset):
    loader = Loader(dataset, 8, crop=12, train=False, input_scale=2.0)
    batches = collect(loader)
    x = np.concatenate([b[0] for b in batches])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), dataset.labels)
    np.testing.assert_allclose(x, center_crop_batch(dataset.images, dataset.mean_image, 12, input_scale=2.0))
    ten = collect(Loader(dataset, 8, crop=12, train=False, ten_crop=True))
    assert ten[0][0].shape == (8, 10, 3, 12, 12)
    np.testing.assert_allclose(
        ten[1][0], ten_crop_batch(dataset.images, dataset.mean_image, 12, indices=np.arange(8, 16))
    )
    # an eval loader is deterministic across epochs
    np.testing.assert_array_equal(collect(loader)[0][0], batches[0][0])


def test_training_batches_are_mean_centered(dataset):
    x = np.concatenate([b[0] for b in collect(Loader(dataset, 21, crop=16, lighting_std=0.0))])
    assert abs(float(x.mean())) < 1e-3  # crop = S: the mean image is subtracted exactly


def test_bad_arguments(dataset):
    with pytest.raises(ValueError):
        Loader(dataset, 4, crop=17)
    with pytest.raises(ValueError):
        Loader(dataset, 4, crop=12, device="tpu")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="CuPy"):
            next(iter(Loader(dataset, 4, crop=12, device="cuda")))


@pytest.mark.parametrize("workers", [0, 2])
def test_starting_mid_epoch_gives_the_remaining_batches(dataset, workers):
    full = Loader(dataset, 4, crop=12, seed=5, workers=workers)
    full.set_epoch(3)
    whole = collect(full)
    resumed = Loader(dataset, 4, crop=12, seed=5, workers=workers)
    resumed.set_epoch(3, start_batch=2)
    rest = collect(resumed)
    assert len(rest) == len(whole) - 2
    for (xa, ya), (xb, yb) in zip(whole[2:], rest):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert resumed.epoch == 4 and resumed.start_batch == 0  # the next epoch starts from its first batch
