"""The verbs other than check: launch, log, allow, kill, reset, verify, status, tail.

Like the check, nothing here prints or reads the clock: `now` comes in, results go out
as values.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from heartbeat import files, gitinfo, notes, prd, render, state, trust, verify
from heartbeat.config import Config
from heartbeat.core import baseline_of, observe, start_session, tmux_at
from heartbeat.errors import HeartbeatError, RefusedError, TmuxError, UsageError
from heartbeat.model import (
    HELD,
    NAME_RULE,
    Entry,
    Pane,
    RestartMode,
    State,
    valid_session_name,
)
from heartbeat.notebook import LoadedNote, Notebook, label_of, select, stamp_of
from heartbeat.state import Record, StateFile


def command_text(argv: Sequence[str]) -> str:
    """One argument is a shell command, as tmux takes it; several are quoted words."""
    return argv[0] if len(argv) == 1 else shlex.join(argv)


def _validated(name: str, folder: str, argv: Sequence[str]) -> tuple[str, str]:
    """The absolute folder and the command text of a launch, or why not."""
    if not valid_session_name(name):
        raise RefusedError(f"invalid session name {name!r}: {NAME_RULE}")
    directory = os.path.abspath(os.path.expanduser(folder))
    if not os.path.exists(directory):
        raise RefusedError(f"dir {folder} does not exist")
    if not os.path.isdir(directory):
        raise RefusedError(f"dir {folder} is not a folder")
    if not argv or not "".join(argv).strip():
        raise UsageError("no command given: heartbeat launch NAME --dir DIR -- COMMAND")
    command = command_text(argv)
    if "\n" in command or "\r" in command:
        raise RefusedError("the command must fit on one line of the note")
    return directory, command


def _log_entry(
    config: Config, now: datetime, name: str, directory: str, command: str, restart: RestartMode
) -> tuple[Path, Entry]:
    """Add the entry to today's note and approve it: heartbeat launched it.

    The entry is read back from the note, so what is approved is exactly what later
    checks will read.
    """
    stamp = stamp_of(now)
    book = Notebook(config, now.date())
    path = book.ensure_today()
    extra = [] if restart is RestartMode.ON_FAILURE else [f"restart: {restart.value}"]
    block = render.entry(name, command, directory, config.socket, stamp, config.host, extra)
    book.edit(path, [], added=[block])
    book.reload(path)
    logged = [
        entry
        for loaded in book.loaded
        if loaded.path == path
        for entry in loaded.note.entries
        if entry.key == (config.socket, name) and entry.options.get("started") == stamp
    ]
    if not logged:
        raise RefusedError(f"{label_of(path)}: the new entry for {name} cannot be read back")
    allowed = trust.AllowList.load(config.state_dir)
    allowed.allow(logged[-1], stamp)
    allowed.save()
    return path, logged[-1]


def launch(
    config: Config,
    now: datetime,
    name: str,
    folder: str,
    argv: Sequence[str],
    restart: RestartMode = RestartMode.ON_FAILURE,
) -> Path:
    """Start NAME in FOLDER on the socket and log it in today's note; returns the note."""
    directory, command = _validated(name, folder, argv)
    stamp = stamp_of(now)
    with files.locked(config.state_dir, wait=True):
        Notebook(config, now.date()).refuse_unsafe_today()  # before anything starts
        if tmux_at(config, config.socket).has_session(name):
            raise RefusedError(f"session {name} already exists on {config.socket}")
        saved = state.load(config.state_dir)
        record = Record(path=config.path)
        start_session(
            config,
            record,
            name=name,
            socket=config.socket,
            folder=directory,
            command=command,
            wrapped=True,
            now=now,
        )
        try:
            path, entry = _log_entry(config, now, name, directory, command, restart)
        except (HeartbeatError, OSError):
            tmux_at(config, config.socket).kill(name)  # no side effect when not logged
            raise
        record.last_start = now.isoformat()
        record.digest = entry.digest
        saved.records[StateFile.key(config.socket, name)] = record
        state.save(config.state_dir, saved)
        state.log(config.state_dir, stamp, f"{name}: launched in {directory}: {command}")
    return path


def log(
    config: Config,
    now: datetime,
    name: str,
    folder: str,
    argv: Sequence[str],
    restart: RestartMode = RestartMode.ON_FAILURE,
) -> Path:
    """Log a session started by hand, and approve its command, in one step."""
    directory, command = _validated(name, folder, argv)
    stamp = stamp_of(now)
    with files.locked(config.state_dir, wait=True):
        if not tmux_at(config, config.socket).has_session(name):
            raise RefusedError(
                f"no session {name} on {config.socket}: start one with heartbeat launch"
            )
        path, entry = _log_entry(config, now, name, directory, command, restart)
        saved = state.load(config.state_dir)
        saved.records[StateFile.key(config.socket, name)] = Record(
            state=State.RUNNING,
            path=config.path,
            since=stamp,
            digest=entry.digest,
        )
        state.save(config.state_dir, saved)
        state.log(config.state_dir, stamp, f"{name}: logged in {directory}: {command}")
    return path


def allow(config: Config, now: datetime, name: str) -> Entry:
    """Approve the command of NAME's entry as it stands in the notes now."""
    with files.locked(config.state_dir, wait=True):
        book = Notebook(config, now.date())
        book.read_all()
        _, entry = find_entry(book, name)
        allowed = trust.AllowList.load(config.state_dir)
        stamp = stamp_of(now)
        allowed.allow(entry, stamp)
        allowed.save()
        state.log(config.state_dir, stamp, f"{name}: allowed {entry.digest}")
    return entry


def find_entry(book: Notebook, name: str) -> tuple[LoadedNote, Entry]:
    """The watched entry called NAME (on the configured socket when there are several)."""
    matches = [(loaded, entry) for loaded, entry in select(book).managed if entry.name == name]
    if len(matches) > 1:
        matches = [pair for pair in matches if pair[1].socket == book.config.socket]
    if not matches:
        why = f" ({'; '.join(book.problems)})" if book.problems else ""
        raise RefusedError(f"no open entry named {name} in {label_of(book.config.notes_dir)}{why}")
    return matches[0]


def kill(config: Config, now: datetime, name: str) -> Entry:
    """Close NAME's entry, then kill its session, so nothing revives it."""
    stamp = stamp_of(now)
    with files.locked(config.state_dir, wait=True):
        book = Notebook(config, now.date())
        book.read_all()
        loaded, entry = find_entry(book, name)
        book.edit(loaded.path, [notes.Edit(entry.key, stamp, "killed by heartbeat kill", True)])
        tmux_at(config, entry.socket).kill(entry.name)
        saved = state.load(config.state_dir)
        saved.records.pop(StateFile.key(entry.socket, entry.name), None)
        state.save(config.state_dir, saved)
        state.log(config.state_dir, stamp, f"{name}: killed by heartbeat kill")
    return entry


def reset(config: Config, now: datetime, name: str) -> Entry:
    """Forget NAME's failed starts, so that the next check may restart it again."""
    with files.locked(config.state_dir, wait=True):
        book = Notebook(config, now.date())
        book.read_all()
        _, entry = find_entry(book, name)
        saved = state.load(config.state_dir)
        record = saved.record(entry.socket, entry.name)
        record.failures, record.not_before, record.forgiven = [], None, True
        if record.state in HELD:
            record.state = None  # seen afresh: restarted at once if still down
        state.save(config.state_dir, saved)
        state.log(config.state_dir, stamp_of(now), f"{name}: reset")
    return entry


def new_prd(path: str) -> Path:
    """Write the PRD skeleton to PATH (a folder gets PRD.md), never over a file."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / prd.DEFAULT_NAME
    if not target.parent.is_dir():
        raise RefusedError(f"folder {target.parent} does not exist")
    title = target.parent.resolve().name or "project"
    if not files.create_exclusively(target, render.prd(title), mode=0o644):
        raise RefusedError(f"{target} exists already")
    return target


@dataclass(frozen=True)
class VerifyReport:
    entry: Entry
    state: str
    log: list[str]
    diff: list[str]
    pane: list[str]
    report: verify.Report
    baseline: verify.Baseline | None


def verify_entry(config: Config, now: datetime, name: str) -> VerifyReport:
    """Everything that tells whether NAME's work is done: works on any entry, even closed."""
    book = Notebook(config, now.date())
    book.read_all()
    entries = [e for loaded in book.in_window() for e in loaded.note.entries if e.name == name]
    if not entries:
        raise RefusedError(f"no entry named {name} in {label_of(config.notes_dir)}")
    entry = max(entries, key=lambda e: (e.note_date, e.is_open, e.line))
    saved = state.load(config.state_dir)
    record = saved.records.get(StateFile.key(entry.socket, entry.name), Record())
    pane_lines: list[str] = []
    at = tmux_at(config, entry.socket)
    observed_state = "closed" if not entry.is_open else (record.state or State.RUNNING).value
    try:
        if at.has_session(entry.name):
            pane_lines = at.capture(entry.name, 20)
    except TmuxError:
        pass
    start = baseline_of(record)
    report = verify.measure(entry.command, entry.dir, start, record.exit_code, now)
    stopped = [s for s in entry.statuses if " · " in s]
    if not entry.is_open and stopped:
        # Closed: its baseline is gone, but the line written when it stopped says it all.
        report = replace(report, verdict=stopped[-1].split(" — ", 1)[1], hint="")
    return VerifyReport(
        entry,
        observed_state,
        gitinfo.log_oneline(entry.dir, 3),
        gitinfo.diff_stat(entry.dir),
        pane_lines,
        report,
        start,
    )


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
    managed, problems = selection.managed, selection.problems
    saved = state.load(config.state_dir)
    snapshots: dict[str, dict[str, Pane]] = {}
    rows: list[Row] = []
    for _, entry in managed:
        if entry.options.get("host", config.host) != config.host:
            command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
            host = entry.options["host"]
            rows.append(
                Row(
                    entry.name,
                    "remote",
                    entry.socket,
                    entry.dir,
                    command,
                    entry.location,
                    None,
                    f"on {host}",
                )
            )
            continue  # another machine's: never judged, never restarted here
        if entry.socket not in snapshots:
            try:
                snapshots[entry.socket] = tmux_at(config, entry.socket).snapshot().panes
            except TmuxError as error:
                problems.append(str(error))
                snapshots[entry.socket] = {}
        pane = snapshots[entry.socket].get(entry.name)
        record = saved.records.get(StateFile.key(entry.socket, entry.name), Record())
        scratch = Record(**vars(record))  # status reads the pane but records nothing
        observed, _ = observe(config, entry, pane, scratch, problems)
        shown = observed.state
        if record.state in (*HELD, State.STALLED) and shown is not State.FINISHED:
            shown = record.state  # what the last check concluded, which status cannot redo
        progress = prd.read(prd.path_for(entry.command, entry.dir))
        since = (
            datetime.fromtimestamp(pane.created).strftime("%Y-%m-%d %H:%M")
            if pane is not None and pane.created
            else record.since
        )
        command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
        last = entry.statuses[-1] if entry.statuses else None
        rows.append(
            Row(
                entry.name,
                shown.value,
                entry.socket,
                entry.dir,
                command,
                entry.location,
                since,
                last,
                f"{progress.done}/{progress.total}" if progress else None,
                record.verdict if shown is not State.RUNNING else None,
            )
        )
    return rows, book.problems + problems


def tail(config: Config, now: datetime, name: str, lines: int) -> list[str]:
    book = Notebook(config, now.date())
    book.read_all()
    try:
        socket = find_entry(book, name)[1].socket
    except RefusedError:
        socket = config.socket
    at = tmux_at(config, socket)
    if not at.has_session(name):
        raise RefusedError(f"no session {name} on {socket}")
    return at.capture(name, lines)
