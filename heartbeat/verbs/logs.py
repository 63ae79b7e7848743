"""`heartbeat logs`: an entry's run logs, which outlive its pane (`tail` reads the pane)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from heartbeat import logs
from heartbeat.config import Config
from heartbeat.errors import RefusedError
from heartbeat.notes.notebook import Notebook, select
from heartbeat.records import frozen

SHOW_BYTES = 16 << 20  # the most of a run's end that is read to show its last lines
POLL_SECONDS = 0.25  # how often `--follow` looks for more output
CHUNK = 1 << 16


@frozen
class Run:
    index: int  # 1: the newest run, 2: the one before, …
    path: Path
    started: datetime
    size: int  # bytes kept, its rotated half included


def socket_of(config: Config, now: datetime, name: str) -> str:
    """The socket of NAME's entry: the open one, else the newest of the carry window
    (a finished or closed entry's logs are still there), else the configured socket."""
    book = Notebook(config, now.date())
    book.read_all()
    open_ones = [entry for _, entry in select(book).managed if entry.name == name]
    if open_ones:
        here = [entry for entry in open_ones if entry.socket == config.socket]
        return (here or open_ones)[0].socket
    named = [e for loaded in book.in_window() for e in loaded.note.entries if e.name == name]
    if named:
        return max(named, key=lambda e: (e.note_date, e.line)).socket
    return config.socket


def runs(config: Config, now: datetime, name: str) -> tuple[str, list[Run]]:
    """NAME's socket and its runs' logs, newest first."""
    socket = socket_of(config, now, name)
    return socket, runs_on(config, socket, name)


def runs_on(config: Config, socket: str, name: str) -> list[Run]:
    found = []
    for index, path in enumerate(reversed(logs.runs(config.state_dir, socket, name)), start=1):
        size = sum(_size(part) for part in (path, logs.rotated(path)))
        stamp = path.name.removesuffix(".log").split("-")
        when = next(word for word in reversed(stamp) if "T" in word)
        found.append(Run(index, path, datetime.strptime(when, "%Y%m%dT%H%M%S"), size))
    return found


def pick(config: Config, now: datetime, name: str, run: int) -> Run:
    """NAME's `run`-th newest run (1: the newest)."""
    return _pick(*runs(config, now, name), name, run)


def _pick(socket: str, found: list[Run], name: str, run: int) -> Run:
    if not found:
        raise RefusedError(
            f"no run log of {name} on {socket}: heartbeat keeps one for each run it starts"
        )
    if run > len(found):
        kept = f"{len(found)} run" + ("s" if len(found) > 1 else "")
        raise RefusedError(f"{name}: {kept} kept, no run {run} (heartbeat logs {name} --list)")
    return found[run - 1]


def show(config: Config, now: datetime, name: str, count: int, run: int = 1) -> list[str]:
    """The last `count` lines of NAME's `run`-th newest run."""
    chosen = pick(config, now, name, run)
    return logs.last_lines(chosen.path, count, SHOW_BYTES)


def follow(
    config: Config,
    now: datetime,
    name: str,
    count: int,
    run: int = 1,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """The last `count` lines, then each line as it is written, until interrupted.

    Following the newest run, a restart's new run is followed in turn, after a line
    that says so (as `pm2 logs` does across restarts); a log moved to `.1` at its cap
    is followed into its new file."""
    socket = socket_of(config, now, name)
    chosen = _pick(socket, runs_on(config, socket, name), name, run)
    yield from logs.last_lines(chosen.path, count, SHOW_BYTES)
    path = chosen.path
    fd = logs.open_log(path)
    os.lseek(fd, 0, os.SEEK_END)
    partial = b""
    try:
        while True:
            data = os.read(fd, CHUNK)
            if data:
                lines = (partial + data).split(b"\n")
                partial = lines.pop()
                yield from (_text(line) for line in lines)
                continue
            moved = _replaced(path, fd)
            newer = _newer_run(config, socket, name, path) if run == 1 else None
            if moved or newer:
                rest = _drain(fd) + partial  # what was written before the move
                partial = b""
                if rest:
                    yield from (_text(line) for line in rest.split(b"\n") if line)
                os.close(fd)
                if newer:
                    path = newer
                    yield f"--- {name}: a new run, {path.name}"
                fd = logs.open_log(path)
                continue
            sleep(POLL_SECONDS)
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\r").rpartition("\r")[2]


def _drain(fd: int) -> bytes:
    chunks = []
    while data := os.read(fd, CHUNK):
        chunks.append(data)
    return b"".join(chunks)


def _replaced(path: Path, fd: int) -> bool:
    """Whether the file being read is no longer the one the name holds (moved to `.1`)."""
    try:
        return path.lstat().st_ino != os.fstat(fd).st_ino
    except FileNotFoundError:
        return False  # between the move and the new file
    except OSError:
        return False


def _newer_run(config: Config, socket: str, name: str, path: Path) -> Path | None:
    newest = logs.runs(config.state_dir, socket, name)[-1:]
    return newest[0] if newest and newest[0] != path else None
