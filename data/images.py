"""Decoding one image file into the network's 8-bit RGB, whatever Pillow mode it comes in.

``prepare`` (the training and validation images) and ``python -m alexnet predict`` (new photos)
both go through :func:`load_image_square`, so a photograph is seen the same way in both.

How each Pillow mode becomes RGB uint8 (0..255):

* ``1`` (bilevel): 0 -> 0, 1 -> 255.  ``L``, ``P``, ``RGB``, ``RGBX``, ``CMYK``, ``YCbCr``,
  ``LAB``, ``HSV``: Pillow's own conversion to RGB (8-bit already).  16-bit-per-channel RGB and
  RGBA PNG/TIFF files are opened by Pillow as 8-bit ``RGB``/``RGBA`` (the high byte).
* ``I;16``, ``I;16L``, ``I;16B``, ``I;16N`` (16-bit grayscale PNG, TIFF, PGM): the file declares
  a 16-bit range, so the full scale 0..65535 maps linearly onto 0..255: ``round(v / 257)``
  (``v = 257 x`` gives back ``x`` exactly; 65535 -> 255).  Pillow's own conversion clips at 255,
  which turned such images white.
* ``I`` (32-bit signed integer) and ``F`` (32-bit float) declare no range (a 0..1 float TIFF, a
  12-bit sensor in 32-bit integers and a 0..255 image are all plausible), so the image's own
  values set the scale: non-negative images map ``0 -> 0`` and their maximum to 255
  (``v * 255 / max``; an all-zero image stays black); images with negative values map their
  minimum to 0 and their maximum to 255.  Non-finite values (NaN, inf) cannot be mapped: the file
  is refused (``prepare`` skips and lists it).
* Transparency (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, a palette or grey/RGB
  colour key with ``transparency``): the colour under a transparent pixel is undefined (often
  black or left-over garbage), so the image is composited over WHITE, the background it is shown
  on in a browser or document: ``out = a * c + (1 - a) * 255`` with ``a`` the alpha in 0..1.
* Anything else that Pillow cannot convert raises ``ValueError`` naming the mode.

Only the first frame of an animated file is used; embedded colour profiles are not applied.  The
EXIF orientation of a photograph (a phone's sideways JPEG) is applied before anything else.
"""

from __future__ import annotations

import os
import stat

import numpy as np
from PIL import Image, ImageOps

DEFAULT_SIZE = 256
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
WHITE = 255
EXIF_ORIENTATION = 0x0112


def _sixteen_bit_to_8(arr: np.ndarray) -> np.ndarray:
    """Full-scale 16-bit values to 8 bits: ``round(v / 257)`` in integer arithmetic."""
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _unscaled_to_8(arr: np.ndarray, mode: str) -> np.ndarray:
    """``I``/``F`` values (no declared range) to 8 bits by the image's own range (module doc)."""
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        bad = int(values.size - np.isfinite(values).sum())
        raise ValueError(
            f"mode {mode} image has {bad} non-finite pixel values (NaN or inf); "
            "they cannot be mapped to 0..255"
        )
    low = min(float(values.min()), 0.0)
    high = float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def to_rgb(im: Image.Image) -> Image.Image:
    """The 8-bit ``RGB`` version of the Pillow image ``im`` (see the module docstring for the
    mapping of every mode).  Raises ``ValueError`` naming the mode when it cannot be converted."""
    mode = im.mode
    key = im.info.get("transparency")
    if mode in SIXTEEN_BIT_MODES or mode in ("I", "F"):
        arr = np.asarray(im)
        gray = _sixteen_bit_to_8(arr) if mode in SIXTEEN_BIT_MODES else _unscaled_to_8(arr, mode)
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):  # grey colour key
            alpha = np.where(arr == key, 0, 255).astype(np.uint8)
            im = Image.fromarray(np.stack([gray, alpha], axis=-1), "LA")
        else:
            return Image.fromarray(gray, "L").convert("RGB")
    elif mode == "La":  # premultiplied grey + alpha: undo the premultiplication
        arr = np.asarray(im).astype(np.float64)
        alpha = arr[..., 1]
        gray = np.where(alpha > 0, arr[..., 0] * 255.0 / np.maximum(alpha, 1), 0)
        im = Image.fromarray(np.stack([np.clip(np.rint(gray), 0, 255), alpha], -1).astype(np.uint8), "LA")
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        try:
            rgba = im.convert("RGBA")
        except (ValueError, OSError) as exc:
            raise ValueError(f"mode {mode} cannot be converted to RGB ({exc})") from exc
        background = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ValueError(f"mode {mode} cannot be converted to RGB ({exc})") from exc


def _truncated(exc: OSError) -> bool:
    """Whether Pillow's ``exc`` says the file ends early (it has no exception class of its own)."""
    text = str(exc)
    return "truncated" in text.lower() or "broken data stream" in text


def _truncated_error(exc: OSError) -> ValueError:
    return ValueError(f"the image file is truncated: it ends before its data does ({exc})")


def decode(im: Image.Image) -> None:
    """Decode the pixels of ``im`` now, so that a file cut short says so: Pillow reports it as
    an OSError that a later conversion would otherwise blame on the pixel mode."""
    try:
        im.load()
    except OSError as exc:
        if _truncated(exc):
            raise _truncated_error(exc) from exc
        raise ValueError(f"the {im.format or 'image'} data cannot be decoded ({exc})") from exc


def upright(im: Image.Image) -> Image.Image:
    """``im`` as it is meant to be seen: a camera that stores a photo sideways records the turn
    in the EXIF orientation tag (274), which Pillow's ``exif_transpose`` undoes.  Images without
    the tag (or with orientation 1) are returned as they are, without a copy."""
    if im.getexif().get(EXIF_ORIENTATION, 1) == 1:
        return im
    return ImageOps.exif_transpose(im)


def load_image_square(path, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Decode an image file into an ``size x size x 3`` uint8 RGB array (§2).

    A photo stored sideways is first turned upright by its EXIF orientation (:func:`upright`);
    a file cut short raises a ValueError saying it is truncated (:func:`decode`).
    The pixels become 8-bit RGB with :func:`to_rgb` (16-bit, 32-bit integer, float, palette,
    transparency, CMYK...: see the module docstring).  Then the image is rescaled so that the
    shorter side is ``size`` and the central ``size x size`` patch is kept.  Both steps are one
    PIL resize of the central square box of the source (the same pixels, in continuous
    coordinates, as resizing the whole image and then cropping), with the antialiased bicubic
    filter.  ``Image.draft`` lets libjpeg decode big JPEGs at a reduced scale (never below
    ``size`` on either side).  Images smaller than ``size`` are upscaled.  A path that is not a
    regular file (a folder, FIFO, device, broken symlink or symlink loop) raises an OSError or a
    ValueError at once instead of being opened (a FIFO would block forever).
    """
    if isinstance(path, (str, os.PathLike)):
        mode = os.stat(path).st_mode  # follows symlinks: a loop or a broken link raises OSError here
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path} is a folder, not an image file")
        if not stat.S_ISREG(mode):  # reading a FIFO blocks forever, a device may never end
            raise ValueError(f"{path} is not a regular file (a FIFO, socket or device)")
    try:
        opened = Image.open(path)
    except OSError as exc:  # a file cut inside its header fails already here
        if _truncated(exc):
            raise _truncated_error(exc) from exc
        raise
    with opened as im:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))
        decode(im)
        im = to_rgb(upright(im))
        width, height = im.size
        side = min(width, height)
        left, top = (width - side) / 2.0, (height - side) / 2.0
        im = im.resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side))
        arr = np.asarray(im, dtype=np.uint8)
    if arr.shape != (size, size, 3):
        raise ValueError(f"decoded shape {arr.shape}, expected {(size, size, 3)}")
    return arr
