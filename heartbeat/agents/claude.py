"""Anthropic's Claude Code (`claude -p ...`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from heartbeat.agents.command import invocation
from heartbeat.model import Command

NAME = "claude"
PROGRAM = "claude"
PROGRAMS = frozenset({PROGRAM})
PROVIDER: str | None = "anthropic"


def recognises(command: Command) -> bool:
    return invocation(command, PROGRAMS) is not None


def provider(words: list[str]) -> str | None:
    return PROVIDER


def last_words(env: Mapping[str, str], now: datetime) -> list[str]:
    """Nothing beyond the pane: Claude Code prints why it stopped in its pane."""
    return []
