"""Any agent heartbeat has no module for: restarted with the command the note logged."""

from __future__ import annotations

from heartbeat.model import Command, Entry


def restart_command(entry: Entry) -> Command:
    return entry.command
