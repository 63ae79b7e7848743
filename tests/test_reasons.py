"""Why an agent stopped: realistic pane captures against patterns.toml, and the policy."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from conftest import NOW, SETTINGS, Sandbox
from test_launch_and_check import launch
from test_restart_policy import at

from heartbeat.agents import reasons
from heartbeat.check import decide

CAPTURES = Path(__file__).parent / "captures"
MOMENT = datetime.fromisoformat(NOW)


def local(wall: datetime, zone: str) -> datetime:
    """A wall-clock time in `zone`, as this machine's local time."""
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone().replace(tzinfo=None)


class CaptureCase(NamedTuple):
    test_id: str
    capture: str
    kind: str | None
    retry_at: datetime | None = None


CAPTURE_CASES = [
    CaptureCase("codex refresh token reused", "codex-refresh-token.txt", "auth-expired"),
    CaptureCase("claude oauth expired", "claude-oauth-expired.txt", "auth-expired"),
    CaptureCase(
        "codex usage limit with a wait",
        "codex-usage-limit.txt",
        "rate-limited",
        MOMENT + timedelta(hours=2, minutes=5),
    ),
    CaptureCase(
        "claude limit with a reset hour in its own zone",
        "claude-limit-resets.txt",
        "rate-limited",
        local(MOMENT.replace(hour=15, minute=0), "Europe/Berlin"),
    ),
    CaptureCase("a crash is no known reason", "ralph-traceback.txt", None),
]


@pytest.mark.parametrize("case", CAPTURE_CASES, ids=[c.test_id for c in CAPTURE_CASES])
def test_a_capture_says_why_its_agent_stopped(case: CaptureCase) -> None:
    lines = (CAPTURES / case.capture).read_text().splitlines()
    found = reasons.classify(lines, MOMENT)
    assert (found.kind if found else None) == case.kind
    if case.retry_at is not None:
        assert found is not None and found.retry_at == case.retry_at


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("try again in 20m0s", MOMENT + timedelta(minutes=20)),
        ("Please retry after 37 seconds", MOMENT + timedelta(seconds=37)),
        ("try again at 9:30 am", MOMENT.replace(hour=9, minute=30)),  # just past: lifted
        ("try again at 6:30 am", MOMENT.replace(hour=6, minute=30) + timedelta(days=1)),
        ("rate limit; retrying 5/5 in 8.2s", None),
    ],
)
def test_reset_times(text: str, expected: datetime | None) -> None:
    assert reasons.retry_time(text, MOMENT) == expected


@pytest.mark.parametrize(
    ("code", "words"), [(124, "timeout"), (137, "killed by signal 9"), (1, "crashed")]
)
def test_what_an_exit_code_says(code: int, words: str) -> None:
    assert decide.exit_reason(code) == words


def say(box: Sandbox, capture: str, code: int) -> str:
    return f"say:{CAPTURES / capture}:{code}"


def test_an_expired_login_is_held_not_restarted_and_told_once(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", say(sandbox, "codex-refresh-token.txt", 1))
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))

    first = sandbox.check()
    again = sandbox.check(env=at(sandbox, 30))

    assert (first.returncode, first.stdout) == (1, "api: running -> auth-expired (needs a login)\n")
    assert (again.returncode, again.stdout) == (1, "")
    assert len(sandbox.calls()) == 1
    assert "auth-expired: run: codex auth login" in sandbox.note().read_text()
    told = [n[3] for n in sandbox.notifications()]
    assert len(told) == 1 and "run: codex auth login" in told[0]
    assert sandbox.run("reset", "api").returncode == 0
    assert sandbox.check(env=at(sandbox, 31)).stdout == "api: new -> failed (restarted)\n"


def test_a_rate_limit_waits_for_its_reset_time(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", say(sandbox, "codex-usage-limit.txt", 1))
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))

    first = sandbox.check()

    # "Try again in 2 hours 5 minutes" at 10:00, plus a margin, up to the minute.
    assert first.stdout == "api: running -> failed (restart after 12:06)\n"
    assert "rate-limited, restart after 12:06" in sandbox.note().read_text()
    assert sandbox.check(env=at(sandbox, 125)).stdout == ""  # 12:05: not yet
    assert sandbox.check(env=at(sandbox, 126)).stdout == "api: failed (restarted)\n"
    assert sum("rate-limited" in n[3] for n in sandbox.notifications()) == 1


def test_while_a_provider_limits_us_restarts_go_one_per_check(sandbox: Sandbox) -> None:
    launch(sandbox, "limited", "codex", "exec", say(sandbox, "codex-usage-limit.txt", 1))
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("limited"))
    rows = "".join(f"- agent{i}: `codex exec work{i}`\n  - dir: {sandbox.root}\n" for i in range(3))
    sandbox.write_note(sandbox.note().read_text() + rows)
    sandbox.allow("agent0", "agent1", "agent2")

    first = sandbox.check()
    second = sandbox.check()

    assert "limited: running -> failed (restart after 12:06)" in first.stdout
    assert first.stdout.count("(restarted)") == 1
    assert second.stdout.count("(restarted)") == 1


def test_a_timeout_or_a_signal_is_restarted_and_named(sandbox: Sandbox) -> None:
    launch(sandbox, "slow", "codex", "exec", "exit:124")
    launch(sandbox, "shot", "codex", "exec", "exit:137")
    sandbox.wait(lambda: "EXITED: 137" in sandbox.pane_text("shot"))
    sandbox.wait(lambda: "EXITED: 124" in sandbox.pane_text("slow"))

    result = sandbox.check()

    assert sorted(result.stdout.splitlines()) == [
        "shot: running -> failed (restarted)",
        "slow: running -> failed (restarted)",
    ]
    text = sandbox.note().read_text()
    assert "failed (exit 124, timeout) · not a git repo, restarted" in text
    assert "failed (exit 137, killed by signal 9) · not a git repo, restarted" in text


def test_people_add_their_own_patterns_in_the_config_file(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(
        SETTINGS
        + "[[pattern]]\nreason = \"auth-expired\"\nregex = 'Traceback'\n"
        + 'hint = "run: ralphy login"\n'
    )
    launch(sandbox, "api", "ralphy", "--codex", say(sandbox, "ralph-traceback.txt", 1))
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))

    result = sandbox.check()

    assert result.stdout == "api: running -> auth-expired (needs a login)\n"
    assert "auth-expired: run: ralphy login" in sandbox.note().read_text()


def test_a_bad_pattern_in_the_config_file_is_one_line(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(
        "[[pattern]]\nreason = \"auth-expired\"\nregex = '('\n"
    )
    result = sandbox.check()
    assert result.returncode == 1
    assert result.stderr.startswith("heartbeat: ") and "pattern 1" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "line",
    [
        "✓ returns 401 Unauthorized without a session",
        "test_rejects_an_invalid_api_key PASSED",
        "docs: explain what happens when the token expired",
        "Not logged in users are redirected to /login",
    ],
)
def test_ordinary_output_about_logins_is_no_stop_reason(line: str) -> None:
    assert reasons.classify([line, "EXITED: 1"], MOMENT) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("try again in 500ms", MOMENT + timedelta(milliseconds=500)),
        ("Try again in 4 days 3 hours.", MOMENT + timedelta(days=4, hours=3)),
        ("limit resets at 2026-11-25T09:00:00", datetime(2026, 11, 25, 9, 0)),
    ],
)
def test_more_reset_times(text: str, expected: datetime) -> None:
    assert reasons.retry_time(text, MOMENT) == expected


def test_a_clean_exit_is_never_held_for_its_words(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", say(sandbox, "codex-refresh-token.txt", 0))
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))
    assert sandbox.check().stdout == "api: running -> finished (closed)\n"


def test_the_pane_speaks_before_codexs_shared_log(sandbox: Sandbox) -> None:
    log = sandbox.home / ".codex" / "log" / "codex-tui.log"
    log.parent.mkdir(parents=True)
    log.write_text("ERROR another session: Failed to refresh token\n")
    launch(sandbox, "api", "codex", "exec", say(sandbox, "codex-usage-limit.txt", 1))
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    assert sandbox.check().stdout == "api: running -> failed (restart after 12:06)\n"


def test_codexs_log_says_why_when_the_pane_does_not(sandbox: Sandbox) -> None:
    log = sandbox.home / ".codex" / "log" / "codex-tui.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-11-24T10:00:01 ERROR codex_core::auth: Failed to refresh token\n")
    launch(sandbox, "api", "codex", "exec", "exit:1")
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    assert sandbox.check().stdout == "api: running -> auth-expired (needs a login)\n"


def test_a_wait_the_agent_names_counts_from_when_it_said_it(sandbox: Sandbox) -> None:
    """On the real clock: the check comes an hour after the agent stopped (the machine
    slept); "try again in 2 hours 5 minutes" still ends 2 h 5 min after it was said."""
    from datetime import datetime, timedelta

    said = datetime.now().replace(microsecond=0)
    real = dict(sandbox.env, HEARTBEAT_NOW=said.isoformat())
    result = sandbox.run(
        "launch",
        "api",
        "--dir",
        str(sandbox.root),
        "--",
        "codex",
        "exec",
        say(sandbox, "codex-usage-limit.txt", 1),
        env=real,
    )
    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))

    an_hour_on = dict(sandbox.env, HEARTBEAT_NOW=(said + timedelta(hours=1)).isoformat())
    first = sandbox.check(env=an_hour_on)

    restart = first.stdout.strip()[-6:-1]  # `(restart after [Thu ]HH:MM)`
    lifts = said + timedelta(hours=2, minutes=5)
    # Up to the minute, with a margin of a minute at most: not 3 h 5 min from the stop.
    assert restart in {f"{lifts + timedelta(minutes=k):%H:%M}" for k in range(-1, 4)}
