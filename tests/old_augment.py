"""The batch builders of data/augment.py as they were before the loader split them into a host
part (uint8 crops and reflections) and a device part (mean, lighting, scale; commit d802a5e),
copied unchanged: the reference that tests/test_data_device_preprocessing.py holds the new code
to, bit for bit. Not used by the library."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PIXEL_RANGE = 255.0


def crop_patches(images, ys, xs, crop: int, flips=None, image_index=None) -> np.ndarray:
    """Cut ``crop x crop`` windows out of NHWC ``images``; returns NCHW ``(K, 3, crop, crop)``.

    Patch ``k`` is ``images[image_index[k], ys[k]:ys[k]+crop, xs[k]:xs[k]+crop]`` (channels first),
    horizontally reflected where ``flips[k]``.  ``image_index`` defaults to ``arange(K)``.
    Works on memory-mapped arrays: only the windows are read.
    """
    ys = np.asarray(ys, np.intp)
    xs = np.asarray(xs, np.intp)
    count = len(ys)
    image_index = np.arange(count) if image_index is None else np.asarray(image_index, np.intp)
    height, width = images.shape[1], images.shape[2]
    if crop > min(height, width):
        raise ValueError(f"crop {crop} is larger than the images ({height} x {width})")
    if count and (ys.min() < 0 or xs.min() < 0 or ys.max() > height - crop or xs.max() > width - crop):
        raise ValueError("crop offsets out of range")
    windows = sliding_window_view(images, (crop, crop), axis=(1, 2))  # N, H', W', 3, C, C
    if flips is None:
        return windows[image_index, ys, xs]
    flips = np.asarray(flips, bool)
    out = np.empty((count, images.shape[3], crop, crop), images.dtype)
    keep = ~flips
    if keep.any():
        out[keep] = windows[image_index[keep], ys[keep], xs[keep]]
    if flips.any():
        mirrored = sliding_window_view(images[:, :, ::-1], (crop, crop), axis=(1, 2))
        out[flips] = mirrored[image_index[flips], ys[flips], width - crop - xs[flips]]
    return out


def flip_horizontal(x: np.ndarray) -> np.ndarray:
    """Reflect NCHW (or any ...W) arrays left-right: reverses the last axis."""
    return x[..., ::-1]


def pca_lighting_shift(
    alpha: np.ndarray, eigvals: np.ndarray, eigvecs: np.ndarray, pixel_range: float = PIXEL_RANGE
) -> np.ndarray:
    """§4.1 colour shift per image, in the units of the pixels (0..255); alpha (B, 3) -> (B, 3).

    The paper adds ``[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T`` with ``l_i`` the eigenvalues of the RGB
    covariance. That magnitude is not unit-free: an eigenvalue is a variance, so it grows with the
    SQUARE of the pixel unit. Taken literally on 0..255 values (Imagenette: l_1 ~ 14,000) it would
    move an image by ~1,400 grey levels, far outside the pixel range, and training diverges.
    We read the eigenvalues as those of intensities in [0, 1] (the convention of the common
    re-implementations, whose ImageNet eigenvalues are [0.2175, 0.0188, 0.0045]) and express the
    shift back in 0..255 units:

        shift = pixel_range * P (alpha * l / pixel_range^2) = P (alpha * l) / pixel_range

    where ``eigvals`` (l) are those of the 0..255 covariance, as ``data.prepare`` stores them.
    That moves a typical image by a few grey levels. ``pixel_range=1`` gives the literal formula.
    """
    scaled = np.asarray(alpha, np.float64) * np.asarray(eigvals, np.float64) / pixel_range
    return scaled @ np.asarray(eigvecs, np.float64).T


def random_crop_offsets(count: int, size: int, crop: int, rng: np.random.Generator):
    """Uniform top-left corners ``(ys, xs)`` of ``crop x crop`` windows in ``size x size`` images."""
    ys = rng.integers(0, size - crop + 1, size=count)
    xs = rng.integers(0, size - crop + 1, size=count)
    return ys, xs


def ten_crop_offsets(size: int, crop: int):
    """``(ys, xs, flips)`` of §4.1's ten test patches, in :data:`TEN_CROP_ORDER`."""
    far, mid = size - crop, (size - crop) // 2
    ys = np.array([0, 0, far, far, mid] * 2)
    xs = np.array([0, far, 0, far, mid] * 2)
    flips = np.array([False] * 5 + [True] * 5)
    return ys, xs, flips


def _centered_patches(images, indices, mean_image, ys, xs, flips, crop, image_index):
    """float32 ``crop(image - mean)`` (reflected where ``flips``): the mean is cut at the same window."""
    patches = crop_patches(images, ys, xs, crop, flips, image_index)
    if mean_image is None:
        return patches.astype(np.float32)
    mean = np.asarray(mean_image, np.float32)[None]
    mean_patches = crop_patches(mean, ys, xs, crop, flips, np.zeros(len(ys), np.intp))
    return np.subtract(patches, mean_patches, out=mean_patches, dtype=np.float32)


def _resolve(images, indices):
    if indices is None:
        return np.arange(len(images))
    return np.asarray(indices, np.intp)


def train_batch(
    images,
    mean_image,
    eigvals,
    eigvecs,
    crop: int,
    rng: np.random.Generator,
    indices=None,
    lighting_std: float = 0.1,
    flip: bool = True,
    input_scale: float = 1.0,
    return_params: bool = False,
    rows=None,
):
    """Training inputs of §4.1 for ``images[indices]``: float32 NCHW ``(B, 3, crop, crop)``.

    Random crop + reflection with p = 0.5 of ``image - mean_image``, plus PCA lighting with
    ``alpha ~ N(0, lighting_std)`` (0 disables it), divided by ``input_scale``.  Randomness is drawn
    from ``rng`` in this order: ys, xs, flips, alpha.  With ``return_params`` also returns a dict of
    ``ys, xs, flips, alpha, shift`` (for tests and visualisation).

    ``rows=(start, stop)``: draw the randomness of the whole batch but build only its rows
    ``start:stop`` (one process's share in data-parallel training); they equal the same rows of
    the whole batch.
    """
    indices = _resolve(images, indices)
    count, size = len(indices), images.shape[1]
    ys, xs = random_crop_offsets(count, size, crop, rng)
    flips = rng.random(count) < 0.5 if flip else np.zeros(count, bool)
    alpha = rng.normal(0.0, lighting_std, size=(count, 3)) if lighting_std else np.zeros((count, 3))
    if rows is not None:
        share = slice(*rows)
        indices, ys, xs, flips, alpha = indices[share], ys[share], xs[share], flips[share], alpha[share]
        count = len(indices)
    x = _centered_patches(images, indices, mean_image, ys, xs, flips, crop, indices)
    shift = pca_lighting_shift(alpha, eigvals, eigvecs) if lighting_std else np.zeros((count, 3))
    if lighting_std:
        x += shift.astype(np.float32)[:, :, None, None]
    if input_scale != 1.0:
        x *= np.float32(1.0 / input_scale)
    if return_params:
        return x, {"ys": ys, "xs": xs, "flips": flips, "alpha": alpha, "shift": shift}
    return x


def center_crop_batch(images, mean_image, crop: int, indices=None, input_scale: float = 1.0):
    """Evaluation input: the central ``crop x crop`` patch of ``image - mean``; (B, 3, C, C) float32."""
    indices = _resolve(images, indices)
    size = images.shape[1]
    mid = (size - crop) // 2
    offsets = np.full(len(indices), mid)
    patches = crop_patches(images, offsets, offsets, crop, None, indices)
    if mean_image is None:
        x = patches.astype(np.float32)
    else:  # one mean patch, broadcast over the batch
        mean_patch = np.moveaxis(
            np.asarray(mean_image, np.float32)[mid : mid + crop, mid : mid + crop], -1, 0
        )
        x = np.subtract(patches, mean_patch[None], dtype=np.float32)
    if input_scale != 1.0:
        x *= np.float32(1.0 / input_scale)
    return x


def ten_crop_batch(images, mean_image, crop: int, indices=None, input_scale: float = 1.0):
    """§4.1's ten test patches of ``image - mean``: float32 ``(B, 10, 3, C, C)`` in TEN_CROP_ORDER."""
    indices = _resolve(images, indices)
    count, size = len(indices), images.shape[1]
    ys, xs, flips = ten_crop_offsets(size, crop)
    channels = images.shape[3]
    patches = crop_patches(
        images, np.tile(ys, count), np.tile(xs, count), crop, np.tile(flips, count), np.repeat(indices, 10)
    )
    patches = patches.reshape(count, 10, channels, crop, crop)
    if mean_image is None:
        x = patches.astype(np.float32)
    else:  # the ten mean patches are the same for every image: cut them once, broadcast
        mean = np.asarray(mean_image, np.float32)[None]
        mean_patches = crop_patches(mean, ys, xs, crop, flips, np.zeros(10, np.intp))
        x = np.subtract(patches, mean_patches[None], dtype=np.float32)
    if input_scale != 1.0:
        x *= np.float32(1.0 / input_scale)
    return x.reshape(count, 10, images.shape[3], crop, crop)
