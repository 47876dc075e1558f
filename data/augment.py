"""Data augmentation and test-time crops of §4.1, vectorised over the batch.

Each batch is made in two parts, split where the data becomes float:

  * on the host, in uint8: the random draws, the crops and the reflections of the stored images
    (:func:`train_pixels`, :func:`center_pixels`, :func:`ten_crop_pixels`: NumPy, on the CPU, as
    the paper computes its augmentation while the GPU trains on the previous batch);
  * on the arrays' device, through ``xp``: the mean patches, the PCA lighting shift and the input
    scale (:func:`mean_patches`, :func:`normalize`: the same lines for NumPy and CuPy).

On the CPU both parts run in the loader's threads and give the float32 batches these functions
always gave; with ``device="cuda"`` :class:`data.Loader` uploads the uint8 part (a quarter of the
bytes) and runs the second on the GPU. :func:`train_batch`, :func:`center_crop_batch` and
:func:`ten_crop_batch` are the two parts together, on the CPU. Inputs are §2's ``S x S`` uint8
images (NHWC); outputs are float32 NCHW patches.

Training (§4.1, both forms):
  * form 1: a random ``C x C`` patch (C = 224 in the paper; 227 also works) and, with probability
    0.5, its horizontal reflection;
  * the per-pixel mean image (§2) is subtracted BEFORE cropping, i.e. the patch is cut from
    ``image - mean_image`` at the same window (and reflected with it);
  * form 2: PCA lighting: to every pixel add ``[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T`` with
    ``a_i ~ N(0, 0.1)`` drawn once per image per presentation (``p_i`` = eigenvector columns,
    ``l_i`` = eigenvalues of the training RGB covariance of intensities in [0, 1]: see
    :func:`pca_lighting_shift` for why the unit matters);
  * optionally divide by ``input_scale``.
Evaluation: the centre crop, or the ten crops of §4.1 (four corners, centre, and their reflections).

On the host a crop is one copy per patch, reflected or not, straight into its place in the batch
(a loop over the patches: a fancy-index gather copies twice, through a temporary, and was 2-3x
slower). The mean patches are one gather on the device (:func:`mean_patches`): a reflected window
at column ``x`` is the window of the reflected image at column ``W - C - x``.
"""

from __future__ import annotations

import numpy as np

from nn.backend import get_array_module

TEN_CROP_ORDER = (
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
    "center",
    "top-left flipped",
    "top-right flipped",
    "bottom-left flipped",
    "bottom-right flipped",
    "center flipped",
)


def crop_patches(images, ys, xs, crop: int, flips=None, image_index=None, out=None) -> np.ndarray:
    """Cut ``crop x crop`` windows out of NHWC ``images``; returns NCHW ``(K, 3, crop, crop)``.

    Patch ``k`` is ``images[image_index[k], ys[k]:ys[k]+crop, xs[k]:xs[k]+crop]`` (channels first),
    horizontally reflected where ``flips[k]``.  ``image_index`` defaults to ``arange(K)``.
    Works on memory-mapped arrays: only the windows are read. NumPy only (the host's part).
    ``out``: write the patches there (e.g. into the pinned buffer of an upload) and return it.
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
    flips = np.zeros(count, bool) if flips is None else np.asarray(flips, bool)
    out = np.empty((count, images.shape[3], crop, crop), images.dtype) if out is None else out
    for k in range(count):  # one copy per patch, straight into ``out``
        window = images[image_index[k], ys[k] : ys[k] + crop, xs[k] : xs[k] + crop]
        out[k] = (window[:, ::-1] if flips[k] else window).transpose(2, 0, 1)
    return out


def flip_horizontal(x: np.ndarray) -> np.ndarray:
    """Reflect NCHW (or any ...W) arrays left-right: reverses the last axis."""
    return x[..., ::-1]


PIXEL_RANGE = 255.0


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


def mean_patches(mean_image, ys, xs, flips, crop: int):
    """The mean image's ``crop x crop`` windows at ``(ys, xs)``, reflected where ``flips``: float32
    NCHW ``(K, 3, crop, crop)`` on the mean image's device (``xp``), the values
    :func:`crop_patches` cuts from it.

    One gather, with no data-dependent shapes (which would make a GPU wait for the host): the
    windows of the mean and of its reflection stacked, where a reflected window at column ``x`` is
    the reflection's window at ``W - C - x``."""
    xp = get_array_module(mean_image)
    width = mean_image.shape[1]
    both = xp.stack([mean_image, mean_image[:, ::-1]])  # 2, S, S, 3: the mean and its reflection
    windows = xp.lib.stride_tricks.sliding_window_view(both, (crop, crop), axis=(1, 2))
    columns = xp.where(flips, width - crop - xs, xs)
    return windows[flips.astype(ys.dtype), ys, columns]


def normalize(pixels, means, shift=None, input_scale: float = 1.0):
    """The float part of a batch, on the pixels' device: ``(pixels - means + shift) / input_scale``.

    ``pixels``: uint8 patches (K, ..., 3, C, C); ``means``: the mean patches, of the same shape or
    broadcast over the first axes (§2: the mean image is cut at each patch's window), or None;
    ``shift``: float32 (K, 3), §4.1's PCA lighting per patch, or None; then divided by
    ``input_scale``. float32, rounded after each of the three steps (the loader's batches on the
    CPU are these, bit for bit, wherever they are computed)."""
    xp = get_array_module(pixels)
    if means is None:
        x = pixels.astype(xp.float32)
    else:
        x = xp.subtract(pixels, means, dtype=xp.float32)
    if shift is not None:
        x += shift[:, :, None, None]
    if input_scale != 1.0:
        x *= xp.float32(1.0 / input_scale)
    return x


def _resolve(images, indices):
    if indices is None:
        return np.arange(len(images))
    return np.asarray(indices, np.intp)


def train_pixels(
    images,
    eigvals,
    eigvecs,
    crop: int,
    rng: np.random.Generator,
    indices=None,
    lighting_std: float = 0.1,
    flip: bool = True,
    rows=None,
    out=None,
):
    """The host's part of §4.1's training inputs for ``images[indices]``: a dict of

    * ``pixels``: uint8 NCHW ``(B, 3, crop, crop)``: random crops, reflected with p = 0.5
      (written into ``out`` when given);
    * ``ys``, ``xs``, ``flips``: each patch's window (for the mean patches, cut at the same place);
    * ``alpha`` (B, 3) ``~ N(0, lighting_std)`` and ``shift``: float32 (B, 3), the PCA lighting
      (None when ``lighting_std`` is 0).

    Randomness is drawn from ``rng`` in this order: ys, xs, flips, alpha. ``rows=(start, stop)``:
    draw the randomness of the whole batch but build only its rows ``start:stop`` (one process's
    share in data-parallel training); they equal the same rows of the whole batch.
    """
    indices = _resolve(images, indices)
    count, size = len(indices), images.shape[1]
    ys, xs = random_crop_offsets(count, size, crop, rng)
    flips = rng.random(count) < 0.5 if flip else np.zeros(count, bool)
    alpha = rng.normal(0.0, lighting_std, size=(count, 3)) if lighting_std else np.zeros((count, 3))
    if rows is not None:
        share = slice(*rows)
        indices, ys, xs, flips, alpha = indices[share], ys[share], xs[share], flips[share], alpha[share]
    pixels = crop_patches(images, ys, xs, crop, flips, indices, out=out)
    shift = pca_lighting_shift(alpha, eigvals, eigvecs).astype(np.float32) if lighting_std else None
    return {"pixels": pixels, "ys": ys, "xs": xs, "flips": flips, "alpha": alpha, "shift": shift}


def center_pixels(images, crop: int, indices=None, out=None):
    """The host's part of the evaluation input: the central ``crop x crop`` patches, uint8 (B, 3, C, C)."""
    indices = _resolve(images, indices)
    mid = (images.shape[1] - crop) // 2
    offsets = np.full(len(indices), mid)
    return crop_patches(images, offsets, offsets, crop, None, indices, out=out)


def ten_crop_pixels(images, crop: int, indices=None, out=None):
    """The host's part of §4.1's ten test patches: uint8 ``(B, 10, 3, C, C)`` in TEN_CROP_ORDER
    (``out``: a ``(10 B, 3, C, C)`` buffer)."""
    indices = _resolve(images, indices)
    count, size = len(indices), images.shape[1]
    ys, xs, flips = ten_crop_offsets(size, crop)
    patches = crop_patches(
        images,
        np.tile(ys, count),
        np.tile(xs, count),
        crop,
        np.tile(flips, count),
        np.repeat(indices, 10),
        out=out,
    )
    return patches.reshape(count, 10, images.shape[3], crop, crop)


def center_mean_patch(mean_image, size: int, crop: int):
    """The mean image's central window, (1, 3, C, C) float32 (broadcast over a batch)."""
    mid = np.array([(size - crop) // 2])
    return mean_patches(np.asarray(mean_image, np.float32), mid, mid, np.zeros(1, bool), crop)


def ten_crop_mean_patches(mean_image, size: int, crop: int):
    """The mean image's ten test windows, (1, 10, 3, C, C) float32 (broadcast over a batch)."""
    ys, xs, flips = ten_crop_offsets(size, crop)
    return mean_patches(np.asarray(mean_image, np.float32), ys, xs, flips, crop)[None]


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

    Random crop + reflection with p = 0.5 of ``image - mean_image`` (the mean is cut at the same
    window and reflected with it), plus PCA lighting with ``alpha ~ N(0, lighting_std)`` (0
    disables it), divided by ``input_scale``: :func:`train_pixels` then :func:`normalize`, on the
    CPU. With ``return_params`` also returns a dict of ``ys, xs, flips, alpha, shift`` (for tests
    and visualisation). ``rows``: see :func:`train_pixels`.
    """
    part = train_pixels(images, eigvals, eigvecs, crop, rng, indices, lighting_std, flip, rows)
    means = None
    if mean_image is not None:
        means = mean_patches(np.asarray(mean_image, np.float32), part["ys"], part["xs"], part["flips"], crop)
    x = normalize(part["pixels"], means, part["shift"], input_scale)
    if return_params:
        shift = part["shift"]
        shift = (
            np.zeros((len(x), 3)) if shift is None else pca_lighting_shift(part["alpha"], eigvals, eigvecs)
        )
        params = {"ys": part["ys"], "xs": part["xs"], "flips": part["flips"], "alpha": part["alpha"]}
        return x, {**params, "shift": shift}
    return x


def center_crop_batch(images, mean_image, crop: int, indices=None, input_scale: float = 1.0):
    """Evaluation input: the central ``crop x crop`` patch of ``image - mean``; (B, 3, C, C) float32."""
    means = None if mean_image is None else center_mean_patch(mean_image, images.shape[1], crop)
    return normalize(center_pixels(images, crop, indices), means, None, input_scale)


def ten_crop_batch(images, mean_image, crop: int, indices=None, input_scale: float = 1.0):
    """§4.1's ten test patches of ``image - mean``: float32 ``(B, 10, 3, C, C)`` in TEN_CROP_ORDER."""
    means = None if mean_image is None else ten_crop_mean_patches(mean_image, images.shape[1], crop)
    return normalize(ten_crop_pixels(images, crop, indices), means, None, input_scale)
