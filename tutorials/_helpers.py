"""Plumbing shared by the tutorial notebooks (they run with this folder as their working directory and
``import _helpers``): where to look for photographs. The teaching code stays in the notebooks.

The notebooks look, in order, in ``$ALEXNET_DATA``, in ``shared/data`` beside the repository, and in the
Imagenette folders that ``python -m data download imagenette`` extracts into the cache.
"""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def data_roots():
    """The existing folders to search for data, in the order above."""
    roots = []
    if os.environ.get("ALEXNET_DATA"):
        roots.append(Path(os.environ["ALEXNET_DATA"]).expanduser())
    roots.append(REPO.parent / "shared" / "data")
    try:
        from data.download import cache_dir
        extracted = cache_dir() / "extracted"
        roots += sorted(extracted.glob("imagenette2*")) if extracted.is_dir() else []
    except ImportError:        # the repository root is not on the path: only the two folders above
        pass
    return [root for root in roots if root.is_dir()]


def find_dataset(names=("imagenette-224", "imagenette2*"), inside="train"):
    """The first dataset folder (``<folder>/train/<class>/...JPEG``) among the data roots: for each root,
    its subfolders matching ``names`` (glob patterns, in order), then the root itself (``$ALEXNET_DATA``
    may point at a dataset directly). ``inside`` is the path the folder must contain, e.g.
    ``"train/n01440764"`` to require one class. Returns a Path, or None when there is none."""
    for root in data_roots():
        trees = [tree for name in names for tree in sorted(root.glob(name))] + [root]
        for tree in trees:
            if (tree / inside).is_dir():
                return tree
    return None


def sample_photos():
    """The loose ImageNet photographs of the first data root with an ``imagenet-samples`` folder
    (sorted paths; an empty list when there are none)."""
    for root in data_roots():
        photos = sorted((root / "imagenet-samples").glob("*.JPEG"))
        if photos:
            return photos
    return []
