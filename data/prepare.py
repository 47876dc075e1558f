"""Preparing a reduced ImageNet subset with the paper's preprocessing (§2) and PCA statistics (§4.1).

Each image is rescaled so that its SHORTER side is ``S`` (256 in the paper) and the central
``S x S`` patch is kept (§2).  The result is stored as uint8 arrays together with

* ``mean_image.npy``: the per-pixel mean over the training split (float32, S x S x 3), which
  is subtracted from every input (§2, "subtract the mean activity over the training set");
* ``pca_eigvals.npy`` / ``pca_eigvecs.npy``: eigenvalues (descending) and eigenvectors (columns)
  of the 3 x 3 covariance of RGB values over ALL training pixels, for the colour augmentation
  of §4.1.  The covariance is accumulated in float64 from streaming sums (sum x, sum x x^T),
  never by materialising all pixels.

Output appears only when complete: everything is written into ``OUT.tmp-<pid>`` and renamed.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from .layouts import scan_source

FORMAT_VERSION = 1
DEFAULT_SIZE = 256
SPLITS = ("train", "val")


def load_image_square(path, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Decode an image file into an ``size x size x 3`` uint8 RGB array (§2).

    Rescales so that the shorter side is ``size`` and takes the central ``size x size`` patch.
    Both steps are one PIL resize of the central square box of the source (the same pixels, in
    continuous coordinates, as resizing the whole image and then cropping), with the antialiased
    bicubic filter.  ``Image.draft`` lets libjpeg decode big JPEGs at a reduced scale (never below
    ``size`` on either side).  Grayscale, CMYK, palette and RGBA images become RGB; images smaller
    than ``size`` are upscaled.
    """
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))
        im = im.convert("RGB")
        width, height = im.size
        side = min(width, height)
        left, top = (width - side) / 2.0, (height - side) / 2.0
        im = im.resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side))
        arr = np.asarray(im, dtype=np.uint8)
    if arr.shape != (size, size, 3):
        raise ValueError(f"decoded shape {arr.shape}, expected {(size, size, 3)}")
    return arr


def _load_worker(job):
    """Pool worker: decode one image and its pixel sums; never raises (errors are returned)."""
    index, path, size = job
    try:
        arr = load_image_square(path, size)
        pixels = arr.reshape(-1, 3).astype(np.float64)
        return index, arr, pixels.sum(axis=0), pixels.T @ pixels, None
    except Exception as exc:  # a corrupt file must not stop the preparation
        return index, None, None, None, f"{type(exc).__name__}: {exc}"


class PixelStatistics:
    """Streaming float64 sums for the mean image (§2) and the RGB covariance (§4.1)."""

    def __init__(self, size: int):
        self.image_sum = np.zeros((size, size, 3), np.float64)
        self.pixel_sum = np.zeros(3, np.float64)
        self.outer_sum = np.zeros((3, 3), np.float64)
        self.num_images = 0
        self.num_pixels = 0

    def add(self, image: np.ndarray, pixel_sum=None, outer_sum=None):
        if pixel_sum is None:
            pixels = image.reshape(-1, 3).astype(np.float64)
            pixel_sum, outer_sum = pixels.sum(axis=0), pixels.T @ pixels
        self.image_sum += image
        self.pixel_sum += pixel_sum
        self.outer_sum += outer_sum
        self.num_images += 1
        self.num_pixels += image.shape[0] * image.shape[1]

    def mean_image(self) -> np.ndarray:
        return (self.image_sum / max(self.num_images, 1)).astype(np.float32)

    def covariance(self) -> np.ndarray:
        """Population covariance of the RGB values of all pixels (divides by the pixel count)."""
        n = max(self.num_pixels, 1)
        mu = self.pixel_sum / n
        return self.outer_sum / n - np.outer(mu, mu)

    def pca(self):
        """Eigenvalues (descending, float32) and eigenvectors (columns, float32) of the covariance."""
        return pca_of_covariance(self.covariance())


def pca_of_covariance(cov: np.ndarray):
    """Eigen-decomposition of a symmetric 3 x 3 covariance: values descending, vectors as columns.

    Each eigenvector's sign is fixed so that its largest-magnitude component is positive.
    """
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = np.clip(eigvals[order], 0, None), eigvecs[:, order]
    signs = np.sign(eigvecs[np.argmax(np.abs(eigvecs), axis=0), np.arange(3)])
    eigvecs = eigvecs * np.where(signs == 0, 1, signs)
    return eigvals.astype(np.float32), eigvecs.astype(np.float32)


class ClassSelectionError(ValueError):
    """The classes asked for are not in the source. ``option`` names prepare_subset's parameter
    (``classes``, ``num_classes`` or ``random_classes``) and ``value`` its value, so that each command
    line names its own flag (``python -m data prepare --num-classes``, ``python -m alexnet train --classes``)."""

    def __init__(self, option, value, message):
        super().__init__(message)
        self.option, self.value = option, value


def _select_classes(available, classes=None, num_classes=None, random_classes=None, seed=0):
    available = sorted(available)
    if classes:
        wanted = [c.strip() for c in (classes.split(",") if isinstance(classes, str) else classes)]
        wanted = [c for c in wanted if c]
        missing = [c for c in wanted if c not in available]
        if missing:
            raise ClassSelectionError("classes", classes, f"classes not in the source: {', '.join(missing)}")
        return sorted(set(wanted))
    if num_classes:
        if num_classes > len(available):
            raise ClassSelectionError("num_classes", num_classes, f"{num_classes} classes asked for, but the "
                                      f"source has only {len(available)}")
        return available[:num_classes]
    if random_classes:
        if random_classes > len(available):
            raise ClassSelectionError("random_classes", random_classes, f"{random_classes} classes asked for, "
                                      f"but the source has only {len(available)}")
        rng = np.random.default_rng(seed)
        return sorted(rng.choice(available, size=random_classes, replace=False).tolist())
    return available


def _take_per_class(items, wnids, limit):
    """The first ``limit`` (sorted) files of each chosen class, labelled by class index."""
    index_of = {w: i for i, w in enumerate(wnids)}
    counts = dict.fromkeys(wnids, 0)
    chosen = []
    for path, wnid in sorted(items, key=lambda it: (index_of.get(it[1], -1), str(it[0]))):
        if wnid in index_of and (limit is None or counts[wnid] < limit):
            counts[wnid] += 1
            chosen.append((path, index_of[wnid]))
    return chosen


def _split_fraction(chosen, fraction):
    """Move the last ``fraction`` of every class's images into a validation split."""
    by_class: dict = {}
    for path, label in chosen:
        by_class.setdefault(label, []).append((path, label))
    train, val = [], []
    for label in sorted(by_class):
        group = by_class[label]
        n_val = int(round(len(group) * fraction))
        train.extend(group[:len(group) - n_val])
        val.extend(group[len(group) - n_val:])
    return train, val


def _progress(total, desc, quiet):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="img", disable=quiet, dynamic_ncols=True,
                file=sys.stderr)


def _write_split(out: Path, split: str, chosen, size, pool, stats, skipped, strict, quiet):
    """Decode ``chosen`` images into ``out/<split>_images.npy`` via a memory map."""
    n = len(chosen)
    images_path = out / f"{split}_images.npy"
    images = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    labels = np.empty(n, np.int64)
    ok = np.zeros(n, bool)
    jobs = [(i, str(path), size) for i, (path, _) in enumerate(chosen)]
    results = pool.imap_unordered(_load_worker, jobs, chunksize=8) if pool else map(_load_worker, jobs)
    bar = _progress(n, f"prepare {split}", quiet)
    for index, arr, pixel_sum, outer_sum, error in results:
        if error is not None:
            path = str(chosen[index][0])
            if strict:
                raise RuntimeError(f"cannot read {path}: {error} (--strict)")
            warnings.warn(f"skipping unreadable image {path}: {error}", stacklevel=2)
            skipped.append({"split": split, "path": path, "reason": error})
        else:
            images[index] = arr
            labels[index] = chosen[index][1]
            ok[index] = True
            if stats is not None:
                stats.add(arr, pixel_sum, outer_sum)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    images.flush()
    count = int(ok.sum())
    if count < n:  # compact: keep the good images in their original order
        tmp_path = out / f"{split}_images.compact.npy"
        compact = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
        good = np.flatnonzero(ok)
        for start in range(0, count, 256):
            compact[start:start + 256] = images[good[start:start + 256]]
        compact.flush()
        del compact, images
        os.replace(tmp_path, images_path)
        labels = labels[good]
    else:
        del images
    np.save(out / f"{split}_labels.npy", labels)
    return count


def _canonical_args(src, size, classes, num_classes, random_classes, seed, per_class,
                    val_per_class, val_fraction):
    if isinstance(classes, str):
        classes = [c for c in classes.split(",") if c.strip()]
    return {
        "src": str(Path(src).expanduser().resolve()),
        "size": int(size),
        "classes": sorted(c.strip() for c in classes) if classes else None,
        "num_classes": num_classes,
        "random_classes": random_classes,
        "seed": seed if random_classes else None,
        "per_class": per_class,
        "val_per_class": val_per_class,
        "val_fraction": val_fraction,
        "format_version": FORMAT_VERSION,
    }


def prepare_subset(src, out, *, classes=None, num_classes=None, random_classes=None, seed=0,
                   per_class=None, val_per_class=None, size=DEFAULT_SIZE, val_fraction=None,
                   workers=None, strict=False, overwrite=False, quiet=False) -> Path:
    """Prepare a subset of the raw image folder ``src`` into the folder ``out``; returns ``out``.

    Classes: ``classes`` (list or comma-separated wnids), else the first ``num_classes`` sorted
    wnids, else ``random_classes`` drawn with ``seed``, else all.  At most ``per_class`` training
    and ``val_per_class`` validation images per class (the first ones in sorted file order).
    A source with a single split gives ``val_fraction`` of each class to val (else val is empty).
    Images are preprocessed as in §2 at ``size`` (S); statistics for §2 and §4.1 are stored.

    If ``out`` already holds a subset prepared with the same arguments it is reused; with other
    arguments a ValueError is raised unless ``overwrite``.  Unreadable images are skipped with a
    warning and listed in meta.json (``strict=True`` raises instead).
    """
    out = Path(out).expanduser()
    args = _canonical_args(src, size, classes, num_classes, random_classes, seed, per_class,
                           val_per_class, val_fraction)
    if out.exists():
        meta_path = out / "meta.json"
        if meta_path.is_file():
            old = json.loads(meta_path.read_text()).get("args")
            if old == args and not overwrite:
                if not quiet:
                    print(f"reusing prepared subset {out} (same arguments)", file=sys.stderr)
                return out
            if not overwrite:
                diff = sorted(k for k in set(args) | set(old or {}) if (old or {}).get(k) != args.get(k))
                raise ValueError(f"{out} holds a subset prepared with other arguments (differ in: "
                                 f"{', '.join(diff)}); choose another OUT or pass --overwrite")
        elif not overwrite:
            raise ValueError(f"{out} exists and is not a prepared subset (no meta.json); "
                             "choose another OUT or pass --overwrite")
    if size < 1:
        raise ValueError("size must be positive")

    tree = scan_source(src)
    if "train" not in tree.splits:
        raise ValueError(f"{src} has no training split (layout found: {tree.layout})")
    wnids = _select_classes(tree.wnids("train"), classes, num_classes, random_classes, seed)
    if not wnids:
        raise ValueError(f"no classes selected from {src}")
    train = _take_per_class(tree.splits["train"], wnids, per_class)
    if "val" in tree.splits:
        val = _take_per_class(tree.splits["val"], wnids, val_per_class)
    elif val_fraction:
        train, val = _split_fraction(train, val_fraction)
        if val_per_class is not None:
            val = _take_per_class([(p, wnids[l]) for p, l in val], wnids, val_per_class)
    else:
        val = []
    if not train:
        raise ValueError(f"no training images selected from {src}")

    workers = (os.cpu_count() or 1) if workers is None else max(int(workers), 0)
    tmp = out.parent / f"{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    skipped: list = []
    start = time.perf_counter()
    pool = multiprocessing.get_context().Pool(workers) if workers > 1 else None
    try:
        stats = PixelStatistics(size)
        counts = {"train": _write_split(tmp, "train", train, size, pool, stats, skipped, strict, quiet)}
        counts["val"] = _write_split(tmp, "val", val, size, pool, None, skipped, strict, quiet)
        if counts["train"] == 0:
            raise ValueError(f"every selected training image of {src} was unreadable")
        eigvals, eigvecs = stats.pca()
        np.save(tmp / "mean_image.npy", stats.mean_image())
        np.save(tmp / "pca_eigvals.npy", eigvals)
        np.save(tmp / "pca_eigvecs.npy", eigvecs)
        seconds = time.perf_counter() - start
        meta = {
            "format_version": FORMAT_VERSION,
            "source": str(tree.root.resolve()),
            "source_layout": tree.layout,
            "size": int(size),
            "counts": counts,
            "wnids": wnids,
            "class_names": [tree.name_of(w) for w in wnids],
            "skipped": skipped,
            "rgb_covariance": stats.covariance().tolist(),
            "args": args,
            "seconds": round(seconds, 3),
            "preprocessing": "§2: shorter side rescaled to S (bicubic), central S x S patch; uint8 RGB",
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if out.exists():  # only with overwrite=True (checked above)
        old = out.parent / f"{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    if not quiet:
        total = counts["train"] + counts["val"]
        print(f"prepared {out}: {counts['train']} train + {counts['val']} val images, "
              f"{len(wnids)} classes, S={size}, {len(skipped)} skipped, "
              f"{total / max(seconds, 1e-9):.0f} images/s", file=sys.stderr)
    return out
