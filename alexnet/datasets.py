"""From a command line's ``--data`` to prepared datasets (delegating to the ``data`` package).

``--data`` may be a prepared subset folder, a raw ImageNet-style folder (prepared
on first use, §2: shorter side rescaled to S, central S x S patch, per-pixel
mean), or the word ``imagenette`` (downloaded, then prepared); see
``data.resolve``.
"""

import sys
from pathlib import Path

import data
from data.prepare import ClassSelectionError


def parse_classes(text):
    """``--classes``: an integer K (the first K classes in sorted WordNet-ID order) or a
    comma-separated list of WordNet IDs. Returns ``(num_classes, wnids)``, one of them None."""
    if text is None or str(text).strip() == "":
        return None, None
    text = str(text).strip()
    if text.isdigit():
        k = int(text)
        if k < 1:
            raise ValueError(f"--classes {text}: need at least one class")
        return k, None
    wnids = [w.strip() for w in text.split(",") if w.strip()]
    return None, wnids


def resolve_data(
    spec, image_size=256, classes=None, per_class=None, val_per_class=None, workers=None, quiet=False
):
    """The prepared subset folder for ``spec`` (preparing it if needed)."""
    num_classes, wnids = parse_classes(classes)
    path = Path(str(spec)).expanduser()
    if data.is_prepared(path):
        if any(v is not None for v in (num_classes, wnids, per_class, val_per_class)):
            print(
                f"note: {path} is already prepared; --classes/--per-class/--val-per-class are ignored",
                file=sys.stderr,
            )
        return path
    kwargs = {"classes": wnids} if wnids else {}
    try:
        return Path(
            data.resolve(
                spec,
                size=image_size,
                per_class=per_class,
                val_per_class=val_per_class,
                num_classes=num_classes,
                workers=workers,
                quiet=quiet,
                **kwargs,
            )
        )
    except ClassSelectionError as exc:  # the data package's own flags are --num-classes etc.
        raise ValueError(f"--classes {classes}: {exc}") from None


def open_split(path, split):
    """``data.PreparedDataset(path, split)``, or None when the split has no images."""
    dataset = data.PreparedDataset(path, split)
    return dataset if len(dataset) else None


def check_crop(dataset, crop):
    if crop > dataset.size:
        raise ValueError(
            f"--crop {crop} is larger than the prepared images (S={dataset.size} in "
            f"{dataset.path}); prepare with a larger --image-size or use a smaller --crop"
        )
