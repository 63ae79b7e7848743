"""Reading and writing files safely: atomic replace, exclusive create, the lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from heartbeat.errors import NoteError, StateError


@dataclass(frozen=True)
class Stamp:
    """Enough of a file's stat to tell whether someone saved it since we read it."""

    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_text(path: Path, label: str, limit: int) -> tuple[str, Stamp | None]:
    """A note's text and stamp; invalid UTF-8 or more than `limit` bytes is a NoteError."""
    stamp = Stamp.of(path)
    if stamp is not None and stamp.size > limit:
        raise NoteError(
            label,
            1,
            f"{stamp.size / 2**20:.1f} MB, more than heartbeat reads ({limit / 2**20:.0f} MB): "
            "left alone",
        )
    data = path.read_bytes()
    try:
        return data.decode("utf-8"), stamp
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise NoteError(label, line, "not valid UTF-8; heartbeat leaves this note alone") from None


class Changed(Exception):
    """The file changed after it was read: read it again and redo the edit."""


def replace_atomically(path: Path, text: str, expected: Stamp | None) -> None:
    """Write `text` to `path` through a temp file and rename, keeping the file's mode.

    Raises Changed when the file is no longer what was read (`expected`).
    """
    data = text.encode("utf-8")
    mode = os.stat(path).st_mode & 0o7777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        if Stamp.of(path) != expected:
            raise Changed(str(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def create_exclusively(path: Path, text: str, mode: int = 0o600) -> bool:
    """Create `path` with `text`, complete or not at all; False when it already exists.

    A link to a finished temp file is both atomic and exclusive (like O_EXCL), so a
    launch and a check at midnight cannot both create the note.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return True


def write_private(path: Path, text: str) -> None:
    """Atomically write a machine-owned file (state), readable by the user alone."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(state_dir: Path, wait: bool) -> Iterator[bool]:
    """Hold heartbeat's lock; yields False (without waiting) when another run holds it."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise StateError(f"cannot use the state folder {state_dir}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
