"""Values of the §4.1 crops, reflections and PCA lighting (data.augment)."""

import numpy as np
import pytest

from data.augment import (
    center_crop_batch,
    crop_patches,
    flip_horizontal,
    pca_lighting_shift,
    ten_crop_batch,
    ten_crop_offsets,
    train_batch,
)


def arange_images(n=2, size=8):
    return np.arange(n * size * size * 3, dtype=np.float32).reshape(n, size, size, 3)


def nchw(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, -3))


def test_ten_crops_equal_hand_slices():
    imgs = arange_images(2, 8)
    out = ten_crop_batch(imgs, None, 5)
    assert out.shape == (2, 10, 3, 5, 5) and out.dtype == np.float32
    for b in range(2):
        im = imgs[b]
        expected = [im[0:5, 0:5], im[0:5, 3:8], im[3:8, 0:5], im[3:8, 3:8], im[1:6, 1:6]]
        expected += [e[:, ::-1] for e in expected]
        for k in range(10):
            np.testing.assert_array_equal(out[b, k], nchw(expected[k]))


def test_ten_crop_offsets_paper_sizes():
    ys, xs, flips = ten_crop_offsets(256, 224)
    assert list(ys[:5]) == [0, 0, 32, 32, 16] and list(xs[:5]) == [0, 32, 0, 32, 16]
    assert list(flips) == [False] * 5 + [True] * 5


def test_crop_patches_with_flips_and_index():
    imgs = arange_images(3, 10).astype(np.uint8)
    out = crop_patches(imgs, [1, 0, 4], [2, 4, 0], 6, flips=[False, True, True], image_index=[2, 0, 1])
    np.testing.assert_array_equal(out[0], nchw(imgs[2, 1:7, 2:8]))
    np.testing.assert_array_equal(out[1], nchw(imgs[0, 0:6, 4:10][:, ::-1]))
    np.testing.assert_array_equal(out[2], nchw(imgs[1, 4:10, 0:6][:, ::-1]))
    with pytest.raises(ValueError):
        crop_patches(imgs, [5], [0], 6)


def test_flip_reverses_last_axis():
    x = np.arange(24).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(flip_horizontal(x), x[..., ::-1])
    np.testing.assert_array_equal(flip_horizontal(flip_horizontal(x)), x)


def test_center_crop_subtracts_mean_at_same_window():
    imgs = arange_images(2, 9)
    mean = np.random.default_rng(0).normal(size=(9, 9, 3)).astype(np.float32)
    out = center_crop_batch(imgs, mean, 5, input_scale=2.0)
    for b in range(2):
        np.testing.assert_allclose(out[b], nchw((imgs[b] - mean)[2:7, 2:7]) / 2, rtol=1e-6)


def test_train_batch_values_match_parameters():
    rng_img = np.random.default_rng(1)
    imgs = rng_img.integers(0, 256, (6, 12, 12, 3), dtype=np.uint8)
    mean = rng_img.uniform(0, 255, (12, 12, 3)).astype(np.float32)
    eigvals = np.array([50.0, 5.0, 1.0], np.float32)
    q, _ = np.linalg.qr(rng_img.normal(size=(3, 3)))
    eigvecs = q.astype(np.float32)
    idx = np.array([4, 0, 5, 2])
    x, params = train_batch(
        imgs,
        mean,
        eigvals,
        eigvecs,
        7,
        np.random.default_rng(5),
        indices=idx,
        input_scale=4.0,
        return_params=True,
    )
    assert x.shape == (4, 3, 7, 7) and x.dtype == np.float32
    for k, i in enumerate(idx):
        y0, x0 = params["ys"][k], params["xs"][k]
        patch = (imgs[i].astype(np.float64) - mean)[y0 : y0 + 7, x0 : x0 + 7]
        if params["flips"][k]:
            patch = patch[:, ::-1]
        shift = eigvecs.astype(np.float64) @ (params["alpha"][k] * eigvals) / 255.0
        np.testing.assert_allclose(x[k], nchw((patch + shift) / 4.0), rtol=1e-5, atol=1e-4)
    # same seed -> same batch; other seed -> different
    again = train_batch(
        imgs, mean, eigvals, eigvecs, 7, np.random.default_rng(5), indices=idx, input_scale=4.0
    )
    np.testing.assert_array_equal(x, again)
    other = train_batch(
        imgs, mean, eigvals, eigvecs, 7, np.random.default_rng(6), indices=idx, input_scale=4.0
    )
    assert not np.array_equal(x, other)


def test_flips_happen_about_half_the_time():
    imgs = np.zeros((2000, 4, 4, 3), np.uint8)
    _, params = train_batch(
        imgs, None, np.ones(3), np.eye(3), 4, np.random.default_rng(0), return_params=True
    )
    assert 0.45 < params["flips"].mean() < 0.55


def test_pca_lighting_is_constant_per_image_with_paper_std():
    n = 4000
    imgs = np.zeros((n, 3, 3, 3), np.uint8)
    eigvals = np.array([400.0, 30.0, 2.0])
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))
    x, params = train_batch(
        imgs, np.zeros((3, 3, 3), np.float32), eigvals, q, 2, np.random.default_rng(3), return_params=True
    )
    # the same shift eigvecs @ (alpha * eigvals) is added to every pixel; eigvals are those of
    # 0..255 pixels, the shift uses those of [0, 1] intensities expressed in 0..255 units (/ 255)
    expected = params["alpha"] * eigvals @ q.T / 255.0
    np.testing.assert_allclose(x, np.broadcast_to(expected[:, :, None, None], x.shape), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(pca_lighting_shift(params["alpha"], eigvals, q), expected)
    # its component along eigenvector i has std 0.1 * lambda_i (§4.1, lambda of [0, 1] intensities)
    along = x[:, :, 0, 0] @ q
    np.testing.assert_allclose(along.std(axis=0), 0.1 * eigvals / 255.0, rtol=0.05)
    np.testing.assert_allclose(along.mean(axis=0), 0, atol=0.1 * eigvals.max() / 255.0 * 0.05)
    # the literal formula on 0..255 eigenvalues is still available
    np.testing.assert_allclose(
        pca_lighting_shift(params["alpha"], eigvals, q, pixel_range=1.0), expected * 255.0
    )


def test_pca_lighting_moves_a_real_image_by_a_few_grey_levels():
    """With Imagenette-like eigenvalues (0..255 covariance) the shift stays small (std ~ 0.1 * l1 / 255)."""
    eigvals = np.array([14158.0, 1165.0, 214.0])
    alpha = np.random.default_rng(4).normal(0, 0.1, size=(5000, 3))
    shift = pca_lighting_shift(alpha, eigvals, np.eye(3))
    assert 4.5 < shift[:, 0].std() < 6.5 and np.abs(shift).max() < 30


def test_227_crop_from_256():
    imgs = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    mean = np.zeros((256, 256, 3), np.float32)
    x = train_batch(imgs, mean, np.ones(3), np.eye(3), 227, np.random.default_rng(0), lighting_std=0)
    assert x.shape == (2, 3, 227, 227)
    assert ten_crop_batch(imgs, mean, 227).shape == (2, 10, 3, 227, 227)
