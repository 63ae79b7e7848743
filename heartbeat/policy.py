"""What to do about an entry, given what tmux showed and what was seen before: pure.

Restart defaults follow supervisord, systemd, pm2 and Kubernetes, tuned for agents that
run for hours: the first restart is immediate, later ones back off exponentially, a run
that stays up 10 minutes resets the count, and 5 failed starts within an hour give up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from heartbeat import lazy
from heartbeat.model import (
    HELD,
    Action,
    Decision,
    History,
    Observation,
    Pane,
    RestartMode,
    StallMode,
    State,
)

if TYPE_CHECKING:
    from heartbeat import reasons
else:  # only an entry that stopped needs it
    reasons = lazy.module("heartbeat.reasons")

EXITED_LINE = re.compile(r"^\s*EXITED:\s*(-?\d+)\s*$")
# The skill's tail (`...; sleep 999999`) runs as `sleep` once the agent has ended,
# when the shell execs its last command (bash, zsh and ksh do).
TAIL_COMMAND = "sleep"
# Shells that keep running their last command as a child, so the pane's command stays
# the shell's name after the agent ended: their output is read when it moved.
NON_EXEC_SHELLS = frozenset({"sh", "dash", "ash"})


@dataclass(frozen=True)
class Limits:
    first_backoff: timedelta = timedelta(minutes=1)
    max_backoff: timedelta = timedelta(minutes=30)
    give_up_after: int = 5  # failed starts ...
    give_up_window: timedelta = timedelta(minutes=60)  # ... within this long
    healthy_after: timedelta = timedelta(minutes=10)  # a run this long resets the count
    stall_after: timedelta = timedelta(minutes=30)  # no output and no commit this long

    def backoff(self, failures: int) -> timedelta:
        """The wait before the restart that follows the n-th failure in a row."""
        if failures <= 1:
            return timedelta(0)
        return min(self.first_backoff * (1 << (failures - 2)), self.max_backoff)


DEFAULT_LIMITS = Limits()


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


def observe(
    pane: Pane | None,
    wrapped: bool,
    recorded_exit: int | None,
    previous: State | None,
    previous_exit: int | None,
    pane_exit: int | None = None,
    same_pane: bool = False,
) -> Observation:
    """Turn what tmux and the state folder say into one observation.

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


def describe(observed: Observation) -> str:
    """`dead`, `finished (exit 0)`, `failed (exit 1)`, `failed (exit 124, timeout)`."""
    code = observed.exit_code
    if code is None:
        return "dead"
    if code == 0:
        return "finished (exit 0)"
    why = reasons.exit_reason(code)
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
    # A run is new news when the last check saw it running (or never saw it).
    new_end = history.state in (None, State.RUNNING, State.STALLED)
    if reason is not None and reason.kind == reasons.AUTH_EXPIRED:
        # A restart cannot fix a credential: held until `heartbeat reset`.
        text = f"{what} · {reason.describe()}"
        return Decision(State.AUTH_EXPIRED, Action.NONE, True, text, True, event="auth-expired")
    if not (
        mode is RestartMode.ALWAYS
        or (mode is RestartMode.ON_FAILURE and state is not State.FINISHED)
    ):
        if state is State.FINISHED:
            return Decision(state, Action.CLOSE, history.state is not state, what, event="finished")
        text = f"{what}, not restarted (restart: never)"
        return Decision(
            state, Action.REPORT, history.state is not state, text, True, event="failed"
        )

    failures = tuple(f for f in history.failures if now - f < limits.give_up_window)
    if reason is not None and reason.kind == reasons.RATE_LIMITED:
        # Not the agent's failure: no count, but no restart before the limit lifts.
        due = max(reason.retry_at or now + reasons.RATE_LIMIT_WAIT, now)
        if new_end and due > now:
            text = f"{what} · rate-limited, restart after {due:%H:%M}"
            return Decision(state, Action.WAIT, True, text, False, failures, due, "rate-limited")
    elif new_end:
        ran_long = (
            history.last_start is not None and now - history.last_start >= limits.healthy_after
        )
        # A clean exit counts too when it came quickly: `restart: always` must not spin.
        if state is not State.FINISHED or not ran_long:
            failures = (() if ran_long else failures) + (now,)
    if len(failures) >= limits.give_up_after:
        minutes = int(limits.give_up_window.total_seconds() // 60)
        text = f"{what}, gave up after {len(failures)} failed starts in {minutes} min"
        return Decision(State.GAVE_UP, Action.NONE, True, text, True, failures, event="gave-up")
    due = (failures[-1] if failures else now) + limits.backoff(len(failures))
    if history.not_before is not None:
        due = max(due, history.not_before)
    if now >= due:
        text = f"{what}, restarted"
        return Decision(state, Action.RESTART, True, text, False, failures, due, "restarted")
    text = f"{what}, restart after {due:%H:%M}"
    event = "failed" if new_end else None
    return Decision(state, Action.WAIT, new_end, text, False, failures, due, event)


def _running(
    history: History, observed: Observation, now: datetime, limits: Limits, on_stall: StallMode
) -> Decision:
    healthy = history.last_start is not None and now - history.last_start >= limits.healthy_after
    failures = () if healthy else history.failures
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
