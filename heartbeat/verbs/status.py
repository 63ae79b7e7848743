"""`heartbeat status`: every watched entry and its live state; changes nothing."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from datetime import datetime

from heartbeat import agents, state
from heartbeat.check.observe import (
    REASON_LINES,
    RESUME_FAILS_WITHIN,
    look_at,
    said_when,
    watched_sockets,
)
from heartbeat.check.start import tmux_at
from heartbeat.config import Config
from heartbeat.errors import TmuxError
from heartbeat.model import HELD, LIVE, Entry, Pane, Record, RestartMode, State
from heartbeat.notes.notebook import Notebook, Selection, select
from heartbeat.state import StateFile
from heartbeat.trust import AllowList
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
    until: datetime | None = None  # when a limit it waits for lifts

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
            "until": self.until.isoformat() if self.until else None,
        }


def status(config: Config, now: datetime) -> tuple[list[Row], list[str]]:
    """Every watched entry with its live state; changes nothing."""
    book = Notebook(config, now.date())
    book.read_all()
    selection = select(book)
    problems = selection.problems
    saved = state.load(config.state_dir)
    snapshots: dict[str, dict[str, Pane]] = {}
    silent: set[str] = set()  # sockets whose server did not answer
    rows: list[Row] = []
    allowed = None if config.settings.trust_owned_notes else AllowList.load(config.state_dir)
    trusted = watched_sockets(config, [entry for _, entry in selection.managed], allowed)
    for _, entry in selection.managed:
        approved = allowed is None or allowed.allows(entry)
        if entry.socket not in trusted:
            # Never connected to before approval: what runs there is not known.
            rows.append(
                _needs_approval(entry, saved)
                if entry.may_restart
                else Row(entry.name, State.UNKNOWN.value, *_about(entry), None, "needs approval")
            )
            continue
        if entry.options.get("host", config.host) != config.host:
            # Another machine's: never judged, never restarted here.
            where = f"on {entry.options['host']}"
            rows.append(Row(entry.name, State.REMOTE.value, *_about(entry), None, where))
            continue
        if entry.socket not in snapshots and entry.socket not in silent:
            try:
                snapshots[entry.socket] = tmux_at(config, entry.socket).snapshot().panes
            except TmuxError as error:
                problems.append(str(error))
                silent.add(entry.socket)
        if entry.socket in silent:
            # Its server did not answer: what runs there is not known (not "dead").
            rows.append(Row(entry.name, State.UNKNOWN.value, *_about(entry), None, None))
            continue
        pane = snapshots[entry.socket].get(entry.name)
        record = saved.records.get(StateFile.key(entry.socket, entry.name), Record())
        if not approved and entry.may_restart:
            observed = look_at(config, entry, pane, record, problems)[0]
            closes = (
                observed.state is State.FINISHED and entry.restart_mode is RestartMode.ON_FAILURE
            )
            if not closes:  # the next check would close a finished one, unasked
                rows.append(_needs_approval(entry, saved, pane))
                continue
        rows.append(_row(config, entry, pane, record, problems, now, approved))
    if config.socket not in snapshots and config.socket not in silent:
        try:  # the configured socket is watched even while no entry names it
            snapshots[config.socket] = tmux_at(config, config.socket).snapshot().panes
        except TmuxError as error:
            problems.append(str(error))
    rows += _unlisted(config, snapshots, selection, saved, problems)
    return rows, book.problems + problems


def _unlisted(
    config: Config,
    snapshots: dict[str, dict[str, Pane]],
    selection: Selection,
    saved: StateFile,
    problems: list[str],
) -> list[Row]:
    """Sessions on the watched sockets that no open entry names: those whose agent has
    ended sit in their tail until `heartbeat clean` (or a launch of their name) removes
    them; the others were deleted from the note while they ran, or started by hand and
    never adopted (a closed entry's agent that still runs is the person's own doing).
    Nothing watches them."""
    from heartbeat.verbs import clean  # here: only status and clean look for tails

    needed = {entry.key for _, entry in selection.managed}
    closed = {entry.key: entry for _, entry in selection.retired}
    rows = []
    for socket, panes in snapshots.items():
        for name, pane in sorted(panes.items()):
            if (socket, name) in needed:
                continue
            since = datetime.fromtimestamp(pane.created).strftime("%Y-%m-%d %H:%M")
            try:
                code = clean.ended(config, socket, pane)
            except TmuxError as error:
                problems.append(str(error))
                code = None
            entry = closed.get((socket, name))
            if code is not None:
                hint = f"ended (exit {code}), its session kept: heartbeat clean removes it"
                about = _about(entry) if entry else (socket, "", pane.current_command, "")
                record = saved.records.get(StateFile.key(socket, name), Record())
                verdict = record.verdict if entry else None
                rows.append(Row(name, State.TAIL.value, *about, since, hint, None, verdict))
            elif entry is None:
                command = pane.current_command
                hint = f"not in the notes: heartbeat adopt {name} --dir DIR -- COMMAND"
                rows.append(Row(name, State.UNLISTED.value, socket, "", command, "", since, hint))
    return rows


def _needs_approval(entry: Entry, saved: StateFile, pane: Pane | None = None) -> Row:
    """A command nobody approved, which heartbeat may have to restart: nothing of it is
    looked at (its folder, its agent's files) until `heartbeat allow NAME`."""
    since = (
        datetime.fromtimestamp(pane.created).strftime("%Y-%m-%d %H:%M")
        if pane is not None and pane.created
        else saved.record(entry.socket, entry.name).since
    )
    hint = f"heartbeat allow {entry.name}"
    return Row(entry.name, State.NEEDS_APPROVAL.value, *_about(entry), since, hint)


def _row(
    config: Config,
    entry: Entry,
    pane: Pane | None,
    record: Record,
    problems: list[str],
    now: datetime,
    approved: bool = True,
) -> Row:
    observed = look_at(config, entry, pane, record, problems)[0]
    shown = observed.state
    if record.state in (*HELD, State.STALLED, State.WAITING) and shown is not State.FINISHED:
        shown = record.state  # what the last check concluded, which status cannot redo
    until = datetime.fromisoformat(record.not_before) if record.not_before else None
    until = until if until is not None and until > now else None
    if shown in (State.DEAD, State.FAILED) and until is not None:
        shown = State.RATE_LIMITED
    elif shown is State.RUNNING and pane is not None:
        waiting = _waiting(config, entry, pane, problems, now)
        if waiting is not None:
            shown, until = State.WAITING, waiting
        elif record.resumed and _within(record.started_at, RESUME_FAILS_WITHIN):
            shown = State.RESUMING
    # Its folder is read only once it is approved.
    progress = prd.read(prd.path_for(entry.command, entry.dir)) if approved else None
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
        record.verdict if shown not in LIVE else None,
        until if shown in (State.WAITING, State.RATE_LIMITED) else None,
    )


def _waiting(
    config: Config, entry: Entry, pane: Pane, problems: list[str], now: datetime
) -> datetime | None:
    """When the limit a live agent waits at by itself resets, as its pane says now (a
    time in it counts from when it was printed)."""
    if not agents.waits_for_reset(entry.command):
        return None
    try:
        lines = tmux_at(config, entry.socket).capture(entry.name, REASON_LINES)
    except TmuxError as error:
        problems.append(str(error))
        return None
    until = agents.waiting_until(entry.command, lines, said_when(pane, now), config.patterns)
    return until if until is not None and until > now else None


def _within(started_at: float | None, seconds: float) -> bool:
    return started_at is not None and 0 <= time.time() - started_at < seconds


def _about(entry: Entry) -> tuple[str, str, str, str]:
    """Its socket, folder, command (as one line) and place in the notes."""
    command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
    return entry.socket, entry.dir, command, entry.location


# The states no check mends by itself: a person must see to them.
NEEDS_A_PERSON = frozenset(
    {State.GAVE_UP, State.AUTH_EXPIRED, State.STALLED, State.UNKNOWN, State.UNLISTED}
)


def needs_person(row: Row) -> bool:
    """Whether a row is one a person must see to (`doctor` lists them)."""
    return row.state in NEEDS_A_PERSON or "not restarted" in (row.last_status or "")


def needing_a_person(rows: list[Row]) -> list[tuple[str, str]]:
    """The rows a person must see to, each as what it is and the command that helps."""
    needing = []
    for row in rows:
        if needs_person(row):
            said = f" ({row.last_status})" if row.last_status and row.state != "unlisted" else ""
            needing.append((f"{row.name}: {row.state}{said}", what_to_do(row)))
    return needing


def what_to_do(row: Row) -> str:
    """The command that helps with a row that needs a person."""
    if row.last_status == "needs approval":
        return f"heartbeat allow {row.name}"
    if row.state == State.UNLISTED.value:
        return (row.last_status or "").rpartition(": ")[2]
    if row.state in (State.GAVE_UP.value, State.AUTH_EXPIRED.value):
        return f"heartbeat reset {row.name}" + (" once logged in" if "auth" in row.state else "")
    if row.state == State.UNKNOWN.value:
        return "its tmux server did not answer: heartbeat status"
    return f"heartbeat tail {row.name}"
