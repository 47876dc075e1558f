"""An ImageNet-style source folder of random pixels, for tests that must not depend on photographs.

    python tests/synthetic.py SRC      # SRC/{train,val}/<wnid>/<wnid>_<i>.png

It needs only NumPy and Pillow (no project code), so that the same function makes the source for
today's tests and for a checkpoint written by an old commit (tests/data/README.md). The same
arguments always give the same pixels: PNG is lossless and every image is already ``size`` x
``size``, so preparing it at S = ``size`` keeps the pixels as drawn, and the prepared arrays (and
their checksums) do not depend on a JPEG decoder or a resampling filter.
"""

import sys
from pathlib import Path

import numpy as np

#: Imagenette's ten classes, in sorted (label) order: their WordNet ids name the class folders.
IMAGENETTE_WNIDS = (
    "n01440764",
    "n02102040",
    "n02979186",
    "n03000684",
    "n03028079",
    "n03394916",
    "n03417042",
    "n03425413",
    "n03445777",
    "n03888257",
)


def write_random_source(root, wnids=IMAGENETTE_WNIDS, per_class=5, val_per_class=2, size=72, seed=0):
    """``per_class`` training and ``val_per_class`` validation PNGs of uniform random RGB pixels
    (``size`` x ``size``) per class under ``root``; returns ``root`` as a Path."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("val", val_per_class)):
        for wnid in wnids:
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{wnid}_{index}.png")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/synthetic.py SRC")
    print(write_random_source(sys.argv[1]))
