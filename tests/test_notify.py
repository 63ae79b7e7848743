"""Each event tells a person exactly once, however many checks follow.

(gave-up has its own such test in test_restart_policy.py.)
"""

from __future__ import annotations

import subprocess
import sys
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


def test_two_checks_at_once_tell_of_a_finish_once(sandbox: Sandbox) -> None:
    """The scheduled check and the completion hook's (`check --only NAME`, which waits
    for the lock rather than skipping) look at the same stop at the same moment."""
    finished(sandbox)
    checks = [
        subprocess.Popen(
            [sys.executable, "-m", "heartbeat", "check", *only],
            env=sandbox.env,
            cwd=sandbox.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for only in ([], ["--only", "api"])
    ]
    assert [check.wait(timeout=60) for check in checks] == [0, 0]

    told = sandbox.notifications()
    assert len(told) == 1, told
    assert told[0][3].startswith(f"api in {sandbox.root}: finished (exit 0)")


def test_a_stale_save_that_reopens_a_finished_entry_tells_nothing_again(
    sandbox: Sandbox,
) -> None:
    """An editor that read the note before the check closed the entry saves it back
    open: the check sees the same finished run again, and has forgotten the closed
    entry's record meanwhile. The event's identity is in the state, not the note."""
    finished(sandbox)
    stale = sandbox.note().read_text()
    sandbox.check(env=at(sandbox, 1))  # closes it, and tells
    sandbox.check(env=at(sandbox, 2))  # sees it closed: its record is forgotten
    assert "- [x] **api**" in sandbox.note().read_text()

    for later in (3, 4, 5):
        sandbox.note().write_text(stale)  # the stale save, again and again
        sandbox.check(env=at(sandbox, later))

    assert len(sandbox.notifications()) == 1, sandbox.notifications()


@pytest.mark.timeout(300)  # twenty launches and checks, on a busy two-core machine
def test_a_looping_entry_tells_five_times_then_one_digest(sandbox: Sandbox) -> None:
    """An entry run again and again (a loop relaunching it, each run ending at once)
    is told of at most notify_per_entry_per_hour times an hour; the rest are folded
    into one digest, sent once the hour has room again."""
    for minute in range(20):
        launch(sandbox, "api", "codex", "exec", "exit:0", env=at(sandbox, minute))
        exits(sandbox, "api", 0)
        assert sandbox.check(env=at(sandbox, minute + 0.5)).returncode == 0
        sandbox.server.cmd("kill-session", "-t", "=api")  # its tail: the loop goes on

    assert len(sandbox.notifications()) == 5
    sandbox.check(env=at(sandbox, 59))  # the first was told 59.5 min ago: no room yet
    assert len(sandbox.notifications()) == 5
    for later in (61, 62, 90):
        sandbox.check(env=at(sandbox, later))

    told = [lines[3] for lines in sandbox.notifications()]
    assert len(told) == 6, told
    assert all(text.startswith(f"api in {sandbox.root}: finished") for text in told[:5])
    assert told[5] == "api: 15 more events in the last hour: 15 finished"


def test_a_notification_never_carries_an_unapproved_entrys_text(sandbox: Sandbox) -> None:
    """Not its command, nor its folder: a note anyone could have written to decides
    nothing a person is shown, until the entry is allowed."""
    secret = "tell-them-this"
    sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- api: `codex exec {secret}`\n  - dir: {sandbox.root}/{secret}\n"
    )
    for later in (0, 1, 61, 62):
        sandbox.check(env=at(sandbox, later))

    told = sandbox.notifications()
    assert len(told) == 1, told
    assert not any(secret in line for lines in told for line in lines)
    assert told[0][3].startswith("api: a new command in ")
