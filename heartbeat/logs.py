"""Run logs: every session heartbeat starts keeps its output in a file of its own run, in
the state folder, so that a run's last words outlive its pane.

`logs/NAME-MARK-YYYYmmddTHHMMSS.log` (MARK: the entry's socket and name, hashed, as its
exit files have it; `-2`, `-3`… after the time when one run start already has that name),
and `….log.1`, the older half of a run that passed the size cap. tmux's `pipe-pane` feeds
the pane's output to heartbeat's writer (heartbeat/runlog.py); this module names, lists,
reads and prunes those files.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
import sys
from datetime import datetime
from pathlib import Path

from heartbeat import state

FOLDER = "logs"
ROTATED = ".1"
_NAME = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)-(?P<mark>[0-9a-f]{12})-"
    r"(?P<when>\d{8}T\d{6})(?:-(?P<seq>\d+))?\.log(?:\.1)?"
)
DAY_SECONDS = 86400
REASON_BYTES = 64 << 10  # of a log's end, read for why its run stopped
# A run's start second cannot have more logs than this; past it the log is not kept.
MOST_PER_SECOND = 100


def folder(state_dir: Path) -> Path:
    return state_dir / FOLDER


def _prefix(socket: str, name: str) -> str:
    return f"{name}-{state.entry_mark(socket, name)}-"


def new_log(state_dir: Path, socket: str, name: str, now: datetime) -> Path:
    """A new, empty log for a run of NAME starting now, created without following a link
    (a link planted where it would go is left alone, and the next name taken)."""
    where = folder(state_dir)
    where.mkdir(mode=0o700, exist_ok=True)
    dir_fd = _open_folder(where)
    try:
        base = f"{_prefix(socket, name)}{now:%Y%m%dT%H%M%S}"
        for seq in range(1, MOST_PER_SECOND + 1):
            file = f"{base}.log" if seq == 1 else f"{base}-{seq}.log"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                os.close(os.open(file, flags, 0o600, dir_fd=dir_fd))
            except FileExistsError:
                continue
            return where / file
    finally:
        os.close(dir_fd)
    raise FileExistsError(errno.EEXIST, "too many runs started in one second", str(where))


def _open_folder(where: Path) -> int:
    """The logs folder, opened without following a link, and only when it is the user's
    and nobody else may write in it (the state folder's rule)."""
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    info = os.fstat(fd)
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        os.close(fd)
        raise PermissionError(errno.EPERM, "not a folder of yours alone", str(where))
    return fd


def pipe_command(path: Path, keep_ansi: bool, max_bytes: int) -> str:
    """What tmux's `pipe-pane` runs (through /bin/sh): the writer, every word quoted for
    that shell (a state folder may hold spaces, quotes or `$`). `-I`: the writer imports
    heartbeat from where this Python installed it, never from the pane's folder or the
    environment's PYTHONPATH."""
    words = [sys.executable, "-I", "-m", "heartbeat.runlog", "--max-bytes", str(max_bytes)]
    if keep_ansi:
        words.append("--keep-ansi")
    return "exec " + shlex.join([*words, str(path)])  # exec: no shell waits beside it


def prune(state_dir: Path, now: datetime, carry_days: int) -> int:
    """Remove the logs not written to for `carry_days` days (at least one), as the notes'
    carry window forgets entries; returns how many files went. Run at a run's start,
    never by a quiet check."""
    where = folder(state_dir)
    cutoff = now.timestamp() - max(1, carry_days) * DAY_SECONDS
    removed = 0
    try:
        found = list(os.scandir(where))
    except OSError:
        return 0
    for item in found:
        if not _NAME.fullmatch(item.name):
            continue  # not a run log: never heartbeat's to remove
        try:
            info = item.stat(follow_symlinks=False)
            if info.st_uid != os.getuid() or info.st_mtime >= cutoff:
                continue
            if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
                os.unlink(item.path)
                removed += 1
        except OSError:
            continue
    return removed


def runs(state_dir: Path, socket: str, name: str) -> list[Path]:
    """NAME's run logs on that socket, oldest first (by when each run started)."""
    prefix = _prefix(socket, name)
    try:
        names = os.listdir(folder(state_dir))
    except OSError:
        return []
    order = []
    for file in names:
        match = _NAME.fullmatch(file)
        if match and file.startswith(prefix) and not file.endswith(ROTATED):
            order.append((match["when"], int(match["seq"] or 1), file))
    return [folder(state_dir) / file for *_, file in sorted(order)]


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ROTATED)


def open_log(path: Path) -> int:
    """A log opened for reading without following a link, when it is a regular file of
    the user's; OSError otherwise (FileNotFoundError when it is not there)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        raise PermissionError(errno.EPERM, "not a regular file of yours", str(path))
    return fd


def end_of(path: Path, limit: int) -> bytes:
    """The last `limit` bytes of a run's output: its log, after its rotated half when
    the log holds fewer."""
    parts: list[bytes] = []
    want = limit
    for file in (path, rotated(path)):
        try:
            fd = open_log(file)
        except OSError:
            continue
        try:
            size = os.fstat(fd).st_size
            start = max(0, size - want)
            data = os.pread(fd, size - start, start)
        finally:
            os.close(fd)
        parts.insert(0, data)
        want -= len(data)
        if want <= 0:
            break
    return b"".join(parts)


def lines_of(data: bytes, strip_ansi: bool = False) -> list[str]:
    """A log's bytes as lines, blank lines at the end dropped; a carriage return (a
    progress bar redrawn in place) keeps what was drawn last."""
    if strip_ansi:
        from heartbeat.runlog import strip

        data = strip(data)
    text = data.decode("utf-8", "replace")
    lines = [line.rstrip("\r").rpartition("\r")[2] for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def last_lines(path: Path, count: int, limit: int, strip_ansi: bool = False) -> list[str]:
    """The last `count` lines of a run's output, read from its last `limit` bytes."""
    data = end_of(path, limit)
    lines = lines_of(data, strip_ansi)
    if len(data) >= limit and lines:
        lines.pop(0)  # cut off at the limit: not a whole line
    return lines[-count:]
