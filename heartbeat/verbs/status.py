"""`heartbeat status`: every watched entry and its live state; changes nothing.

Two steps, so that a live view can rebuild its table as often as it likes: `look` asks
the notes, the state file and tmux (one list call per socket, one capture per live agent
that may wait in its pane) and returns plain facts; `rows` turns those into one `Row`
per entry, and is pure. Showing them is the command line's (cli/show.py).
"""

from __future__ import annotations

import shlex
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from heartbeat import agents, state
from heartbeat.check import decide
from heartbeat.check.observe import (
    REASON_LINES,
    RESUME_FAILS_WITHIN,
    look_at,
    said_when,
    watched_sockets,
)
from heartbeat.check.run import limits_of
from heartbeat.check.start import tmux_at
from heartbeat.config import Config, Pattern
from heartbeat.errors import TmuxError
from heartbeat.model import (
    HELD,
    Action,
    Entry,
    Observation,
    Pane,
    Record,
    State,
    iso_local,
    when,
)
from heartbeat.notes.entry import is_carried, is_roll_over
from heartbeat.notes.notebook import LoadedNote, Notebook, Selection, select
from heartbeat.records import field, frozen, mutable
from heartbeat.state import StateFile
from heartbeat.trust import AllowList
from heartbeat.work import prd

# What a person has to act on: shown first in the live view, `needs_person` in JSON.
# (A stalled agent is told of once, as a check does; a run `restart: never` left failed
# needs a person too: see `_stopped`.)
NEEDS_PERSON = frozenset(
    {State.NEEDS_APPROVAL, State.WAITING_FOR_INPUT, State.GAVE_UP, State.AUTH_EXPIRED}
)
# A run that is up: its age counts from its session's start.
UP = (State.RUNNING, State.STALLED, State.WAITING, State.RESUMING, State.WAITING_FOR_INPUT)


@frozen
class NotePlace:
    """Where an entry is written: its note and the line its item starts on."""

    path: str
    line: int


@frozen
class Row:
    """One entry (or unlisted session) as `heartbeat status` shows it."""

    name: str
    state: str  # a `model.State` value
    socket: str
    dir: str
    command: str
    note: NotePlace | None  # None: a session no entry names
    since: datetime | None  # when it came to be in this state (a live run: its start)
    last_status: str | None  # the entry's last real status line
    reason: str | None = None  # why it is in this state, or what to do about it
    verdict: str | None = None  # of the last run that stopped
    prd: str | None = None  # PRD progress, `3/7`
    until: datetime | None = None  # when the limit it waits for lifts
    next_restart: datetime | None = None  # when a check may restart it
    session_id: str | None = None  # the agent's own conversation
    restarts_today: int = 0
    needs_person: bool = False

    @property
    def location(self) -> str:
        return f"{self.note.path}:{self.note.line}" if self.note else ""

    def as_json(self) -> dict[str, Any]:
        """The row as README's "status --json" schema gives it: times in ISO 8601 with
        the local offset."""
        note = {"path": self.note.path, "line": self.note.line} if self.note else None
        return {
            "name": self.name,
            "state": self.state,
            "since": iso_local(self.since),
            "next_restart": iso_local(self.next_restart),
            "reason": self.reason,
            "verdict": self.verdict,
            "session_id": self.session_id,
            "restarts_today": self.restarts_today,
            "socket": self.socket,
            "note": note,
            "last_status": self.last_status,
            "needs_person": self.needs_person,
            "dir": self.dir,
            "command": self.command,
            "prd": self.prd,
            "until": iso_local(self.until),
        }


# How an entry's socket answered `status`.
ANSWERED, SILENT, UNWATCHED, ELSEWHERE = "answered", "silent", "unwatched", "elsewhere"


@frozen
class Look:
    """What `status` found of one entry: facts, not yet judged."""

    entry: Entry
    note: Path
    record: Record
    approved: bool
    socket: str  # ANSWERED, SILENT, UNWATCHED (never connected to), ELSEWHERE (`host:`)
    is_open: bool = True
    pane: Pane | None = None
    observed: Observation | None = None  # when its socket answered
    screen: tuple[str, ...] | None = None  # the pane's end, of a live agent that may wait
    said_at: datetime | None = None  # when those words were printed
    prd: str | None = None
    last_status: str | None = None
    hold: str | None = None  # what renews the expired login it is held for


@frozen
class Ended:
    """A session no open entry names whose agent has ended: it sits in its tail."""

    socket: str
    pane: Pane
    code: int
    closed: tuple[LoadedNote, Entry] | None  # the closed entry naming it, with its note
    record: Record


@mutable
class Seen:
    """Everything one `status` learned: its rows are `rows(seen, now)`."""

    looks: list[Look] = field(default_factory=list)
    strays: list[tuple[str, Pane]] = field(default_factory=list)  # (socket, pane)
    tails: list[Ended] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    limits: decide.Limits = decide.DEFAULT_LIMITS
    patterns: tuple[Pattern, ...] = ()
    started: float = field(default_factory=time.time)  # the real time of the look


def status(config: Config, now: datetime, everything: bool = False) -> tuple[list[Row], list[str]]:
    """Every watched entry with its live state (`everything`: and the finished and closed
    ones of the carry window); changes nothing."""
    seen = look(config, now, everything)
    return rows(seen, now), seen.problems


def look(config: Config, now: datetime, everything: bool = False) -> Seen:
    """What the notes, the state file and tmux say of every entry; changes nothing."""
    book = Notebook(config, now.date())
    book.read_all()
    selection = select(book)
    problems = selection.problems
    saved = state.load(config.state_dir)
    seen = Seen(limits=limits_of(config), patterns=config.patterns)
    snapshots: dict[str, dict[str, Pane]] = {}
    silent: set[str] = set()  # sockets whose server did not answer
    allowed = None if config.settings.trust_owned_notes else AllowList.load(config.state_dir)
    trusted = watched_sockets(config, [entry for _, entry in selection.managed], allowed)
    earlier = _earlier_entries(book)

    def panes(socket: str) -> dict[str, Pane] | None:
        if socket not in snapshots and socket not in silent:
            try:
                snapshots[socket] = tmux_at(config, socket).snapshot().panes
            except TmuxError as error:
                problems.append(str(error))
                silent.add(socket)
        return snapshots.get(socket)

    chosen = [(loaded, entry, True) for loaded, entry in selection.managed]
    if everything:
        chosen += [(loaded, entry, False) for loaded, entry in selection.finished]
    for loaded, entry, is_open in chosen:
        record = saved.records.get(StateFile.key(entry.socket, entry.name), Record())
        approved = allowed is None or allowed.allows(entry)
        facts: dict[str, Any] = {
            "last_status": _last_status(entry, earlier.get(entry.key, [])),
            "is_open": is_open,
        }
        if entry.options.get("host", config.host) != config.host:
            # Another machine's: never judged, never restarted here.
            seen.looks.append(Look(entry, loaded.path, record, approved, ELSEWHERE, **facts))
            continue
        if entry.socket not in trusted:
            # Never connected to before approval: what runs there is not known.
            seen.looks.append(Look(entry, loaded.path, record, approved, UNWATCHED, **facts))
            continue
        found = panes(entry.socket)
        if found is None:
            seen.looks.append(Look(entry, loaded.path, record, approved, SILENT, **facts))
            continue
        pane = found.get(entry.name)
        observed = look_at(config, entry, pane, record, problems)[0]
        if approved:  # nothing of an unapproved entry's folder is read
            progress = prd.read(prd.path_for(entry.command, entry.dir))
            facts["prd"] = f"{progress.done}/{progress.total}" if progress else None
        if approved and is_open and pane is not None and observed.state is State.RUNNING:
            facts["screen"] = _screen(config, entry, problems)
            facts["said_at"] = said_when(pane, now)
        provider = agents.recognise(entry.command).provider
        hold = saved.holds.get(provider) if provider else None
        facts["hold"] = hold.hint if hold else None
        seen.looks.append(
            Look(
                entry,
                loaded.path,
                record,
                approved,
                ANSWERED,
                pane=pane,
                observed=observed,
                **facts,
            )
        )
    panes(config.socket)  # the configured socket is watched even while no entry names it
    _strays(config, book, snapshots, selection, saved, seen, problems)
    seen.problems = book.problems + problems
    return seen


def _strays(
    config: Config,
    book: Notebook,
    snapshots: dict[str, dict[str, Pane]],
    selection: Selection,
    saved: StateFile,
    seen: Seen,
    problems: list[str],
) -> None:
    """Sessions on the watched sockets that no open entry names: those whose agent has
    ended sit in their tail until `heartbeat clean` (or a launch of their name) removes
    them; the others were deleted from the note while they ran, or started by hand and
    never adopted (a closed entry's agent that still runs is the person's own doing).
    Nothing watches them."""
    from heartbeat.verbs import clean  # here: only status and clean look for tails

    # As `clean` judges them: every open entry read, watched or not, needs its session.
    needed = {entry.key for entry in clean.open_entries(book)}
    closed = {entry.key: (loaded, entry) for loaded, entry in selection.finished}
    for socket, found in snapshots.items():
        for name, pane in sorted(found.items()):
            if (socket, name) in needed:
                continue
            try:
                code = clean.ended(config, socket, pane)
            except TmuxError as error:
                problems.append(str(error))
                code = None
            entry = closed.get((socket, name))
            if code is not None:
                record = saved.records.get(StateFile.key(socket, name), Record())
                seen.tails.append(Ended(socket, pane, code, entry, record))
            elif entry is None:
                seen.strays.append((socket, pane))


def _screen(config: Config, entry: Entry, problems: list[str]) -> tuple[str, ...] | None:
    """The end of a live agent's pane, when its agent may wait there (at an approval
    prompt, or at a limit); None for the others, whose panes are not read."""
    if not (agents.asks_in_pane(entry.command) or agents.waits_for_reset(entry.command)):
        return None
    try:
        return tuple(tmux_at(config, entry.socket).capture(entry.name, REASON_LINES))
    except TmuxError as error:
        problems.append(str(error))
        return None


def _earlier_entries(book: Notebook) -> dict[tuple[str, str], list[Entry]]:
    """Every entry of the notes read, by socket and name, oldest first."""
    found: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for loaded in sorted(book.loaded, key=lambda one: one.day):
        for entry in loaded.note.entries:
            found[entry.key].append(entry)
    return found


def _last_status(entry: Entry, same_key: list[Entry]) -> str | None:
    """The entry's last status line that says something of its run: after a roll-over,
    today's copy has only `carried over from ...`, and the run's news is in the entry it
    was carried from (which ends `closed: continued in ...`), or further back."""
    older = [one for one in same_key if one.location != entry.location]
    for one in [entry, *reversed(older)]:
        real = [line for line in one.statuses if not is_roll_over(line)]
        if real:
            return real[-1]
        if not any(is_carried(line) for line in one.statuses):
            return None  # not a copy: what came before was another run's
    return None


# --- rows: pure -----------------------------------------------------------------------


def rows(seen: Seen, now: datetime) -> list[Row]:
    """The rows of what `look` saw: every entry's, then the unlisted sessions'."""
    found = [row_of(one, now, seen.limits, seen.patterns, seen.started) for one in seen.looks]
    tails = [tail_row(one) for one in seen.tails]
    # A closed entry whose session sits in its tail (`--all`) is shown as the tail.
    shown = {(row.socket, row.name) for row in tails}
    found = [row for row in found if (row.socket, row.name) not in shown]
    return found + tails + [unlisted_row(socket, pane) for socket, pane in seen.strays]


def tail_row(tail: Ended) -> Row:
    """A session whose agent has ended, kept in its tail until `heartbeat clean`."""
    pane = tail.pane
    since = datetime.fromtimestamp(pane.created) if pane.created else None
    hint = f"ended (exit {tail.code}), its session kept: heartbeat clean removes it"
    if tail.closed is None:
        command = pane.current_command
        return Row(
            pane.session, State.TAIL.value, tail.socket, "", command, None, since, None, hint
        )
    loaded, entry = tail.closed
    command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
    place = NotePlace(str(loaded.path), entry.line)
    last = entry.statuses[-1] if entry.statuses else None
    return Row(
        entry.name,
        State.TAIL.value,
        entry.socket,
        entry.dir,
        command,
        place,
        since,
        last,
        hint,
        tail.record.verdict,
    )


def unlisted_row(socket: str, pane: Pane) -> Row:
    """A session on a watched socket that no entry names: deleted from the note while it
    ran, or started by hand and never adopted. Nothing watches it."""
    since = datetime.fromtimestamp(pane.created) if pane.created else None
    hint = f"not in the notes: heartbeat adopt {pane.session} --dir DIR -- COMMAND"
    command = pane.current_command
    return Row(pane.session, State.UNLISTED.value, socket, "", command, None, since, None, hint)


def row_of(
    look: Look,
    now: datetime,
    limits: decide.Limits = decide.DEFAULT_LIMITS,
    patterns: tuple[Pattern, ...] = (),
    real_now: float | None = None,
) -> Row:
    """One entry's row, from what was seen of it."""
    entry, record, pane = look.entry, look.record, look.pane
    shown, reason, until, next_restart = _judged(look, now, limits, patterns, real_now)
    needs_person = shown in NEEDS_PERSON or (reason or "").startswith(NOT_RESTARTED)
    if shown in UP and pane is not None and pane.created:
        since: datetime | None = datetime.fromtimestamp(pane.created)
    else:
        since = _parsed(record.since)
    command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
    return Row(
        entry.name,
        shown.value,
        entry.socket,
        entry.dir,
        command,
        NotePlace(str(look.note), entry.line),
        since,
        look.last_status,
        reason,
        record.verdict if shown not in UP else None,
        look.prd,
        until,
        next_restart,
        record.session or entry.options.get("session") or None,
        record.restarts_on(now.date()),
        needs_person,
    )


def _judged(
    look: Look,
    now: datetime,
    limits: decide.Limits,
    patterns: tuple[Pattern, ...],
    real_now: float | None,
) -> tuple[State, str | None, datetime | None, datetime | None]:
    """The state to show, why, when a limit lifts, and when a check may restart it."""
    entry, record = look.entry, look.record
    if not look.is_open:
        finished = record.state is State.FINISHED
        return (State.FINISHED if finished else State.CLOSED), None, None, None
    if look.socket == ELSEWHERE:
        return State.REMOTE, f"on {entry.options['host']}", None, None
    if not look.approved and (entry.may_restart or look.socket == UNWATCHED):
        # Whatever its session is doing, nothing is done for it before a person allows it
        # (one heartbeat would never restart is only looked at, never asked about).
        why = f"new command: heartbeat allow {entry.name}"
        if look.socket == UNWATCHED:
            why += f" (its socket {entry.socket} is watched only once it is)"
        return State.NEEDS_APPROVAL, why, None, None
    if look.socket == UNWATCHED or look.socket == SILENT or look.observed is None:
        return State.UNKNOWN, f"the tmux server on {entry.socket} did not answer", None, None
    observed = look.observed
    seen = observed.state
    if seen is State.RUNNING and look.screen:
        prompt = agents.approval_prompt(entry.command, look.screen)
        if prompt is not None:
            return State.WAITING_FOR_INPUT, prompt, None, None
    shown = seen
    if record.state in (*HELD, State.STALLED, State.WAITING) and seen is not State.FINISHED:
        shown = record.state  # what the last check concluded, which status cannot redo
    lifts = datetime.fromisoformat(record.not_before) if record.not_before else None
    lifts = lifts if lifts is not None and lifts > now else None
    if shown is State.RUNNING and look.screen:
        at = look.said_at or now
        waiting = agents.waiting_until(entry.command, list(look.screen), at, patterns)
        if waiting is not None and waiting > now:
            return State.WAITING, f"at its limit until {when(waiting, now)}", waiting, None
    if shown is State.RUNNING:
        started = record.started_at
        real = real_now if real_now is not None else time.time()
        if record.resumed and started is not None and 0 <= real - started < RESUME_FAILS_WITHIN:
            return State.RESUMING, f"continues session {record.session}", None, None
        return State.RUNNING, None, None, None
    if shown is State.WAITING:
        until = _parsed(record.not_before)
        lifting = f" until {when(until, now)}" if until else ""
        return State.WAITING, f"at its limit{lifting}", until, None
    if shown is State.STALLED:
        minutes = int(limits.stall_after.total_seconds() // 60)
        return State.STALLED, f"no output and no new commit for {minutes} min", None, None
    if shown is State.GAVE_UP:
        return State.GAVE_UP, f"too many failed starts: heartbeat reset {entry.name}", None, None
    if shown is State.AUTH_EXPIRED:
        hint = look.hold or "log in again"
        return State.AUTH_EXPIRED, f"{hint}; then heartbeat reset {entry.name}", None, None
    if shown is State.FINISHED:
        return State.FINISHED, None, None, None
    return _stopped(look, shown, observed, now, limits, lifts)


def _stopped(
    look: Look,
    shown: State,
    observed: Observation,
    now: datetime,
    limits: decide.Limits,
    lifts: datetime | None,
) -> tuple[State, str | None, datetime | None, datetime | None]:
    """A dead or failed run: what the next check will do about it, by the same policy."""
    entry = look.entry
    history = decide.history_of(look.record)
    plan = decide.decide(history, observed, now, entry.restart_mode, limits, entry.stall_mode)
    if lifts is not None and plan.state is not State.GAVE_UP:
        due = max(plan.due or lifts, lifts)
        return State.RATE_LIMITED, f"restart after {when(due, now)}", lifts, due
    if plan.action is Action.RESTART:
        return shown, "restarted by the next check", None, now
    if plan.action is Action.WAIT and plan.due is not None:
        return shown, f"restart after {when(plan.due, now)}", None, plan.due
    if plan.state is State.GAVE_UP:
        return shown, f"the next check gives up: heartbeat reset {entry.name}", None, None
    if plan.action is Action.REPORT:
        return shown, f"{NOT_RESTARTED} (restart: {entry.restart_mode})", None, None
    return shown, None, None, None


NOT_RESTARTED = "not restarted"  # what its restart mode leaves to a person


def _parsed(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


# States no check mends by itself, beyond those a row says need a person: `doctor` lists
# them too.
UNMENDED = frozenset({State.STALLED.value, State.UNKNOWN.value, State.UNLISTED.value})


def needing_a_person(rows: list[Row]) -> list[tuple[str, str]]:
    """The rows a person must see to, each as what it is and the command that helps."""
    return [
        (f"{row.name}: {row.state}", what_to_do(row))
        for row in rows
        if row.needs_person or row.state in UNMENDED
    ]


def what_to_do(row: Row) -> str:
    """The heartbeat command a row's reason names (the reason itself when it names none)."""
    reason = row.reason or ""
    if "heartbeat " not in reason:
        return reason or f"heartbeat tail {row.name}"
    command = "heartbeat " + reason.split("heartbeat ", 1)[1]
    return command.split(" (", 1)[0]
