"""One process at a time on a folder: an exclusive lock file holding its owner's PID.

``python -m data prepare`` holds one on its OUT (``OUT.lock`` beside it, since OUT may not exist
yet and is replaced at the end) and ``python -m alexnet train`` one on its ``--out``
(``DIR/.lock``, ``alexnet/rundir.py``).  The lock is an exclusive ``fcntl.flock`` on the file,
taken without waiting, and the file holds the holder's PID so that a second process can name it.
The kernel drops a flock when its process dies (even by SIGKILL), so a lock left behind by a
dead process never blocks; the PID still written in the file is simply overwritten.  Where
``flock`` is unavailable (no ``fcntl``, or a filesystem answering ENOLCK) the PID file alone is
the lock: a PID that is no longer alive is stale and taken over.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this host)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def read_pid(path) -> int | None:
    """The PID written in the lock file ``path``, or None (missing, empty, not a number)."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def describe_holder(pid: int | None) -> str:
    """``PID 123`` for the message of a busy lock (or why a dead PID still holds it)."""
    holder = f"PID {pid}" if pid is not None else "another process"
    if pid is not None and not pid_alive(pid):  # e.g. its image-decoding workers outlived it
        holder += ", no longer running: a child process of it still holds the lock"
    return holder


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class LockBusy(RuntimeError):
    """Another process holds the lock ``path``; ``pid`` is the PID written in it (or None)."""

    def __init__(self, path, pid: int | None):
        self.path, self.pid = Path(path), pid
        super().__init__(f"{describe_holder(pid)} holds {self.path}")


class FileLock:
    """An exclusive, non-blocking lock on the file ``path`` (created if needed), whose content is
    the holder's PID while it is held.  ``acquire()`` raises what ``busy(pid)`` returns (a
    :class:`LockBusy` here; subclasses word it for their command).

    With ``remove=True`` the file is deleted on release (while still locked).  A process that
    opened it just before may then lock the deleted file, so after locking, the file is checked
    to still be the one at ``path`` and, if not, opened again."""

    def __init__(self, path, remove: bool = False):
        self.path = Path(path)
        self.remove = remove
        self._fd = None

    def acquire(self) -> FileLock:
        while True:
            fd = self._lock()
            if not self.remove or _same_file(fd, self.path):
                break
            os.close(fd)  # locked a file that its holder has just deleted: take the new one
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    @property
    def fd(self) -> int | None:
        """The lock's file descriptor while held (a forked child closes its copy: see prepare)."""
        return self._fd

    def _lock(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise self.busy(read_pid(self.path)) from None
                except OSError as exc:
                    if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                        raise
                    self._check_pid_file()  # a filesystem without flock: the PID file alone
            else:  # pragma: no cover
                self._check_pid_file()
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check_pid_file(self) -> None:
        pid = read_pid(self.path)
        if pid is not None and pid != os.getpid() and pid_alive(pid):
            raise self.busy(pid)

    def busy(self, pid: int | None) -> Exception:
        return LockBusy(self.path, pid)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if self.remove:
                os.unlink(self.path)
            else:
                os.ftruncate(self._fd, 0)  # no PID left behind; the file stays
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
