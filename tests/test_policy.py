"""The pure decisions: a table of what was seen before and now -> what to do."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import pytest

from heartbeat.check import decide, observe
from heartbeat.model import Action, History, Observation, Pane, RestartMode, State


def pane(command: str = "sh", exit_option: int | None = None, activity: int = 100) -> Pane:
    return Pane("api", "%1", 42, command, exit_option, None, activity, 1)


NOW = datetime(2026, 11, 24, 10, 0)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


RUNNING, FAILED, DEAD, FINISHED = State.RUNNING, State.FAILED, State.DEAD, State.FINISHED
EXIT_0, EXIT_3, GONE, UP = (
    Observation(True, 0),
    Observation(True, 3),
    Observation(False),
    Observation(True),
)


class DecideCase(NamedTuple):
    test_id: str
    history: History
    observed: Observation
    mode: RestartMode
    state: State
    action: Action
    changed: bool
    failures: int = 0
    needs_person: bool = False
    due: datetime | None = None


ON, ALWAYS, NEVER = RestartMode.ON_FAILURE, RestartMode.ALWAYS, RestartMode.NEVER

DECIDE_CASES = [
    DecideCase(
        "first sight running writes nothing", History(), UP, ON, RUNNING, Action.NONE, False
    ),
    DecideCase("still running", History(RUNNING), UP, ON, RUNNING, Action.NONE, False),
    DecideCase(
        "running again after failing",
        History(FAILED, (ago(3),)),
        UP,
        ON,
        RUNNING,
        Action.NONE,
        True,
        1,
    ),
    DecideCase(
        "ten minutes up clears the count",
        History(RUNNING, (ago(12), ago(11)), last_start=ago(10)),
        UP,
        ON,
        RUNNING,
        Action.NONE,
        False,
        0,
    ),
    DecideCase(
        "dead at first sight: at once", History(), GONE, ON, DEAD, Action.RESTART, True, 1, due=NOW
    ),
    DecideCase(
        "vanished: at once",
        History(RUNNING, last_start=ago(2)),
        GONE,
        ON,
        DEAD,
        Action.RESTART,
        True,
        1,
        due=NOW,
    ),
    DecideCase(
        "second failure waits a minute",
        History(RUNNING, (ago(0.5),), last_start=ago(0.5)),
        EXIT_3,
        ON,
        FAILED,
        Action.WAIT,
        True,
        2,
        due=NOW + timedelta(minutes=1),
    ),
    DecideCase(
        "the wait is over",
        History(FAILED, (ago(1.5), ago(1))),
        EXIT_3,
        ON,
        FAILED,
        Action.RESTART,
        True,
        2,
        due=NOW,
    ),
    DecideCase(
        "third failure waits two minutes",
        History(RUNNING, (ago(2), ago(1)), last_start=ago(0.2)),
        EXIT_3,
        ON,
        FAILED,
        Action.WAIT,
        True,
        3,
        due=NOW + timedelta(minutes=2),
    ),
    DecideCase(
        "still waiting writes nothing",
        History(FAILED, (ago(3), ago(2), ago(1))),
        EXIT_3,
        ON,
        FAILED,
        Action.WAIT,
        False,
        3,
        due=NOW + timedelta(minutes=1),
    ),
    DecideCase(
        "fifth failed start in an hour gives up",
        History(RUNNING, (ago(50), ago(40), ago(30), ago(10)), last_start=ago(1)),
        EXIT_3,
        ON,
        State.GAVE_UP,
        Action.NONE,
        True,
        5,
        True,
    ),
    DecideCase(
        "failures older than an hour are forgotten",
        History(RUNNING, (ago(200), ago(150), ago(100), ago(70)), last_start=ago(1)),
        EXIT_3,
        ON,
        FAILED,
        Action.RESTART,
        True,
        1,
        due=NOW,
    ),
    DecideCase(
        "a long run resets the count",
        History(RUNNING, (ago(30), ago(25), ago(20), ago(15)), last_start=ago(12)),
        EXIT_3,
        ON,
        FAILED,
        Action.RESTART,
        True,
        1,
        due=NOW,
    ),
    DecideCase(
        "gave up stays given up",
        History(State.GAVE_UP, (ago(5),) * 5),
        GONE,
        ON,
        State.GAVE_UP,
        Action.NONE,
        False,
        5,
        True,
    ),
    DecideCase("exit 0 closes", History(RUNNING), EXIT_0, ON, FINISHED, Action.CLOSE, True),
    DecideCase(
        "a long run's exit 0 with always restarts",
        History(RUNNING, last_start=ago(15)),
        EXIT_0,
        ALWAYS,
        FINISHED,
        Action.RESTART,
        True,
        0,
        due=NOW,
    ),
    DecideCase(
        "a quick exit 0 with always counts toward giving up",
        History(RUNNING, (ago(3), ago(2), ago(1)), last_start=ago(0.5)),
        EXIT_0,
        ALWAYS,
        FINISHED,
        Action.WAIT,
        True,
        4,
        due=NOW + timedelta(minutes=4),
    ),
    DecideCase(
        "never only reports", History(RUNNING), EXIT_3, NEVER, FAILED, Action.REPORT, True, 0, True
    ),
    DecideCase("never, dead", History(RUNNING), GONE, NEVER, DEAD, Action.REPORT, True, 0, True),
    DecideCase(
        "never, still failed", History(FAILED), EXIT_3, NEVER, FAILED, Action.REPORT, False, 0, True
    ),
]


@pytest.mark.parametrize("case", DECIDE_CASES, ids=[c.test_id for c in DECIDE_CASES])
def test_decide(case: DecideCase) -> None:
    decision = decide.decide(case.history, case.observed, NOW, case.mode)
    assert (decision.state, decision.action, decision.changed) == (
        case.state,
        case.action,
        case.changed,
    )
    assert (len(decision.failures), decision.needs_person, decision.due) == (
        case.failures,
        case.needs_person,
        case.due,
    )


def test_backoff_doubles_from_one_minute_and_stops_at_thirty() -> None:
    waits = [decide.DEFAULT_LIMITS.backoff(n).total_seconds() / 60 for n in range(1, 9)]
    assert waits == [0, 1, 2, 4, 8, 16, 30, 30]


def test_giving_up_asks_for_a_notification_once() -> None:
    history = History(RUNNING, (ago(4), ago(3), ago(2), ago(1)), last_start=ago(0.5))
    first = decide.decide(history, EXIT_3, NOW)
    assert (first.state, first.event) == (State.GAVE_UP, "gave-up")
    after = decide.decide(History(State.GAVE_UP, first.failures), EXIT_3, NOW)
    assert (after.event, after.changed, after.needs_person) == (None, False, True)


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
