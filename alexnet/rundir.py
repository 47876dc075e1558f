"""The output folder of a training run (``train --out DIR``): one run per folder, one process per run.

``RunDir(out).open(resume=..., overwrite=...)`` does, in this order, before any data is read:

1. **writable**: creates ``DIR`` (and its parents) and a probe file in it, so that an
   unwritable folder fails at once in one line instead of at the first save an epoch later;
2. **lock**: an exclusive ``fcntl.flock`` on ``DIR/.lock``, held until ``close()``, with this
   process's PID written in the file. A second run on the same folder fails at once, naming
   the PID that holds it. The kernel drops a flock when its process dies (even by SIGKILL), so a
   lock left behind by a dead run never blocks; the PID still written in the file is then simply
   overwritten. Where ``flock`` is unavailable (no ``fcntl``, or a filesystem answering ENOLCK)
   the PID file alone is the lock: a PID that is no longer alive is stale and taken over;
3. **leftovers**: temporary files of a save that was killed half-way (``checkpoint.npz.*.tmp``,
   ``best.npz.*.tmp``, ``log.jsonl.tmp``, ``curves.png.tmp.png``, the write probe) are removed. Only
   these names, only in ``DIR``, and only once the lock is held (so never another run's);
4. **an existing run**: a folder holding ``checkpoint.npz``, ``best.npz`` or ``log.jsonl`` is
   refused unless the run continues it (``--resume`` of ``DIR/checkpoint.npz``) or ``--overwrite``
   was given. ``--overwrite`` leaves the old run's files where they are until the new run is about
   to write its first file (``before_write()``): then they are all moved (atomic renames in the same
   folder) into ``DIR/overwritten-<UTC time>/``, so the folder never mixes two runs, and that folder
   is deleted once the new run's first checkpoint is written (``saved()``). A new run that fails or
   is killed before its first save leaves the old run untouched; one killed between the move and
   the checkpoint leaves the old files in ``overwritten-<time>/``, where they can be moved back.

Everything here touches files, so under MPI only rank 0 builds a ``RunDir``; the trainer accepts
``run_dir=None`` on the other ranks. ``saving(path)`` turns an ``OSError`` while writing ``path``
(disk full, file too large, permission lost) into ``SaveFailed``: one line naming the file and the
cause. The atomic writers (``nn.save_npz_atomic``, the log's and the figure's temporary files)
leave the previous file as it was.
"""

import contextlib
import errno
import os
import shutil
import sys
import time
from pathlib import Path

from data.locking import (
    FileLock,
    describe_holder,
    fcntl,  # noqa: F401  (the module the lock calls; patched to test the fallback)
)

#: Files that make a folder hold a run (curves.png alone can be redrawn from nothing).
RUN_FILES = ("checkpoint.npz", "best.npz", "log.jsonl")
#: Everything a run writes into its folder (moved aside together by --overwrite).
OUTPUT_FILES = RUN_FILES + ("curves.png",)
#: Temporary names of our own atomic writers (nn.save_npz_atomic, Trainer.write_log, plot_curves,
#: the write probe). Nothing else is ever removed.
TEMPORARY_PATTERNS = (
    "checkpoint.npz.*.tmp",
    "best.npz.*.tmp",
    "log.jsonl.tmp",
    "curves.png.tmp.png",
    ".write-probe-*",
)
LOCK_NAME = ".lock"
ASIDE_PREFIX = "overwritten-"


class RunDirError(RuntimeError):
    """The output folder cannot be used; the message is one line for the user."""


class SaveFailed(RuntimeError):
    """Writing ``path`` failed (``error``: the OSError); the previous file is left intact."""

    def __init__(self, path, error):
        cause = error.strerror or str(error)
        if error.errno in errno.errorcode:
            cause += f" ({errno.errorcode[error.errno]})"
        super().__init__(
            f"could not write {path}: {cause}; the previous {Path(path).name} (if any) is left as it was"
        )
        self.path, self.error = Path(path), error


@contextlib.contextmanager
def saving(path):
    """``with saving(path): write(path)``: an OSError becomes SaveFailed naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise SaveFailed(path, exc) from exc


def check_writable(out):
    """Create ``out`` and a probe file in it (then remove it); RunDirError in one line if impossible."""
    out = Path(out)
    probe = out / f".write-probe-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"probe\n")
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RunDirError(
            f"--out {out} is not writable: {exc.strerror or exc} "
            f"(choose another --out or fix its permissions)"
        ) from exc
    return out


class RunLock(FileLock):
    """An exclusive lock on a run folder: flock on ``folder/.lock``, whose content is the holder's
    PID (``data.locking.FileLock``, shared with ``python -m data prepare``)."""

    def __init__(self, folder):
        super().__init__(Path(folder) / LOCK_NAME)

    def busy(self, pid):
        return RunDirError(
            f"{self.path.parent} is in use by another training run ({describe_holder(pid)} holds "
            f"{self.path}); wait for it to finish, stop it, or choose another --out"
        )


def stale_temporaries(out):
    """Files in ``out`` (not below it) whose names match TEMPORARY_PATTERNS."""
    out = Path(out)
    found = {p for pattern in TEMPORARY_PATTERNS for p in out.glob(pattern)}
    return sorted(p for p in found if p.is_file() and not p.is_symlink() and p.parent == out)


def remove_stale_temporaries(out):
    """Remove the leftovers of interrupted saves in ``out``; returns their names. Call with the lock held."""
    removed = []
    for path in stale_temporaries(out):
        try:
            path.unlink()
            removed.append(path.name)
        except FileNotFoundError:
            pass
    return removed


def existing_run_files(out):
    return [name for name in RUN_FILES if (Path(out) / name).exists()]


def continues_run(out, resume):
    """True when ``--resume`` continues the run held in ``out`` (its own checkpoint.npz)."""
    if not resume:
        return False
    if resume == "auto":
        return True
    return Path(resume).expanduser().resolve() == (Path(out) / "checkpoint.npz").resolve()


def move_aside(out):
    """Move the run files of ``out`` into a new ``out/overwritten-<UTC time>/`` (renames only)."""
    out = Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    aside = out / f"{ASIDE_PREFIX}{stamp}"
    suffix = 0
    while aside.exists():
        suffix += 1
        aside = out / f"{ASIDE_PREFIX}{stamp}-{suffix}"
    aside.mkdir()
    for name in OUTPUT_FILES:
        if (out / name).exists():
            os.replace(out / name, aside / name)
    return aside


class RunDir:
    """The guarded output folder of one training run (see the module docstring)."""

    def __init__(self, out):
        self.out = Path(out).expanduser()
        self.lock = RunLock(self.out)
        self.aside = None
        self.pending_overwrite = False
        self.removed = []

    def open(self, resume=None, overwrite=False):
        """Check, lock and clean ``out``; refuse to replace a run unless ``overwrite``."""
        continuing = continues_run(self.out, resume)
        if overwrite and continuing:
            raise RunDirError(
                "--overwrite starts a new run and --resume continues the old one: give only one"
            )
        check_writable(self.out)
        self.lock.acquire()
        try:
            self.removed = remove_stale_temporaries(self.out)
            present = existing_run_files(self.out)
            if present and not continuing:
                if not overwrite:
                    raise RunDirError(
                        f"{self.out} already holds a training run ({', '.join(present)}): use --resume to "
                        f"continue it, or --overwrite (or another --out) to start afresh"
                    )
                self.pending_overwrite = True
        except BaseException:
            self.lock.release()
            raise
        return self

    def before_write(self):
        """The new run is about to write: with --overwrite, move the old run's files aside now."""
        if self.pending_overwrite:
            self.aside = move_aside(self.out)
            self.pending_overwrite = False

    def saved(self):
        """The new run has written its first checkpoint: the files --overwrite moved aside can go."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None

    def close(self):
        self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


@contextlib.contextmanager
def guarded_out(out, resume=None, overwrite=False, write=True):
    """``with guarded_out(args.out, args.resume, args.overwrite, write=comm.is_root) as run_dir:``
    the opened RunDir (checked, locked, cleaned; closed at the end) where this process writes the
    run's files, None where it does not (the other MPI ranks)."""
    if not write:
        yield None
        return
    with RunDir(out).open(resume=resume, overwrite=overwrite) as run_dir:
        if run_dir.removed:
            print(
                f"removed leftovers of an interrupted save from {out}: {', '.join(run_dir.removed)}",
                file=sys.stderr,
            )
        yield run_dir
