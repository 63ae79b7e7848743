"""The work behind each verb: check, launch, kill, status, tail.

One check: read the notes -> entries -> ask tmux once per socket -> decide (policy) ->
act (restart) -> write status lines back, one atomic edit per note. Nothing here
prints or reads the clock: `now` comes in, results go out as values.
"""

from __future__ import annotations

import os
import re
import shlex
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from heartbeat import files, notes, policy, render, state, tmux
from heartbeat.config import Config
from heartbeat.errors import HeartbeatError, RefusedError, TmuxError
from heartbeat.model import Action, Entry, Pane, State, valid_session_name
from heartbeat.notebook import LoadedNote, Notebook, carry_over, label_of, select, stamp_of
from heartbeat.state import Record, StateFile

CAPTURE_LINES = 50
_LINE_NUMBER = re.compile(r":\d+: ")


@dataclass(frozen=True)
class Change:
    """One entry whose state changed in this check."""

    name: str
    old: str
    new: str
    action: str
    needs_person: bool = False

    def line(self) -> str:
        return f"{self.name}: {self.old} -> {self.new} ({self.action})"


@dataclass
class Outcome:
    """What a check did, for the command line to print."""

    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # new ones, to print
    needs_person: bool = False
    skipped: bool = False  # another check held the lock


# --- starting sessions ---------------------------------------------------------------


def start_session(
    config: Config,
    record: Record,
    *,
    name: str,
    socket: str,
    folder: str,
    command: str | tuple[str, ...],
    wrapped: bool,
    environment: Iterable[tuple[str, str]] = (),
    stamp: str,
) -> None:
    """Start an entry's session and note the run in its record."""
    if not os.path.isdir(folder):
        raise RefusedError(f"{name}: dir {folder} does not exist")
    env = {"PATH": record.path or config.path}
    run: str | None = None
    if wrapped:
        assert isinstance(command, str)
        run = state.new_run_id(stamp)
        exit_path = state.exit_file(config.state_dir, run)
        exit_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        env |= {
            "HEARTBEAT_NAME": name,
            "HEARTBEAT_DIR": folder,
            "HEARTBEAT_SOCKET": socket,
            "HEARTBEAT_TMUX": config.tmux or "tmux",
            "HEARTBEAT_EXIT_FILE": str(exit_path),
        }
        argv = ("/bin/sh", "-c", render.wrapper_script(), "heartbeat", command, *config.notify)
        pid = tmux.start(socket, config.tmux, name, folder, argv, env)
    else:
        env |= dict(environment)
        pid = tmux.start(socket, config.tmux, name, folder, command, env)
    record.run = run
    record.pid = pid
    record.state = State.RUNNING
    record.exit_code = None
    record.activity = None
    record.since = stamp


# --- check ---------------------------------------------------------------------------


def check(config: Config, now: datetime) -> Outcome:
    """One heartbeat. A check that finds another one running does nothing."""
    with files.locked(config.state_dir, wait=False) as acquired:
        if not acquired:
            return Outcome(skipped=True)
        return _check(config, now)


def _check(config: Config, now: datetime) -> Outcome:
    stamp = stamp_of(now)
    saved = state.load(config.state_dir)
    outcome = Outcome()
    problems: list[str] = [saved.warning] if saved.warning else []
    book = Notebook(config, now.date())
    book.read_all()
    try:
        carry_over(book, stamp)
    except (HeartbeatError, OSError) as error:
        problems.append(str(error))
    managed, selection_problems = select(book)
    problems += book.problems + selection_problems

    by_socket: dict[str, list[tuple[LoadedNote, Entry]]] = defaultdict(list)
    for loaded, entry in managed:
        by_socket[entry.socket].append((loaded, entry))
    edits: dict[Path, list[notes.Edit]] = defaultdict(list)
    for socket, group in by_socket.items():
        try:
            snapshot = tmux.snapshot(socket, config.tmux)
        except TmuxError as error:
            problems.append(str(error))
            continue
        for loaded, entry in group:
            change, edit, needs_person = _check_entry(
                config, saved, entry, snapshot.panes.get(entry.name), stamp, problems
            )
            outcome.needs_person |= needs_person
            if change is not None:
                outcome.changes.append(change)
                state.log(config.state_dir, stamp, change.line())
            if edit is not None:
                edits[loaded.path].append(edit)

    for path, note_edits in edits.items():
        try:
            book.edit(path, note_edits)
        except (HeartbeatError, OSError) as error:
            problems.append(str(error))

    # Printed once: a problem is known by its file and text, not its line, since our
    # own status lines move the lines below them.
    keys = {problem: _LINE_NUMBER.sub(": ", problem, count=1) for problem in problems}
    outcome.problems = [p for p in problems if keys[p] not in saved.printed]
    saved.printed = sorted(set(keys.values()))
    outcome.needs_person |= bool(problems)
    state.save(config.state_dir, saved)
    return outcome


def _check_entry(
    config: Config,
    saved: StateFile,
    entry: Entry,
    pane: Pane | None,
    stamp: str,
    problems: list[str],
) -> tuple[Change | None, notes.Edit | None, bool]:
    record = saved.record(entry.socket, entry.name)
    pane_exit = _read_pane_exit(config, entry, pane, record, problems)
    recorded_exit = state.read_exit(config.state_dir, record.run) if entry.wrapped else None
    observed = policy.observe(
        pane, entry.wrapped, recorded_exit, record.state, record.exit_code, pane_exit
    )
    decision = policy.decide(record.state, observed)
    old = record.state.value if record.state else "new"
    status, action, needs_person = decision.status, decision.action.value, decision.needs_person
    if decision.action is Action.RESTART:
        try:
            start_session(
                config,
                record,
                name=entry.name,
                socket=entry.socket,
                folder=entry.dir,
                command=entry.command,
                wrapped=entry.wrapped,
                environment=entry.environment,
                stamp=stamp,
            )
            action = "restarted"
        except HeartbeatError as error:
            problems.append(f"{entry.location}: {entry.name}: restart failed: {error}")
            if record.state is State.DEAD:
                return None, None, True  # already said so; the next check tries again
            status, action, needs_person = f"dead, restart failed: {error}", "restart failed", True
            record.state = State.DEAD
    else:
        if record.state is not decision.state:
            record.since = stamp
        record.state = decision.state
        record.exit_code = observed.exit_code
        action = {"close": "closed", "report": "needs a person", "none": "no action"}[action]
    if not decision.changed:
        return None, None, needs_person
    change = Change(entry.name, old, decision.state.value, action, needs_person)
    edit = notes.Edit(entry.key, stamp, status, close=decision.action is Action.CLOSE)
    return change, edit, needs_person


def _read_pane_exit(
    config: Config, entry: Entry, pane: Pane | None, record: Record, problems: list[str]
) -> int | None:
    """For the skill's own lines: the `EXITED: N` its pane shows, read only when needed."""
    if pane is None or entry.wrapped or not policy.needs_capture(pane, record.activity):
        return None
    try:
        lines = tmux.capture(entry.socket, config.tmux, entry.name, CAPTURE_LINES)
    except TmuxError as error:
        problems.append(str(error))
        return None
    record.activity = pane.activity
    return policy.exit_code_in(lines)


# --- launch, kill, status, tail -------------------------------------------------------


def command_text(argv: Sequence[str]) -> str:
    """One argument is a shell command, as tmux takes it; several are quoted words."""
    return argv[0] if len(argv) == 1 else shlex.join(argv)


def launch(config: Config, now: datetime, name: str, folder: str, argv: Sequence[str]) -> Path:
    """Start NAME in FOLDER on the socket and log it in today's note; returns the note."""
    if not valid_session_name(name):
        raise RefusedError(
            f"invalid session name {name!r}: use letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    directory = os.path.abspath(os.path.expanduser(folder))
    if not os.path.isdir(directory):
        raise RefusedError(f"dir {folder} does not exist")
    if not argv or not "".join(argv).strip():
        raise RefusedError("no command given: heartbeat launch NAME --dir DIR -- COMMAND")
    command = command_text(argv)
    if "\n" in command or "\r" in command:
        raise RefusedError("the command must fit on one line of the note")
    stamp = stamp_of(now)
    with files.locked(config.state_dir, wait=True):
        if tmux.has_session(config.socket, config.tmux, name):
            raise RefusedError(f"session {name} already exists on {config.socket}")
        saved = state.load(config.state_dir)
        record = Record(path=config.path, launched=True)
        start_session(
            config,
            record,
            name=name,
            socket=config.socket,
            folder=directory,
            command=command,
            wrapped=True,
            stamp=stamp,
        )
        book = Notebook(config, now.date())
        try:
            path = book.ensure_today()
            block = render.entry(name, command, directory, config.socket, stamp)
            book.edit(path, [], added=[block])
        except (HeartbeatError, OSError):
            tmux.kill(config.socket, config.tmux, name)  # no side effect when not logged
            raise
        saved.records[StateFile.key(config.socket, name)] = record
        state.save(config.state_dir, saved)
        state.log(config.state_dir, stamp, f"{name}: launched in {directory}: {command}")
    return path


def find_entry(book: Notebook, name: str) -> tuple[LoadedNote, Entry]:
    """The watched entry called NAME (on the configured socket when there are several)."""
    managed, _ = select(book)
    matches = [(loaded, entry) for loaded, entry in managed if entry.name == name]
    if len(matches) > 1:
        matches = [pair for pair in matches if pair[1].socket == book.config.socket]
    if not matches:
        raise RefusedError(f"no open entry named {name} in {label_of(book.config.notes_dir)}")
    return matches[0]


def kill(config: Config, now: datetime, name: str) -> Entry:
    """Close NAME's entry, then kill its session, so nothing revives it."""
    stamp = stamp_of(now)
    with files.locked(config.state_dir, wait=True):
        book = Notebook(config, now.date())
        book.read_all()
        loaded, entry = find_entry(book, name)
        book.edit(loaded.path, [notes.Edit(entry.key, stamp, "killed by heartbeat kill", True)])
        tmux.kill(entry.socket, config.tmux, entry.name)
        saved = state.load(config.state_dir)
        saved.records.pop(StateFile.key(entry.socket, entry.name), None)
        state.save(config.state_dir, saved)
        state.log(config.state_dir, stamp, f"{name}: killed by heartbeat kill")
    return entry


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
        }


def status(config: Config, now: datetime) -> tuple[list[Row], list[str]]:
    """Every watched entry with its live state; changes nothing."""
    book = Notebook(config, now.date())
    book.read_all()
    managed, problems = select(book)
    saved = state.load(config.state_dir)
    snapshots: dict[str, dict[str, Pane]] = {}
    rows: list[Row] = []
    for _, entry in managed:
        if entry.socket not in snapshots:
            try:
                snapshots[entry.socket] = tmux.snapshot(entry.socket, config.tmux).panes
            except TmuxError as error:
                problems.append(str(error))
                snapshots[entry.socket] = {}
        pane = snapshots[entry.socket].get(entry.name)
        record = saved.records.get(StateFile.key(entry.socket, entry.name), Record())
        scratch = Record(**vars(record))  # status reads the pane but records nothing
        pane_exit = _read_pane_exit(config, entry, pane, scratch, problems)
        recorded = state.read_exit(config.state_dir, record.run) if entry.wrapped else None
        observed = policy.observe(
            pane, entry.wrapped, recorded, record.state, record.exit_code, pane_exit
        )
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
                observed.state.value,
                entry.socket,
                entry.dir,
                command,
                entry.location,
                since,
                last,
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
    if not tmux.has_session(socket, config.tmux, name):
        raise RefusedError(f"no session {name} on {socket}")
    return tmux.capture(socket, config.tmux, name, lines)
