"""A PRD's task checklist (`- [ ]` / `- [x]`), as loops over a PRD track their progress."""

from __future__ import annotations

import os
import re
import stat

from heartbeat import agents
from heartbeat.model import Command
from heartbeat.records import frozen

_TASK = re.compile(r"\s{0,3}[-*+]\s+\[([ xX])\]\s+(.*)")
_FENCE = re.compile(r"\s{0,3}(`{3,}|~{3,})")
DEFAULT_NAME = "PRD.md"


@frozen
class Progress:
    done: int
    total: int
    ticked: frozenset[str]  # the tasks' texts that are ticked

    def describe(self) -> str:
        return f"PRD {self.done}/{self.total}"


def progress(text: str) -> Progress:
    """The checklist's progress; tasks inside fenced code blocks do not count."""
    done, total, ticked, fence = 0, 0, set(), None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if opening:
            marker = opening[1][0] * 3
            if fence is None:
                fence = marker
            elif opening[1].startswith(fence):
                fence = None
            continue
        task = _TASK.fullmatch(line) if fence is None else None
        if task:
            total += 1
            if task[1] in "xX":
                done += 1
                ticked.add(task[2].strip())
    return Progress(done, total, frozenset(ticked))


def path_for(command: Command, folder: str) -> str | None:
    """The PRD an entry works from: the one its command names, else PRD.md in its folder."""
    named = agents.prd_named(command)
    if named:
        return named if os.path.isabs(named) else os.path.join(folder, named)
    default = os.path.join(folder, DEFAULT_NAME)
    return default if os.path.isfile(default) else None


def read(path: str | None) -> Progress | None:
    """The PRD's progress: a regular file only, opened without following a link or
    blocking (a FIFO where the PRD was would hang the check)."""
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return progress(os.read(fd, 1 << 20).decode("utf-8", "replace"))
    except OSError:
        return None
    finally:
        os.close(fd)
