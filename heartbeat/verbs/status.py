"""`heartbeat status`: every watched entry and its live state; changes nothing."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime

from heartbeat import state
from heartbeat.check.observe import look_at
from heartbeat.check.start import tmux_at
from heartbeat.config import Config
from heartbeat.errors import TmuxError
from heartbeat.model import HELD, Entry, Pane, Record, State
from heartbeat.notes.notebook import Notebook, select
from heartbeat.state import StateFile
from heartbeat.work import prd


@dataclass(frozen=True)
class Row:
    """One line of `heartbeat status`."""

    name: str
    state: str
    socket: str
    dir: str
    command: str
    location: str
    since: str | None
    last_status: str | None
    prd: str | None = None  # PRD progress, `3/7`
    verdict: str | None = None  # of the run that stopped

    def as_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "state": self.state,
            "socket": self.socket,
            "dir": self.dir,
            "command": self.command,
            "note": self.location,
            "since": self.since,
            "last_status": self.last_status,
            "prd": self.prd,
            "verdict": self.verdict,
        }


def status(config: Config, now: datetime) -> tuple[list[Row], list[str]]:
    """Every watched entry with its live state; changes nothing."""
    book = Notebook(config, now.date())
    book.read_all()
    selection = select(book)
    problems = selection.problems
    saved = state.load(config.state_dir)
    snapshots: dict[str, dict[str, Pane]] = {}
    rows: list[Row] = []
    for _, entry in selection.managed:
        if entry.options.get("host", config.host) != config.host:
            # Another machine's: never judged, never restarted here.
            where = f"on {entry.options['host']}"
            rows.append(Row(entry.name, "remote", *_about(entry), None, where))
            continue
        if entry.socket not in snapshots:
            try:
                snapshots[entry.socket] = tmux_at(config, entry.socket).snapshot().panes
            except TmuxError as error:
                problems.append(str(error))
                snapshots[entry.socket] = {}
        pane = snapshots[entry.socket].get(entry.name)
        record = saved.records.get(StateFile.key(entry.socket, entry.name), Record())
        rows.append(_row(config, entry, pane, record, problems))
    return rows, book.problems + problems


def _row(
    config: Config, entry: Entry, pane: Pane | None, record: Record, problems: list[str]
) -> Row:
    observed = look_at(config, entry, pane, record, problems)[0]
    shown = observed.state
    if record.state in (*HELD, State.STALLED) and shown is not State.FINISHED:
        shown = record.state  # what the last check concluded, which status cannot redo
    progress = prd.read(prd.path_for(entry.command, entry.dir))
    since = (
        datetime.fromtimestamp(pane.created).strftime("%Y-%m-%d %H:%M")
        if pane is not None and pane.created
        else record.since
    )
    return Row(
        entry.name,
        shown.value,
        *_about(entry),
        since,
        entry.statuses[-1] if entry.statuses else None,
        f"{progress.done}/{progress.total}" if progress else None,
        record.verdict if shown is not State.RUNNING else None,
    )


def _about(entry: Entry) -> tuple[str, str, str, str]:
    """Its socket, folder, command (as one line) and place in the notes."""
    command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
    return entry.socket, entry.dir, command, entry.location
