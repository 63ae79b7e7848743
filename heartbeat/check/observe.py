"""Observe: what is true of each entry, from its note, tmux (asked once per socket) and
the state folder. It reads and decides nothing; the one thing it may change is a tmux
socket file deleted under a live server, which it asks tmux to recreate."""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from heartbeat import files, lazy, state
from heartbeat.check.budget import Budget
from heartbeat.check.facts import Quiet, Sighting
from heartbeat.check.start import tmux_at
from heartbeat.config import Config
from heartbeat.errors import TmuxError
from heartbeat.model import (
    HELD,
    LIVE,
    Entry,
    Observation,
    Pane,
    Reason,
    Record,
    Snapshot,
    State,
    stamp_of,
)
from heartbeat.records import field, mutable, replace
from heartbeat.state import StateFile
from heartbeat.tmux.server import Asked
from heartbeat.trust import AllowList

if TYPE_CHECKING:
    from heartbeat import agents, logs
    from heartbeat.work import git, verify
else:  # what only an entry that stopped (or stalled) needs: loaded on first use
    agents = lazy.module("heartbeat.agents")
    logs = lazy.module("heartbeat.logs")
    git = lazy.module("heartbeat.work.git")
    verify = lazy.module("heartbeat.work.verify")

CAPTURE_LINES = 50  # the end of a skill-form pane, read for its `EXITED: N`
REASON_LINES = 30  # the agent's last words, read for why it stopped
# Of a run log, fewer: it holds all the run said, not a screen, and words it printed
# before going on (a limit it waited out) are not why it stopped.
LOG_REASON_LINES = 12
# How often git is asked again about an agent that stays stalled.
GIT_EVERY = timedelta(minutes=5)
EXITED_LINE = re.compile(r"^\s*EXITED:\s*(-?\d+)\s*$")
# The skill's tail (`...; sleep 999999`) runs as `sleep` once the agent has ended,
# when the shell execs its last command (bash, zsh and ksh do).
TAIL_COMMAND = "sleep"
# Shells that keep running their last command as a child, so the pane's command stays
# the shell's name after the agent ended: their output is read when it moved.
NON_EXEC_SHELLS = frozenset({"sh", "dash", "ash"})
RUNNING_STATES = LIVE


@mutable(eq=False, repr=False)
class Look:
    """What one check saw: each entry, and the tmux servers by socket."""

    sightings: list[Sighting] = field(default_factory=list)
    servers: dict[str, int | None] = field(default_factory=dict)  # None: forget it
    lifted: set[str] = field(default_factory=set)  # providers whose login was renewed
    deferred: int = 0  # entries there was no time to look at
    panes: dict[str, dict[str, Pane]] = field(default_factory=dict)  # each socket's answer


def watched_sockets(
    config: Config, entries: Sequence[Entry], allowed: AllowList | None
) -> set[str]:
    """The sockets heartbeat may connect to: the configured one, and those approved
    entries name (all of them, when notes are trusted as they are)."""
    return {config.socket} | {
        entry.socket for entry in entries if allowed is None or allowed.allows(entry)
    }


def needs_approval(entry: Entry) -> str:
    return (
        f"{entry.location}: {entry.name}: on socket {entry.socket}, which heartbeat "
        f"watches only once it is approved: heartbeat allow {entry.name}"
    )


def _renewed_logins(saved: StateFile) -> set[str]:
    """The providers held for an expired login whose login file has changed since: a
    stat, never a read of the secret (and nothing at all while nothing is held)."""
    lifted = set()
    for provider, hold in saved.holds.items():
        now = agents.credential_stamp(hold.path)
        if now is not None and now != hold.stamp:  # a deleted login is no renewed one
            lifted.add(provider)
    return lifted


# How the last checks asked each configured socket (`commands` or `plain`), so that the
# next asks it the same way before reading the notes; a socket not in it is not asked.
AHEAD_FILE = "ask-ahead"
_MODES = {"commands": True, "plain": False}


@mutable(eq=False, repr=False)
class Ahead:
    """The configured socket's list call, started before the notes were read."""

    said: dict[str, str] = field(default_factory=dict)  # the file, as read
    commands: bool | None = None  # how the call was asked (None: it was not)
    asked: Asked | None = None


@mutable(eq=False, repr=False)
class Asking:
    """The entries a check looks at, by socket, and the list call started on each socket
    heartbeat may connect to."""

    groups: dict[str, list[tuple[Path, Entry]]]
    allowed: AllowList | None  # None: notes are trusted as they are
    calls: dict[str, Asked]
    ahead: bool | None  # how the next check asks the configured socket ahead (None: not)
    # The configured socket was answered before the notes were read, and these of its
    # notes changed since the last check: what they say is newer than that answer. None:
    # its answer (if any) is newer than the notes.
    changed: set[Path] | None = None


def ask_ahead(config: Config, budget: Budget) -> Ahead:
    """Start the configured socket's list call at once, as the last check asked it,
    so that tmux answers while the notes and the state are read. The configured socket
    is watched whatever the notes say: asking it trusts no entry."""
    try:
        said = json.loads(files.read_private(config.state_dir / AHEAD_FILE))
    except (OSError, ValueError, RecursionError):
        return Ahead()  # unsaid or not heartbeat's: asked after the notes, and written anew
    if not isinstance(said, dict):
        return Ahead()
    said = {socket: mode for socket, mode in said.items() if isinstance(mode, str)}
    said = {socket: mode for socket, mode in said.items() if mode in _MODES}
    commands = _MODES.get(said.get(config.socket, ""))
    if commands is None:
        return Ahead(said)
    at = tmux_at(config, config.socket, budget.deadline)
    return Ahead(said, commands, at.ask_snapshot(commands))


def remember_ahead(config: Config, ahead: Ahead, asking: Asking) -> None:
    """Keep how the next check asks the configured socket ahead, when that changed (a
    quiet check writes nothing); other sockets' ways are kept as they are."""
    said = dict(ahead.said)
    if asking.ahead is None:
        said.pop(config.socket, None)
    else:
        said[config.socket] = "commands" if asking.ahead else "plain"
    if said == ahead.said:
        return
    path = config.state_dir / AHEAD_FILE
    if said:
        files.write_private(path, json.dumps(said, indent=1) + "\n")
    else:
        path.unlink(missing_ok=True)


def ask(
    config: Config,
    entries: Sequence[tuple[Path, Entry]],
    budget: Budget,
    ahead: Ahead,
    changed: set[Path],
) -> Asking:
    """Start the one list call of each socket the entries are on that heartbeat may
    connect to: tmux answers while the check reads its state. A socket named by
    unapproved entries alone is never connected to (a socket is a program of whoever
    made it). The call asked ahead answers for the configured socket when it asked for
    what its entries need. `changed`: the notes whose text changed since the last check."""
    groups: dict[str, list[tuple[Path, Entry]]] = defaultdict(list)
    for note, entry in entries:
        groups[entry.socket].append((note, entry))
    calls: dict[str, Asked] = {}
    answered_ahead = None
    mine = groups.get(config.socket)
    needs = mine is not None and _needs_commands(mine)
    if mine is not None:
        if ahead.asked is not None and (ahead.commands or not needs):
            calls[config.socket] = ahead.asked
            answered_ahead = changed
        else:  # asked before the allow list is read: this socket is watched whatever it says
            calls[config.socket] = tmux_at(config, config.socket, budget.deadline).ask_snapshot(
                needs
            )
    allowed = None if config.settings.trust_owned_notes else AllowList.load(config.state_dir)
    trusted = watched_sockets(config, [entry for _, entry in entries], allowed)
    for socket, group in groups.items():
        if socket in trusted and socket not in calls:
            calls[socket] = tmux_at(config, socket, budget.deadline).ask_snapshot(
                _needs_commands(group)
            )
    return Asking(groups, allowed, calls, needs if mine is not None else None, answered_ahead)


def _needs_commands(group: Sequence[tuple[Path, Entry]]) -> bool:
    """Panes' current commands tell when the skill's own lines have ended."""
    return any(not entry.wrapped for _, entry in group)


def observe(
    config: Config,
    saved: StateFile,
    asking: Asking,
    now: datetime,
    problems: list[str],
    budget: Budget,
) -> Look:
    """Take each socket's answer, then look at every entry on it."""
    allowed = asking.allowed
    look = Look(lifted=_renewed_logins(saved))
    for socket, group in asking.groups.items():
        asked = asking.calls.get(socket)
        if asked is None:
            # Named by unapproved entries alone: only reported, once, as needing approval.
            for _, entry in group:
                problems.append(needs_approval(entry))
            continue
        commands = _needs_commands(group)
        try:
            snapshot = _snapshot(config, saved, look, asked, budget, stamp_of(now), commands)
            if socket == config.socket and any(
                _logged_late(asking, note, entry, snapshot) for note, entry in group
            ):
                # Logged, maybe with its session started, after tmux was asked ahead of
                # the notes: asked again, after them, as the first check asks.
                asking.changed = None  # the answer is newer than the notes now
                again = tmux_at(config, socket, budget.deadline).ask_snapshot(commands)
                snapshot = _snapshot(config, saved, look, again, budget, stamp_of(now), commands)
        except TmuxError as error:
            problems.append(str(error))
            continue
        look.panes[socket] = snapshot.panes
        for note, entry in group:
            if budget.left() <= budget.restart_reserve:
                look.deferred += 1  # no time left to look: the next check does
                continue
            approved = allowed is None or allowed.allows(entry)
            found = _sighting(
                config, saved, note, entry, snapshot, approved, now, problems, budget, look.lifted
            )
            look.sightings.append(found)
    if look.deferred:
        problems.append(
            f"{look.deferred:,} entries were not looked at within the check's time bound "
            "(check_timeout_seconds): the next check looks again"
        )
    return look


def _logged_late(asking: Asking, note: Path, entry: Entry, snapshot: Snapshot) -> bool:
    """An entry without a session, in a note changed since the last check, on a socket
    answered before the notes were read: the skill starts a session first, then logs it,
    and both may have come after that answer."""
    return (
        asking.changed is not None and note in asking.changed and entry.name not in snapshot.panes
    )


def _sighting(
    config: Config,
    saved: StateFile,
    note: Path,
    entry: Entry,
    snapshot: Snapshot,
    approved: bool,
    now: datetime,
    problems: list[str],
    budget: Budget,
    lifted: set[str],
) -> Sighting:
    """Everything one check learns about one entry (`lifted`: the providers whose
    expired login was renewed since it held their agents)."""
    record = saved.record(entry.socket, entry.name).for_command(entry.digest)
    pane = snapshot.panes.get(entry.name)
    baseline = None
    if pane is not None and record.baseline_at is None and approved:
        # First seen running, and trusted (git runs in no folder before that): how the
        # folder stood when tmux created its session.
        created = datetime.fromtimestamp(pane.created) if pane.created else now
        baseline = verify.guessed_baseline(entry.command, entry.dir, min(created, now), now)
    observed, pane_text, read_at = look_at(config, entry, pane, record, problems, budget.deadline)
    quiet = verdict = None
    if not approved:
        # Nothing runs or is read for it (git, its agent's files): it is only reported.
        return Sighting(note, entry, record, pane, observed, approved, read_at)
    stopped_badly = observed.exit_code != 0 and not (
        observed.exit_code is None and observed.present
    )
    conversation, provider = _NO_CONVERSATION, None
    if record.state is State.AUTH_EXPIRED or stopped_badly:
        provider = agents.recognise(entry.command).provider  # whose login it shares
    if record.state is State.AUTH_EXPIRED and provider in lifted:
        record = record.forgive()  # its login was renewed: seen afresh, and restarted
    if stopped_badly:
        lines = _last_words(config, entry, pane, pane_text, problems, budget)
        if not lines and pane is None and record.state in (None, *RUNNING_STATES):
            lines = run_log_end(record)  # its pane is gone: its log kept its last words
        if not record.forgiven:
            observed = replace(
                observed, reason=_stop_reason(config, entry, record, lines, now, pane)
            )
        new_end = record.state in (None, *RUNNING_STATES)
        conversation = _conversation(
            config, entry, record, lines if new_end else None, observed.reason is not None
        )
    elif pane is not None:
        stalled, quiet = _stall_clock(config, entry, pane, record, now)
        observed = replace(observed, stalled=True) if stalled else observed
        # Read once when it went quiet (or while it waits); a stalled pane that has
        # not moved since is not read again.
        if (stalled and record.state is not State.STALLED) or record.state is State.WAITING:
            until = _waiting_until(config, entry, pane, record, now, problems, budget)
            observed = replace(observed, stalled=False, waiting_until=until) if until else observed
    if observed.state is not State.RUNNING and record.state in (None, *RUNNING_STATES):
        # A run that just stopped: what git says it did, against how it started.
        start = baseline or record.baseline
        verdict = verify.measure(entry.command, entry.dir, start, observed.exit_code, now)
    return Sighting(
        note,
        entry,
        record,
        pane,
        observed,
        approved,
        read_at,
        baseline,
        quiet,
        verdict,
        keeps_sessions=conversation.keeps_sessions,
        session=conversation.session,
        resume=conversation.resume,
        resume_refused=conversation.refused,
        provider=provider,
    )


class Conversation(NamedTuple):
    """What the agent's own records say of a run that stopped before finishing."""

    keeps_sessions: bool = False  # the agent keeps conversations heartbeat can resume
    session: str | None = None
    resume: tuple[str, ...] | None = None  # the argv that continues it
    refused: str | None = None  # why the run, itself a resume, did not take


_NO_CONVERSATION = Conversation()
RESUME_FAILS_WITHIN = 30.0  # seconds: a resume that ends this soon did not take


def _conversation(
    config: Config,
    entry: Entry,
    record: Record,
    lines: list[str] | None,
    known_reason: bool = False,
) -> Conversation:
    """For a run that stopped before finishing: whether its agent keeps sessions, its
    session, the argv that resumes it, and why the run (itself a resume) did not take:
    judged from its last `lines` when its end is new, else as the record remembers."""
    if not agents.keeps_sessions(entry.command):
        return _NO_CONVERSATION
    env = {**config.env, **dict(record.homes)}
    written_counts = record.last_start is None  # an entry heartbeat never started
    # The conversations earlier runs had: never taken for the last run's.
    earlier = frozenset(
        known for known in (record.stale_session, entry.options.get("session")) if known
    )
    session = agents.session_of(
        entry, env, record.started_at, record.session, written_counts, earlier
    )
    refused = record.resume_failed if lines is None else None
    if record.resumed and lines is not None:
        quick = record.started_at is not None and time.time() - record.started_at < (
            RESUME_FAILS_WITHIN
        )
        refused = agents.resume_refused(entry.command, lines) or (
            "it ended within 30 s" if quick and not known_reason else None
        )
    resume = None
    if session and session != record.stale_session and not refused:
        resume = agents.resume_command(entry, session, config.settings.continue_prompt)
    return Conversation(True, session, resume, refused)


def look_at(
    config: Config,
    entry: Entry,
    pane: Pane | None,
    record: Record,
    problems: list[str],
    deadline: float | None = None,
) -> tuple[Observation, list[str] | None, int | None]:
    """What tmux and the state folder say about an entry; the pane's end when it was
    read, and the pane's activity time at that read."""
    same_pane = pane is not None and pane.pid == record.pid
    pane_text = _read_pane_end(config, entry, pane, record, problems, deadline)
    read_at = pane.activity if pane is not None and pane_text is not None else None
    pane_exit = exit_code_in(pane_text) if pane_text else None
    # A pane that is there says how its run stands: the wrapper's exit file is opened
    # only for a session gone (one open per entry and check saved).
    gone = entry.wrapped and pane is None
    recorded = state.read_exit(config.state_dir, record.run) if gone else None
    if entry.wrapped and record.run is None and pane is None:
        # No record of its run (a state file rebuilt): its exit file may still say.
        started = entry.options.get("started")
        recorded = state.last_exit(config.state_dir, entry.socket, entry.name, started)
    observed = observation_of(
        pane, entry.wrapped, recorded, record.state, record.exit_code, pane_exit, same_pane
    )
    return observed, pane_text, read_at


def observation_of(
    pane: Pane | None,
    wrapped: bool,
    recorded_exit: int | None,
    previous: State | None,
    previous_exit: int | None,
    pane_exit: int | None = None,
    same_pane: bool = False,
) -> Observation:
    """Turn what tmux and the state folder say into one observation: pure.

    `recorded_exit` is the wrapper's exit file for the current run; `pane_exit` the
    code read from a skill-form pane. A session that ended and was then killed (or
    whose `sleep` ran out) is still ended: it must not run again. `same_pane` says
    the pane is the one seen before, so an end already read from it still holds.
    """
    ended = previous in (State.FINISHED, State.FAILED, *HELD)
    if pane is not None:
        for code in (pane.exit_option if wrapped else None, pane.dead_status, pane_exit):
            if code is not None:
                return Observation(present=True, exit_code=code)
        if same_pane and ended and previous_exit is not None:
            return Observation(present=True, exit_code=previous_exit)
        return Observation(present=True)
    if recorded_exit is not None:
        return Observation(present=False, exit_code=recorded_exit)
    if ended and previous_exit is not None:
        return Observation(present=False, exit_code=previous_exit)
    return Observation(present=False)


def needs_capture(pane: Pane, last_read_activity: int | None) -> bool:
    """Whether a skill-form pane must be read to learn if its agent has ended.

    The list call's `pane_current_command` says so without reading the pane: only a
    pane sitting in its tail (or a non-exec shell whose output moved) is read.
    """
    if pane.activity == last_read_activity:
        return False
    return pane.current_command == TAIL_COMMAND or pane.current_command in NON_EXEC_SHELLS


def exit_code_in(lines: Sequence[str]) -> int | None:
    """The code of the last `EXITED: N` line in a pane's text."""
    for line in reversed(lines):
        match = EXITED_LINE.match(line)
        if match:
            return int(match[1])
    return None


def _read_pane_end(
    config: Config,
    entry: Entry,
    pane: Pane | None,
    record: Record,
    problems: list[str],
    deadline: float | None = None,
) -> list[str] | None:
    """For the skill's own lines: the pane's last lines (with its `EXITED: N`), read only
    when the list call says the agent may have ended."""
    if pane is None or entry.wrapped or not needs_capture(pane, record.activity):
        return None
    try:
        return tmux_at(config, entry.socket, deadline).capture(entry.name, CAPTURE_LINES)
    except TmuxError as error:
        problems.append(str(error))
        return None


def _stall_clock(
    config: Config, entry: Entry, pane: Pane, record: Record, now: datetime
) -> tuple[bool, Quiet | None]:
    """Whether the agent is stalled (no output, no new commit and, for an agent that
    keeps records as it works, no new record for `stall_after`), and the stall clock
    after this look (None: as the record has it).

    Judged from the list call's activity time, so a quiet pane costs no tmux call; git
    and the agent's records are asked only then, and then once every few minutes,
    however many agents sit stalled.
    """
    if pane.activity != record.seen_activity or record.quiet_since is None:
        return False, Quiet(pane.activity, now.isoformat(), None)
    quiet_since = datetime.fromisoformat(record.quiet_since)
    if now - quiet_since < timedelta(minutes=config.settings.stall_after_minutes):
        return False, None
    if record.commit_asked and now - datetime.fromisoformat(record.commit_asked) < GIT_EVERY:
        return True, None  # quiet still, and git had no new commit when last asked
    env = {**config.env, **dict(record.homes)}
    session = record.session or entry.options.get("session")
    active = agents.last_activity(entry.command, env, entry.dir, session)
    committed = git.last_commit_time(entry.dir)
    moved = [moment for moment in (active, committed) if moment is not None]
    if moved and max(moved) >= quiet_since.timestamp():
        # Working where the pane does not show it: quiet only from then.
        since = min(now, datetime.fromtimestamp(max(moved)))
        return False, Quiet(record.seen_activity, since.isoformat(), None)
    return True, Quiet(record.seen_activity, record.quiet_since, now.isoformat())


def _waiting_until(
    config: Config,
    entry: Entry,
    pane: Pane,
    record: Record,
    now: datetime,
    problems: list[str],
    budget: Budget,
) -> datetime | None:
    """For a quiet live agent that waits at a limit by itself: when its pane says the
    limit resets. Read once, when it went quiet; then believed until that time, unless
    the pane moved."""
    if not agents.waits_for_reset(entry.command):
        return None
    if (
        record.state is State.WAITING
        and record.not_before
        and pane.activity == record.seen_activity
    ):
        # Quiet still: waiting until then, and past then, it did not go on by itself.
        believed = datetime.fromisoformat(record.not_before)
        return believed if believed > now else None
    lines = _last_words(config, entry, pane, None, problems, budget)
    until = agents.waiting_until(entry.command, lines, said_when(pane, now), config.patterns)
    return until if until is not None and until > now else None


def said_when(pane: Pane | None, now: datetime) -> datetime:
    """When the pane's last words were printed: what a time in them counts from."""
    if pane is None or not pane.activity:
        return now
    return min(now, datetime.fromtimestamp(pane.activity))


def _stop_reason(
    config: Config,
    entry: Entry,
    record: Record,
    lines: list[str],
    now: datetime,
    pane: Pane | None,
) -> Reason | None:
    """Why the run stopped, as its agent's records, its pane and its agent's log say.

    Its words are read as of when its pane last printed (`try again in 2 hours` counts
    from then), not as of this check, which may come long after."""
    env = {**config.env, **dict(record.homes)}
    session = entry.options.get("session") or record.session
    said_at = said_when(pane, now)
    return agents.stop_reason(
        entry.command, lines, env, said_at, config.patterns, entry.dir, session
    )


def _last_words(
    config: Config,
    entry: Entry,
    pane: Pane | None,
    pane_text: list[str] | None,
    problems: list[str],
    budget: Budget,
) -> list[str]:
    """The agent's last lines in its pane, read for why it stopped."""
    lines = pane_text
    if lines is None and pane is not None:
        try:
            at = tmux_at(config, entry.socket, budget.deadline)
            lines = at.capture(entry.name, REASON_LINES)
        except TmuxError as error:
            problems.append(str(error))
    return list(lines or [])[-REASON_LINES:]


def run_log_end(record: Record, count: int = LOG_REASON_LINES) -> list[str]:
    """The last lines of the record's current run log, escapes stripped; read only for
    a run that has just stopped, never by a quiet check."""
    if not record.log:
        return []
    try:
        return logs.last_lines(Path(record.log), count, logs.REASON_BYTES, strip_ansi=True)
    except OSError:
        return []  # an unreadable log says nothing; the check goes on


def _snapshot(
    config: Config,
    saved: StateFile,
    look: Look,
    asked: Asked,
    budget: Budget,
    stamp: str,
    commands: bool,
) -> Snapshot:
    """The list call's answer; a socket file deleted under a live server is recreated,
    and asked again."""
    socket = asked.socket
    snapshot = asked.answer()
    known_pid = saved.servers.get(socket)
    if not snapshot.server_running and known_pid and not os.path.exists(socket):
        at = tmux_at(config, socket, budget.deadline)
        if at.recreate_socket(known_pid):
            state.log(config.state_dir, stamp, f"{socket}: socket was deleted; tmux recreated it")
            snapshot = at.snapshot(commands)
        else:
            look.servers[socket] = None
    if snapshot.server_pid is not None:
        look.servers[socket] = snapshot.server_pid
    return snapshot
