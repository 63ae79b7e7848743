"""OpenAI's Codex CLI (`codex exec ...`): how its command is recognised, how heartbeat
launches it, and where it writes why it stopped."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import datetime

from heartbeat.agents.command import invocation
from heartbeat.model import Command

NAME = "codex"
PROGRAM = "codex"
PROGRAMS = frozenset({PROGRAM})
PROVIDER: str | None = "openai"  # Codex's quota and login are OpenAI's
# Codex's own log, where it says why it stopped (a login that failed to refresh, a
# usage limit) when the pane does not.
LOG = (".codex", "log", "codex-tui.log")
LOG_FRESH_SECONDS = 1800  # older lines are about another run
LOG_BYTES_READ = 16384


def recognises(command: Command) -> bool:
    return invocation(command, PROGRAMS) is not None


def provider(words: list[str]) -> str | None:
    return PROVIDER


def launch_argv(task: str) -> list[str]:
    """What `heartbeat launch --codex TASK` runs: the skill's own form."""
    return [PROGRAM, "exec", "--full-auto", task]


def last_words(env: Mapping[str, str], now: datetime, lines: int = 40) -> list[str]:
    """The end of Codex's own log, when it is recent."""
    home = env.get("HOME") or os.path.expanduser("~")
    path = os.path.join(home, *LOG)
    try:
        if time.time() - os.stat(path).st_mtime > LOG_FRESH_SECONDS:
            return []
        with open(path, "rb") as handle:
            handle.seek(max(0, os.stat(path).st_size - LOG_BYTES_READ))
            return handle.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return []
