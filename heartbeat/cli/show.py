"""What the verbs show a person, formatted: the status table and ages."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from heartbeat.check.decide import when

if TYPE_CHECKING:
    from heartbeat.verbs.status import Row


def table(rows: list[Row], current: datetime) -> str:
    """The rows as aligned columns; the last column is what to do (the reason, when a
    person is needed) and the last status line."""
    if not rows:
        return "no watched entries"
    header = ("NAME", "STATE", "AGE", "RESTARTS", "PRD", "VERDICT", "LAST STATUS")
    lines = [header]
    for row in rows:
        state = f"{row.state} (until {when(row.until, current)})" if row.until else row.state
        told = [row.reason] if row.reason and (row.needs_person or not row.last_status) else []
        lines.append(
            (
                row.name,
                state,
                age(row.since, current),
                str(row.restarts_today) if row.note else "-",
                row.prd or "-",
                row.verdict or "-",
                " · ".join([*told, *([row.last_status] if row.last_status else [])]) or "-",
            )
        )
    fixed = len(header) - 1
    widths = [max(len(line[i]) for line in lines) for i in range(fixed)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:fixed])) + "  " + line[-1]
        for line in lines
    )


def age(since: datetime | None, current: datetime) -> str:
    """`42s`, `12m`, `3h05m`, `2d4h` since then; `-` when not known."""
    if since is None:
        return "-"
    seconds = int((current - since).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def at_most(lines: list[str], most: int, what: str) -> list[str]:
    """The first `most` lines, then one that says how many more there are (a check of
    thousands of entries prints a screenful, not thousands of lines)."""
    if len(lines) <= most:
        return lines
    more = len(lines) - most + 1
    return [*lines[: most - 1], f"... and {more:,} more {what} (all are in heartbeat.log)"]
