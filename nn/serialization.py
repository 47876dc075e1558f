"""Saving arrays so that a crash never leaves a half-written file.

``save_npz_atomic`` writes to a temporary file in the destination folder,
flushes it to disk and only then renames it over the destination: a reader sees
either the old file or the complete new one.
"""
import os
import tempfile

import numpy as np


def save_npz_atomic(path, arrays):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
    return path


def load_npz(path):
    """Every array of an .npz file, as a dict (the file is closed afterwards)."""
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
