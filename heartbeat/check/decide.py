"""Decide: what to do about each entry, and what its record becomes: pure.

`plan` takes one sighting to a plan; `storm_guard` holds back restarts past a check's
share. Nothing here reads a file, asks tmux or reads the clock.

Restart defaults follow supervisord, systemd, pm2 and Kubernetes, tuned for agents that
run for hours: the first restart is immediate, later ones back off exponentially, a run
that stays up 10 minutes resets the count, and 5 failed starts within an hour give up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from heartbeat.check.facts import Plan, Sighting
from heartbeat.model import (
    AUTH_EXPIRED,
    HELD,
    LIVE,
    RATE_LIMIT_WAIT,
    RATE_LIMITED,
    TRANSIENT,
    Action,
    Decision,
    Entry,
    History,
    Hold,
    Observation,
    Record,
    RestartMode,
    ResumeMode,
    StallMode,
    State,
    stamp_of,
    when,
)
from heartbeat.records import frozen, replace


@frozen(eq=False, repr=False)
class Limits:
    first_backoff: timedelta = timedelta(minutes=1)
    max_backoff: timedelta = timedelta(minutes=30)
    give_up_after: int = 5  # failed starts ...
    give_up_window: timedelta = timedelta(minutes=60)  # ... within this long
    healthy_after: timedelta = timedelta(minutes=10)  # a run this long resets the count
    stall_after: timedelta = timedelta(minutes=30)  # no output and no commit this long
    # A rate limit: never sooner than this after the stop, and never before its reset
    # time plus a margin (a "try again in 0 seconds" must not spin).
    limit_wait: timedelta = timedelta(minutes=1)
    limit_margin: timedelta = timedelta(seconds=30)

    def backoff(self, failures: int) -> timedelta:
        """The wait before the restart that follows the n-th failure in a row."""
        if failures <= 1:
            return timedelta(0)
        return min(self.first_backoff * (1 << (failures - 2)), self.max_backoff)


DEFAULT_LIMITS = Limits()


def exit_reason(code: int | None) -> str:
    """What the exit code alone says: crashed, killed (by a signal) or timeout."""
    if code is None:
        return "dead"
    if code == 124:
        return "timeout"
    if code > 128:
        return f"killed by signal {code - 128}"
    return "crashed" if code else "exited"


def describe(observed: Observation) -> str:
    """`dead`, `finished (exit 0)`, `failed (exit 1)`, `failed (exit 124, timeout)`."""
    code = observed.exit_code
    if code is None:
        return "dead"
    if code == 0:
        return "finished (exit 0)"
    why = exit_reason(code)
    return f"failed (exit {code})" if why == "crashed" else f"failed (exit {code}, {why})"


def decide(
    history: History,
    observed: Observation,
    now: datetime,
    mode: RestartMode = RestartMode.ON_FAILURE,
    limits: Limits = DEFAULT_LIMITS,
    on_stall: StallMode = StallMode.NOTIFY,
) -> Decision:
    """The action and the status line for one entry.

    A status line is written only when something changed since the last check; the
    first sighting of a running entry writes nothing.
    """
    state = observed.state
    if state is State.RUNNING:
        return _running(history, observed, now, limits, on_stall)
    if history.state in HELD:
        return Decision(history.state, Action.NONE, False, "", True, history.failures)

    what = describe(observed)
    reason = observed.reason
    if reason is not None and reason.kind == TRANSIENT:
        what = f"{what} · {reason.describe()}"  # restarted as a crash is, and named
    # A run is new news when the last check saw it running (or never saw it).
    new_end = history.state in (None, *LIVE)
    if reason is not None and reason.kind == AUTH_EXPIRED:
        # A restart cannot fix a credential: held until `heartbeat reset`.
        text = f"{what} · {reason.describe()}"
        return Decision(State.AUTH_EXPIRED, Action.NONE, True, text, True, event="auth-expired")
    if not (
        mode is RestartMode.ALWAYS
        or (mode is RestartMode.ON_FAILURE and state is not State.FINISHED)
    ):
        return _not_restarted(history, state, what)

    failures = tuple(f for f in history.failures if now - f < limits.give_up_window)
    limited = reason is not None and reason.kind == RATE_LIMITED
    if new_end and limited:
        failures = (*failures, now)  # every start counts toward giving up (systemd's rule)
    elif new_end:
        failures = _counting_this_end(history, state, failures, now, limits)
    if len(failures) >= limits.give_up_after:
        minutes = int(limits.give_up_window.total_seconds() // 60)
        text = f"{what}, gave up after {len(failures)} failed starts in {minutes} min"
        return Decision(State.GAVE_UP, Action.NONE, True, text, True, failures, event="gave-up")
    due = (failures[-1] if failures else now) + limits.backoff(len(failures))
    if limited and new_end and reason is not None:
        due = _whole_minute(max(due, _limit_lifts(reason.retry_at, now, limits)))
    if history.not_before is not None:
        due = max(due, history.not_before)
    if now >= due:
        text = f"{what}, restarted"
        return Decision(state, Action.RESTART, True, text, False, failures, due, "restarted")
    if limited and new_end:
        text = f"{what} · rate-limited, restart after {when(due, now)}"
        return Decision(state, Action.WAIT, True, text, False, failures, due, "rate-limited")
    text = f"{what}, restart after {when(due, now)}"
    event = "failed" if new_end else None
    return Decision(state, Action.WAIT, new_end, text, False, failures, due, event)


def _limit_lifts(reset: datetime | None, now: datetime, limits: Limits) -> datetime:
    """When a rate-limited agent may start again: its reset time (else a default wait)
    plus a margin, and at least the minimum wait from now."""
    return max((reset or now + RATE_LIMIT_WAIT) + limits.limit_margin, now + limits.limit_wait)


def _whole_minute(moment: datetime) -> datetime:
    """Up to the minute, which is what the status line names."""
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + timedelta(minutes=1)


def _not_restarted(history: History, state: State, what: str) -> Decision:
    """A run its restart mode does not restart: a finished one is closed, else reported."""
    if state is State.FINISHED:
        return Decision(state, Action.CLOSE, history.state is not state, what, event="finished")
    text = f"{what}, not restarted (restart: never)"
    return Decision(state, Action.REPORT, history.state is not state, text, True, event="failed")


def _counting_this_end(
    history: History,
    state: State,
    failures: tuple[datetime, ...],
    now: datetime,
    limits: Limits,
) -> tuple[datetime, ...]:
    """The failed starts, with the end just seen when it counts as one: a run that stayed
    up long enough starts the count afresh."""
    ran_long = history.last_start is not None and now - history.last_start >= limits.healthy_after
    # A clean exit counts too when it came quickly: `restart: always` must not spin.
    if state is not State.FINISHED or not ran_long:
        return (() if ran_long else failures) + (now,)
    return failures


def _running(
    history: History, observed: Observation, now: datetime, limits: Limits, on_stall: StallMode
) -> Decision:
    healthy = history.last_start is not None and now - history.last_start >= limits.healthy_after
    failures = () if healthy else history.failures
    until = observed.waiting_until
    if until is not None:
        # It waits for its limit itself: nothing to do before then, and nothing to tell.
        text = f"waiting for limit reset (until {when(until, now)})"
        changed = history.state is not State.WAITING
        return Decision(State.WAITING, Action.NONE, changed, text, False, failures, until)
    if observed.stalled:
        if history.state is State.STALLED:
            return Decision(State.STALLED, Action.NONE, False, "", failures=failures)
        minutes = int(limits.stall_after.total_seconds() // 60)
        text = f"stalled: no output and no new commit for {minutes} min"
        if on_stall is StallMode.RESTART:
            return Decision(
                State.STALLED,
                Action.RESTART,
                True,
                f"{text}, restarted",
                False,
                failures,
                now,
                "stalled",
            )
        return Decision(State.STALLED, Action.NONE, True, text, False, failures, event="stalled")
    changed = history.state not in (None, State.RUNNING)
    return Decision(State.RUNNING, Action.NONE, changed, "running again", failures=failures)


def deferred(decision: Decision) -> Decision:
    """A restart the storm guard holds back until the next check."""
    return replace(decision, action=Action.WAIT, changed=False)


# --- a check's plans --------------------------------------------------------------------


@frozen(eq=False)
class InForce:
    """A login hold as one check sees it."""

    hint: str  # what to run
    teller: tuple[str, str] | None  # the entry whose message tells of it (None: told)


def holds_in_force(
    sightings: Sequence[Sighting], holds: Mapping[str, Hold], lifted: set[str]
) -> dict[str, InForce]:
    """The providers whose agents are held for an expired login: those held before
    (unless their login was renewed; already told), and those whose login failed now
    (told by the first entry that saw it)."""
    held = {
        provider: InForce(hold.hint, None)
        for provider, hold in holds.items()
        if provider not in lifted
    }
    for sighting in sightings:
        reason = sighting.observed.reason
        if reason is not None and reason.kind == AUTH_EXPIRED and sighting.provider:
            held.setdefault(sighting.provider, InForce(reason.hint, sighting.entry.key))
    return held


def plan(
    sighting: Sighting,
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
    held: Mapping[str, InForce] | None = None,
) -> Plan:
    """What to do about one entry, and its record once that is done (`held`: the
    providers whose login expired, whose agents are held when they stop)."""
    entry, record, observed = sighting.entry, sighting.record, sighting.observed
    history = history_of(record)
    decision = decide(history, observed, now, entry.restart_mode, limits, entry.stall_mode)
    hold = (held or {}).get(sighting.provider or "")
    new_end = history.state in (None, *LIVE)
    stopped = decision.state not in (*HELD, *RUNNING_STATES, State.FINISHED)
    if hold is not None and new_end and stopped:
        # A restart into the same expired login fails the same way: held with the rest,
        # told in the first one's message.
        what = f"{describe(observed)} · held: the {sighting.provider} login expired; {hold.hint}"
        decision = Decision(State.AUTH_EXPIRED, Action.NONE, True, what, True)
    elif hold is not None and decision.event == "auth-expired" and hold.teller != entry.key:
        decision = replace(decision, event=None)  # one message in all, for the login
    if sighting.verdict is not None and decision.changed:
        # The status line of a run that just stopped says what git says it did.
        what, status = describe(observed), decision.status
        rest = status[len(what) :] if status.startswith(what) else f", {status}"
        decision = replace(decision, status=f"{what} · {sighting.verdict.summary()}{rest}")
    problem = None
    if decision.action is Action.RESTART and not sighting.approved:
        decision, problem = _awaiting_approval(sighting, decision)
    elif asks_approval(sighting):
        # Asked while it runs and a person is likely there (it was just started by
        # hand), not at its death, at night: printed once, exit 1 until it is allowed.
        name = entry.name
        problem = f"{entry.location}: {name}: needs approval: heartbeat allow {name}"
        decision = replace(decision, needs_person=True)
    resume = None
    if decision.action is Action.RESTART and sighting.keeps_sessions:
        decision, resume = _how_restarted(sighting, decision)
    return Plan(sighting, decision, next_record(sighting, decision, now), problem, resume)


def _how_restarted(
    sighting: Sighting, decision: Decision
) -> tuple[Decision, tuple[str, ...] | None]:
    """A restart of an agent that keeps its conversations: it continues the run's own
    when it has one and stopped before finishing; else it starts afresh, and says why."""
    base = decision.status.removesuffix(", restarted")
    session, entry = sighting.session, sighting.entry
    if sighting.resume_refused:
        why = sighting.resume_refused
        return replace(decision, status=f"{base}, resume failed: {why}; started afresh"), None
    if (
        sighting.resume
        and session
        and entry.resume_mode is ResumeMode.AUTO
        and sighting.observed.state is not State.FINISHED
    ):
        return replace(decision, status=f"{base}, resumed session {session[:8]}…"), sighting.resume
    why = "resume: never" if entry.resume_mode is ResumeMode.NEVER else "no session"
    if session and not sighting.resume and entry.resume_mode is ResumeMode.AUTO:
        stale = session == sighting.record.stale_session
        why = "its session did not resume before" if stale else "its command cannot be resumed"
    return replace(decision, status=f"{base}, restarted afresh ({why})"), None


def asks_approval(sighting: Sighting) -> bool:
    """Whether a running entry waits for a person's approval: its command was not
    launched by heartbeat nor allowed, and heartbeat may one day have to restart it."""
    return (
        not sighting.approved
        and sighting.entry.may_restart
        and sighting.observed.state in RUNNING_STATES
    )


RESTARTED = ", restarted"  # how a restart's status line ends


def _awaiting_approval(sighting: Sighting, decision: Decision) -> tuple[Decision, str]:
    """A command heartbeat did not launch runs only once a person has allowed it."""
    entry, record = sighting.entry, sighting.record
    name = entry.name
    problem = f"{entry.location}: {name}: new command, not run: heartbeat allow {name}"
    seen = decision.status.removesuffix(RESTARTED)
    held = replace(
        decision,
        action=Action.APPROVE,
        # Said once in the note; the check keeps exiting 1 until it is allowed.
        changed=record.state is not decision.state,
        # What the person must do first, then what was seen (`needs approval: heartbeat
        # allow api · dead · not a git repo`).
        status=f"needs approval: heartbeat allow {name} · {seen}",
        needs_person=True,
        failures=tuple(datetime.fromisoformat(t) for t in record.failures),
    )
    return held, problem


def next_record(sighting: Sighting, decision: Decision, now: datetime) -> Record:
    """The entry's record once this check has seen it and carried out the decision
    (before any start, which `Record.started` adds). The record itself when nothing in
    it changed, as in most checks."""
    record, quiet, due = sighting.record, sighting.quiet, decision.due
    fields: dict[str, Any] = {
        "state": decision.state,
        "failures": tuple(t.isoformat() for t in decision.failures),
        "exit_code": sighting.observed.exit_code,
    }
    if record.state is not decision.state:
        fields["since"] = stamp_of(now)
    if due is not None and (decision.event == "rate-limited" or decision.state is State.WAITING):
        fields["not_before"] = due.isoformat()  # no restart before its limit lifts
    elif decision.state in (State.RUNNING, State.STALLED):
        fields["not_before"] = None  # it went on: a limit it waited for holds no more
    pane = sighting.pane
    if pane is not None and pane.pid is not None:  # the process group to clear at a restart
        fields["pid"], fields["pane_id"] = pane.pid, pane.pane_id
    if sighting.read_activity is not None:
        fields["activity"] = sighting.read_activity
    if quiet is not None:
        fields["seen_activity"] = quiet.seen_activity
        fields["quiet_since"] = quiet.quiet_since
        fields["commit_asked"] = quiet.commit_asked
    if sighting.verdict is not None and decision.changed:
        fields["verdict"] = sighting.verdict.verdict
    if decision.state is State.RUNNING and not decision.failures:
        fields["told"] = ()  # a healthy run: the next stop is news again
    if sighting.session is not None:
        fields["session"] = sighting.session
    if sighting.resume_refused and record.session:
        fields["stale_session"] = record.session  # not tried again
        fields["resume_failed"] = sighting.resume_refused
    changed = {name: value for name, value in fields.items() if getattr(record, name) != value}
    updated = replace(record, **changed) if changed else record
    return updated.with_baseline(sighting.baseline) if sighting.baseline else updated


def is_news(record: Record, event: str) -> bool:
    """Whether a person should hear of this event: each event once since the entry last
    ran healthy, and a restart only when no message said before when it would restart
    (`rate-limited` and `failed` do)."""
    if event == "restarted":
        return not {"rate-limited", "failed"} & set(record.told)
    return event not in record.told


def history_of(record: Record) -> History:
    return History(
        state=record.state,
        failures=tuple(datetime.fromisoformat(t) for t in record.failures),
        last_start=datetime.fromisoformat(record.last_start) if record.last_start else None,
        not_before=datetime.fromisoformat(record.not_before) if record.not_before else None,
    )


def restart_order(plan: Plan) -> tuple[bool, datetime]:
    """Restarts first, the longest-waiting first; the order of the rest does not matter."""
    due = plan.decision.due or datetime.max
    return (plan.decision.action is not Action.RESTART, due)


RUNNING_STATES = LIVE


def limited_groups(
    plans: Sequence[Plan], now: datetime, group_of: Callable[[Entry], str]
) -> set[str]:
    """What rate limits hold now: the groups (a provider's entries, or one entry whose
    provider is not known) with an entry that was just limited or waits for a reset."""
    held = set()
    for one in plans:
        until = one.sighting.record.not_before
        if one.decision.event == "rate-limited" or (
            until is not None and datetime.fromisoformat(until) > now
        ):
            held.add(group_of(one.sighting.entry))
    return held


def storm_guard(
    plans: Sequence[Plan],
    most: int,
    limited: set[str] | frozenset[str] = frozenset(),
    group_of: Callable[[Entry], str] | None = None,
) -> list[Plan]:
    """At most `most` restarts in one check, and one of each group a rate limit holds
    (parallel agents restarted together hit the limit together); the rest wait for the
    next check, the longest-waiting first."""
    restarts = sorted((p for p in plans if p.decision.action is Action.RESTART), key=restart_order)
    held, kept, per_group = set(), 0, set()
    for one in restarts:
        group = group_of(one.sighting.entry) if limited and group_of else None
        if kept >= most or (group in limited and group in per_group):
            held.add(id(one))
            continue
        kept += 1
        if group is not None:
            per_group.add(group)
    return [replace(p, decision=deferred(p.decision)) if id(p) in held else p for p in plans]
