"""A PRD's task checklist (`- [ ]` / `- [x]`), as loops over a PRD track their progress."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from heartbeat import agents
from heartbeat.model import Command

_TASK = re.compile(r"\s{0,3}[-*+]\s+\[([ xX])\]\s+(.*)")
_FENCE = re.compile(r"\s{0,3}(`{3,}|~{3,})")
DEFAULT_NAME = "PRD.md"


@dataclass(frozen=True)
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
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return progress(handle.read(1 << 20))
    except OSError:
        return None
