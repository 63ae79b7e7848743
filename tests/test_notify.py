"""Each event tells a person exactly once, however many checks follow.

(gave-up has its own such test in test_restart_policy.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SETTINGS, Sandbox
from test_launch_and_check import launch
from test_reasons import CAPTURES
from test_restart_policy import at


def exits(box: Sandbox, name: str, code: int) -> None:
    box.wait(lambda: f"EXITED: {code}" in box.pane_text(name))


def restarted(box: Sandbox) -> None:
    launch(box, "api", "codex", "exec", "work")
    box.server.cmd("kill-session", "-t", "=api")


def finished(box: Sandbox) -> None:
    launch(box, "api", "codex", "exec", "exit:0")
    exits(box, "api", 0)


def failed(box: Sandbox) -> None:
    result = box.run(
        "launch",
        "api",
        "--dir",
        str(box.root),
        "--restart",
        "never",
        "--",
        "codex",
        "exec",
        "exit:2",
    )
    assert result.returncode == 0
    exits(box, "api", 2)


def auth_expired(box: Sandbox) -> None:
    launch(box, "api", "codex", "exec", f"say:{CAPTURES / 'codex-refresh-token.txt'}:1")
    exits(box, "api", 1)


def rate_limited(box: Sandbox) -> None:
    launch(box, "api", "codex", "exec", f"say:{CAPTURES / 'codex-usage-limit.txt'}:1")
    exits(box, "api", 1)


def needs_approval(box: Sandbox) -> None:
    box.write_note(
        f"## Active Long-Running Processes\n\n- api: `codex exec x`\n  - dir: {box.root}\n"
    )


def stalled(box: Sandbox) -> None:
    launch(box, "api", "codex", "exec", "think")
    box.check()


EVENTS: list[tuple[str, Callable[[Sandbox], None], float]] = [
    ("restarted", restarted, 0),
    ("finished", finished, 0),
    ("failed", failed, 0),
    ("auth-expired", auth_expired, 0),
    ("rate-limited", rate_limited, 0),
    ("needs-approval", needs_approval, 0),
    ("stalled", stalled, 31),
]


@pytest.mark.parametrize(("event", "setup", "minutes"), EVENTS, ids=[e[0] for e in EVENTS])
def test_an_event_notifies_once(
    sandbox: Sandbox, event: str, setup: Callable[[Sandbox], None], minutes: float
) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(SETTINGS + f'notify_events = ["{event}"]\n')
    setup(sandbox)

    for later in (0, 1, 2):
        sandbox.check(env=at(sandbox, minutes + later))

    told = sandbox.notifications()
    assert len(told) == 1, told
    # An unapproved entry's notice names none of its own text (its folder included).
    assert told[0][3].startswith(
        "api: a new command in " if event == "needs-approval" else "api in "
    )


def test_only_the_chosen_events_notify(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(SETTINGS + 'notify_events = ["gave-up"]\n')
    finished(sandbox)
    sandbox.check()
    assert sandbox.notifications() == []


def test_without_a_notify_command_nothing_is_said_to_be_notified(sandbox: Sandbox) -> None:
    (sandbox.bin / "openclaw").unlink()  # no openclaw on PATH, and none configured
    finished(sandbox)

    assert sandbox.check().stdout == "api: running -> finished (closed)\n"
    log = (sandbox.state / "heartbeat.log").read_text()
    assert "api: running -> finished (closed)" in log and "notified" not in log
