"""The check: what `heartbeat check` does, and starting a session, which it shares with
`launch`.

One check: read the notes -> entries -> ask tmux once per socket -> decide (policy) ->
act (restart) -> write status lines back, one atomic edit per note. Nothing here
prints or reads the clock: `now` comes in, results go out as values.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heartbeat import files, lazy, notes, policy, state, tmux, trust
from heartbeat.config import Config
from heartbeat.errors import HeartbeatError, RefusedError, TmuxError
from heartbeat.model import (
    HELD,
    Action,
    Command,
    Decision,
    Entry,
    History,
    Observation,
    Pane,
    Snapshot,
    State,
)
from heartbeat.notebook import LoadedNote, Notebook, carry_over, select, stamp_of
from heartbeat.state import Record, StateFile

if TYPE_CHECKING:
    from heartbeat import gitinfo, notify, procs, reasons, render, verify
else:  # what only changes and restarts need: loaded on first use
    gitinfo = lazy.module("heartbeat.gitinfo")
    notify = lazy.module("heartbeat.notify")
    procs = lazy.module("heartbeat.procs")
    reasons = lazy.module("heartbeat.reasons")
    render = lazy.module("heartbeat.render")
    verify = lazy.module("heartbeat.verify")

CAPTURE_LINES = 50  # the end of a skill-form pane, read for its `EXITED: N`
REASON_LINES = 30  # the agent's last words, read for why it stopped
HOOK_SCRIPT = "hook.sh"  # in the state folder: what tmux's session-closed hook runs
HOOK_PENDING = "hook-pending"  # a hook found a check running: that check looks again
LEFTOVER_GRACE_SECONDS = 1.0
RESTART_TIME_NEEDED = 5.0  # seconds of the check's budget a restart may take
# Settings the completion hook's check must share with the check that started the run.
PASSED_TO_HOOK = ("HEARTBEAT_NOTIFY", "HEARTBEAT_TMUX", "HEARTBEAT_NOW")
# How many checks' status lines are checked again: an editor holding a stale copy of
# the note for up to this many checks cannot make heartbeat's lines go missing.
WRITTEN_MEMORY = 10
# How often git is asked again about an agent that stays stalled.
GIT_EVERY = timedelta(minutes=5)
_LINE_NUMBER = re.compile(r"(?<=\.md):\d+")


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
    now: datetime,
    deadline: float | None = None,
) -> None:
    """Start an entry's session and note the run in its record."""
    stamp = stamp_of(now)
    _take_baseline(record, command, folder, now)  # what this run's work is measured against
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
            "HEARTBEAT_PANE_SOCKET": socket,
            "HEARTBEAT_TMUX": config.tmux or "tmux",
            "HEARTBEAT_EXIT_FILE": str(exit_path),
        }
        hook: list[str] = []
        if config.settings.completion_check:
            hook = [sys.executable, "-m", "heartbeat", "check", "--only", name, "--quiet"]
            # The hook's check must see what this one sees, whatever the pane's env.
            env |= {
                "HEARTBEAT_NOTES": str(config.notes_dir),
                "HEARTBEAT_STATE_DIR": str(config.state_dir),
                "HEARTBEAT_SOCKET": config.socket,
            }
            if config.config_file is not None:
                env["HEARTBEAT_CONFIG"] = str(config.config_file)
            env |= {key: config.env[key] for key in PASSED_TO_HOOK if key in config.env}
        argv = ("/bin/sh", "-c", render.wrapper_script(), "heartbeat", command, *hook)
        at = tmux_at(config, socket, deadline)
        pid, pane_id = at.start(name, folder, argv, env, hook_script(config))
    else:
        env |= dict(environment)
        at = tmux_at(config, socket, deadline)
        pid, pane_id = at.start(name, folder, command, env, hook_script(config))
    record.run = run
    record.pid, record.pane_id = pid, pane_id
    record.state = State.RUNNING
    record.exit_code = None
    record.activity = None
    record.since = stamp


# --- check ---------------------------------------------------------------------------


def hook_script(config: Config) -> str | None:
    """The script tmux runs when a session closes (instant restarts), written once."""
    if not config.settings.instant_restarts:
        return None
    path = config.state_dir / HOOK_SCRIPT
    text = render.hook_script(
        sys.executable,
        str(config.notes_dir),
        str(config.state_dir),
        config.socket,
        str(config.config_file or ""),
        config.path,
    )
    if not path.exists() or path.read_text() != text:
        files.write_private(path, text)
        os.chmod(path, 0o700)
    return str(path)


def tmux_at(config: Config, socket: str, deadline: float | None = None) -> tmux.Tmux:
    return tmux.Tmux(socket, config.tmux, config.settings.tmux_timeout_seconds, deadline)


def check(config: Config, now: datetime, only: str | None = None, hook: bool = False) -> Outcome:
    """One heartbeat (of the entry named `only`, when given). A check that finds another
    one running does nothing: that one, or the next, does the work.

    A tmux hook (`hook`) that finds a check running leaves a note for it instead, and
    that check looks once more before it ends: many sessions closing at once start one
    check, and none is missed. The completion hook (`only`) waits its turn instead, for
    as long as a check may take: what holds the lock may be the launch of this very
    agent, or a check that looked before the agent ended.
    """
    pending = config.state_dir / HOOK_PENDING
    waiting = config.settings.check_timeout_seconds if only is not None else None
    started = time.monotonic()
    with files.locked(config.state_dir, wait=only is not None, within=waiting) as acquired:
        if not acquired:
            if hook:
                with contextlib.suppress(OSError):
                    pending.touch()
            return Outcome(skipped=True)
        if waiting is not None:
            now += timedelta(seconds=time.monotonic() - started)  # the time spent waiting
        outcome = Outcome()
        for _ in range(3):
            # A tmux hook's note asks for every entry to be looked at, not only `only`.
            everything = pending.exists()
            pending.unlink(missing_ok=True)
            latest = _check(config, now, only=None if everything else only)
            outcome.changes += latest.changes
            outcome.problems += latest.problems
            outcome.needs_person |= latest.needs_person
            if not pending.exists():
                break
        return outcome


@dataclass
class Plan:
    """One entry on its way through a check: what was seen, and what to do."""

    loaded: LoadedNote
    entry: Entry
    record: Record
    observed: Observation
    decision: Decision
    old: str


def _check(
    config: Config,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
    only: str | None = None,
) -> Outcome:
    stamp = stamp_of(now)
    saved = state.load(config.state_dir)
    outcome = Outcome()
    problems: list[str] = [saved.warning] if saved.warning else []
    book = Notebook(config, now.date(), keep_cache=True)
    book.read_all()
    try:
        carry_over(book, stamp)
    except (HeartbeatError, OSError) as error:
        problems.append(str(error))
    selection = select(book)
    problems += book.problems + selection.problems
    for socket, name in selection.closed:
        # A closed entry is done with: a new entry of that name starts afresh.
        saved.records.pop(StateFile.key(socket, name), None)

    # A whole check ends within a bound, even when a tmux server hangs.
    deadline = time.monotonic() + config.settings.check_timeout_seconds
    managed = [pair for pair in selection.managed if only is None or pair[1].name == only]
    # Notes synced between machines: each check manages its own host's entries only,
    # and adopts a hand-written entry that names no host.
    adopt = [pair for pair in managed if "host" not in pair[1].options]
    managed = [pair for pair in managed if pair[1].options.get("host", config.host) == config.host]
    plans = _plan(config, saved, managed, now, problems, deadline)
    _require_approval(config, plans, problems)
    limit = config.settings.max_restarts_per_check
    if any(_rate_limited(plan, now) for plan in plans):
        limit = 1  # a provider is limiting us: stagger the other restarts, one a check
    _storm_guard(plans, limit)
    owed = _unfinished_edits(book, saved)
    edits: dict[Path, list[notes.Edit]] = defaultdict(list)
    for loaded, entry in adopt:
        host = notes.Edit(entry.key, stamp, f"host: {config.host}", option=True)
        edits[loaded.path].append(replace(host, entry_id=notes.entry_id(entry)))
    restarted = 0
    for plan in sorted(plans, key=_restart_order):
        if plan.decision.action is Action.RESTART:
            left = deadline - time.monotonic()
            if left < RESTART_TIME_NEEDED:
                plan.decision = policy.deferred(plan.decision)  # the next check's turn
            elif restarted:
                # Parallel agents restarted at one instant hit a provider's rate limit
                # together: a few seconds apart, with jitter.
                pause = config.settings.restart_spacing_seconds * (1 + random.random() / 2)
                sleep(min(pause, left - RESTART_TIME_NEEDED))
        change, edit = _act(config, plan, now, problems, deadline)
        restarted += plan.decision.action is Action.RESTART
        outcome.needs_person |= plan.decision.needs_person
        if change is not None:
            outcome.needs_person |= change.needs_person
            outcome.changes.append(change)
            state.log(config.state_dir, stamp, change.line())
        if edit is not None:
            edits[plan.loaded.path].append(edit)

    written: dict[str, list[dict[str, Any]]] = {}
    for path in {**owed, **edits}:
        note_edits = owed.get(path, []) + edits.get(path, [])
        serialized = [edit.as_json() for edit in note_edits]
        try:
            book.edit(path, note_edits)
            if edits.get(path):
                # Only this check's own lines: one is written again at most until its
                # check leaves the memory, so a line a person deletes stays deleted.
                written[str(path)] = [edit.as_json() for edit in edits[path]]
        except (HeartbeatError, OSError) as error:
            problems.append(str(error))
            # Status lines are written on changes only: keep them for the next check.
            saved.pending[str(path)] = serialized

    if written:
        saved.written = [*saved.written, written][-WRITTEN_MEMORY:]

    # Printed once: a problem is known by its file and text, not its line, since our
    # own status lines move the lines below them.
    keys = {problem: _LINE_NUMBER.sub("", problem) for problem in problems}
    outcome.problems = [p for p in problems if keys[p] not in saved.printed]
    saved.printed = sorted(set(keys.values()))
    outcome.needs_person |= bool(problems)
    state.save(config.state_dir, saved)
    if only is None:
        state.record_check(config.state_dir, now)  # for `status`: is heartbeat running?
        if config.settings.ping_url:
            body = "\n".join([*(c.line() for c in outcome.changes), *problems])
            failed = notify.ping(config.settings.ping_url, outcome.needs_person, body, 3.0)
            if failed:
                state.log(config.state_dir, stamp, failed)
    return outcome


def _unfinished_edits(book: Notebook, saved: StateFile) -> dict[Path, list[notes.Edit]]:
    """Status lines still owed: those a failed write left, and those a stale save dropped.

    An editor that read the note before our write and saved after it writes our lines
    away; they are written again, once, by the next check.
    """
    edits: dict[Path, list[notes.Edit]] = defaultdict(list)
    for path_text, raws in saved.pending.items():
        edits[Path(path_text)].extend(notes.Edit.from_json(raw) for raw in raws)
    by_path = {str(loaded.path): loaded.note for loaded in book.loaded}
    for written in saved.written:
        for path_text, raws in written.items():
            note = by_path.get(path_text)
            for edit in map(notes.Edit.from_json, raws):
                if note is None or notes.is_written(note, edit):
                    continue
                if edit not in edits[Path(path_text)]:
                    edits[Path(path_text)].append(edit)
    saved.pending = {}
    return edits


def _plan(
    config: Config,
    saved: StateFile,
    managed: list[tuple[LoadedNote, Entry]],
    now: datetime,
    problems: list[str],
    deadline: float,
) -> list[Plan]:
    """Ask tmux once per socket, then decide about every entry."""
    by_socket: dict[str, list[tuple[LoadedNote, Entry]]] = defaultdict(list)
    for loaded, entry in managed:
        by_socket[entry.socket].append((loaded, entry))
    plans: list[Plan] = []
    for socket, group in by_socket.items():
        try:
            # Panes' current commands tell when the skill's own lines have ended.
            commands = any(not entry.wrapped for _, entry in group)
            snapshot = _snapshot(config, saved, socket, deadline, stamp_of(now), commands)
        except TmuxError as error:
            problems.append(str(error))
            continue
        for loaded, entry in group:
            record = saved.record(entry.socket, entry.name)
            if record.digest != entry.digest:
                # A new or edited command starts with a clean slate.
                record.failures, record.digest = [], entry.digest
                record.baseline_at = None
                if record.state in HELD:
                    record.state = None
            pane = snapshot.panes.get(entry.name)
            if pane is not None and record.baseline_at is None:
                _take_baseline(record, entry.command, entry.dir, now)  # first seen, by hand
            observed, pane_text = observe(config, entry, pane, record, problems, deadline)
            if pane is not None and pane.pid is not None:
                # The process group to clear before a restart.
                record.pid, record.pane_id = pane.pid, pane.pane_id
            stopped_badly = observed.exit_code != 0 and not (
                observed.exit_code is None and observed.present
            )
            if stopped_badly and not record.forgiven:
                reason = _stop_reason(config, entry, pane, pane_text, now, problems, deadline)
                observed = replace(observed, reason=reason)
            elif pane is not None:
                observed = replace(observed, stalled=_stalled(config, entry, pane, record, now))
            decision = policy.decide(
                history_of(record),
                observed,
                now,
                entry.restart_mode,
                policy.Limits(stall_after=timedelta(minutes=config.settings.stall_after_minutes)),
                entry.stall_mode,
            )
            old = record.state.value if record.state else "new"
            plans.append(Plan(loaded, entry, record, observed, decision, old))
    return plans


def observe(
    config: Config,
    entry: Entry,
    pane: Pane | None,
    record: Record,
    problems: list[str],
    deadline: float | None = None,
) -> tuple[Observation, list[str] | None]:
    """What tmux and the state folder say about an entry, and the pane text if read."""
    same_pane = pane is not None and pane.pid == record.pid
    pane_text = _read_pane_end(config, entry, pane, record, problems, deadline)
    pane_exit = policy.exit_code_in(pane_text) if pane_text else None
    recorded = state.read_exit(config.state_dir, record.run) if entry.wrapped else None
    observed = policy.observe(
        pane, entry.wrapped, recorded, record.state, record.exit_code, pane_exit, same_pane
    )
    return observed, pane_text


def _take_baseline(record: Record, command: Command, folder: str, now: datetime) -> None:
    start = verify.baseline(command, folder, now)
    record.baseline_at = start.started.isoformat()
    record.baseline_head = start.head
    record.baseline_prd = sorted(start.prd_ticked) if start.prd_ticked is not None else None


def baseline_of(record: Record) -> verify.Baseline | None:
    if record.baseline_at is None:
        return None
    ticked = frozenset(record.baseline_prd) if record.baseline_prd is not None else None
    return verify.Baseline(record.baseline_head, ticked, datetime.fromisoformat(record.baseline_at))


def _stalled(config: Config, entry: Entry, pane: Pane, record: Record, now: datetime) -> bool:
    """No output and no new commit for `stall_after`: judged from the list call's
    activity time, so a quiet pane costs no tmux call; git is asked only then, and then
    once every few minutes, however many agents sit stalled."""
    if pane.activity != record.seen_activity or record.quiet_since is None:
        record.seen_activity, record.quiet_since = pane.activity, now.isoformat()
        record.commit_asked = None
        return False
    quiet_since = datetime.fromisoformat(record.quiet_since)
    if now - quiet_since < timedelta(minutes=config.settings.stall_after_minutes):
        return False
    if record.commit_asked and now - datetime.fromisoformat(record.commit_asked) < GIT_EVERY:
        return True  # quiet still, and git had no new commit when last asked
    committed = gitinfo.last_commit_time(entry.dir)
    if committed is not None and committed >= quiet_since.timestamp():
        record.quiet_since = now.isoformat()  # a commit without output: quiet from now
        record.commit_asked = None
        return False
    record.commit_asked = now.isoformat()
    return True


def _stop_reason(
    config: Config,
    entry: Entry,
    pane: Pane | None,
    pane_text: list[str] | None,
    now: datetime,
    problems: list[str],
    deadline: float,
) -> reasons.Reason | None:
    """What the agent's last words (and Codex's log) say about why it stopped."""
    lines = pane_text
    if lines is None and pane is not None:
        try:
            lines = tmux_at(config, entry.socket, deadline).capture(entry.name, REASON_LINES)
        except TmuxError as error:
            problems.append(str(error))
    found = reasons.classify(list(lines or [])[-REASON_LINES:], now, config.patterns)
    if found is None and "codex" in str(entry.command):
        found = reasons.classify(reasons.codex_log_tail(config.env, now), now, config.patterns)
    return found


def _snapshot(
    config: Config, saved: StateFile, socket: str, deadline: float, stamp: str, commands: bool
) -> Snapshot:
    """One list call; a socket file deleted under a live server is recreated first."""
    at = tmux_at(config, socket, deadline)
    snapshot = at.snapshot(commands)
    known_pid = saved.servers.get(socket)
    if not snapshot.server_running and known_pid and not os.path.exists(socket):
        if at.recreate_socket(known_pid):
            state.log(config.state_dir, stamp, f"{socket}: socket was deleted; tmux recreated it")
            snapshot = at.snapshot(commands)
        else:
            saved.servers.pop(socket, None)
    if snapshot.server_pid is not None:
        saved.servers[socket] = snapshot.server_pid
    return snapshot


def _require_approval(config: Config, plans: list[Plan], problems: list[str]) -> None:
    """A command heartbeat did not launch runs only once a person has allowed it."""
    if config.settings.trust_owned_notes:
        return
    allowed = trust.AllowList.load(config.state_dir)
    for plan in plans:
        if plan.decision.action is not Action.RESTART or allowed.allows(plan.entry):
            continue
        name = plan.entry.name
        problems.append(
            f"{plan.entry.location}: {name}: new command, not run: heartbeat allow {name}"
        )
        plan.decision = replace(
            plan.decision,
            action=Action.APPROVE,
            # Said once in the note; the check keeps exiting 1 until it is allowed.
            changed=plan.record.state is not plan.decision.state,
            status=f"{policy.describe(plan.observed)}, new command not run: heartbeat allow {name}",
            needs_person=True,
            failures=tuple(datetime.fromisoformat(t) for t in plan.record.failures),
        )


def history_of(record: Record) -> History:
    return History(
        state=record.state,
        failures=tuple(datetime.fromisoformat(t) for t in record.failures),
        last_start=datetime.fromisoformat(record.last_start) if record.last_start else None,
        not_before=datetime.fromisoformat(record.not_before) if record.not_before else None,
    )


def _restart_order(plan: Plan) -> tuple[bool, datetime]:
    """Restarts first, the longest-waiting first; the order of the rest does not matter."""
    due = plan.decision.due or datetime.max
    return (plan.decision.action is not Action.RESTART, due)


def _rate_limited(plan: Plan, now: datetime) -> bool:
    until = plan.record.not_before
    return plan.decision.event == "rate-limited" or (
        until is not None and datetime.fromisoformat(until) > now
    )


def _storm_guard(plans: list[Plan], limit: int) -> None:
    """At most `limit` restarts in one check; the rest wait for the next, oldest first."""
    restarts = sorted(
        (plan for plan in plans if plan.decision.action is Action.RESTART), key=_restart_order
    )
    for plan in restarts[limit:]:
        plan.decision = policy.deferred(plan.decision)


ACTION_WORDS = {
    Action.RESTART: "restarted",
    Action.CLOSE: "closed",
    Action.REPORT: "needs a person",
    Action.APPROVE: "needs approval",
    Action.NONE: "no action",
}


def _act(
    config: Config, plan: Plan, now: datetime, problems: list[str], deadline: float
) -> tuple[Change | None, notes.Edit | None]:
    """Carry out one decision, record it, and say what changed."""
    entry, record, decision = plan.entry, plan.record, plan.decision
    stamp = stamp_of(now)
    record.failures = [t.isoformat() for t in decision.failures]
    record.exit_code = plan.observed.exit_code
    if decision.event == "rate-limited" and decision.due is not None:
        record.not_before = decision.due.isoformat()
    if record.state is not decision.state:
        record.since = stamp
    record.state = decision.state
    status, needs_person = decision.status, decision.needs_person
    stopped = decision.state not in (State.RUNNING, State.STALLED)
    if stopped and decision.changed and plan.old in ("new", "running", "stalled"):
        status = _with_verdict(entry, record, plan.observed, status, now)
    words = ACTION_WORDS.get(decision.action, "")
    if decision.action is Action.WAIT:
        words = decision.status.rpartition(", ")[2]
    if decision.state is State.GAVE_UP:
        words = "gave up"
    elif decision.state is State.AUTH_EXPIRED:
        words = "needs a login"
    if decision.action is Action.RESTART:
        try:
            status += _clear_previous_run(config, entry, record, plan.observed.present, deadline)
            start_session(
                config,
                record,
                name=entry.name,
                socket=entry.socket,
                folder=entry.dir,
                command=entry.command,
                wrapped=entry.wrapped,
                environment=entry.environment,
                now=now,
                deadline=deadline,
            )
            record.last_start = now.isoformat()
            record.not_before, record.forgiven = None, False
        except HeartbeatError as error:
            problems.append(f"{entry.location}: {entry.name}: restart failed: {error}")
            if plan.old == decision.state.value:
                return None, None  # already said so; the next check tries again
            status, words, needs_person = (
                f"{policy.describe(plan.observed)}, restart failed: {error}",
                "restart failed",
                True,
            )
    if not decision.changed:
        return None, None
    event = "needs-approval" if decision.action is Action.APPROVE else decision.event
    if words == "restart failed":
        event = "failed"
    if event in config.settings.notify_events:
        hint = f" (heartbeat reset {entry.name})" if decision.state in HELD else ""
        text = f"{entry.name} in {entry.dir}: {status}{hint}"
        _notify(config, text, stamp, problems, deadline - time.monotonic())
    change = Change(entry.name, plan.old, decision.state.value, words, needs_person)
    close = decision.action is Action.CLOSE
    edit = notes.Edit(entry.key, stamp, status, close, notes.entry_id(entry))
    return change, edit


def _with_verdict(
    entry: Entry, record: Record, observed: Observation, status: str, now: datetime
) -> str:
    """The status line of a run that just stopped, with what git says it did."""
    report = verify.measure(entry.command, entry.dir, baseline_of(record), observed.exit_code, now)
    record.verdict = report.verdict
    what = policy.describe(observed)
    rest = status[len(what) :] if status.startswith(what) else f", {status}"
    return f"{what} · {report.summary()}{rest}"


def _clear_previous_run(
    config: Config, entry: Entry, record: Record, present: bool, deadline: float
) -> str:
    """End what is left of the previous run before starting again; says what it did."""
    if present:  # the session sits in its tail, or its pane is dead
        tmux_at(config, entry.socket, deadline).kill(entry.name)
    if record.pid is None or record.pane_id is None:
        return ""
    # kill-session's SIGHUP takes a moment: only what outlives it is a leftover.
    if procs.gone_within(record.pid, entry.socket, record.pane_id, LEFTOVER_GRACE_SECONDS):
        return ""
    if not procs.stop(record.pid, entry.socket, record.pane_id, grace=LEFTOVER_GRACE_SECONDS):
        raise RefusedError(
            f"processes of the previous run (process group {record.pid}) are still alive"
        )
    return f" (stopped leftovers of the previous run, process group {record.pid})"


def _notify(config: Config, text: str, stamp: str, problems: list[str], time_left: float) -> None:
    if not config.notify:
        return  # no notify command: the note and the log say it all
    timeout = max(0.5, min(config.settings.notify_timeout_seconds, time_left))
    error = notify.send(config.notify, text, timeout)
    state.log(config.state_dir, stamp, f"notified: {text}" if error is None else error)
    if error is not None:
        problems.append(error)


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
    if pane is None or entry.wrapped or not policy.needs_capture(pane, record.activity):
        return None
    try:
        lines = tmux_at(config, entry.socket, deadline).capture(entry.name, CAPTURE_LINES)
    except TmuxError as error:
        problems.append(str(error))
        return None
    record.activity = pane.activity
    return lines
