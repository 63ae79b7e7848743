"""What the verbs show a person, formatted: the status table and ages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from heartbeat.model import when

if TYPE_CHECKING:
    from heartbeat.verbs.status import Row


def table(rows: list[Row], current: datetime) -> str:
    if not rows:
        return "no watched entries"
    lines = cells(rows, current)
    # Every column padded but the last, which is free text.
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])) + "  " + line[-1]
        for line in lines
    )


def cells(rows: list[Row], current: datetime) -> Sequence[tuple[str, ...]]:
    """The status table as text cells, the header first: the plain table and the live
    view (`status --watch`) show the same columns."""
    header = ("NAME", "STATE", "AGE", "PRD", "VERDICT", "LAST STATUS")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.name,
                f"{row.state} (until {when(row.until, current)})" if row.until else row.state,
                age(row.since, current),
                row.prd or "-",
                row.verdict or "-",
                row.last_status or "-",
            )
        )
    return lines


def age(since: str | None, current: datetime) -> str:
    if not since:
        return "-"
    try:
        seconds = int((current - datetime.fromisoformat(since)).total_seconds())
    except ValueError:
        return "-"
    if seconds < 3600:
        return f"{max(seconds, 0) // 60}m"
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


# The states in which an entry waits for a person, or may: what the live view highlights.
# Words, not `State` members: the rows carry words, some of them only status shows.
NEEDS_PERSON = frozenset(
    {
        "needs approval",
        "waiting for input",
        "dead",
        "failed",
        "gave-up",
        "auth-expired",
        "stalled",
        "unknown",
        "unlisted",
    }
)


def needs_person(row: Row) -> bool:
    """Whether `row` is one a person should look at: what `doctor` lists too, and the
    states a check may mend but a person watching wants to see."""
    from heartbeat.verbs import status  # loaded already: the rows come from it

    said = row.last_status or ""
    return (
        status.needs_person(row) or row.state in NEEDS_PERSON or said.startswith("needs approval")
    )
