"""Anthropic's Claude Code (`claude -p ...`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from heartbeat.model import Command

PROGRAM = "claude"


def recognises(command: Command) -> bool:
    return PROGRAM in str(command)


def last_words(env: Mapping[str, str], now: datetime) -> list[str]:
    """Nothing beyond the pane: Claude Code prints why it stopped in its pane."""
    return []
