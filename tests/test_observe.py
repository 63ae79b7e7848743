"""Observing, the pure part: what tmux and the state folder say -> one observation."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from heartbeat.check import observe
from heartbeat.model import Observation, Pane, State


def pane(command: str = "sh", exit_option: int | None = None, activity: int = 100) -> Pane:
    return Pane("api", "%1", 42, command, exit_option, None, activity, 1)


class ObserveCase(NamedTuple):
    test_id: str
    pane: Pane | None
    wrapped: bool
    recorded_exit: int | None
    previous: State | None
    previous_exit: int | None
    pane_exit: int | None
    expected: Observation


OBSERVE_CASES = [
    ObserveCase(
        "wrapper's option", pane(exit_option=0), True, None, None, None, None, Observation(True, 0)
    ),
    ObserveCase("running", pane(), True, None, None, None, None, Observation(True)),
    ObserveCase(
        "gone, exit file says 0", None, True, 0, State.RUNNING, None, None, Observation(False, 0)
    ),
    ObserveCase(
        "gone after finishing", None, False, None, State.FINISHED, 0, None, Observation(False, 0)
    ),
    ObserveCase(
        "gone while running", None, True, None, State.RUNNING, None, None, Observation(False)
    ),
    ObserveCase(
        "skill pane's EXITED", pane("sleep"), False, None, None, None, 2, Observation(True, 2)
    ),
    ObserveCase(
        "a foreign option is ignored for skill lines",
        pane(exit_option=5),
        False,
        None,
        None,
        None,
        None,
        Observation(True),
    ),
]


@pytest.mark.parametrize("case", OBSERVE_CASES, ids=[c.test_id for c in OBSERVE_CASES])
def test_observe(case: ObserveCase) -> None:
    assert (
        observe.observation_of(
            case.pane,
            case.wrapped,
            case.recorded_exit,
            case.previous,
            case.previous_exit,
            case.pane_exit,
        )
        == case.expected
    )


def test_a_pane_is_read_only_when_its_agent_may_have_ended() -> None:
    assert observe.needs_capture(pane("sleep", activity=5), None)
    assert not observe.needs_capture(pane("sleep", activity=5), 5)  # read at this activity already
    assert not observe.needs_capture(pane("bash"), None)  # bash runs the agent still
    assert not observe.needs_capture(pane("codex"), None)
    assert observe.needs_capture(pane("sh", activity=7), 6)  # dash keeps its name; output moved


def test_the_last_exited_line_counts() -> None:
    assert observe.exit_code_in(["EXITED: 1", "restarted", "EXITED: 0", ""]) == 0
    assert observe.exit_code_in(["echo 'EXITED:' $EXIT_CODE", "nothing"]) is None
