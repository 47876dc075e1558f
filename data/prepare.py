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
SIGTERM and Ctrl-C remove that folder (the decoding processes ignore Ctrl-C; the parent stops
them); a folder left by a killed run (SIGKILL, power loss) is removed by the next run once its
process is gone.  ``meta.json`` records the SHA-256 of every array (``python -m data verify``).
A class whose selected training images are all unreadable is never kept empty: ``strict`` fails,
otherwise it is dropped with a warning, labels stay contiguous, and meta.json lists it under
``dropped_classes``.

Nothing of the user's is deleted: OUT must lie outside SRC, and ``--overwrite`` replaces only a
folder holding a prepared subset's own files.  ``OUT.lock`` (``data.locking``) keeps a second run
on the same OUT out, from the first check of OUT to the swap-in.  What cannot work is said and
recorded in meta.json: a single class, validation images identical to training images (compared
by the SHA-256 of their decoded S x S pixels, computed in the decoding workers).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from nn import atomic_write

from .dataset import (
    ARRAY_FILES,
    CHECKSUM_ALGORITHM,
    PreparedDataError,
    check_subset,
    compute_checksums,
    read_meta,
)
from .images import DEFAULT_SIZE, load_image_square
from .layouts import scan_source
from .locking import FileLock, describe_holder, pid_alive

FORMAT_VERSION = 1
SPLITS = ("train", "val")


class PrepareTerminated(KeyboardInterrupt):
    """SIGTERM arrived during ``prepare``: raised in the main thread so that the partial output
    is removed (a KeyboardInterrupt, so callers that handle Ctrl-C handle it too)."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _worker_init(lock_fd=None):
    """Decoding processes leave Ctrl-C to the parent (no traceback per worker) and die quietly
    on the SIGTERM that ``Pool.terminate`` sends.  A forked worker closes its copy of OUT's lock,
    so that a worker outliving a killed parent does not keep OUT locked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if lock_fd is not None:
        os.close(lock_fd)


def _raise_terminated(signum, frame):
    raise PrepareTerminated(signum)


class _TerminateCleanly:
    """While active, SIGTERM raises :class:`PrepareTerminated` in the main thread (only when
    SIGTERM has its default action: a caller with its own handler keeps it)."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                self.previous = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


class _SignalsBlocked:
    """Block SIGINT/SIGTERM while OUT is swapped in (two renames), so that no interruption can
    leave OUT missing; a signal that arrived meanwhile is delivered when they are unblocked."""

    def __enter__(self):
        self.previous = None
        if hasattr(signal, "pthread_sigmask"):
            self.previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.previous)
        return False


OWNER_FILE = ".prepare-owner"


def remove_stale_tmp(out: Path, quiet: bool = False) -> list:
    """Remove ``OUT.tmp-<pid>`` / ``OUT.old-<pid>`` folders left by ``prepare`` runs that were
    killed (their process no longer exists on this host); returns the removed paths.  A folder
    of a live process, or one written on another host (a shared file system), is left alone."""
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    pattern = re.compile(re.escape(out.name) + r"\.(tmp|old)-(\d+)$")
    for entry in out.parent.iterdir():
        m = pattern.match(entry.name)
        if not m or not entry.is_dir() or entry.is_symlink():
            continue
        pid = int(m.group(2))
        if pid == os.getpid() or pid_alive(pid):
            continue
        try:
            owner = json.loads((entry / OWNER_FILE).read_text())
        except (OSError, ValueError):
            owner = {}
        if owner.get("host", socket.gethostname()) != socket.gethostname():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
            if not quiet:
                print(f"removed {entry} (left by an interrupted run, process {pid} is gone)", file=sys.stderr)
    return removed


def _load_worker(job):
    """Pool worker: decode one image, its pixel sums and its content hash; never raises (errors
    are returned)."""
    index, path, size = job
    try:
        arr = load_image_square(path, size)
        pixels = arr.reshape(-1, 3).astype(np.float64)
        return index, arr, pixels.sum(axis=0), pixels.T @ pixels, pixel_digest(arr), None
    except Exception as exc:  # a corrupt file must not stop the preparation
        return index, None, None, None, None, f"{type(exc).__name__}: {exc}"


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
            raise ClassSelectionError(
                "num_classes",
                num_classes,
                f"{num_classes} classes asked for, but the source has only {len(available)}",
            )
        return available[:num_classes]
    if random_classes:
        if random_classes > len(available):
            raise ClassSelectionError(
                "random_classes",
                random_classes,
                f"{random_classes} classes asked for, but the source has only {len(available)}",
            )
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
        train.extend(group[: len(group) - n_val])
        val.extend(group[len(group) - n_val :])
    return train, val


def _progress(total, desc, quiet):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="img", disable=quiet, dynamic_ncols=True, file=sys.stderr)


def _write_split(out: Path, split: str, chosen, size, pool, stats, skipped, strict, quiet, digests):
    """Decode ``chosen`` images into ``out/<split>_images.npy`` via a memory map; ``digests`` gets
    the content hash of each decoded image (index -> digest, computed with the decoding, see
    :func:`pixel_digest`)."""
    n = len(chosen)
    images_path = out / f"{split}_images.npy"
    images = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    labels = np.empty(n, np.int64)
    ok = np.zeros(n, bool)
    jobs = [(i, str(path), size) for i, (path, _) in enumerate(chosen)]
    results = pool.imap_unordered(_load_worker, jobs, chunksize=8) if pool else map(_load_worker, jobs)
    bar = _progress(n, f"prepare {split}", quiet)
    for index, arr, pixel_sum, outer_sum, digest, error in results:
        if error is not None:
            path = str(chosen[index][0])
            if strict:
                raise RuntimeError(f"cannot read {path}: {error} (--strict)")
            warnings.warn(f"skipping unreadable image {path}: {error}", stacklevel=2)
            skipped.append({"split": split, "path": path, "reason": error})
        else:
            images[index] = arr
            digests[index] = digest
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
    del images
    if count < n:  # compact: keep the good images in their original order
        _compact_images(images_path, ok)
        labels = labels[ok]
    return labels


def pixel_digest(image: np.ndarray) -> bytes:
    """Content hash of a decoded S x S x 3 uint8 image: two files that decode to the same pixels
    (a copy, the same photo saved twice) have the same digest, whatever their names or formats."""
    return hashlib.sha256(np.ascontiguousarray(image)).digest()


def _cannot_work(wnids, names, val, val_digests, train_digests) -> tuple:
    """What makes a subset useless for measuring a classifier, as warnings (also returned for
    meta.json) and the number of validation images identical to a training image."""
    found = []
    if len(wnids) == 1:
        found.append(
            f"the subset has a single class ({wnids[0]}"
            + (f" {names[0]}" if names[0] != wnids[0] else "")
            + "): every prediction is that class, "
            "so training reaches 0 % error without learning anything; choose at least two classes"
        )
    seen = set(train_digests.values())
    copies = sorted(str(val[i][0]) for i, digest in val_digests.items() if digest in seen)
    if copies:
        found.append(
            f"{len(copies)} of {len(val_digests)} validation images have exactly the pixels of a "
            f"training image (e.g. {', '.join(copies[:3])}): the validation error of those measures "
            "memory, not generalization; remove the copies from the source"
        )
    for message in found:
        warnings.warn(message, stacklevel=4)
    return found, len(copies)


def _compact_images(images_path: Path, keep: np.ndarray):
    """Rewrite ``images_path`` with only the rows where ``keep`` (in order), by chunks."""
    images = np.load(images_path, mmap_mode="r")
    good = np.flatnonzero(keep)
    header = {
        "descr": np.lib.format.dtype_to_descr(images.dtype),
        "fortran_order": False,
        "shape": (len(good),) + images.shape[1:],
    }
    tmp_path = images_path.with_name(images_path.stem + ".compact.npy")
    with atomic_write(images_path, "wb", tmp_path=tmp_path) as out:
        np.lib.format.write_array_header_1_0(out, header)
        for start in range(0, len(good), 256):
            out.write(np.ascontiguousarray(images[good[start : start + 256]]).tobytes())
    del images


def _drop_empty_classes(out: Path, wnids, names, train_files, train_labels, val_labels, strict, src):
    """Classes with no readable training image: fail (strict) or drop them, relabel the rest
    contiguously and remove their validation images.  Returns (wnids, train_labels,
    val_labels, dropped) where dropped lists {wnid, name, reason, val_images_dropped}."""
    k = len(wnids)
    per_class = np.bincount(train_labels, minlength=k)
    empty = [i for i in range(k) if per_class[i] == 0]
    if not empty:
        return wnids, train_labels, val_labels, []
    selected = (
        np.bincount(np.asarray(train_files, np.int64), minlength=k) if len(train_files) else np.zeros(k, int)
    )
    reasons = {
        i: (
            f"all {selected[i]} selected training images are unreadable"
            if selected[i]
            else "no training image was selected or listed"
        )
        for i in empty
    }
    listing = "; ".join(f"{wnids[i]} ({names[i]}): {reasons[i]}" for i in empty)
    if strict:
        raise RuntimeError(f"{len(empty)} class(es) would have no training image: {listing} (--strict)")
    if len(empty) == k:
        raise ValueError(f"every selected training image of {src} was unreadable")
    warnings.warn(
        f"dropping {len(empty)} class(es) with no readable training image: {listing}; "
        "the remaining classes are relabelled 0..K-1 and meta.json lists the dropped ones",
        stacklevel=3,
    )
    kept = [i for i in range(k) if i not in empty]
    new_label = np.full(k, -1, np.int64)
    new_label[kept] = np.arange(len(kept))
    keep_val = ~np.isin(val_labels, empty)
    dropped = [
        {
            "wnid": wnids[i],
            "name": names[i],
            "reason": reasons[i],
            "val_images_dropped": int(np.sum(val_labels == i)),
        }
        for i in empty
    ]
    if not keep_val.all():
        _compact_images(out / "val_images.npy", keep_val)
        val_labels = val_labels[keep_val]
    return [wnids[i] for i in kept], new_label[train_labels], new_label[val_labels], dropped


MIN_SIZE, MAX_SIZE = 1, 1024
#: Everything ``prepare`` writes into OUT (and the owner file of a folder being written).
PREPARED_FILES = ("meta.json",) + ARRAY_FILES + (OWNER_FILE,)


SIZE_RULE = (
    f"S must be an integer from {MIN_SIZE} to {MAX_SIZE} (the paper uses 256; the network's crop, "
    f"at least 67, must fit in S; {MAX_SIZE} already stores 3 MiB per image)"
)


def check_size(size) -> int:
    """S must be an integer in MIN_SIZE..MAX_SIZE: the paper's S is 256 (§2) and the network's
    crop (at least 67) must fit in it; above 1024 a single image is over 3 MiB and a subset of
    any size outgrows memory-mapped storage and the mean image's float64 sums."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"image size {size!r} is out of range: {SIZE_RULE}")
    return int(size)


def check_out_outside_src(src, out) -> None:
    """Refuse an OUT that is SRC, contains it or lies inside it (symlinks resolved): OUT is
    replaced whole, and an OUT inside SRC would be read back as images or classes."""
    src_path, out_path = Path(src).expanduser().resolve(), Path(out).expanduser().resolve()
    if out_path == src_path:
        relation = "is the source folder SRC"
    elif out_path in src_path.parents:
        relation = "contains the source folder SRC"
    elif src_path in out_path.parents:
        relation = "lies inside the source folder SRC"
    else:
        return
    raise ValueError(
        f"OUT {out} ({out_path}) {relation} {src} ({src_path}); choose an OUT outside SRC, "
        "e.g. a sibling folder"
    )


class PrepareLock(FileLock):
    """``OUT.lock`` beside OUT (which may not exist yet, and is replaced at the end), held from the
    start of a run to its swap-in; removed again on release."""

    def __init__(self, out: Path):
        super().__init__(Path(out).parent / f"{Path(out).name}.lock", remove=True)
        self.out = Path(out)

    def busy(self, pid):
        return RuntimeError(
            f"{self.out} is being prepared by another run ({describe_holder(pid)} holds {self.path}); "
            "wait for it to finish, stop it, or choose another OUT"
        )


def _canonical_args(
    src, size, classes, num_classes, random_classes, seed, per_class, val_per_class, val_fraction
):
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


def prepare_subset(
    src,
    out,
    *,
    classes=None,
    num_classes=None,
    random_classes=None,
    seed=0,
    per_class=None,
    val_per_class=None,
    size=DEFAULT_SIZE,
    val_fraction=None,
    workers=None,
    strict=False,
    overwrite=False,
    quiet=False,
) -> Path:
    """Prepare a subset of the raw image folder ``src`` into the folder ``out``; returns ``out``.

    Classes: ``classes`` (list or comma-separated wnids), else the first ``num_classes`` sorted
    wnids, else ``random_classes`` drawn with ``seed``, else all.  At most ``per_class`` training
    and ``val_per_class`` validation images per class (the first ones in sorted file order).
    A source with a single split gives ``val_fraction`` of each class to val (else val is empty).
    Images are preprocessed as in §2 at ``size`` (S); statistics for §2 and §4.1 are stored.

    Nothing that ``prepare`` did not make is ever deleted: an ``out`` that is ``src``, contains it
    or lies inside it is refused (symlinks resolved), and so is an existing ``out`` holding
    anything but a prepared subset's own files (an empty folder is used).  If ``out`` already
    holds a subset prepared with the same arguments it is reused (after the checks of
    :func:`data.dataset.check_subset`); with other arguments, or damaged, a ValueError is raised
    unless ``overwrite``.  ``OUT.lock`` (:class:`PrepareLock`) is held from before ``out`` is
    checked until the new subset is swapped in, so a second run on the same ``out`` fails at once
    naming the first one's PID.  ``size`` must be in ``MIN_SIZE..MAX_SIZE``.  Unreadable images and entries (corrupt files, unconvertible
    pixel modes, broken symlinks, symlink loops, folders named like images, unreadable files or
    class folders) are skipped with a warning and listed in meta.json's ``skipped``; a class left
    without training images is dropped and listed in ``dropped_classes`` (``strict=True`` raises
    instead, in both cases).  Stale ``OUT.tmp-<pid>`` folders of killed runs are removed first.
    A subset with a single class, or validation images whose decoded pixels equal a training
    image's, is prepared with a warning, recorded in meta.json's ``warnings`` and
    ``duplicate_val_images``.
    """
    out = Path(out).expanduser()
    check_size(size)
    check_out_outside_src(src, out)
    args = _canonical_args(
        src, size, classes, num_classes, random_classes, seed, per_class, val_per_class, val_fraction
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with PrepareLock(out) as lock:  # from here to the swap-in, OUT is this run's alone
        reused = _check_existing_out(out, args, overwrite, quiet)
        if reused:
            return out
        return _prepare_locked(
            src,
            out,
            args,
            classes=classes,
            num_classes=num_classes,
            random_classes=random_classes,
            seed=seed,
            per_class=per_class,
            val_per_class=val_per_class,
            size=size,
            val_fraction=val_fraction,
            workers=workers,
            strict=strict,
            quiet=quiet,
            lock_fd=lock.fd,
        )


def _check_existing_out(out: Path, args: dict, overwrite: bool, quiet: bool) -> bool:
    """What may happen to an existing OUT (called with the lock held): True when it holds this
    very subset (reused); returns False when it may be written; raises ValueError otherwise.
    ``overwrite`` replaces only a prepared subset: a folder holding nothing but what ``prepare``
    writes (``meta.json`` and its arrays), so that no file of the user's is ever deleted."""
    remove_stale_tmp(out, quiet)
    if not (out.exists() or out.is_symlink()):
        return False
    if not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder; prepare writes a folder: choose another OUT")
    entries = sorted(entry.name for entry in out.iterdir())
    if not entries:  # an empty folder holds nothing to lose
        return False
    foreign = [name for name in entries if name not in PREPARED_FILES]
    if foreign or "meta.json" not in entries:
        listing = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ValueError(
            f"{out} is not a prepared subset: it holds "
            + (f"{len(foreign)} entries prepare never writes ({listing})" if foreign else "no meta.json")
            + f"; expected an empty folder or one prepared by `python -m data prepare` "
            f"({', '.join(PREPARED_FILES)}); --overwrite replaces only such a folder: choose another OUT"
        )
    try:
        old = read_meta(out).get("args")
        if old == args and not overwrite:
            check_subset(out)
    except PreparedDataError as exc:
        if not overwrite:
            raise ValueError(
                f"{out} holds a damaged prepared subset ({exc}); pass --overwrite to prepare it again"
            ) from None
        old = None
    if old == args and not overwrite:
        if not quiet:
            print(f"reusing prepared subset {out} (same arguments)", file=sys.stderr)
        return True
    if not overwrite:
        diff = sorted(k for k in set(args) | set(old or {}) if (old or {}).get(k) != args.get(k))
        raise ValueError(
            f"{out} holds a subset prepared with other arguments (differ in: "
            f"{', '.join(diff)}); choose another OUT or pass --overwrite"
        )
    return False


def _prepare_locked(
    src,
    out: Path,
    args: dict,
    *,
    classes,
    num_classes,
    random_classes,
    seed,
    per_class,
    val_per_class,
    size,
    val_fraction,
    workers,
    strict,
    quiet,
    lock_fd=None,
) -> Path:
    """The preparation itself, with OUT locked and checked (see :func:`prepare_subset`);
    ``lock_fd`` is OUT's lock, which forked decoding workers close."""
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
            val = _take_per_class([(p, wnids[label]) for p, label in val], wnids, val_per_class)
    else:
        val = []
    # entries that look like images but cannot be listed or opened as files (issue 10 item 11)
    skipped: list = []
    for split in SPLITS:
        for path, wnid, reason in tree.problems.get(split, []):
            if wnid is not None and wnid not in wnids:
                continue
            if strict:
                raise RuntimeError(f"cannot read {path}: {reason} (--strict)")
            warnings.warn(f"skipping unreadable entry {path}: {reason}", stacklevel=2)
            skipped.append({"split": split, "path": str(path), "reason": reason})
    if not train:
        raise ValueError(f"no training images selected from {src}")

    workers = (os.cpu_count() or 1) if workers is None else max(int(workers), 0)
    tmp = out.parent / f"{out.name}.tmp-{os.getpid()}"
    with _TerminateCleanly():
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        pool = None
        try:
            (tmp / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
            start = time.perf_counter()
            if workers > 1:
                context = multiprocessing.get_context()
                inherited = lock_fd if context.get_start_method() == "fork" else None  # only forks copy it
                pool = context.Pool(workers, _worker_init, (inherited,))
            stats = PixelStatistics(size)
            train_digests, val_digests = {}, {}
            train_labels = _write_split(
                tmp, "train", train, size, pool, stats, skipped, strict, quiet, train_digests
            )
            val_labels = _write_split(tmp, "val", val, size, pool, None, skipped, strict, quiet, val_digests)
            if pool is not None:
                pool.terminate()
                pool.join()
                pool = None
            if len(train_labels) == 0:
                raise ValueError(f"every selected training image of {src} was unreadable")
            names = [tree.name_of(w) for w in wnids]
            wnids, train_labels, val_labels, dropped = _drop_empty_classes(
                tmp, wnids, names, [label for _, label in train], train_labels, val_labels, strict, src
            )
            cautions, duplicates = _cannot_work(
                wnids, [tree.name_of(w) for w in wnids], val, val_digests, train_digests
            )
            np.save(tmp / "train_labels.npy", train_labels)
            np.save(tmp / "val_labels.npy", val_labels)
            eigvals, eigvecs = stats.pca()
            np.save(tmp / "mean_image.npy", stats.mean_image())
            np.save(tmp / "pca_eigvals.npy", eigvals)
            np.save(tmp / "pca_eigvecs.npy", eigvecs)
            counts = {"train": len(train_labels), "val": len(val_labels)}
            k = len(wnids)
            skipped.sort(key=lambda entry: (SPLITS.index(entry["split"]), entry["path"]))
            meta = {
                "format_version": FORMAT_VERSION,
                "source": str(tree.root.resolve()),
                "source_layout": tree.layout,
                "size": int(size),
                "counts": counts,
                "class_counts": {
                    "train": np.bincount(train_labels, minlength=k).tolist(),
                    "val": np.bincount(val_labels, minlength=k).tolist(),
                },
                "wnids": wnids,
                "class_names": [tree.name_of(w) for w in wnids],
                "dropped_classes": dropped,
                "skipped": skipped,
                "warnings": cautions,
                "duplicate_val_images": duplicates,
                "rgb_covariance": stats.covariance().tolist(),
                "args": args,
                "checksum_algorithm": CHECKSUM_ALGORITHM,
                "checksums": compute_checksums(tmp),
                "seconds": round(time.perf_counter() - start, 3),
                "preprocessing": "§2: shorter side rescaled to S (bicubic), central S x S patch; "
                "uint8 RGB (data.images: 16-bit, float, alpha... mapped as documented)",
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            (tmp / OWNER_FILE).unlink()
            check_subset(tmp)  # what was written is what a reader will accept
        except BaseException:
            if pool is not None:
                pool.terminate()
                pool.join()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with _SignalsBlocked():
            if out.exists():  # an empty folder, or a prepared subset with overwrite=True (checked above)
                old = out.parent / f"{out.name}.old-{os.getpid()}"
                os.replace(out, old)
                os.replace(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, out)
    if not quiet:
        total = counts["train"] + counts["val"]
        seconds = meta["seconds"]
        print(
            f"prepared {out}: {counts['train']} train + {counts['val']} val images, "
            f"{len(wnids)} classes, S={size}, {len(skipped)} skipped"
            + (f", {len(dropped)} classes dropped" if dropped else "")
            + f", {total / max(seconds, 1e-9):.0f} images/s",
            file=sys.stderr,
        )
    return out
