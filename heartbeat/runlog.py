"""The run log's writer: what tmux's `pipe-pane` feeds a session's output to.

    python -I -m heartbeat.runlog [--keep-ansi] [--max-bytes N] PATH

It reads the pane's output on stdin until tmux closes the pipe (the pane is gone) and
appends it to PATH, a file in a folder of the user's alone, opened without following a
link. It runs for as long as the agent does, beside every session heartbeat starts, so
it imports nothing beyond the standard library's basics, works on bytes (an agent may
print anything: nothing is decoded), and never stops reading because a write failed: a
writer that died would leave tmux's pipe to fill, and the log to end early.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import stat
from collections.abc import Sequence

DEFAULT_MAX_BYTES = 4 << 20
CHUNK = 1 << 16
# Terminal escapes, as ECMA-48 defines them: CSI (colours, cursor moves), OSC (titles,
# links; ended by BEL or ST), the other two-byte escapes, and character-set choices.
# Hand-written: the packages that strip ANSI codes work on text, not bytes, and would
# add an import to a process that runs beside every agent.
ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    rb"|\x1b[PX^_][^\x1b]*\x1b\\"
    rb"|\x1b[()*+][0-~]"
    rb"|\x1b[@-Z\\-_=>78]"
)
# An escape cut off at the end of a chunk: held back until the next chunk completes it.
_OPEN_ESCAPE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*|[()*+])?$")
_HELD_AT_MOST = 4096  # an escape this long is no escape: written out as it is
_LINE_END_WITHIN = 4096  # how far past its cap a log is written to end its last line


def strip(data: bytes) -> bytes:
    """The bytes without terminal escapes, and with the terminal's CR LF as LF."""
    return ANSI.sub(b"", data).replace(b"\r\n", b"\n")


class Log:
    """The file a run's output goes to, kept under `max_bytes` by moving it to `PATH.1`
    (one generation kept) when the next write would pass the cap."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.folder, self.name = os.path.split(os.path.abspath(path))
        self.max_bytes = max(1, max_bytes)
        self.dir_fd = _open_folder(self.folder)
        self.fd = -1
        self.size = 0
        self.at_line_start = True  # the last byte written ended a line
        self._open()

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.name, flags | os.O_NONBLOCK, 0o600, dir_fd=self.dir_fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            os.close(fd)
            raise PermissionError(errno.EPERM, "not a regular file of yours", self.name)
        os.set_blocking(fd, True)
        self.fd, self.size = fd, info.st_size

    def write(self, data: bytes) -> None:
        """Append; past the cap the file moves to `.1` and a new one starts. Each file
        starts with a whole line: it is written past its cap to end the line under way
        when that line ends soon."""
        if len(data) > 2 * self.max_bytes:
            # More than both files hold: only its end is kept, from a line's start.
            data = data[-2 * self.max_bytes :]
            data = data[data.find(b"\n", 0, _LINE_END_WITHIN) + 1 :]
        while data:
            room = self.max_bytes - self.size
            if room <= 0:
                # Full at a chunk's end within a line: that line ends here, when it ends
                # soon, so that the next file starts with a whole line.
                end = 0 if self.at_line_start else data.find(b"\n", 0, _LINE_END_WITHIN) + 1
                if end:
                    self._write(data[:end])
                    data = data[end:]
                if not self._rotate():
                    break
                continue
            if len(data) <= room:
                break
            end = data.find(b"\n", room - 1, room + _LINE_END_WITHIN) + 1 or room
            self._write(data[:end])
            data = data[end:]
            if not self._rotate():
                break
        self._write(data)

    def _write(self, data: bytes) -> None:
        if data:
            self.at_line_start = data.endswith(b"\n")
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            self.size += written
            view = view[written:]

    def _rotate(self) -> bool:
        """Move the file to `.1` and start a new one; False when it cannot be moved (the
        file is then appended to past its cap)."""
        try:
            os.rename(self.name, self.name + ".1", src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        except OSError:
            return False
        os.close(self.fd)
        self.fd = -1
        self._open()
        return True


def _open_folder(folder: str) -> int:
    """The log's folder, opened without following a link, and only when it is the user's
    and nobody else may write in it (as the state folder it is in)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    info = os.fstat(fd)
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        os.close(fd)
        raise PermissionError(errno.EPERM, "not a folder of yours alone", folder)
    return fd


def pump(source: int, log: Log | None, keep_ansi: bool) -> None:
    """Copy `source` into the log until its end; a write that fails loses that chunk,
    never the rest of the run."""
    held = b""
    while True:
        try:
            chunk = os.read(source, CHUNK)
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            break
        if log is None:
            continue  # no log to write: the pipe is still drained
        data = held + chunk
        held = b""
        if not keep_ansi:
            cut = _OPEN_ESCAPE.search(data, max(0, len(data) - _HELD_AT_MOST))
            if cut is not None:
                data, held = data[: cut.start()], data[cut.start() :]
            if data.endswith(b"\r"):
                data, held = data[:-1], data[-1:] + held  # its LF may come next
            data = strip(data)
        if data:
            with contextlib.suppress(OSError):  # a full disk loses this chunk alone
                log.write(data)
    if log is not None and held:
        with contextlib.suppress(OSError):
            log.write(held if keep_ansi else strip(held))


def main(argv: Sequence[str]) -> None:
    # The end of the pipe is the end of the run; a hang-up from a closing terminal or
    # server is not, while there is output left to read.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_ansi, max_bytes, words = False, DEFAULT_MAX_BYTES, list(argv)
    path = None
    while words:
        word = words.pop(0)
        if word == "--keep-ansi":
            keep_ansi = True
        elif word == "--max-bytes" and words:
            with contextlib.suppress(ValueError):
                max_bytes = int(words.pop(0))
        else:
            path = word
    log = None
    if path is not None:
        try:
            log = Log(path, max_bytes)
        except OSError:
            log = None  # an unsafe or missing place: the output is not kept
    pump(0, log, keep_ansi)  # drained even without a log: tmux's pipe must not fill


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
