"""An ImageNet-style source folder of random pixels, for tests that must not depend on photographs.

    python tests/synthetic.py SRC      # SRC/{train,val}/<wnid>/<wnid>_<i>.png

It needs only NumPy and Pillow (no project code), so that the same function makes the source for
today's tests and for a checkpoint written by an old commit (tests/data/README.md). The same
arguments always give the same pixels: PNG is lossless, and ``write_random_source``'s images are
already 72 x 72, so preparing them at S = 72 keeps the pixels as drawn, and the prepared arrays
(and their checksums) do not depend on a JPEG decoder or a resampling filter.
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


def make_source(
    root, classes=("n00000001", "n00000002"), train=3, val=1, size=(10, 8), seed=1, name="{index}.png"
):
    """``train`` training and ``val`` validation PNGs of uniform random RGB pixels per class
    (``size``: width, height) under ``root``, named by ``name`` (``{wnid}``, ``{index}``); returns
    ``root`` as a Path."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for wnid in classes if count else ():
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / name.format(wnid=wnid, index=index))
    return root


def write_random_source(root):
    """The source of tests/data/README.md's old checkpoint: Imagenette's ten classes, 5 training
    and 2 validation 72 x 72 PNGs each (seed 0)."""
    return make_source(root, IMAGENETTE_WNIDS, 5, 2, (72, 72), seed=0, name="{wnid}_{index}.png")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/synthetic.py SRC")
    print(write_random_source(sys.argv[1]))
