"""Holds that lift themselves: an expired login holds every agent that shares it when it
stops (a restart into the same login fails the same way), one notification in all, until
the login file changes (its stat, never its secret) or a person runs `heartbeat reset`.

Codex's login is `$CODEX_HOME/auth.json` (openai/codex, login/src/auth/storage.rs); the
capture is Codex's refresh-token failure (login/src/auth/manager.rs, REFRESH_TOKEN_REUSED).
"""

from __future__ import annotations

from pathlib import Path

from conftest import Sandbox
from test_launch_and_check import launch
from test_restart_policy import at

CAPTURES = Path(__file__).parent / "captures"
LOGIN_FAILS = f"say:{CAPTURES / 'codex-refresh-token.txt'}:1"


def told(box: Sandbox) -> list[str]:
    return [lines[3] for lines in box.notifications()]


def two_held(box: Sandbox) -> None:
    """api's login fails; web, on the same login, crashes a minute later."""
    launch(box, "api", "codex", "exec", LOGIN_FAILS)
    launch(box, "web", "codex", "exec", "exit:1")
    box.wait(lambda: "EXITED: 1" in box.pane_text("api") and "EXITED: 1" in box.pane_text("web"))
    first = box.check()
    assert "api: running -> auth-expired (needs a login)" in first.stdout, first.stdout


def test_an_expired_login_holds_every_agent_that_shares_it(sandbox: Sandbox) -> None:
    two_held(sandbox)
    launch(sandbox, "docs", "claude", "-p", "exit:1")  # another provider: not held
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("docs"))
    starts = len(sandbox.calls())

    result = sandbox.check(env=at(sandbox, 1))

    text = sandbox.note().read_text()
    assert "held: the openai login expired; run: codex auth login" in text  # web's line
    assert "auth-expired: run: codex auth login" in text  # api's own line
    assert "docs: running -> failed (restarted)" in result.stdout
    assert len(sandbox.calls()) == starts + 1  # docs alone
    assert [t.split(": ", 1)[0] for t in told(sandbox) if "auth-expired" in t or "held" in t] == [
        f"api in {sandbox.root}"
    ]


def test_a_renewed_login_lifts_the_hold_and_the_next_check_restarts_them_all(
    sandbox: Sandbox,
) -> None:
    two_held(sandbox)
    sandbox.check(env=at(sandbox, 1))
    starts = len(sandbox.calls())
    assert sandbox.check(env=at(sandbox, 2)).stdout == ""  # held: nothing runs

    login = sandbox.home / ".codex" / "auth.json"
    login.parent.mkdir(exist_ok=True)
    login.write_text('{"OPENAI_API_KEY":null,"tokens":{"access_token":"fresh"}}')
    result = sandbox.check(env=at(sandbox, 3))

    assert sorted(result.stdout.splitlines()) == [
        "api: new -> failed (restarted)",
        "web: new -> failed (restarted)",
    ]
    sandbox.wait(lambda: len(sandbox.calls()) == starts + 2)


def test_reset_lifts_the_hold_for_every_agent_it_held(sandbox: Sandbox) -> None:
    two_held(sandbox)
    sandbox.check(env=at(sandbox, 1))

    assert sandbox.run("reset", "api").returncode == 0
    result = sandbox.check(env=at(sandbox, 2))

    assert sorted(result.stdout.splitlines()) == [
        "api: new -> failed (restarted)",
        "web: new -> failed (restarted)",
    ]


def test_two_agents_failing_their_login_at_once_send_one_message(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", LOGIN_FAILS)
    launch(sandbox, "web", "codex", "exec", LOGIN_FAILS)
    sandbox.wait(
        lambda: "EXITED: 1" in sandbox.pane_text("api") and "EXITED: 1" in sandbox.pane_text("web")
    )

    sandbox.check()
    sandbox.check(env=at(sandbox, 1))

    assert sandbox.note().read_text().count("auth-expired: run: codex auth login") == 2
    assert len([t for t in told(sandbox) if "auth-expired" in t]) == 1


def test_a_deleted_login_is_no_renewed_one(sandbox: Sandbox) -> None:
    login = sandbox.home / ".codex" / "auth.json"
    login.parent.mkdir(parents=True, exist_ok=True)
    login.write_text('{"tokens":{"access_token":"old"}}')
    two_held(sandbox)
    starts = len(sandbox.calls())

    login.unlink()  # codex logout
    assert sandbox.check(env=at(sandbox, 1)).stdout == ""

    assert len(sandbox.calls()) == starts


def test_a_login_renewed_before_the_check_that_holds_still_lifts_it(sandbox: Sandbox) -> None:
    """The person logged in again after the agent failed, before any check saw it."""
    import os
    import time

    launch(sandbox, "api", "codex", "exec", LOGIN_FAILS)
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    login = sandbox.home / ".codex" / "auth.json"
    login.parent.mkdir(exist_ok=True)
    login.write_text('{"OPENAI_API_KEY":null,"tokens":{"access_token":"fresh"}}')
    later = time.time() + 5  # written after the failure, as the file system tells it
    os.utime(login, (later, later))
    starts = len(sandbox.calls())

    first = sandbox.check()
    second = sandbox.check(env=at(sandbox, 1))

    assert "api: running -> auth-expired (needs a login)" in first.stdout
    assert second.stdout == "api: new -> failed (restarted)\n"
    sandbox.wait(lambda: len(sandbox.calls()) == starts + 1)
