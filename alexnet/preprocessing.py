"""How a checkpoint wants its input images: one description used by predict, evaluate and visualize.

A checkpoint trained here (§2): RGB pixels on the 0..255 scale, shorter side rescaled to S,
central S x S patch, minus the training set's per-pixel MEAN IMAGE (stored in the
checkpoint), central crop, divided by the run's input scale.

A checkpoint imported from Caffe's BVLC AlexNet (the ONNX model zoo's ``bvlcalexnet``):
the network was trained on BGR images (OpenCV's channel order), 0..255, minus a MEAN PIXEL
(B, G, R about 104, 117, 123). Its ``meta["preprocessing"]`` records that::

    {"channel_order": "bgr", "mean": "pixel", "mean_pixel": [104.0, 117.0, 123.0],
     "input_scale": 1.0, "image_size": 256, "mean_source": "..."}

``mean_pixel`` is in the network's channel order. Images are always decoded as RGB (the
``data`` package); the mean is subtracted in RGB order and the channels are reversed just
before the network (``InputSpec.to_network``), so the same cropping code serves both kinds.
A wrong channel order never passes silently: an unknown ``channel_order`` is an error.
"""

from dataclasses import dataclass

import numpy as np

from nn import get_array_module

CHANNEL_ORDERS = ("rgb", "bgr")
#: Caffe's ImageNet mean pixel as usually rounded (B, G, R), for models that carry no mean.
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)
#: The settings ``InputSpec.to_meta`` writes: all a ``meta["preprocessing"]`` may hold.
PREPROCESSING_KEYS = frozenset(
    {"channel_order", "mean", "mean_pixel", "mean_source", "input_scale", "image_size", "crop", "pixel_range"}
)


@dataclass
class InputSpec:
    """What the network expects: S, crop, channel order, the mean (image or pixel), input scale."""

    image_size: int
    crop: int
    channel_order: str = "rgb"
    input_scale: float = 1.0
    mean_image: np.ndarray = None  # S x S x 3 float32 in RGB order (kind "image")
    mean_pixel: tuple = None  # 3 values in the NETWORK's channel order (kind "pixel")
    mean_source: str = ""

    def __post_init__(self):
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(
                f"unknown channel order {self.channel_order!r}; expected one of {CHANNEL_ORDERS}"
            )
        if (self.mean_image is None) == (self.mean_pixel is None):
            raise ValueError("the preprocessing needs exactly one of a mean image and a mean pixel")
        if self.mean_pixel is not None and len(self.mean_pixel) != 3:
            raise ValueError(f"a mean pixel has 3 values, got {list(self.mean_pixel)}")
        if not self.input_scale > 0:
            raise ValueError(f"input scale must be positive, got {self.input_scale}")

    @property
    def mean_kind(self):
        return "pixel" if self.mean_pixel is not None else "image"

    def mean_pixel_rgb(self):
        pixel = np.asarray(self.mean_pixel, np.float32)
        return pixel[::-1] if self.channel_order == "bgr" else pixel

    def mean_image_rgb(self, size=None):
        """The mean to subtract from RGB images of side ``size`` (default S), float32 S x S x 3."""
        size = self.image_size if size is None else int(size)
        if self.mean_pixel is not None:
            return np.broadcast_to(self.mean_pixel_rgb(), (size, size, 3)).astype(np.float32)
        if self.mean_image.shape[:2] != (size, size):
            raise ValueError(
                f"the checkpoint's mean image is {self.mean_image.shape[0]} x "
                f"{self.mean_image.shape[1]}, the images are {size} x {size}"
            )
        return self.mean_image

    def to_network(self, x):
        """Mean-subtracted RGB crops (..., 3, H, W) -> the network's channel order (a copy for BGR)."""
        if self.channel_order == "rgb":
            return x
        xp = get_array_module(x)
        return xp.ascontiguousarray(x[..., ::-1, :, :])

    def describe(self):
        if self.mean_pixel is not None:
            mean = (
                "mean pixel "
                + ",".join(f"{v:g}" for v in self.mean_pixel)
                + f" ({self.channel_order.upper()})"
            )
        else:
            mean = f"mean image {self.mean_image.shape[0]}x{self.mean_image.shape[1]}"
        text = (
            f"{self.channel_order.upper()} input, 0..255 minus the {mean}, divided by {self.input_scale:g}; "
            f"shorter side {self.image_size}, central {self.crop} x {self.crop} crop"
        )
        return text + (f" [{self.mean_source}]" if self.mean_source else "")

    def to_meta(self):
        """The JSON form stored in a checkpoint's ``meta["preprocessing"]`` (without a mean image)."""
        meta = {
            "channel_order": self.channel_order,
            "mean": self.mean_kind,
            "input_scale": float(self.input_scale),
            "image_size": int(self.image_size),
            "crop": int(self.crop),
            "pixel_range": [0, 255],
        }
        if self.mean_pixel is not None:
            meta["mean_pixel"] = [float(v) for v in self.mean_pixel]
        if self.mean_source:
            meta["mean_source"] = self.mean_source
        return meta


def spec_from_meta(meta, crop, mean_image=None):
    """An InputSpec from a checkpoint's meta (and its stored mean image, if any)."""
    pre = meta.get("preprocessing")
    if pre is None:  # trained here: RGB, the mean image, the run's input scale
        if mean_image is None:
            raise ValueError(
                "the checkpoint has neither a mean image nor preprocessing settings; "
                "it cannot preprocess new photographs"
            )
        image_size = int(meta.get("image_size", mean_image.shape[0]))
        scale = float((meta.get("args") or {}).get("input_scale", 1.0))
        return InputSpec(image_size, int(crop), "rgb", scale, mean_image=np.asarray(mean_image, np.float32))
    unknown = sorted(set(pre) - PREPROCESSING_KEYS)
    if unknown:
        raise ValueError(f"the checkpoint's preprocessing has settings this version cannot apply: {unknown}")
    if list(pre.get("pixel_range", [0, 255])) != [0, 255]:
        raise ValueError(f"pixel range {pre['pixel_range']} is not supported (only 0..255)")
    kind = pre.get("mean", "pixel" if "mean_pixel" in pre else "image")
    if kind == "pixel":
        mean = {"mean_pixel": tuple(float(v) for v in pre["mean_pixel"])}
    elif kind == "image":
        if mean_image is None:
            raise ValueError("the checkpoint's preprocessing names a mean image but none is stored")
        mean = {"mean_image": np.asarray(mean_image, np.float32)}
    else:
        raise ValueError(f"unknown mean kind {kind!r} (expected 'image' or 'pixel')")
    image_size = int(pre.get("image_size", meta.get("image_size", 256)))
    return InputSpec(
        image_size,
        int(crop),
        pre.get("channel_order", "rgb"),
        float(pre.get("input_scale", 1.0)),
        mean_source=pre.get("mean_source", ""),
        **mean,
    )


def checkpoint_spec(checkpoint):
    """The InputSpec of a loaded ``Checkpoint``."""
    return spec_from_meta(checkpoint.meta, checkpoint.config["crop"], checkpoint.mean_image)


class DatasetView:
    """A ``data.PreparedDataset`` seen through a checkpoint: another mean image to subtract and/or
    labels renumbered into the model's class order; everything else is the dataset's."""

    def __init__(self, dataset, mean_image=None, labels=None):
        self._dataset = dataset
        if mean_image is not None:
            self.mean_image = mean_image
        if labels is not None:
            self.labels = labels

    def __getattr__(self, name):
        return getattr(self._dataset, name)

    def __len__(self):
        return len(self._dataset)


def dataset_for(spec, dataset, model_wnids=None):
    """``(view, note)``: ``dataset`` with the checkpoint's mean pixel (a mean image is kept: the
    dataset's own, as for models trained here) and, when the dataset's classes are a subset of the
    model's WordNet IDs in another order, its labels renumbered into the model's order."""
    mean = spec.mean_image_rgb(dataset.size) if spec.mean_kind == "pixel" else None
    labels, note = None, None
    wnids = list(getattr(dataset, "wnids", []) or [])
    if model_wnids and wnids and list(model_wnids) != wnids:
        index = {w: i for i, w in enumerate(model_wnids)}
        missing = [w for w in wnids if w not in index]
        if missing:
            raise ValueError(
                f"the dataset has classes the model does not know ({', '.join(missing[:5])}"
                f"{', ...' if len(missing) > 5 else ''}); the model has {len(model_wnids)} classes"
            )
        labels = np.asarray([index[w] for w in wnids], np.int64)[np.asarray(dataset.labels)]
        note = (
            f"the dataset's {len(wnids)} classes are mapped by WordNet ID onto the model's "
            f"{len(model_wnids)} classes (top-1/top-5 over all of the model's classes)"
        )
    if mean is None and labels is None:
        return dataset, note
    return DatasetView(dataset, mean, labels), note
