"""What to do about an entry, given what tmux showed and what was seen before: pure."""

from __future__ import annotations

import re
from collections.abc import Sequence

from heartbeat.model import Action, Decision, Observation, Pane, State

EXITED_LINE = re.compile(r"^\s*EXITED:\s*(-?\d+)\s*$")
# The skill's tail (`...; sleep 999999`) runs as `sleep` once the agent has ended,
# when the shell execs its last command (bash, zsh and ksh do).
TAIL_COMMAND = "sleep"
# Shells that keep running their last command as a child, so the pane's command stays
# the shell's name after the agent ended: their output is read when it moved.
NON_EXEC_SHELLS = frozenset({"sh", "dash", "ash"})


def needs_capture(pane: Pane, last_read_activity: int | None) -> bool:
    """Whether a skill-form pane must be read to learn if its agent has ended.

    The list call's `pane_current_command` says so without reading the pane: only a
    pane sitting in its tail (or a non-exec shell whose output moved) is read.
    """
    if pane.current_command == TAIL_COMMAND:
        return pane.activity != last_read_activity
    return pane.current_command in NON_EXEC_SHELLS and pane.activity != last_read_activity


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
) -> Observation:
    """Turn what tmux and the state folder say into one observation.

    `recorded_exit` is the wrapper's exit file for the current run; `pane_exit` the
    code read from a skill-form pane. A session that ended and was then killed (or
    whose `sleep` ran out) is still ended: it must not run again.
    """
    if pane is not None:
        for code in (pane.exit_option if wrapped else None, pane.dead_status, pane_exit):
            if code is not None:
                return Observation(present=True, exit_code=code)
        return Observation(present=True)
    if recorded_exit is not None:
        return Observation(present=False, exit_code=recorded_exit)
    if previous in (State.FINISHED, State.FAILED) and previous_exit is not None:
        return Observation(present=False, exit_code=previous_exit)
    return Observation(present=False)


def decide(previous: State | None, observed: Observation) -> Decision:
    """The action and the status line for one entry.

    A status line is written only when the state changed since the last check; the
    first sighting of a running entry writes nothing.
    """
    state = observed.state
    changed = previous != state
    if state is State.DEAD:
        return Decision(state, Action.RESTART, True, "dead, restarted")
    if state is State.RUNNING:
        text = "running" if previous is None else "running again"
        return Decision(state, Action.NONE, changed and previous is not None, text)
    code = observed.exit_code
    if state is State.FINISHED:
        return Decision(state, Action.CLOSE, changed, f"finished (exit {code})")
    return Decision(
        state, Action.REPORT, changed, f"failed (exit {code}), left for a person", needs_person=True
    )
