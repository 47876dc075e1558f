"""Reading a prepared subset (the output of :func:`data.prepare_subset`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REQUIRED_FILES = ("meta.json", "mean_image.npy", "pca_eigvals.npy", "pca_eigvecs.npy")


def is_prepared(path) -> bool:
    """True if ``path`` is a folder written by :func:`data.prepare_subset`."""
    path = Path(path)
    return path.is_dir() and all((path / f).is_file() for f in REQUIRED_FILES)


class PreparedDataset:
    """One split of a prepared subset.

    Attributes: ``images`` (memory-mapped uint8, N x S x S x 3, §2's S x S centre patches),
    ``labels`` (int64, N), ``wnids``, ``class_names``, ``num_classes``, ``size`` (S),
    ``mean_image`` (float32 S x S x 3, §2), ``eigvals`` (3,) and ``eigvecs`` (3 x 3, columns are
    eigenvectors) of the training RGB covariance (§4.1), ``meta`` (the meta.json dict).
    """

    def __init__(self, path, split: str = "train"):
        self.path = Path(path).expanduser()
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        if not self.path.is_dir():
            raise FileNotFoundError(f"prepared subset {self.path} does not exist")
        missing = [f for f in REQUIRED_FILES + (f"{split}_images.npy", f"{split}_labels.npy")
                   if not (self.path / f).is_file()]
        if missing:
            raise ValueError(f"{self.path} is not a prepared subset (missing {', '.join(missing)}); "
                             "create one with `python -m data prepare SRC OUT`")
        self.split = split
        self.meta = json.loads((self.path / "meta.json").read_text())
        self.images = np.load(self.path / f"{split}_images.npy", mmap_mode="r")
        self.labels = np.load(self.path / f"{split}_labels.npy")
        if self.images.ndim != 4 or self.images.shape[3] != 3 or len(self.labels) != len(self.images):
            raise ValueError(f"{self.path}: inconsistent arrays {self.images.shape} / {self.labels.shape}")
        self.wnids = list(self.meta["wnids"])
        self.class_names = list(self.meta.get("class_names", self.wnids))
        self.num_classes = len(self.wnids)
        self.size = int(self.meta["size"])
        self.mean_image = np.load(self.path / "mean_image.npy")
        self.eigvals = np.load(self.path / "pca_eigvals.npy")
        self.eigvecs = np.load(self.path / "pca_eigvecs.npy")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        """``(image uint8 S x S x 3, label)``."""
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return (f"PreparedDataset({str(self.path)!r}, split={self.split!r}: {len(self)} images, "
                f"{self.num_classes} classes, S={self.size})")
