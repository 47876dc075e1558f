"""What an ONNX file says about our AlexNet besides its operators, in both directions.

ONNX stores free-form ``metadata_props`` (string key -> string value) next to the graph; no
operator is involved. The export writes, and the import reads, these keys as JSON strings:

* ``alexnet.format``: ``"1"``;
* ``alexnet.model_config``: the AlexNet constructor's arguments (``model.config``);
* ``alexnet.preprocessing``: ``InputSpec.to_meta()`` (channel order, mean kind, mean pixel,
  input scale, S, crop; alexnet/preprocessing.py);
* ``alexnet.mean_image``: the per-pixel mean of §2 when the mean is an image: base64 float32
  S x S x 3, RGB, HWC;
* ``alexnet.class_names`` and ``alexnet.wnids``: one entry per output unit of fc8.

A file without them (e.g. Caffe's BVLC AlexNet) gets Caffe's convention on import: BGR,
0..255 pixels minus the mean pixel (B, G, R) = (104, 117, 123); flags override it.
Also here: ``OnnxError``, the one error type of the import, and ``require_onnx``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from ..checkpoint import is_class_list
from ..imagenet_classes import imagenet_names, imagenet_wnids, readable_names
from ..preprocessing import CAFFE_MEAN_BGR, CHANNEL_ORDERS, PREPROCESSING_KEYS, InputSpec

META_PREFIX = "alexnet."


class OnnxError(ValueError):
    """A file the importer cannot map (one line, naming the node and its op type)."""


def require_onnx():
    """The ``onnx`` module, or a RuntimeError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError(
            "ONNX export/import needs the onnx package: pip install "
            "'alexnet-from-scratch[onnx]' (or pip install onnx onnxruntime)"
        ) from None
    return onnx


def one_line(text: object, limit: int = 300) -> str:
    """``text`` with its white space folded, cut to ``limit`` characters: error messages stay one line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Writing (export)
# ---------------------------------------------------------------------------------------------
def metadata_props(
    config: dict, spec: InputSpec | None = None, class_names: list | None = None, wnids: list | None = None
) -> dict:
    """The ``metadata_props`` of an exported model, ``alexnet.``-prefixed keys -> JSON strings."""
    meta = {"format": "1", "model_config": json.dumps(config)}
    if spec is not None:
        meta["preprocessing"] = json.dumps(spec.to_meta())
        if spec.mean_kind == "image":
            mean = np.ascontiguousarray(spec.mean_image, dtype="<f4")
            meta["mean_image"] = json.dumps(
                {
                    "shape": list(mean.shape),
                    "dtype": "float32",
                    "layout": "HWC",
                    "channel_order": "rgb",
                    "encoding": "base64",
                    "data": base64.b64encode(mean.tobytes()).decode("ascii"),
                }
            )
    if class_names is not None:
        meta["class_names"] = json.dumps(list(class_names))
    if wnids is not None:
        meta["wnids"] = json.dumps(list(wnids))
    return {META_PREFIX + key: value for key, value in meta.items()}


# ---------------------------------------------------------------------------------------------
# Reading (import)
# ---------------------------------------------------------------------------------------------
def read_metadata(model) -> dict:
    """The model's ``alexnet.*`` metadata, the prefix removed (values still JSON strings)."""
    return {p.key[len(META_PREFIX) :]: p.value for p in model.metadata_props if p.key.startswith(META_PREFIX)}


def json_metadata(path: Path, meta: dict, key: str):
    """The decoded JSON value of ``meta[key]``, or None when the file does not have it."""
    if key not in meta:
        return None
    try:
        return json.loads(meta[key])
    except ValueError:
        raise OnnxError(f"{path}: metadata {META_PREFIX}{key} is not valid JSON") from None


def _mean_image(path, meta):
    info = json_metadata(path, meta, "mean_image")
    if not isinstance(info, dict):
        raise OnnxError(
            f"{path}: the preprocessing names a mean image but {META_PREFIX}mean_image is missing"
        )
    try:
        shape = tuple(int(v) for v in info["shape"])
        if (
            info.get("dtype", "float32") != "float32"
            or info.get("layout", "HWC") != "HWC"
            or info.get("channel_order", "rgb") != "rgb"
            or len(shape) != 3
            or shape[2] != 3
            or shape[0] != shape[1]
        ):
            raise ValueError("unsupported layout")
        array = np.frombuffer(base64.b64decode(info["data"]), dtype="<f4").reshape(shape)
    except Exception as exc:
        raise OnnxError(
            f"{path}: the mean image in the metadata cannot be read ({one_line(exc)}); expected "
            "float32 S x S x 3 RGB, base64"
        ) from None
    return array.astype(np.float32)


def _numbers(path, pre, key, default, kind, expected):
    """``pre[key]`` (or ``default``) as ``kind`` (float or int; a list of them for a list), or an
    OnnxError naming the file and the key."""
    value = pre.get(key, default)
    try:
        if isinstance(value, (str, bool, dict)) or (kind is int and not float(value) == int(value)):
            raise ValueError
        return [kind(v) for v in value] if isinstance(value, list) else kind(value)
    except (TypeError, ValueError):
        raise OnnxError(
            f"{path}: metadata {META_PREFIX}preprocessing {key} is {value!r}, expected {expected}"
        ) from None


def read_input_spec(
    path: Path,
    meta: dict,
    crop: int,
    channel_order: str | None,
    mean_pixel: list | None,
    input_scale: float | None,
    image_size: int | None,
    notes: list,
    ours: bool = False,
) -> InputSpec:
    """The InputSpec for the imported model: flags > the file's metadata > Caffe's convention
    (or, for a file written by this project (``ours``) without preprocessing, RGB).
    What was assumed or overridden is appended to ``notes``."""
    pre = json_metadata(path, meta, "preprocessing")
    mean_image = None
    if pre is not None:
        if not isinstance(pre, dict):
            raise OnnxError(f"{path}: metadata {META_PREFIX}preprocessing is not a JSON object")
        std = pre.get("std")
        if std is not None:
            values = np.atleast_1d(np.asarray(std, np.float64))
            if not np.all(values == values[0]):
                raise OnnxError(
                    f"{path}: the preprocessing divides the channels by different values "
                    f"{list(values)}; this project divides all channels by one input scale"
                )
            pre = dict(pre, input_scale=float(values[0]) * float(pre.get("input_scale", 1.0)))
            del pre["std"]
        unknown = sorted(set(pre) - PREPROCESSING_KEYS)
        if unknown:
            raise OnnxError(f"{path}: the preprocessing has settings this project cannot express: {unknown}")
        if list(pre.get("pixel_range", [0, 255])) != [0, 255]:
            raise OnnxError(
                f"{path}: pixel range {pre['pixel_range']} cannot be expressed (this project "
                "feeds 0..255 pixels minus the mean, divided by an input scale)"
            )
        order = pre.get("channel_order", "rgb")
        if order not in CHANNEL_ORDERS:
            raise OnnxError(f"{path}: channel order {order!r} cannot be expressed (rgb or bgr)")
        kind = pre.get("mean", "pixel" if "mean_pixel" in pre else "image")
        if kind == "image":
            mean_image = _mean_image(path, meta)
            pixel, source = None, "the file's mean image"
        elif kind == "pixel":
            pixel = _numbers(path, pre, "mean_pixel", [], float, "three numbers")
            if len(pixel) != 3:
                raise OnnxError(f"{path}: mean pixel {pre.get('mean_pixel')} does not have 3 values")
            source = pre.get("mean_source", "the file's mean pixel")
        else:
            raise OnnxError(f"{path}: mean kind {kind!r} cannot be expressed (image or pixel)")
        scale = _numbers(path, pre, "input_scale", 1.0, float, "a positive number")
        size = _numbers(path, pre, "image_size", 256, int, "a positive integer")
        if not (np.isfinite(scale) and scale > 0) or size < 1:
            raise OnnxError(
                f"{path}: metadata {META_PREFIX}preprocessing has input_scale {scale!r} and image_size "
                f"{size!r}; expected a positive finite scale and a positive size"
            )
    elif ours:  # written by this project without its mean image: RGB, the mean unknown
        order, pixel, scale, size = "rgb", list(CAFFE_MEAN_BGR[::-1]), 1.0, 256
        source = "assumed: the ImageNet mean pixel R,G,B = 123,117,104 (the file carries no mean)"
        if mean_pixel is None:
            notes.append(
                "the file was written by this project without preprocessing metadata; assuming RGB "
                "channels (as every model trained here) minus the ImageNet mean pixel R,G,B = "
                "123,117,104; override with --mean-pixel / --input-scale"
            )
    else:
        order, pixel, scale, size = "bgr", list(CAFFE_MEAN_BGR), 1.0, 256
        source = "assumed: Caffe's ImageNet mean pixel B,G,R = 104,117,123 (the file carries no mean)"
        if channel_order is None or mean_pixel is None:
            notes.append(
                "the file carries no preprocessing metadata; assuming Caffe's convention for BVLC "
                f"AlexNet: {(channel_order or 'bgr').upper()} channels, 0..255 pixels minus the "
                f"mean pixel {','.join(f'{v:g}' for v in (mean_pixel or pixel))}"
                f"{' (B,G,R)' if (channel_order or 'bgr') == 'bgr' else ''}; override with "
                "--channel-order / --mean-pixel"
            )
    if channel_order is not None:
        if channel_order != order and pre is not None:
            notes.append(
                f"channel order {channel_order.upper()} from --channel-order replaces the file's "
                f"{order.upper()}"
            )
        order = channel_order
    if mean_pixel is not None:
        pixel, mean_image = [float(v) for v in mean_pixel], None
        source = "--mean-pixel"
    if input_scale is not None:
        scale = float(input_scale)
    if image_size is not None:
        size = int(image_size)
    if size < crop:
        raise OnnxError(f"{path}: image size {size} is smaller than the crop {crop}")
    if mean_image is not None and mean_image.shape[0] != size:
        raise OnnxError(
            f"{path}: the mean image is {mean_image.shape[0]} x {mean_image.shape[1]} but images "
            f"are rescaled to {size}"
        )
    return InputSpec(
        size,
        crop,
        order,
        scale,
        mean_image=mean_image,
        mean_pixel=None if mean_image is not None else tuple(pixel),
        mean_source=source,
    )


def read_class_names(path: Path, meta: dict, num_classes: int, notes: list) -> tuple[list, list | None]:
    """``(names to print, WordNet IDs or None)`` for the ``num_classes`` outputs; a 1000-class
    file without names gets the ILSVRC-2012 classes (noted in ``notes``)."""
    names = json_metadata(path, meta, "class_names")
    wnids = json_metadata(path, meta, "wnids")
    for what, value in (("class_names", names), ("wnids", wnids)):
        if value is not None and not is_class_list(value, num_classes):
            raise OnnxError(
                f"{path}: metadata {META_PREFIX}{what} is not a list of {num_classes} strings (one per class)"
            )
    if wnids is None and names is None and num_classes == 1000:
        wnids, names = imagenet_wnids(), imagenet_names()
        notes.append(
            "1000 classes and no class names in the file: using the ILSVRC-2012 classes in their "
            "standard order (alexnet/imagenet_classes.txt)"
        )
    names = readable_names(names, wnids) if (names or wnids) else [str(i) for i in range(num_classes)]
    return names, wnids
