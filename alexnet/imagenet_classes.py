"""The 1000 ILSVRC-2012 classes (§2): WordNet IDs and their words, shipped with the package.

``imagenet_classes.txt`` (next to this file) lists ``wnid TAB words`` in the standard
class-index order (the sorted WordNet IDs, the order of ILSVRC's ``synsets.txt`` and of
every model trained on the 1000 classes, the ONNX model zoo's ``bvlcalexnet`` included).

A folder of ImageNet images often names its classes only by WordNet ID (``n02105641``);
``readable_names`` replaces such names by words ("Old English sheepdog"), so that any
ImageNet-derived subset, and an imported 1000-class model, prints names.
"""

import re
from functools import lru_cache
from pathlib import Path

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")
WNID_RE = re.compile(r"^n\d{8}$")
WNID_PREFIX_RE = re.compile(r"^(n\d{8})(?:_|$)")


@lru_cache(maxsize=1)
def imagenet_classes():
    """[(wnid, words)] of the 1000 ILSVRC-2012 classes in class-index order."""
    classes = []
    with open(CLASSES_FILE, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            wnid, _, words = line.rstrip("\n").partition("\t")
            classes.append((wnid, words or wnid))
    if len(classes) != 1000:  # pragma: no cover - a damaged installation
        raise RuntimeError(f"{CLASSES_FILE} lists {len(classes)} classes, expected the 1000 of ILSVRC-2012")
    return tuple(classes)


def imagenet_wnids():
    """The 1000 WordNet IDs in class-index order."""
    return [wnid for wnid, _ in imagenet_classes()]


def imagenet_names():
    """The 1000 class names (words) in class-index order."""
    return [words for _, words in imagenet_classes()]


@lru_cache(maxsize=1)
def _words_by_wnid():
    return dict(imagenet_classes())


def words_for(wnid, default=None):
    """The words of an ILSVRC-2012 class (``default`` for an unknown WordNet ID)."""
    return _words_by_wnid().get(wnid, default)


def readable_names(names=None, wnids=None):
    """Class names for display: each name that is missing or is only a WordNet ID becomes the
    class's words when the WordNet ID is one of ILSVRC-2012's; other names are kept."""
    if names is None and wnids is None:
        return None
    count = len(names) if names is not None else len(wnids)
    result = []
    for i in range(count):
        name = str(names[i]) if names is not None else None
        wnid = wnids[i] if wnids is not None and i < len(wnids) else None
        if wnid is None and name is not None and WNID_RE.match(name):
            wnid = name
        if (name is None or name == wnid or WNID_RE.match(name)) and wnid is not None:
            name = words_for(wnid, name if name is not None else wnid)
        result.append(name)
    return result


def wnid_of_path(path):
    """The WordNet ID a file's name or folder gives (``n01440764_tench.JPEG``,
    ``.../n01440764/x.JPEG``), or None."""
    path = Path(path)
    match = WNID_PREFIX_RE.match(path.name)
    if match:
        return match.group(1)
    for parent in list(path.parents)[:2]:  # x.JPEG in <wnid>/ or in <wnid>/images/ (Tiny ImageNet)
        if WNID_RE.match(parent.name):
            return parent.name
    return None
