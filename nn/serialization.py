"""Writing files so that a crash never leaves a half-written one.

``atomic_write`` is the one rule every file this project writes goes through: write to a
temporary file in the destination folder, flush it to disk, and only then rename it over the
destination, so a reader sees either the old file or the complete new one. If anything fails
on the way, the temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO

import numpy as np


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", tmp_path: str | os.PathLike | None = None
) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit, fsync it and rename it to ``path``.

    ``tmp_path``: the temporary file's name (in ``path``'s folder, so the rename is atomic); by
    default a unique ``<name>.<random>.tmp``. Callers that clean up temporaries left by a killed
    process give a fixed pattern here.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if tmp_path is None:
        fd, tmp_path = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        handle = os.fdopen(fd, mode)
    else:
        tmp_path = os.fspath(tmp_path)
        handle = open(tmp_path, mode)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise


def save_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> str:
    """``np.savez`` of ``arrays`` (a dict) to ``path`` through ``atomic_write``."""
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)
    return os.fspath(path)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an .npz file, as a dict (the file is closed afterwards)."""
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
