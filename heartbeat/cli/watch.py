"""`heartbeat status --watch`: the status table, redrawn on the terminal until Ctrl-C.

rich draws it (`rich.live.Live` keeps one `rich.table.Table` up to date on the terminal's
alternate screen and gives the terminal back as it was). Only this verb imports rich: a
quiet check, run every minute, must not pay for it.
"""

from __future__ import annotations

import time
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING

from heartbeat import lazy
from heartbeat.cli import show
from heartbeat.cli.registry import now
from heartbeat.errors import HeartbeatError
from heartbeat.records import frozen

if TYPE_CHECKING:
    from rich.console import RenderableType

    from heartbeat.config import Config
    from heartbeat.install import doctor
    from heartbeat.verbs import status as statuses
    from heartbeat.verbs.status import Row
else:
    doctor = lazy.module("heartbeat.install.doctor")
    statuses = lazy.module("heartbeat.verbs.status")

HIGHLIGHT = "bold red"  # a row that needs a person; bold stays where NO_COLOR is set


@frozen
class Look:
    """What `heartbeat status` would print at one moment."""

    at: datetime
    header: list[str]
    rows: list[Row]
    problems: list[str]


def look(config: Config) -> Look:
    """One look at every entry. A refusal (a note being rewritten, a folder's mode) is
    shown in the view and the next look tries again: the view outlives it."""
    current = now()
    try:
        rows, problems = statuses.status(config, current)
        header = doctor.watcher_header(config, current)
    except (HeartbeatError, OSError) as error:
        where = f"{error.filename}: " if isinstance(error, OSError) and error.filename else ""
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        rows, problems, header = [], [f"{where}{reason}"], []
    return Look(current, header, rows, problems)


def watch(config: Config, interval: float) -> None:
    """Redraw the status table every `interval` seconds until Ctrl-C."""
    from rich.live import Live

    try:
        # screen=True: the view is drawn on the alternate screen, so that leaving it
        # gives the terminal back as it was (as top and watch do), the cursor shown.
        first = render(look(config), interval)
        with Live(first, screen=True, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(render(look(config), interval), refresh=True)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a person leaves the view: not an error


def render(seen: Look, interval: float) -> RenderableType:
    """The view: status's header lines, the table with the rows that need a person
    highlighted, then the problems."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    needy = sum(show.needs_person(row) for row in seen.rows)
    count = f"{len(seen.rows)} {'entry' if len(seen.rows) == 1 else 'entries'}"
    summary = f"{count}, {needy} {'needs' if needy == 1 else 'need'} a person" if needy else count
    parts: list[RenderableType] = [Text(_plain(line)) for line in seen.header]
    moment = f"{seen.at:%Y-%m-%d %H:%M:%S} · {summary} · every {interval:g} s · Ctrl-C quits"
    parts.append(Text(moment, style="dim"))
    if not seen.rows:
        parts.append(Text(show.table([], seen.at)))
    else:
        header, *lines = show.cells(seen.rows, seen.at)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for i, title in enumerate(header[:-1]):
            # Never cut: a narrow terminal shortens the free text of the last column.
            widest = max(len(cells[i]) for cells in (header, *lines))
            table.add_column(title, no_wrap=True, min_width=widest)
        table.add_column(header[-1], no_wrap=True, overflow="ellipsis")  # free text
        shown = list(zip(seen.rows, lines, strict=True))
        shown.sort(key=lambda pair: not show.needs_person(pair[0]))  # those first, in order
        for row, cells in shown:
            style = HIGHLIGHT if show.needs_person(row) else None
            # Text, never markup: a note's `[bold]` or `:smile:` is shown as written.
            table.add_row(*(Text(_plain(cell)) for cell in cells), style=style)
        parts.append(table)
    parts += [Text(_plain(problem), style="yellow") for problem in seen.problems]
    return Group(*parts)


def _plain(text: str) -> str:
    """`text` without control characters: what notes and panes hold must not move the
    cursor or recolour the terminal (an escape sequence in a status line)."""
    return "".join("?" if unicodedata.category(c) == "Cc" else c for c in text)
