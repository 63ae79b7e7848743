"""Reading and writing files safely: atomic replace, exclusive create, the lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import stat
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from heartbeat.errors import NoteError, StateError
from heartbeat.records import frozen, mutable

if TYPE_CHECKING:
    import ctypes


@frozen
class Stamp:
    """Enough of a file's stat to tell whether someone saved it since we read it."""

    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path, dir_fd: int | None = None) -> Stamp | None:
        """The stamp of `path` (of its name in the folder `dir_fd`, when given, without
        following a link)."""
        try:
            if dir_fd is None:
                st = os.stat(path)
            else:
                st = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def same_file(self, other: Stamp) -> bool:
        """The same file with the same content stamp (a rename changes only ctime)."""
        return (self.inode, self.size, self.mtime_ns) == (other.inode, other.size, other.mtime_ns)


class NotPrivate(OSError):
    """A file heartbeat keeps for itself that is not the user's alone."""


MAX_PRIVATE_BYTES = 64 << 20  # past this a state file is not heartbeat's


def read_private(path: Path) -> bytes:
    """A file of the state folder: opened without following a link and without
    blocking (a FIFO swapped in is refused, never waited on), and read only when it is
    a regular file of the user's that nobody else may write. FileNotFoundError when it
    is not there, NotPrivate when it must not be trusted."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotPrivate(errno.EPERM, "not a regular file", str(path))
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise NotPrivate(errno.EPERM, "not yours alone", str(path))
        if info.st_size > MAX_PRIVATE_BYTES:
            raise NotPrivate(errno.EFBIG, "too large", str(path))
        chunks = []
        while block := os.read(fd, 1 << 20):
            chunks.append(block)
        return b"".join(chunks)
    finally:
        os.close(fd)


# Editors and sync tools that save in place truncate the note and write it in one or
# several writes, milliseconds apart: a note is taken as whole once it has been still for
# longer than such a pause.
QUIET_NS = 50_000_000
# How long the note swapped out is watched after the swap: a writer that was between two
# writes when we swapped writes its next chunk into that file, which we must put back.
SETTLE_SECONDS = 0.03
BUSY = "being written by another program: heartbeat writes its lines at the next check"


@mutable(eq=False, repr=False)
class Patience:
    """How long one run may still wait for notes to be still (all its notes together),
    so that a note written without pause delays a check by a second at most."""

    seconds: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds` if there is time left for it; False (no sleep) if not."""
        if seconds > self.seconds:
            return False
        self.seconds -= seconds
        self.sleep(seconds)
        return True


def read_text(
    path: Path,
    label: str,
    limit: int,
    patience: Patience | None = None,
    opened: Opener | None = None,
) -> tuple[str, Stamp]:
    """A note's text and the stamp of what was read; invalid UTF-8 or more than `limit`
    bytes is a NoteError. With `patience`, only a still note is read (`read_still`).
    `opened` opens it (in the notes folder opened once, say) and may refuse what it
    opened by raising."""
    if patience is None:
        data, stamp = _read_bytes(path, label, limit, opened)
    else:
        data, stamp = read_still(path, label, limit, patience, opened=opened)
    return _decoded(data, label), stamp


def read_still(
    path: Path,
    label: str,
    limit: int,
    patience: Patience,
    known: bytes | None = None,
    opened: Opener | None = None,
) -> tuple[bytes, Stamp]:
    """The note's bytes once it has been still for QUIET_NS: not changed since then by its
    ctime, or seen the same, bytes and stamp, at two looks that far apart. A note that is
    empty or ends mid-line is what a writer between truncating and its last write leaves,
    so it is always watched, unless it is what an earlier look read (`known`: a note that
    never ends in a newline). NoteError (BUSY) when it does not keep still in time."""
    earlier: tuple[bytes, Stamp] | None = None
    while True:
        data, stamp = _read_bytes(path, label, limit, opened)
        if earlier == (data, stamp):
            return data, stamp
        unfinished = data != known and not data.endswith((b"\n", b"\r"))
        age = time.time_ns() - max(stamp.ctime_ns, stamp.mtime_ns)
        if earlier is None and not unfinished and age >= QUIET_NS:
            return data, stamp
        # A clock ahead of ours (a network file system) makes the age mean nothing:
        # then the note is watched for the whole quiet time.
        pause = QUIET_NS if unfinished or earlier is not None or age < 0 else QUIET_NS - age
        if not patience.wait(pause / 1e9):
            raise NoteError(label, 1, BUSY)
        earlier = data, stamp


Opener = Callable[[Path], int]
# Without blocking (a FIFO swapped in where the note was would hang the check), and
# never through a link.
NOTE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


def _read_bytes(
    path: Path, label: str, limit: int, opened: Opener | None = None
) -> tuple[bytes, Stamp]:
    fd = opened(path) if opened is not None else os.open(path, NOTE_FLAGS)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())  # of the file read, even if a save replaces it
        if not stat.S_ISREG(st.st_mode):
            raise NoteError(label, 1, "not a regular file: left alone")
        stamp = Stamp(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if stamp.size > limit:
            raise NoteError(
                label,
                1,
                f"{stamp.size:,} bytes, more than heartbeat reads ({limit:,}): left alone",
            )
        data = handle.read()
    if len(data) != stamp.size:  # written while we read: the stamp is not of these bytes
        stamp = Stamp(stamp.inode, len(data), -1, -1)
    return data, stamp


def _decoded(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise NoteError(label, line, "not valid UTF-8; heartbeat leaves this note alone") from None


def rewrite(
    path: Path,
    label: str,
    limit: int,
    build: Callable[[str], str],
    patience: Patience,
    known: str | None = None,
    attempts: int = 20,
) -> None:
    """Replace the file with `build(its text)`, atomically, keeping any save made meanwhile.

    Only a still note is built on (`read_still`): one half written in place is not. The
    new text goes to a temp file in the same folder (fsynced, with the file's mode) and
    is swapped in. Where the system can exchange two names atomically (Linux), the file
    swapped out is compared, by its bytes, with what the text was built on, at once and
    again SETTLE_SECONDS later: a writer that saves in place keeps the inode, and may
    keep the size and the mtime too, and one that was between two writes writes on into
    the file swapped out. If it differs, it is swapped back and the text is built again
    on it. `build` must be idempotent for that: building on its own output changes
    nothing. `known` is the text an earlier look read, if any.
    """
    known_bytes = known.encode("utf-8") if known is not None else None
    data, expected = read_still(path, label, limit, patience, known_bytes)
    for _ in range(attempts):
        text = _decoded(data, label)
        new_text = build(text)
        if new_text == text:
            return
        tmp, ours = _temp_copy(path, new_text)
        try:
            if Stamp.of(path) != expected:  # saved since we read: read again
                data, expected = read_still(path, label, limit, patience, known_bytes)
                continue
            if not _exchange(tmp, path):
                os.replace(tmp, path)  # no exchange here: the check above is the guard
                _fsync_dir(path.parent)
                return
            if _unchanged(tmp, data) and _settled(tmp, data):
                _fsync_dir(path.parent)
                return
            # A save landed between our look and the exchange, or after it: put it back
            # at once, so that nobody reads our stale text, then build on it.
            _put_back(tmp, path, ours)
            data, expected = read_still(path, label, limit, patience, known_bytes)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    raise NoteError(label, 1, "the note kept changing while heartbeat wrote to it")


def _unchanged(swapped_out: Path, data: bytes) -> bool:
    """Whether the file swapped out holds exactly the bytes the edit was built on."""
    try:
        with open(swapped_out, "rb") as handle:
            return handle.read(len(data) + 1) == data
    except FileNotFoundError:  # our temp name removed by someone: nothing to put back
        return True


def _settled(swapped_out: Path, data: bytes) -> bool:
    """`_unchanged`, a moment later: an in-place writer's next chunk has landed by then."""
    time.sleep(SETTLE_SECONDS)
    return _unchanged(swapped_out, data)


def _put_back(tmp: Path, path: Path, ours: int) -> None:
    """Swap the displaced file back under the note's name. If a rename editor saved over
    our text meanwhile, its file came out instead of ours: its save is newer than the
    one we displaced, so it goes back under the name and the older one is dropped, as
    the editor's save would have dropped it."""
    _exchange(tmp, path)
    with contextlib.suppress(FileNotFoundError):
        if os.stat(tmp).st_ino != ours:
            _exchange(tmp, path)


def _temp_copy(path: Path, text: str) -> tuple[Path, int]:
    """A temp file beside `path` holding `text`, and its inode (to know it again)."""
    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = _mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fchmod(handle.fileno(), mode)
        os.fsync(handle.fileno())
        inode = os.fstat(handle.fileno()).st_ino
    return Path(tmp), inode


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two names atomically (Linux renameat2); False where that is not possible."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    import ctypes

    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP):
        return False  # a file system or kernel without it
    raise OSError(error, os.strerror(error), str(second))


@cache
def _libc() -> ctypes.CDLL:
    import ctypes  # here: a quiet check writes nothing, so needs neither ctypes nor tempfile

    return ctypes.CDLL(None, use_errno=True)


def _mkstemp(dir: Path, prefix: str, suffix: str) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(dir=dir, prefix=prefix, suffix=suffix)


def create_exclusively(path: Path, text: str, mode: int = 0o600) -> bool:
    """Create `path` with `text`, complete or not at all; False when it already exists.

    A link to a finished temp file is both atomic and exclusive (like O_EXCL), so a
    launch and a check at midnight cannot both create the note.
    """
    fd, tmp = _mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    write_private_bytes(path, text.encode("utf-8"))


def write_private_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """`write_private` for bytes; a cache that can be rebuilt need not be `durable`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = _mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
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
def locked(state_dir: Path, wait: bool, within: float | None = None) -> Iterator[bool]:
    """Hold heartbeat's lock; yields False when another run holds it, at once unless
    `wait`, else after `within` seconds (when given) of waiting."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise StateError(f"cannot use the state folder {state_dir}: {error.strerror}") from None
    try:
        if not wait:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        elif within is not None:
            if not _flock_within(fd, within):
                yield False
                return
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)


def lock_holder(state_dir: Path) -> int | None:
    """The process that holds heartbeat's lock, as /proc/locks tells it (Linux), found
    without writing anything; None when nobody holds it or the system does not say."""
    try:
        found = os.stat(state_dir / "lock", follow_symlinks=False)
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # `1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF`; waiters carry a `->`.
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        major, minor = os.major(found.st_dev), os.minor(found.st_dev)
        ours = (f"{major:02x}:{minor:02x}:{found.st_ino}", f"{major}:{minor}:{found.st_ino}")
        if fields[5] in ours and fields[4].isdigit():
            return int(fields[4])
    return None


class _GaveUp(Exception):
    pass


def _flock_within(fd: int, seconds: float) -> bool:
    """Take the lock, waiting at most `seconds`: a timer's signal ends the wait."""

    def give_up(signum: int, frame: object) -> None:
        raise _GaveUp

    previous = signal.signal(signal.SIGALRM, give_up)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _GaveUp:  # also when it came just after the lock: the lock goes with the fd
        return False
    finally:
        signal.signal(signal.SIGALRM, previous)
    return True
