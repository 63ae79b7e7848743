"""Why an agent stopped, by message family: real messages of Claude Code and Codex (each
with where it was seen) fall into their family, with the reset time they give resolved
to a full local date-time; a message that is new tomorrow should still fall into its
family, so each family has several wordings."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from conftest import NOW as SANDBOX_NOW
from conftest import Sandbox

from heartbeat.agents import reasons
from heartbeat.check import decide

NOW = datetime(2026, 11, 24, 22, 1)  # a Tuesday, late: "3:05 PM" means tomorrow
MOMENT = datetime.fromisoformat(SANDBOX_NOW)


def local(wall: datetime, zone: str) -> datetime:
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone().replace(tzinfo=None)


class Message(NamedTuple):
    test_id: str
    text: str
    kind: str | None
    retry_at: datetime | None = None


MESSAGES = [
    # Claude Code's usage, session and plan limits (anthropics/claude-code issues).
    Message(
        "claude hit your limit, zone (#52575)",
        "You've hit your limit · resets 4:50am (Europe/Rome)",
        "rate-limited",
        local(datetime(2026, 11, 25, 4, 50), "Europe/Rome"),
    ),
    Message(
        "claude session limit, zone (#74079)",
        "You've hit your session limit · resets 12:50am (America/Los_Angeles)",
        "rate-limited",
        local(datetime(2026, 11, 25, 0, 50), "America/Los_Angeles"),
    ),
    Message(
        "claude 5-hour limit, no zone (#7892)",
        "5-hour limit reached ∙ resets 11pm",
        "rate-limited",
        datetime(2026, 11, 24, 23, 0),
    ),
    Message(
        "a time just past (within 3 hours) is the reset the agent saw coming: lifted",
        "5-hour limit reached ∙ resets 9pm",
        "rate-limited",
        datetime(2026, 11, 24, 21, 0),
    ),
    Message(
        "claude weekly limit with a date (#12686)",
        "Weekly limit reached · resets Dec 2, 7pm (Europe/Moscow) ·",
        "rate-limited",
        local(datetime(2026, 12, 2, 19, 0), "Europe/Moscow"),
    ),
    Message(
        "claude headless epoch form (#11429)",
        "Claude AI usage limit reached|1762952400",
        "rate-limited",
        datetime.fromtimestamp(1762952400),
    ),
    Message(
        "claude 429 body (#9046)",
        'Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"This request'
        " would exceed your account's rate limit. Please try again later.\"}}",
        "rate-limited",
    ),
    # Codex's usage limits (codex-rs/core/src/error.rs; openai/codex issues).
    Message(
        "codex usage limit, a time today (#43892)",
        "ERROR: You've hit your usage limit. Visit https://chatgpt.com/codex/settings/usage"
        " to purchase more credits or try again at 11:58 PM.",
        "rate-limited",
        datetime(2026, 11, 24, 23, 58),
    ),
    Message(
        "codex usage limit, a time already past: tomorrow",
        "You've hit your usage limit. Try again at 3:05 PM.",
        "rate-limited",
        datetime(2026, 11, 25, 15, 5),
    ),
    Message(
        "codex usage limit with a date (#26668)",
        "You've hit your usage limit. Upgrade to Plus to continue using Codex"
        " (https://chatgpt.com/explore/plus), or try again at Dec 5th, 2026 8:19 PM.",
        "rate-limited",
        datetime(2026, 12, 5, 20, 19),
    ),
    Message(
        "a date without a year, long past: next year's",
        "Opus weekly limit reached ∙ resets Feb 24",
        "rate-limited",
        None,  # over a month away: misread, so the default wait
    ),
    Message(
        "a date named in its year, past: as it says, so lifted",
        "You've hit your usage limit. Try again at Nov 23rd, 2026 8:19 PM.",
        "rate-limited",
        datetime(2026, 11, 23, 20, 19),
    ),
    Message(
        "a month that does not exist is no time, and no crash",
        "You've hit your limit · resets at 2026-13-01T09:00:00Z",
        "rate-limited",
        None,
    ),
    Message(
        "a wait of years is no time, and no crash",
        "Rate limit reached. Please try again in 3000000 days.",
        "rate-limited",
        None,
    ),
    Message(
        "the latest word wins: a limit after a retried 529",
        "API Error: 529 Overloaded, retrying\nYou've hit your session limit · resets 11:30pm",
        "rate-limited",
        datetime(2026, 11, 24, 23, 30),
    ),
    Message(
        "and a 529 after a limit that was got past",
        "You've hit your session limit · resets 11:30pm\nAPI Error: 529 Overloaded",
        "transient",
    ),
    Message(
        "codex usage limit, a duration (#3899)",
        "■ You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing)"
        " or try again in 5 days 22 hours 11 minutes.",
        "rate-limited",
        NOW + timedelta(days=5, hours=22, minutes=11),
    ),
    Message(
        "codex retry exhaustion (#10550)",
        "exceeded retry limit, last status: 429 Too Many Requests, request id: 9c84b52ce87fbe62-SJC",
        "rate-limited",
    ),
    # Logins.
    Message(
        "codex refresh token reused (login/src/auth/manager.rs)",
        "ERROR: Your access token could not be refreshed because your refresh token was"
        " already used. Please log out and sign in again.",
        "auth-expired",
    ),
    Message(
        "codex refresh token expired (manager.rs)",
        "Your access token could not be refreshed because your refresh token has expired."
        " Please log out and sign in again.",
        "auth-expired",
    ),
    Message(
        "claude oauth expired (#10712)",
        'API Error: 401 {"type":"error","error":{"type":"authentication_error","message":"OAuth'
        ' token has expired. Please obtain a new token or refresh your existing token."}}'
        " · Please run /login",
        "auth-expired",
    ),
    Message("claude invalid key (#6331)", "Invalid API key · Please run /login", "auth-expired"),
    Message(
        "claude not logged in (CHANGELOG 2.1.205)",
        "Not logged in · Please run /login",
        "auth-expired",
    ),
    # Transient: restarted soon, not a wait of hours, not a login.
    Message(
        "claude server limiting, not a quota (a hook test's fixture)",
        "Server is temporarily limiting requests (not your usage limit). Retry in 156s.",
        "transient",
    ),
    Message(
        "claude overloaded",
        "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try"
        " again in a moment.",
        "transient",
    ),
    Message(
        "codex high demand (error.rs)",
        "We're currently experiencing high demand, which may cause temporary errors.",
        "transient",
    ),
    Message(
        "codex retry exhaustion on a 500",
        "exceeded retry limit, last status: 500 Internal Server Error",
        "transient",
    ),
    # Ordinary words are no reason.
    Message("a test about logins", "test_login_expired_token_is_refreshed PASSED", None),
    Message("a counted retry", "retrying 3 times", None),
]


@pytest.mark.parametrize("case", MESSAGES, ids=[m.test_id for m in MESSAGES])
def test_a_message_falls_into_its_family(case: Message) -> None:
    found = reasons.classify([*case.text.splitlines(), "EXITED: 1"], NOW)
    assert (found.kind if found else None) == case.kind
    if case.kind == "rate-limited":
        assert found is not None and found.retry_at == case.retry_at


def test_a_message_wrapped_by_the_pane_is_read_whole() -> None:
    """heartbeat captures panes with their wrapped lines joined (`capture-pane -J`); a
    message broken by a narrow pane still reads when a line break falls in it."""
    lines = ["You've hit your usage limit. Upgrade to Pro or try again at", "3:05 PM."]
    found = reasons.classify(lines, NOW)
    assert found is not None and found.kind == "rate-limited"


def test_the_agents_own_record_of_the_run_comes_before_the_pane(sandbox: Sandbox) -> None:
    """Claude Code writes the API error in the run's transcript (an assistant record with
    isApiErrorMessage, apiErrorStatus 429, error "rate_limit"); its pane here says
    nothing of it, and the reset time comes from the record."""
    result = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--claude", "limit-quietly")
    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    assert "limit" not in sandbox.pane_text("api")

    sandbox.check()

    text = sandbox.note().read_text()
    when = local(datetime(2026, 11, 25, 4, 50), "Europe/Rome") + timedelta(seconds=30)
    assert f"rate-limited, restart after {decide.when(decide._whole_minute(when), MOMENT)}" in text


def test_odd_files_where_the_agents_keep_theirs_never_stop_a_check(sandbox: Sandbox) -> None:
    """A rollout named for an hour 24, a transcript nested 20,000 deep, a FIFO where
    Codex's log goes: each is skipped, and the check ends with its usual answer."""
    import os

    result = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--claude", "exit:1")
    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    session = re.findall(r"- session: (\S+)", sandbox.note().read_text())[-1]
    project = re.sub(r"[^a-zA-Z0-9]", "-", str(sandbox.root))
    transcript = sandbox.home / ".claude" / "projects" / project / f"{session}.jsonl"
    with transcript.open("a") as handle:
        handle.write("[" * 20000 + "\n")
    today = datetime.now()
    sessions = sandbox.home / ".codex" / "sessions" / f"{today:%Y}" / f"{today:%m}" / f"{today:%d}"
    sessions.mkdir(parents=True)
    (sessions / f"rollout-{today:%Y-%m-%d}T24-00-00-{session}.jsonl").write_text("{}\n")
    log = sandbox.home / ".codex" / "log"
    log.mkdir(parents=True)
    os.mkfifo(log / "codex-tui.log")

    result = sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOW=SANDBOX_NOW))

    assert "Traceback" not in result.stderr
    assert result.stdout == "api: running -> failed (restarted)\n"


def test_a_folder_named_through_a_link_finds_the_agents_records(sandbox: Sandbox) -> None:
    """Claude Code names its project folder after the working folder with its links
    resolved (anthropics/claude-code#39594); a note may name the folder through one."""
    real = sandbox.root / "real-project"
    real.mkdir()
    linked = sandbox.root / "project"
    linked.symlink_to(real)
    result = sandbox.run("launch", "api", "--dir", str(linked), "--claude", "limit-quietly")
    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))

    sandbox.check()

    assert "rate-limited, restart after" in sandbox.note().read_text()


def test_a_codex_session_in_a_folder_named_through_a_link_is_resumed(sandbox: Sandbox) -> None:
    real = sandbox.root / "real-project"
    real.mkdir()
    linked = sandbox.root / "project"
    linked.symlink_to(real)
    result = sandbox.run("launch", "api", "--dir", str(linked), "--codex", "crash-once")
    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))

    sandbox.check()

    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert " resume " in sandbox.calls()[1]
