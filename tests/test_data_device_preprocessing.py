"""The loader builds a batch in two parts: uint8 crops and reflections on the host, mean, lighting
and scale through ``xp`` where the batch is used (data/augment.py). On the CPU the batches must
be those the one-piece code made, bit for bit: tests/old_augment.py is that code, copied."""

from types import SimpleNamespace

import numpy as np
import old_augment
import pytest

from data import Loader, augment, center_crop_batch, ten_crop_batch, train_batch
from data.shards import shard_rows

SIZE, CROP = 32, 27


class Data(SimpleNamespace):
    def __len__(self):
        return len(self.images)


@pytest.fixture(scope="module")
def dataset():
    """A stand-in for data.PreparedDataset: random images, a mean image with fractional values,
    a colour PCA with the scale of real ones (0..255 eigenvalues in the thousands)."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (23, SIZE, SIZE, 3), dtype=np.uint8)
    covariance = np.cov(images.reshape(-1, 3).T.astype(np.float64))
    eigvals, eigvecs = np.linalg.eigh(covariance)
    return Data(
        images=images,
        labels=rng.integers(0, 5, 23).astype(np.int64),
        mean_image=(images.mean(axis=0) + rng.normal(0, 0.3, (SIZE, SIZE, 3))).astype(np.float32),
        eigvals=eigvals[::-1].copy(),
        eigvecs=eigvecs[:, ::-1].copy(),
        size=SIZE,
    )


def old_batch(loader, epoch, k, indices):
    """``Loader.make_batch`` as it was, on the old augmentation code."""
    ds = loader.dataset
    rows = shard_rows(len(indices), *loader.shard) if loader.shard[1] > 1 else None
    if loader.train and not loader.ten_crop:
        rng = np.random.default_rng([loader.seed, epoch, k])
        x = old_augment.train_batch(
            ds.images,
            ds.mean_image,
            ds.eigvals,
            ds.eigvecs,
            loader.crop,
            rng,
            indices=indices,
            lighting_std=loader.lighting_std,
            input_scale=loader.input_scale,
            rows=rows,
        )
        if rows is not None:
            indices = indices[rows[0] : rows[1]]
        return x, ds.labels[indices]
    if rows is not None:
        indices = indices[rows[0] : rows[1]]
    make = old_augment.ten_crop_batch if loader.ten_crop else old_augment.center_crop_batch
    return make(ds.images, ds.mean_image, loader.crop, indices, loader.input_scale), ds.labels[indices]


def assert_bit_identical(loader, epochs=(0, 1, 2)):
    seen = 0
    for epoch in epochs:
        loader.set_epoch(epoch)
        batches = loader._batches(epoch)
        got = list(loader)
        assert len(got) == len(batches)
        for k, ((x, y), indices) in enumerate(zip(got, batches)):
            old_x, old_y = old_batch(loader, epoch, k, indices)
            assert x.dtype == old_x.dtype == np.float32 and x.shape == old_x.shape
            assert x.tobytes() == old_x.tobytes()  # bit for bit, signed zeros and all
            np.testing.assert_array_equal(y, old_y)
            seen += len(y)
    return seen


@pytest.mark.parametrize("seed", [0, 1, 9])
@pytest.mark.parametrize("scale, lighting", [(1.0, 0.1), (64.0, 0.1), (3.0, 0.0)])
def test_training_batches_are_those_of_the_old_code(dataset, seed, scale, lighting):
    ds = dataset
    for workers in (0, 2):
        loader = Loader(
            ds, 5, crop=CROP, seed=seed, input_scale=scale, lighting_std=lighting, workers=workers
        )
        assert assert_bit_identical(loader) == 3 * len(ds)


@pytest.mark.parametrize("ten_crop", [False, True], ids=["centre", "ten-crop"])
@pytest.mark.parametrize("scale", [1.0, 64.0])
def test_evaluation_batches_are_those_of_the_old_code(dataset, ten_crop, scale):
    ds = dataset
    loader = Loader(ds, 4, crop=CROP, train=False, ten_crop=ten_crop, input_scale=scale)
    assert assert_bit_identical(loader, epochs=(0,)) == len(ds)


@pytest.mark.parametrize("size", [2, 3])
def test_data_parallel_shards_are_those_of_the_old_code(dataset, size):
    ds = dataset
    for train, ten_crop in [(True, False), (False, False), (False, True)]:
        for rank in range(size):
            loader = Loader(
                ds, 6, crop=CROP, seed=2, train=train, ten_crop=ten_crop, input_scale=64.0, shard=(rank, size)
            )
            assert_bit_identical(loader, epochs=(0, 1) if train else (0,))


def test_the_public_batch_functions_are_those_of_the_old_code(dataset):
    ds = dataset
    for seed in range(3):
        for mean in (ds.mean_image, None):
            args = (ds.images, mean, ds.eigvals, ds.eigvecs, CROP)
            new, params = train_batch(*args, np.random.default_rng(seed), input_scale=4.0, return_params=True)
            old, old_params = old_augment.train_batch(
                *args, np.random.default_rng(seed), input_scale=4.0, return_params=True
            )
            assert new.tobytes() == old.tobytes()
            for name in old_params:
                np.testing.assert_array_equal(params[name], old_params[name])
            idx = np.array([3, 1, 4])
            assert (
                center_crop_batch(ds.images, mean, CROP, idx, 2.0).tobytes()
                == old_augment.center_crop_batch(ds.images, mean, CROP, idx, 2.0).tobytes()
            )
            assert (
                ten_crop_batch(ds.images, mean, CROP, idx).tobytes()
                == old_augment.ten_crop_batch(ds.images, mean, CROP, idx).tobytes()
            )


def test_the_host_part_is_uint8_and_the_mean_patches_match_a_plain_crop(dataset):
    ds = dataset
    part = augment.train_pixels(ds.images, ds.eigvals, ds.eigvecs, CROP, np.random.default_rng(0))
    assert part["pixels"].dtype == np.uint8 and part["shift"].dtype == np.float32
    means = augment.mean_patches(ds.mean_image, part["ys"], part["xs"], part["flips"], CROP)
    for k in range(len(means)):
        y, x = part["ys"][k], part["xs"][k]
        window = np.moveaxis(ds.mean_image[y : y + CROP, x : x + CROP], -1, 0)
        np.testing.assert_array_equal(means[k], window[:, :, ::-1] if part["flips"][k] else window)
