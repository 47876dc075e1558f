"""Reading the real on-disk layouts of ImageNet-style image collections.

Every reader returns a :class:`SourceTree`: for each split ("train", "val") a sorted list of
``(path, wnid)`` pairs, plus a ``wnid -> human name`` mapping.  Labels are WordNet IDs
(``n0xxxxxxx``), the class identifiers of ILSVRC (paper §2).

Layouts understood (``SRC`` is the folder given by the user):

* folder per class: ``SRC/{train,val}/<wnid>/*.JPEG`` (ILSVRC train, Imagenette), or ``SRC``
  itself being such a split folder (``SRC/<wnid>/*.JPEG``);
* Tiny-ImageNet: ``train/<wnid>/images/*.JPEG``; ``val/<wnid>/*.JPEG`` or the flat
  ``val/images/*.JPEG`` with ``val/val_annotations.txt`` (``file TAB wnid ...``);
* ILSVRC's flat validation folder ``val/*.JPEG`` with a ground-truth file, either
  ``LOC_val_solution.csv`` (``ImageId,PredictionString``; the first token of PredictionString is
  the wnid) or a text file with one label per line for the sorted file names (a wnid, or an
  integer: 1-based index into the synsets file's order, else into the sorted training wnids), or
  ``filename label`` lines (Caffe's ``val.txt``; integer labels 0-based);
* a flat folder of ``<wnid>_<anything>.JPEG`` files (``imagenet-samples``): the label is the
  file-name prefix; treated as a single ``train`` split.

Class names come from ``synsets.txt``, ``words.txt``, ``classes.txt`` or ``LOC_synset_mapping.txt``
(``wnid TAB name`` or ``wnid name``); the first comma-separated name is kept. Without such a
file the wnid is the name.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = {".jpeg", ".jpg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
WNID_RE = re.compile(r"^n\d{8}$")
WNID_PREFIX_RE = re.compile(r"^(n\d{8})_")
NAME_FILES = (
    "synsets.txt",
    "LOC_synset_mapping.txt",
    "classes.txt",
    "words.txt",
    "synset_words.txt",
    "wnids.txt",
)
GROUND_TRUTH_NAMES = (
    "LOC_val_solution.csv",
    "val_annotations.txt",
    "ILSVRC2012_validation_ground_truth.txt",
    "ILSVRC2010_validation_ground_truth.txt",
    "ground_truth.txt",
    "val_labels.txt",
    "val.txt",
)

EXPECTED_LAYOUTS = """expected one of these layouts:
  SRC/train/<wnid>/*.JPEG and SRC/val/<wnid>/*.JPEG         (ImageNet / Imagenette)
  SRC/<wnid>/*.JPEG                                         (a single split folder)
  SRC/train/<wnid>/images/*.JPEG, SRC/val/images/*.JPEG + val_annotations.txt  (Tiny-ImageNet)
  SRC/val/*.JPEG + LOC_val_solution.csv or a ground-truth .txt (ILSVRC flat validation)
  SRC/<wnid>_<name>.JPEG                                    (flat, label from the file-name prefix)"""


@dataclass
class SourceTree:
    """What a raw image folder holds: per split a sorted list of (path, wnid); wnid -> name."""

    root: Path
    layout: str
    splits: dict = field(default_factory=dict)
    class_names: dict = field(default_factory=dict)
    # per split: [(path, wnid or None, reason)] for class folders that cannot be listed
    problems: dict = field(default_factory=dict)

    def wnids(self, split: str = "train") -> list:
        """Sorted wnids that occur in ``split`` (a class folder that cannot be listed counts: it
        must not vanish silently)."""
        return sorted(
            {w for _, w in self.splits.get(split, [])}
            | {w for _, w, _ in self.problems.get(split, []) if w is not None}
        )

    def name_of(self, wnid: str) -> str:
        return self.class_names.get(wnid, wnid)


def is_image_file(path: Path) -> bool:
    """A name with an image extension, not hidden.  Deliberately NOT a check that it is a
    readable regular file: broken symlinks, symlink loops, folders named ``x.JPEG`` and files
    without read permission are listed too, so that decoding fails on them and ``prepare``
    lists them among the skipped files with the reason (instead of ignoring them silently)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _list_images(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def _reason(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def _wnid_dirs(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_dir() and WNID_RE.match(p.name))


def read_class_names(*folders: Path) -> dict:
    """wnid -> name from the first synsets/words/classes file found in ``folders``.

    Lines are ``wnid TAB name`` (or ``wnid name``); only the first comma-separated name is kept.
    Tiny-ImageNet's ``words.txt`` may list all 82k wnids; that is fine, it is only a lookup.
    """
    names: dict = {}
    for folder in folders:
        if folder is None:
            continue
        for fname in NAME_FILES:
            path = Path(folder) / fname
            if not path.is_file():
                continue
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    line = line.strip()
                    if not line:
                        continue
                    parts = line.split("\t", 1) if "\t" in line else line.split(None, 1)
                    wnid = parts[0].strip()
                    if not WNID_RE.match(wnid):
                        continue
                    name = parts[1].split(",")[0].strip() if len(parts) > 1 else wnid
                    names.setdefault(wnid, name or wnid)
            if names:
                return names
    return names


def read_synset_order(*folders: Path) -> list:
    """The wnids in the order of the first synsets file found (the standard class-index order)."""
    for folder in folders:
        for fname in ("synsets.txt", "LOC_synset_mapping.txt", "synset_words.txt"):
            path = Path(folder) / fname
            if path.is_file():
                order = []
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        tok = line.split()
                        if tok and WNID_RE.match(tok[0]):
                            order.append(tok[0])
                if order:
                    return order
    return []


def _scan_class_folders(split_dir: Path, problems=None) -> list:
    """``split/<wnid>/*.JPEG`` or Tiny-ImageNet's ``split/<wnid>/images/*.JPEG``.  A class folder
    that cannot be listed (permission denied...) goes to ``problems`` as (folder, wnid, reason)."""
    items = []
    for wdir in _wnid_dirs(split_dir):
        inner = wdir / "images"
        folder = inner if inner.is_dir() else wdir
        try:
            items.extend((p, wdir.name) for p in _list_images(folder))
        except OSError as exc:
            if problems is None:
                raise
            problems.append((folder, wdir.name, f"cannot list the class folder ({_reason(exc)})"))
    return items


def _find_ground_truth(split_dir: Path):
    for folder in (split_dir, split_dir.parent):
        for name in GROUND_TRUTH_NAMES:
            path = folder / name
            if path.is_file():
                return path
    return None


def _parse_label(token: str, index_order: list, one_based: bool) -> str:
    if WNID_RE.match(token):
        return token
    if token.lstrip("-").isdigit():
        idx = int(token) - (1 if one_based else 0)
        if not index_order:
            raise ValueError(
                "integer ground-truth labels need a synsets.txt (or training class "
                "folders) that gives the class order"
            )
        if not 0 <= idx < len(index_order):
            raise ValueError(f"ground-truth label {token} is out of range for {len(index_order)} classes")
        return index_order[idx]
    raise ValueError(f"cannot read ground-truth label {token!r} (expected a wnid or an integer)")


def _scan_flat_with_ground_truth(split_dir: Path, images: list, gt_path: Path, index_order: list) -> list:
    """Label a flat folder of images with a ground-truth file (ILSVRC val, Tiny-ImageNet val)."""
    by_stem = {p.stem: p for p in images}
    by_name = {p.name: p for p in images}
    items = []
    if gt_path.suffix.lower() == ".csv":
        with open(gt_path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or len(header) < 2:
                raise ValueError(f"{gt_path}: expected a header 'ImageId,PredictionString'")
            for row in reader:
                if len(row) < 2 or not row[1].split():
                    continue
                path = by_stem.get(row[0]) or by_name.get(row[0])
                if path is not None:
                    items.append((path, row[1].split()[0]))
        return sorted(items)
    with open(gt_path, encoding="utf-8", errors="replace") as fh:
        lines = [ln.split() for ln in fh if ln.strip()]
    if lines and len(lines[0]) >= 2:  # "file wnid ..." (Tiny-ImageNet) or "file label" (Caffe)
        for tok in lines:
            path = by_name.get(tok[0]) or by_stem.get(Path(tok[0]).stem)
            if path is not None:
                items.append((path, _parse_label(tok[1], index_order, one_based=False)))
        return sorted(items)
    if len(lines) != len(images):  # one label per line, for the sorted file names
        raise ValueError(
            f"{gt_path} has {len(lines)} labels but {split_dir} holds {len(images)} "
            "images; a one-label-per-line file must have one line per sorted image"
        )
    return [(p, _parse_label(tok[0], index_order, one_based=True)) for p, tok in zip(images, lines)]


def _scan_flat_prefixed(images: list) -> list:
    items = []
    for p in images:
        m = WNID_PREFIX_RE.match(p.name)
        if m:
            items.append((p, m.group(1)))
    return items


def scan_split(split_dir: Path, index_order: list = (), problems=None) -> tuple:
    """Read one split folder; returns ``(layout_name, [(path, wnid), ...])`` or raises ValueError.
    Class folders that cannot be listed are appended to ``problems`` (when given)."""
    split_dir = Path(split_dir)
    if _wnid_dirs(split_dir):
        found: list = []
        items = _scan_class_folders(split_dir, found)
        if items or found:
            if problems is not None:
                problems.extend(found)
            return "folder-per-class", items
    images = _list_images(split_dir)
    inner = split_dir / "images"
    if not images and inner.is_dir():  # Tiny-ImageNet flat val
        images = _list_images(inner)
    if images:
        gt = _find_ground_truth(split_dir)
        if gt is not None:
            items = _scan_flat_with_ground_truth(split_dir, images, gt, list(index_order))
            if items:
                return f"flat+{gt.name}", items
        prefixed = _scan_flat_prefixed(images)
        if prefixed:
            return "flat-wnid-prefix", prefixed
        raise ValueError(
            f"{split_dir} holds {len(images)} images but no ground-truth file "
            f"({', '.join(GROUND_TRUTH_NAMES)}) and the file names do not start with a "
            f"wnid\n{EXPECTED_LAYOUTS}"
        )
    misnamed = _class_folders_not_wnids(split_dir)
    if misnamed:
        renames = ", ".join(f"{name} -> n{i:08d}" for i, name in enumerate(misnamed[:3], 1))
        names = "; ".join(f"n{i:08d} {name}" for i, name in enumerate(misnamed[:2], 1))
        raise ValueError(
            f"{split_dir} holds {len(misnamed)} folders of images ({', '.join(misnamed[:5])}"
            f"{', ...' if len(misnamed) > 5 else ''}) but none is named by a WordNet ID: class "
            "folders must be named like n01440764 (n and 8 digits, the ILSVRC class identifiers, §2). "
            f"Rename them ({renames}{', ...' if len(misnamed) > 3 else ''}) and, to keep their names, "
            f"list them in {split_dir.parent if split_dir.name in ('train', 'val') else split_dir}"
            f"/synsets.txt, one 'wnid name' per line ({names}...)\n{EXPECTED_LAYOUTS}"
        )
    raise ValueError(f"no images found in {split_dir}\n{EXPECTED_LAYOUTS}")


def _class_folders_not_wnids(split_dir: Path) -> list:
    """Sorted names of the sub-folders of ``split_dir`` that hold images (directly or in
    ``images/``) although their names are not wnids: a class-per-folder layout named otherwise."""
    found = []
    for sub in sorted(p for p in split_dir.iterdir() if p.is_dir() and not WNID_RE.match(p.name)):
        try:
            if any(
                is_image_file(p)
                for folder in (sub, sub / "images")
                if folder.is_dir()
                for p in folder.iterdir()
            ):
                found.append(sub.name)
        except OSError:
            continue
    return found


def scan_source(src) -> SourceTree:
    """Detect the layout of ``src`` and list its images per split.

    Raises FileNotFoundError if ``src`` does not exist, ValueError if it matches no known layout.
    """
    root = Path(src).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder\n{EXPECTED_LAYOUTS}")
    names = read_class_names(root, root.parent)
    synset_order = read_synset_order(root, root.parent)
    tree = SourceTree(root=root, layout="", class_names=names)
    if (root / "train").is_dir():
        layout, items = scan_split(root / "train", synset_order, tree.problems.setdefault("train", []))
        tree.splits["train"] = items
        layouts = [layout]
        for vname in ("val", "validation"):
            if (root / vname).is_dir():
                order = synset_order or tree.wnids("train")
                vlayout, vitems = scan_split(root / vname, order, tree.problems.setdefault("val", []))
                tree.splits["val"] = vitems
                layouts.append(vlayout)
                break
        tree.layout = "train/val: " + ", ".join(layouts)
        return tree
    if (root / "val").is_dir() and not _wnid_dirs(root) and not _list_images(root):
        layout, items = scan_split(root / "val", synset_order, tree.problems.setdefault("val", []))
        tree.splits["val"] = items
        tree.layout = "val only: " + layout
        return tree
    layout, items = scan_split(root, synset_order, tree.problems.setdefault("train", []))
    tree.splits["train"] = items
    tree.layout = "single split: " + layout
    return tree
