"""The pure decisions: a table of what was seen before and now -> what to do."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

from heartbeat.check import decide
from heartbeat.check.facts import Plan, Quiet, Sighting
from heartbeat.model import (
    RATE_LIMITED,
    Action,
    Baseline,
    Decision,
    Entry,
    History,
    Observation,
    Pane,
    Reason,
    Record,
    RestartMode,
    Span,
    State,
)
from heartbeat.records import replace
from heartbeat.work.verify import Report


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


# --- a check's plans: one sighting in, the decision and the next record out -----------


def entry(name: str = "api", **options: str) -> Entry:
    span = Span(head=0, last=0, box_column=None, child_indent="  ", child_marker="-")
    return Entry(
        name,
        "/tmp/sock",
        "/srv/api",
        "work",
        True,
        "memory/x.md",
        NOW.date(),
        span,
        True,
        options=dict(options),
    )


def sighting(
    observed: Observation,
    record: Record | None = None,
    approved: bool = True,
    name: str = "api",
    **extra: object,
) -> Sighting:
    live = Pane(name, "%7", 4242, "sh", None, None, 100, 1) if observed.present else None
    facts = Sighting(Path("memory/x.md"), entry(name), record or Record(), live, observed, approved)
    return replace(facts, **extra)  # type: ignore[arg-type]


def test_a_plan_carries_the_record_its_decision_leaves() -> None:
    before = Record(state=RUNNING, since="2026-11-24 09:00", pid=1, pane_id="%1")
    plan = decide.plan(sighting(EXIT_3, before), NOW)

    assert plan.decision.action is Action.RESTART
    assert plan.record.state is FAILED and plan.record.exit_code == 3
    assert plan.record.since == "2026-11-24 10:00"  # the state changed now
    assert plan.record.failures == (NOW.isoformat(),)
    assert (plan.record.pid, plan.record.pane_id) == (4242, "%7")  # the pane to clear
    assert before.state is RUNNING  # the record it was given is unchanged


def test_a_command_nobody_allowed_is_not_restarted_but_asked_about() -> None:
    plan = decide.plan(sighting(GONE, Record(state=RUNNING), approved=False), NOW)

    assert plan.decision.action is Action.APPROVE and plan.decision.needs_person
    # What the person must do comes first, then what was seen.
    assert plan.decision.status == "needs approval: heartbeat allow api · dead"
    assert plan.problem == "memory/x.md:1: api: new command, not run: heartbeat allow api"
    # Running: nothing to run yet, but asked about now, while a person is likely there.
    running = decide.plan(sighting(UP, approved=False), NOW)
    assert running.decision.action is Action.NONE and running.decision.needs_person
    assert running.problem == "memory/x.md:1: api: needs approval: heartbeat allow api"
    # An entry heartbeat would never restart has nothing to approve.
    never = sighting(UP, approved=False, entry=entry(restart="never"))
    assert decide.plan(never, NOW).problem is None
    assert not decide.plan(never, NOW).decision.needs_person


def test_a_stopped_runs_line_says_what_git_says_it_did() -> None:
    report = Report(None, None, "not a git repo")
    plan = decide.plan(sighting(EXIT_3, Record(state=RUNNING), verdict=report), NOW)

    assert plan.decision.status == "failed (exit 3) · not a git repo, restarted"
    assert plan.record.verdict == "not a git repo"


def test_what_a_look_learned_is_kept_in_the_record() -> None:
    quiet = Quiet(seen_activity=100, quiet_since=NOW.isoformat(), commit_asked=None)
    baseline = Baseline("abc123", frozenset({"task"}), NOW)
    plan = decide.plan(sighting(UP, read_activity=100, quiet=quiet, baseline=baseline), NOW)

    record = plan.record
    assert (record.activity, record.seen_activity, record.quiet_since) == (
        100,
        100,
        NOW.isoformat(),
    )
    assert record.baseline == baseline


def test_a_rate_limit_remembers_when_it_lifts() -> None:
    reason = Reason(RATE_LIMITED, "wait", retry_at=NOW + timedelta(hours=2))
    plan = decide.plan(sighting(replace(EXIT_3, reason=reason), Record(state=RUNNING)), NOW)

    assert plan.decision.action is Action.WAIT
    # The reset time, a margin of 30 s, and up to the minute the status line names.
    assert plan.record.not_before == (NOW + timedelta(hours=2, minutes=1)).isoformat()
    assert plan.decision.status == "failed (exit 3) · rate-limited, restart after 12:01"


def one_group(entry: Entry) -> str:
    return "provider:openai"


class LimitCase(NamedTuple):
    test_id: str
    events: tuple[str | None, ...]
    not_before: str | None
    expected: set[str]


LIMIT_CASES = [
    LimitCase("no limit", ("restarted", "restarted"), None, set()),
    LimitCase("a limit just hit", ("restarted", "rate-limited"), None, {"provider:openai"}),
    LimitCase(
        "a limit not yet lifted",
        ("restarted",),
        (NOW + timedelta(minutes=1)).isoformat(),
        {"provider:openai"},
    ),
    LimitCase("a limit lifted", ("restarted",), (NOW - timedelta(minutes=1)).isoformat(), set()),
]


@pytest.mark.parametrize("case", LIMIT_CASES, ids=[c.test_id for c in LIMIT_CASES])
def test_limited_groups(case: LimitCase) -> None:
    plans = [
        Plan(
            sighting(GONE, Record(not_before=case.not_before)),
            Decision(DEAD, Action.RESTART, True, "dead, restarted", event=event),
            Record(),
        )
        for event in case.events
    ]
    assert decide.limited_groups(plans, NOW, one_group) == case.expected


def test_a_limit_slows_only_its_own_providers_restarts() -> None:
    def restart(name: str) -> Plan:
        decision = Decision(DEAD, Action.RESTART, True, "dead, restarted", due=ago(1))
        return Plan(sighting(GONE, name=name), decision, Record())

    plans = [restart(name) for name in ("codex1", "codex2", "claude1", "claude2", "other")]
    group = {"codex1": "openai", "codex2": "openai", "claude1": "anthropic", "claude2": "anthropic"}

    guarded = decide.storm_guard(plans, 5, {"openai"}, lambda e: group.get(e.name, e.name))

    restarted = [p.sighting.entry.name for p in guarded if p.decision.action is Action.RESTART]
    assert restarted == ["codex1", "claude1", "claude2", "other"]


def test_the_storm_guard_holds_back_the_newest_restarts() -> None:
    def restart(name: str, due: datetime) -> Plan:
        decision = Decision(DEAD, Action.RESTART, True, "dead, restarted", due=due)
        return Plan(sighting(GONE, name=name), decision, Record())

    plans = [restart("b", ago(1)), restart("a", ago(5)), restart("c", ago(3))]
    guarded = decide.storm_guard(plans, 2)

    actions = {p.sighting.entry.name: (p.decision.action, p.decision.changed) for p in guarded}
    assert actions == {
        "a": (Action.RESTART, True),
        "c": (Action.RESTART, True),
        "b": (Action.WAIT, False),  # the next check's turn, and nothing written yet
    }
    assert [p.sighting.entry.name for p in guarded] == ["b", "a", "c"]  # order kept


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (NOW + timedelta(hours=5), "15:00"),
        (NOW + timedelta(hours=14), "Wed 00:00"),  # tomorrow: the day is named
        (NOW + timedelta(days=3), "Fri 10:00"),
        (NOW + timedelta(days=9), "2026-12-03 10:00"),
    ],
)
def test_a_restart_time_names_its_day_when_not_today(moment: datetime, expected: str) -> None:
    assert decide.when(moment, NOW) == expected


def test_a_reset_tomorrow_is_shown_with_its_day() -> None:
    reason = Reason(
        RATE_LIMITED, "wait", retry_at=NOW.replace(hour=9, minute=0) + timedelta(days=1)
    )
    plan = decide.plan(sighting(replace(EXIT_3, reason=reason), Record(state=RUNNING)), NOW)

    assert plan.decision.status == "failed (exit 3) · rate-limited, restart after Wed 09:01"
