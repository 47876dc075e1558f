"""Reading a prepared subset (the output of :func:`data.prepare_subset`), with checks.

A prepared subset is a folder of seven ``.npy`` arrays and ``meta.json``.  Opening one
(:class:`PreparedDataset`) checks that every file is readable and agrees with ``meta.json`` and
with the others, reading only the small arrays and the ``.npy`` headers (so opening stays cheap
for a 250 GB ImageNet subset):

* ``meta.json``: valid JSON, with ``size`` (S), ``wnids`` (the classes) and ``counts`` per split;
* ``{train,val}_images.npy``: uint8, ``counts[split] x S x S x 3``;
* ``{train,val}_labels.npy``: integers, ``counts[split]`` of them, each in ``0 .. K-1``;
* ``mean_image.npy``: float ``S x S x 3``, finite (§2);
* ``pca_eigvals.npy`` (3,) and ``pca_eigvecs.npy`` (3 x 3): float, finite (§4.1);
* every file's size is exactly what its ``.npy`` header promises (a truncated or padded file is
  named with its expected and actual size).

Any disagreement raises :class:`PreparedDataError` (a ValueError) naming the file and what was
expected.  ``meta.json`` also records the SHA-256 of every array at preparation time;
:func:`verify_checksums` (``python -m data verify OUT``) recomputes them.  Subsets prepared
before checksums were recorded open normally and report the checksums as unavailable.
:func:`same_subset` tells whether two prepared folders hold the same subset.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

REQUIRED_FILES = ("meta.json", "mean_image.npy", "pca_eigvals.npy", "pca_eigvecs.npy")
SPLITS = ("train", "val")
ARRAY_FILES = (
    "train_images.npy",
    "train_labels.npy",
    "val_images.npy",
    "val_labels.npy",
    "mean_image.npy",
    "pca_eigvals.npy",
    "pca_eigvecs.npy",
)
CHECKSUM_ALGORITHM = "sha256"
_CHUNK = 1 << 20
_REPAIR = "prepare it again (python -m data prepare SRC OUT --overwrite)"


class PreparedDataError(ValueError):
    """A prepared subset's file is missing, damaged, or disagrees with meta.json or the others."""


def is_prepared(path) -> bool:
    """True if ``path`` is a folder written by :func:`data.prepare_subset`."""
    path = Path(path)
    return path.is_dir() and all((path / f).is_file() for f in REQUIRED_FILES)


# ------------------------------------------------------------------ meta.json


def read_meta(path) -> dict:
    """``path/meta.json`` as a dict, checked for the keys and types a prepared subset needs."""
    file = Path(path).expanduser() / "meta.json"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PreparedDataError(
            f"{file} is missing: {file.parent} is not a prepared subset; "
            "create one with `python -m data prepare SRC OUT`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PreparedDataError(f"{file} cannot be read ({_reason(exc)})") from None
    if not text.strip():
        raise PreparedDataError(
            f"{file} is empty ({len(text)} bytes); expected the subset's JSON description; {_REPAIR}"
        )
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg  # "Invalid control character at"
        raise PreparedDataError(
            f"{file} is not valid JSON ({msg} at line {exc.lineno}, column {exc.colno}); {_REPAIR}"
        ) from None
    _check_meta(file, meta)
    return meta


def _check_meta(file, meta):
    def bad(what):
        raise PreparedDataError(f"{file}: {what}; {_REPAIR}")

    if not isinstance(meta, dict):
        bad(f"expected a JSON object, found {type(meta).__name__}")
    for key in ("size", "wnids", "counts"):
        if key not in meta:
            bad(f"no {key!r} entry")
    size = meta["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        bad(f"'size' must be a positive integer (the side S), found {size!r}")
    wnids = meta["wnids"]
    if not isinstance(wnids, list) or not wnids or not all(isinstance(w, str) for w in wnids):
        bad("'wnids' must be a non-empty list of class ids")
    if len(set(wnids)) != len(wnids):
        bad("'wnids' lists a class twice")
    names = meta.get("class_names")
    if names is not None and (not isinstance(names, list) or len(names) != len(wnids)):
        bad(f"'class_names' must list one name per class ({len(wnids)})")
    counts = meta["counts"]
    if not isinstance(counts, dict):
        bad("'counts' must map each split to its number of images")
    for split in SPLITS:
        n = counts.get(split)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            bad(f"'counts' must give a non-negative integer for {split!r}, found {n!r}")
    checksums = meta.get("checksums")
    if checksums is not None and not (
        isinstance(checksums, dict) and all(isinstance(v, str) for v in checksums.values())
    ):
        bad("'checksums' must map file names to hex digests")


def _reason(exc) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------ .npy files


def read_npy_header(file):
    """``(shape, dtype, fortran_order, data_offset)`` of a ``.npy`` file, after checking that the
    file is exactly as long as its header promises.  Raises PreparedDataError naming the file."""
    file = Path(file)
    try:
        actual = file.stat().st_size
        with open(file, "rb") as fh:
            if actual == 0:
                raise PreparedDataError(f"{file} is empty (0 bytes); expected a .npy array; {_REPAIR}")
            try:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            except (ValueError, EOFError, SyntaxError) as exc:
                if isinstance(exc, EOFError) or "EOF" in str(exc):
                    raise PreparedDataError(
                        f"{file} is truncated: {actual} bytes, shorter than its "
                        f".npy header ({exc}); {_REPAIR}"
                    ) from None
                raise PreparedDataError(f"{file} is not a readable .npy array ({exc}); {_REPAIR}") from None
            offset = fh.tell()
    except FileNotFoundError:
        raise PreparedDataError(f"{file} is missing; {_REPAIR}") from None
    except IsADirectoryError:
        raise PreparedDataError(f"{file} is a folder, expected a .npy array; {_REPAIR}") from None
    except OSError as exc:
        raise PreparedDataError(f"{file} cannot be read ({_reason(exc)})") from None
    if dtype.hasobject:
        raise PreparedDataError(
            f"{file} holds Python objects (dtype {dtype}); a prepared subset "
            "holds only numbers (such a file is never loaded)"
        )
    expected = offset + math.prod(shape) * dtype.itemsize
    if actual != expected:
        state = "truncated" if actual < expected else "longer than its header says"
        raise PreparedDataError(
            f"{file} is {state}: {actual} bytes, expected {expected} "
            f"({dtype} array of shape {tuple(shape)}); {_REPAIR}"
        )
    return tuple(shape), dtype, fortran, offset


def _expect(file, header, dtype_kind, shape, why):
    got_shape, dtype, _, _ = header
    if dtype_kind == "uint8" and dtype != np.uint8 or dtype_kind != "uint8" and dtype.kind not in dtype_kind:
        kinds = {"u": "unsigned integers", "i": "integers", "f": "floats"}
        wanted = "uint8" if dtype_kind == "uint8" else " or ".join(kinds[k] for k in dtype_kind)
        raise PreparedDataError(f"{file} holds {dtype}, expected {wanted}; {_REPAIR}")
    if got_shape != tuple(shape):
        raise PreparedDataError(f"{file} has shape {got_shape}, expected {tuple(shape)} ({why}); {_REPAIR}")


def _load(file, mmap=False):
    try:
        return np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PreparedDataError(f"{file} cannot be loaded ({_reason(exc)}); {_REPAIR}") from None


def check_subset(path, meta=None) -> dict:
    """Check every file of the prepared subset ``path`` against ``meta.json`` and the others
    (module docstring); returns the meta dict.  Reads only headers and the small arrays; the
    label range is checked by :class:`PreparedDataset` (for its split) and by
    :func:`check_labels`."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"prepared subset {path} does not exist")
    meta = read_meta(path) if meta is None else meta
    size, counts = meta["size"], meta["counts"]
    for split in SPLITS:
        n = counts[split]
        images = path / f"{split}_images.npy"
        _expect(
            images,
            read_npy_header(images),
            "uint8",
            (n, size, size, 3),
            f"meta.json: {n} {split} images, S={size}, RGB",
        )
        labels = path / f"{split}_labels.npy"
        _expect(labels, read_npy_header(labels), "iu", (n,), f"meta.json: {n} {split} images")
    mean = path / "mean_image.npy"
    _expect(mean, read_npy_header(mean), "f", (size, size, 3), f"meta.json: S={size}")
    eigvals, eigvecs = path / "pca_eigvals.npy", path / "pca_eigvecs.npy"
    _expect(eigvals, read_npy_header(eigvals), "f", (3,), "the 3 eigenvalues of the RGB covariance")
    _expect(eigvecs, read_npy_header(eigvecs), "f", (3, 3), "the 3 eigenvectors of the RGB covariance")
    for file in (mean, eigvals, eigvecs):
        if not np.isfinite(_load(file)).all():
            raise PreparedDataError(f"{file} holds NaN or infinite values; {_REPAIR}")
    return meta


def check_labels(path, split, meta, labels=None):
    """Check that ``split``'s labels lie in ``0 .. K-1`` for the K classes of meta.json."""
    file = Path(path) / f"{split}_labels.npy"
    labels = _load(file) if labels is None else labels
    k = len(meta["wnids"])
    if len(labels) and (labels.min() < 0 or labels.max() >= k):
        raise PreparedDataError(
            f"{file}: labels must lie in 0..{k - 1} (meta.json lists {k} "
            f"classes), found {int(labels.min())}..{int(labels.max())}; {_REPAIR}"
        )
    return labels


# ------------------------------------------------------------------ checksums


def file_checksum(file) -> str:
    """SHA-256 hex digest of a file, streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def compute_checksums(path) -> dict:
    """``{file name: SHA-256}`` of the seven arrays of a prepared subset (recorded in meta.json)."""
    return {name: file_checksum(Path(path) / name) for name in ARRAY_FILES}


def verify_checksums(path, meta=None):
    """Recompute the arrays' checksums and compare them with meta.json.

    Returns ``None`` when meta.json records no checksums (a subset prepared before they were
    recorded), else a dict ``{file name: (recorded, actual)}`` for every array."""
    path = Path(path).expanduser()
    meta = read_meta(path) if meta is None else meta
    recorded = meta.get("checksums")
    if not recorded:
        return None
    return {name: (recorded.get(name), file_checksum(path / name)) for name in ARRAY_FILES}


# ------------------------------------------------------------------ subset identity

IDENTITY_KEYS = ("size", "wnids", "counts", "class_counts", "checksums", "rgb_covariance")


def subset_fingerprint(source) -> dict:
    """What identifies a prepared subset, independent of where it lies: S, classes (in label
    order), counts per split (and per class), the arrays' checksums and the training RGB
    covariance.  ``source``: a folder, a :class:`PreparedDataset`, a meta.json dict, or a
    fingerprint.  Small enough to store in a checkpoint."""
    if isinstance(source, PreparedDataset):
        meta = source.meta
    elif isinstance(source, dict):
        meta = source
    else:
        meta = check_subset(source)
    return {key: meta[key] for key in IDENTITY_KEYS if meta.get(key) is not None}


def subset_differences(a, b, require_checksums: bool = False) -> list:
    """How the prepared subsets ``a`` and ``b`` differ (an empty list when they are the same).

    ``a`` and ``b``: folders (checked as when opened), :class:`PreparedDataset` objects, meta.json
    dicts or :func:`subset_fingerprint` dicts.  Compared: S, the classes in label order, the
    image counts per split (and per class when both record them), and the arrays' SHA-256
    checksums.  When either side has no checksums (prepared before they were recorded), the
    training RGB covariance (a float64 statistic of every training pixel) stands in for them,
    unless ``require_checksums``, which then reports the missing checksums as a difference."""
    fa, fb = subset_fingerprint(a), subset_fingerprint(b)
    diffs = []
    if fa.get("size") != fb.get("size"):
        diffs.append(f"image size S {fa.get('size')} vs {fb.get('size')}")
    wa, wb = fa.get("wnids", []), fb.get("wnids", [])
    if wa != wb:
        if set(wa) == set(wb):
            diffs.append("same classes in another label order")
        else:
            only_a, only_b = sorted(set(wa) - set(wb)), sorted(set(wb) - set(wa))
            diffs.append(
                f"classes differ ({len(wa)} vs {len(wb)}; only in the first: "
                f"{', '.join(only_a[:5]) or '-'}; only in the second: {', '.join(only_b[:5]) or '-'})"
            )
    for split in SPLITS:
        na, nb = fa.get("counts", {}).get(split), fb.get("counts", {}).get(split)
        if na != nb:
            diffs.append(f"{split} images {na} vs {nb}")
    ca, cb = fa.get("class_counts"), fb.get("class_counts")
    if ca and cb and ca != cb and not diffs:
        diffs.append("images per class differ")
    sa, sb = fa.get("checksums"), fb.get("checksums")
    if sa and sb:
        for name in sorted(set(sa) | set(sb)):
            if sa.get(name) != sb.get(name):
                diffs.append(f"{name} checksum differs")
    elif require_checksums:
        diffs.append(
            "checksums unavailable ("
            + ("neither" if not sa and not sb else "the first" if not sa else "the second")
            + " subset records them)"
        )
    else:
        va, vb = fa.get("rgb_covariance"), fb.get("rgb_covariance")
        if va is None or vb is None or not np.allclose(va, vb, rtol=1e-9, atol=0):
            diffs.append("training RGB covariance differs (no checksums to compare)")
    return diffs


def same_subset(a, b, require_checksums: bool = False) -> bool:
    """True when ``a`` and ``b`` hold the same prepared subset (see :func:`subset_differences`);
    e.g. ``same_subset(checkpoint_meta["data_fingerprint"], new_folder)`` after the data moved."""
    return not subset_differences(a, b, require_checksums)


# ------------------------------------------------------------------ the dataset


class PreparedDataset:
    """One split of a prepared subset.

    Attributes: ``images`` (memory-mapped uint8, N x S x S x 3, §2's S x S centre patches),
    ``labels`` (int64, N), ``wnids``, ``class_names``, ``num_classes``, ``size`` (S),
    ``mean_image`` (float32 S x S x 3, §2), ``eigvals`` (3,) and ``eigvecs`` (3 x 3, columns are
    eigenvectors) of the training RGB covariance (§4.1), ``meta`` (the meta.json dict).

    Opening checks every file against meta.json and the others (module docstring) and raises
    :class:`PreparedDataError` naming the file and what was expected.
    """

    def __init__(self, path, split: str = "train"):
        self.path = Path(path).expanduser()
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        if not self.path.is_dir():
            raise FileNotFoundError(f"prepared subset {self.path} does not exist")
        missing = [
            f
            for f in REQUIRED_FILES + (f"{split}_images.npy", f"{split}_labels.npy")
            if not (self.path / f).exists()
        ]
        if missing:
            raise PreparedDataError(
                f"{self.path} is not a prepared subset (missing {', '.join(missing)}); "
                "create one with `python -m data prepare SRC OUT`"
            )
        self.split = split
        self.meta = check_subset(self.path)
        self.images = _load(self.path / f"{split}_images.npy", mmap=True)
        self.labels = check_labels(self.path, split, self.meta).astype(np.int64, copy=False)
        self.wnids = list(self.meta["wnids"])
        self.class_names = list(self.meta.get("class_names") or self.wnids)
        self.num_classes = len(self.wnids)
        self.size = int(self.meta["size"])
        self.mean_image = _load(self.path / "mean_image.npy")
        self.eigvals = _load(self.path / "pca_eigvals.npy")
        self.eigvecs = _load(self.path / "pca_eigvecs.npy")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        """``(image uint8 S x S x 3, label)``."""
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return (
            f"PreparedDataset({str(self.path)!r}, split={self.split!r}: {len(self)} images, "
            f"{self.num_classes} classes, S={self.size})"
        )
