"""Act: carry out the plans. Restarts first, spaced and within the check's time bound;
then the notifications. Each plan comes back as what was done: the record to store,
the status line to write and the change to print."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from heartbeat import lazy, state
from heartbeat.check import decide
from heartbeat.check.budget import Budget
from heartbeat.check.facts import Change, Done, Plan, Sighting
from heartbeat.check.start import start_session, tmux_at
from heartbeat.config import Config
from heartbeat.errors import HeartbeatError, RefusedError
from heartbeat.model import HELD, Action, Record, State, stamp_of
from heartbeat.notes.edit import Edit, entry_id
from heartbeat.records import replace

if TYPE_CHECKING:
    from heartbeat import agents
    from heartbeat.check import notify
    from heartbeat.tmux import procs
else:  # what only changes and restarts need: loaded on first use
    agents = lazy.module("heartbeat.agents")
    notify = lazy.module("heartbeat.check.notify")
    procs = lazy.module("heartbeat.tmux.procs")

LEFTOVER_GRACE_SECONDS = 1.0
ACTION_WORDS = {
    Action.RESTART: "restarted",
    Action.CLOSE: "closed",
    Action.REPORT: "needs a person",
    Action.APPROVE: "needs approval",
    Action.NONE: "no action",
}


def act(
    config: Config,
    plans: Sequence[Plan],
    now: datetime,
    problems: list[str],
    budget: Budget,
    sleep: Callable[[float], None],
) -> list[Done]:
    """Carry out every plan, restarts first; then tell a person what they need to know."""
    done: list[Done] = []
    restarted = 0
    for plan in sorted(plans, key=decide.restart_order):
        if plan.decision.action is Action.RESTART:
            if not budget.has_room_for_a_restart():
                plan = replace(plan, decision=decide.deferred(plan.decision))  # the next check's
            elif restarted:
                space_restarts(config, budget, sleep)
        done.append(act_on(config, plan, now, problems, budget))
        restarted += plan.decision.action is Action.RESTART
    stamp = stamp_of(now)
    for one in done:
        if one.change is not None:
            state.log(config.state_dir, stamp, one.change.line())
    return done


NOTIFY_TIME_NEEDED = 1.0  # seconds of the check's budget a notification may take, at least


def tell(
    config: Config, notices: Sequence[str], now: datetime, problems: list[str], budget: Budget
) -> list[str]:
    """Send the notifications, oldest first, within what is left of the check's time
    bound; returns those there was no time for, which the next check sends."""
    stamp = stamp_of(now)
    for index, text in enumerate(notices):
        if config.notify and budget.left() < NOTIFY_TIME_NEEDED:
            state.log(config.state_dir, stamp, f"{len(notices) - index} notifications wait")
            return list(notices[index:])
        _notify(config, text, stamp, problems, budget.left() - NOTIFY_TIME_NEEDED / 2)
    return []


def space_restarts(config: Config, budget: Budget, sleep: Callable[[float], None]) -> None:
    """Parallel agents restarted at one instant hit a provider's rate limit together:
    restarts go a few seconds apart, with jitter, within the check's time bound."""
    import random  # here: only a second restart in one check needs it

    pause = config.settings.restart_spacing_seconds * (1 + random.random() / 2)
    sleep(min(pause, budget.left() - budget.restart_reserve))


def act_on(config: Config, plan: Plan, now: datetime, problems: list[str], budget: Budget) -> Done:
    """Carry out one plan, and say what changed."""
    sighting, decision, record = plan.sighting, plan.decision, plan.record
    entry = sighting.entry
    status, needs_person, words = decision.status, decision.needs_person, _words_for(plan)
    server: int | None = None
    if decision.action is Action.RESTART:
        try:
            status += _clear_previous_run(config, plan, budget)
            command, session = agents.restart_command(entry)
            if plan.resume:
                command, session = plan.resume, record.session
            started = start_session(
                config,
                name=entry.name,
                socket=entry.socket,
                folder=entry.dir,
                command=command,
                wrapped=entry.wrapped,
                path=record.path,
                environment=entry.environment,
                homes=record.homes,
                now=now,
                deadline=budget.deadline,
                session=session,
                resumed=plan.resume is not None,
            )
            record = record.started(started, now).restarted(now.date())
            server = started.server_pid
        except HeartbeatError as error:
            problems.append(f"{entry.location}: {entry.name}: restart failed: {error}")
            if sighting.old == decision.state.value:
                return Done(plan, record)  # already said so; the next check tries again
            status = f"{decide.describe(sighting.observed)}, restart failed: {error}"
            words, needs_person = "restart failed", True
    if not decision.changed:
        return Done(plan, record, server_pid=server)
    event = "needs-approval" if decision.action is Action.APPROVE else decision.event
    if words == "restart failed":
        event = "failed"
    notice = None
    if event in config.settings.notify_events and decide.is_news(record, event):
        hint = f" (heartbeat reset {entry.name})" if decision.state in HELD else ""
        text = f"{entry.name} in {entry.dir}: {status}{hint}"
        if decision.action is Action.APPROVE:
            # Nothing of an unapproved entry's own text: its name is a checked word.
            text = f"{entry.name}: a new command in {entry.location}: heartbeat allow {entry.name}"
        mark = state.entry_mark(*entry.key)
        identity = f"{mark} {run_identity(sighting, event)} {event}"
        notice = notify.Notice(mark, entry.name, identity, event, text)
        record = replace(record, told=(*record.told, event))  # once per event, not per stop
    change = Change(entry.name, sighting.old, decision.state.value, words, needs_person)
    close = decision.action is Action.CLOSE
    edit = Edit(entry.key, stamp_of(now), status, close, entry_id(entry))
    return Done(plan, record, change, edit, notice, server)


def run_identity(sighting: Sighting, event: str) -> str:
    """Which run an event is of, from what outlives the note's text: the session's
    pane (a restart makes a new one), else the state's run id or start; an approval is
    of the command itself, a stall of the moment the pane went still."""
    if event == "needs-approval":
        return f"command:{sighting.entry.digest}"
    pane, record = sighting.pane, sighting.record
    if pane is not None:
        # A new server numbers its panes from %0 again, and two runs may start within
        # one second: the pane's process tells them apart.
        run = f"pane:{pane.created}:{pane.pid}{pane.pane_id}"
    else:
        started = sighting.entry.options.get("started")
        run = f"run:{record.run or record.last_start or record.since or started or ''}"
    if event == "stalled" and sighting.quiet is not None:
        run += f"@{sighting.quiet.quiet_since}"
    return run


def _words_for(plan: Plan) -> str:
    """What the change line says heartbeat did."""
    decision = plan.decision
    if decision.state is State.GAVE_UP:
        return "gave up"
    if decision.state is State.AUTH_EXPIRED:
        return "needs a login"
    if decision.action is Action.WAIT:
        return decision.status.rpartition(", ")[2]
    return ACTION_WORDS.get(decision.action, "")


def _clear_previous_run(config: Config, plan: Plan, budget: Budget) -> str:
    """End what is left of the previous run before starting again; says what it did."""
    entry, record = plan.sighting.entry, plan.record
    if plan.sighting.observed.present:  # the session sits in its tail, or its pane is dead
        tmux_at(config, entry.socket, budget.deadline).kill(entry.name)
    return _stop_leftovers(entry.socket, record)


def _stop_leftovers(socket: str, record: Record) -> str:
    if record.pid is None or record.pane_id is None:
        return ""
    # kill-session's SIGHUP takes a moment: only what outlives it is a leftover.
    if procs.gone_within(record.pid, socket, record.pane_id, LEFTOVER_GRACE_SECONDS):
        return ""
    if not procs.stop(record.pid, socket, record.pane_id, grace=LEFTOVER_GRACE_SECONDS):
        raise RefusedError(
            f"processes of the previous run (process group {record.pid}) are still alive"
        )
    return f" (stopped leftovers of the previous run, process group {record.pid})"


def _notify(config: Config, text: str, stamp: str, problems: list[str], time_left: float) -> None:
    if not config.notify:
        return  # no notify command: the note and the log say it all
    timeout = max(0.1, min(config.settings.notify_timeout_seconds, time_left))
    error = notify.send(config.notify, text, timeout)
    state.log(config.state_dir, stamp, f"notified: {text}" if error is None else error)
    if error is not None:
        problems.append(error)
