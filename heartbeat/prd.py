"""A PRD's task checklist (`- [ ]` / `- [x]`), as Ralph loops track their progress."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from heartbeat import shell
from heartbeat.errors import ShellSyntaxError
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
    """The PRD an entry works from: ralphy's `--prd FILE`, else PRD.md in its folder."""
    words: list[str] = []
    try:
        if isinstance(command, tuple):
            words = list(command)
        else:
            words = [t for t in shell.tokens(command, strict=False) if isinstance(t, str)]
    except ShellSyntaxError:
        pass
    for index, word in enumerate(words):
        found = None
        if word == "--prd" and index + 1 < len(words):
            found = words[index + 1]
        elif word.startswith("--prd="):
            found = word.removeprefix("--prd=")
        if found:
            return found if os.path.isabs(found) else os.path.join(folder, found)
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
