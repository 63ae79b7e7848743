"""Rate limits: a wait that ends at the reset time, a minimum that a zero wait cannot get
under, a start budget that holds a looping agent, news told once, and a limit that slows
only its own provider's restarts.

The message is OpenAI's own rate-limit text as Codex relays it: "Rate limit reached for
... on tokens per min (TPM): Limit ..., Used ..., Requested .... Please try again in 1ms."
(quoted from an issue thread's API response body, and from Codex-driving projects' test
stand-ins: "stream disconnected before completion: Rate limit reached for organization
org-test on requests per min (RPM): ... Please try again in 1ms.").
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from conftest import SETTINGS, Sandbox
from test_launch_and_check import launch
from test_restart_policy import at

CAPTURES = Path(__file__).parent / "captures"
ZERO_WAIT = f"say:{CAPTURES / 'codex-rate-limit-1ms.txt'}:1"


def told(box: Sandbox) -> list[str]:
    return [lines[3] for lines in box.notifications()]


def test_a_zero_wait_limit_looping_for_ten_minutes_starts_at_most_six_times(
    sandbox: Sandbox,
) -> None:
    """With the completion hook on, as a real launch has it, and a check every minute;
    then on until the start budget holds it."""
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(
        "restart_spacing_seconds = 0\ncompletion_check = true\ninstant_restarts = false\n"
    )
    launch(sandbox, "api", "codex", "exec", ZERO_WAIT)
    sandbox.wait(lambda: "rate-limited" in sandbox.note().read_text())  # the hook's check

    starts_by_minute = {}
    for minute in range(1, 31):
        starts = len(sandbox.calls())
        result = sandbox.check(env=at(sandbox, minute))
        assert "Traceback" not in result.stderr
        if len(sandbox.calls()) > starts:  # restarted: its own hook's check comes next
            sandbox.wait(lambda: sandbox.pane_text("api").count("EXITED: 1") == 1)
            sandbox.wait(lambda: sandbox.lock_is_free() and not sandbox.lock_is_awaited())
        starts_by_minute[minute] = len(sandbox.calls())
        if minute == 10:
            assert len(told(sandbox)) <= 2

    assert starts_by_minute[10] <= 6
    assert "gave up after 5 failed starts in 60 min" in sandbox.note().read_text()
    assert starts_by_minute[30] == 5  # none after giving up
    assert sum("rate-limited" in text for text in told(sandbox)) == 1
    assert sum("gave up" in text for text in told(sandbox)) == 1
    assert len(told(sandbox)) == 2


def test_with_the_real_clock_and_both_hooks_a_zero_wait_does_not_spin(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(
        "restart_spacing_seconds = 0\ncompletion_check = true\ninstant_restarts = true\n"
    )
    real_clock = {k: v for k, v in sandbox.env.items() if k != "HEARTBEAT_NOW"}
    launch(sandbox, "api", "codex", "exec", ZERO_WAIT, env=real_clock)
    note = sandbox.note(date.today().isoformat())
    sandbox.wait(lambda: "rate-limited, restart after" in note.read_text())

    # A window of checks as fast as they come: by hand, and by the hooks they trigger.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert sandbox.check(env=real_clock).returncode in (0, 1)
    assert len(sandbox.calls()) == 1  # no restart before the minimum wait
    assert len(told(sandbox)) == 1


def test_a_limit_slows_only_the_restarts_of_its_own_provider(sandbox: Sandbox) -> None:
    launch(sandbox, "limited", "codex", "exec", ZERO_WAIT)
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("limited"))
    rows = "".join(
        f"- {name}: `{command}`\n  - dir: {sandbox.root}\n"
        for name, command in (
            ("codex1", "codex exec work1"),
            ("codex2", "cd /tmp && codex exec work2"),
            ("claude1", "claude -p 'work3'"),
            ("claude2", "env FOO=1 claude -p 'work4'"),
        )
    )
    sandbox.write_note(sandbox.note().read_text() + rows)
    sandbox.allow("codex1", "codex2", "claude1", "claude2")

    first = sandbox.check()

    restarted = {line.split(":")[0] for line in first.stdout.splitlines() if "(restarted)" in line}
    assert restarted == {"claude1", "claude2", "codex1"}  # one Codex run while limited
    assert "limited: running -> failed (restart after 10:01)" in first.stdout


def test_the_least_wait_is_a_setting(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(SETTINGS + "rate_limit_wait_seconds = 300\n")
    launch(sandbox, "api", "codex", "exec", ZERO_WAIT)
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))

    assert sandbox.check().stdout == "api: running -> failed (restart after 10:05)\n"
    assert sandbox.check(env=at(sandbox, 4)).stdout == ""
    assert sandbox.check(env=at(sandbox, 5)).stdout == "api: failed (restarted)\n"
