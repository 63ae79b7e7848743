"""The restart policy against real tmux: a crash loop, the storm guard, leftovers."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import NOW, SETTINGS, Sandbox
from test_launch_and_check import launch

from heartbeat import config
from heartbeat.check import run as core


def at(box: Sandbox, minutes: float) -> dict[str, str]:
    """The environment of a check run `minutes` after the sandbox's start time."""
    moment = datetime.fromisoformat(NOW) + timedelta(minutes=minutes)
    return dict(box.env, HEARTBEAT_NOW=moment.isoformat())


def test_an_agent_that_exits_at_once_is_restarted_with_backoff_then_given_up(
    sandbox: Sandbox,
) -> None:
    launch(sandbox, "loop", "codex", "exec", "exit:1")
    starts = 1

    def ended() -> bool:
        return sandbox.pane_text("loop").count("EXITED: 1") >= 1

    def check(minutes: float) -> tuple[int, str]:
        result = sandbox.check(env=at(sandbox, minutes))
        return result.returncode, result.stdout

    sandbox.wait(ended)
    # minute: what the check does
    assert check(0) == (
        0,
        "loop: running -> failed (restarted)\n",
    )  # the first restart is immediate
    starts += 1
    sandbox.wait(lambda: len(sandbox.calls()) == starts and ended())
    assert check(0.5) == (0, "loop: running -> failed (restart after 10:01)\n")
    assert check(1.0) == (0, "")  # still waiting
    assert check(1.5) == (0, "loop: failed (restarted)\n")
    starts += 1
    sandbox.wait(lambda: len(sandbox.calls()) == starts and ended())
    assert check(2) == (0, "loop: running -> failed (restart after 10:04)\n")  # two minutes
    assert check(4) == (0, "loop: failed (restarted)\n")
    starts += 1
    sandbox.wait(lambda: len(sandbox.calls()) == starts and ended())
    assert check(4.5) == (0, "loop: running -> failed (restart after 10:08)\n")  # four minutes
    assert check(8.5) == (0, "loop: failed (restarted)\n")
    starts += 1
    sandbox.wait(lambda: len(sandbox.calls()) == starts and ended())

    # The fifth failed start within the hour: give up, once, and tell a person once.
    assert check(9) == (1, "loop: running -> gave-up (gave up)\n")
    assert check(40) == (1, "")
    assert len(sandbox.calls()) == 5
    gave_up = [n for n in sandbox.notifications() if "gave up" in n[3]]
    assert len(gave_up) == 1
    assert gave_up[0][3].endswith("(heartbeat reset loop)")
    assert sandbox.note().read_text().count("gave up after 5 failed starts in 60 min") == 1

    # reset: the next check restarts it at once.
    assert sandbox.run("reset", "loop", env=at(sandbox, 41)).returncode == 0
    assert check(41) == (0, "loop: new -> failed (restarted)\n")
    sandbox.wait(lambda: len(sandbox.calls()) == 6)


def test_editing_the_command_of_an_entry_that_gave_up_starts_afresh(sandbox: Sandbox) -> None:
    note = sandbox.write_note(
        f"## Active Long-Running Processes\n\n- flaky: `codex exec exit:2`\n  - dir: {sandbox.root}\n"
    )
    sandbox.allow("flaky")
    outputs = []
    for minute in range(30):  # a check a minute, as cron runs it
        before = len(sandbox.calls())
        outputs.append(sandbox.check(env=at(sandbox, minute)).stdout)
        if "(restarted)" in outputs[-1]:
            sandbox.wait(lambda before=before: len(sandbox.calls()) > before)
            sandbox.wait(lambda: "EXITED: 2" in sandbox.pane_text("flaky"))
        if "gave up" in outputs[-1]:
            break
    assert outputs[-1] == "flaky: running -> gave-up (gave up)\n"
    assert minute == 11  # restarted at minutes 0, 2, 5 and 10: waits of 0, 1, 2 and 4

    note.write_text(note.read_text().replace("exit:2", "fixed"))
    edited = sandbox.check(env=at(sandbox, minute + 1))
    assert edited.stdout == "flaky: new -> failed (needs approval)\n"  # a new command, afresh
    sandbox.allow("flaky")
    result = sandbox.check(env=at(sandbox, minute + 2))

    assert result.stdout == "flaky: failed (restarted)\n"
    sandbox.wait(lambda: sandbox.calls()[-1].endswith("|exec fixed"))  # not a resume


def test_the_storm_guard_restarts_three_per_check_oldest_first(sandbox: Sandbox) -> None:
    rows = [f"- agent{i}: `codex exec work{i}`\n  - dir: {sandbox.root}\n" for i in range(5)]
    sandbox.write_note("## Active Long-Running Processes\n\n" + "".join(rows))
    sandbox.allow(*(f"agent{i}" for i in range(5)))

    first = sandbox.check()
    second = sandbox.check()

    assert first.stdout.splitlines() == [
        "agent0: new -> dead (restarted)",
        "agent1: new -> dead (restarted)",
        "agent2: new -> dead (restarted)",
    ]
    assert second.stdout.splitlines() == [
        "agent3: dead (restarted)",
        "agent4: dead (restarted)",
    ]
    sandbox.wait(lambda: len(sandbox.calls()) == 5)


def test_restarts_in_one_check_are_spaced_with_jitter(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [f"- agent{i}: `codex exec work{i}`\n  - dir: {sandbox.root}\n" for i in range(3)]
    sandbox.write_note("## Active Long-Running Processes\n\n" + "".join(rows))
    sandbox.allow(*(f"agent{i}" for i in range(3)))
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("restart_spacing_seconds = 2\n")
    pauses: list[float] = []

    outcome = core.run(config.load(sandbox.env), datetime.fromisoformat(NOW), pauses.append)

    assert len(outcome.changes) == 3
    assert len(pauses) == 2  # between restarts, not before the first
    assert all(2 <= pause <= 3 for pause in pauses)
    assert len(set(pauses)) == 2  # jitter: two agents never get the same pause


def stubborn_agent(box: Sandbox) -> None:
    """`stubborn` on PATH: an agent whose child ignores SIGHUP, as some agents' tool
    processes do; the child's pid goes to child.pid."""
    stubborn = box.bin / "stubborn"
    stubborn.write_text(
        "#!/bin/sh\n"
        f"echo start >> {box.root}/calls.log\n"
        f"(trap '' HUP; exec sleep 300) &\necho $! > {box.root}/child.pid\nexec sleep 300\n"
    )
    stubborn.chmod(0o755)


def test_leftovers_of_the_previous_run_are_stopped_before_a_restart(sandbox: Sandbox) -> None:
    stubborn_agent(sandbox)
    launch(sandbox, "api", "stubborn")
    sandbox.wait(lambda: (sandbox.root / "child.pid").exists())
    child = int((sandbox.root / "child.pid").read_text())
    sandbox.server.cmd("kill-session", "-t", "=api")
    os.kill(child, 0)  # the child survived kill-session

    try:
        result = sandbox.check()

        assert result.stdout == "api: running -> dead (restarted)\n"
        assert "stopped leftovers of the previous run, process group" in sandbox.note().read_text()
        sandbox.wait(lambda: not _alive(child))
    finally:
        sandbox.wait(lambda: int((sandbox.root / "child.pid").read_text()) != child)
        os.kill(int((sandbox.root / "child.pid").read_text()), 9)  # the new run's child


def _alive(pid: int) -> bool:
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return state.returncode == 0 and not state.stdout.strip().startswith("Z")


def test_a_reused_process_group_id_is_left_alone(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    sandbox.server.cmd("kill-server")
    # After a reboot the old pane's process id may name someone else's process group.
    stranger = subprocess.Popen(["setsid", "sleep", "300"])
    try:
        sandbox.wait(lambda: os.getpgid(stranger.pid) == stranger.pid)
        state_file = sandbox.state / "state.json"
        saved = json.loads(state_file.read_text())
        [record] = saved["records"].values()
        record["pid"] = stranger.pid
        state_file.write_text(json.dumps(saved))

        result = sandbox.check()

        assert result.stdout == "api: running -> dead (restarted)\n"
        assert stranger.poll() is None  # not ours: not touched
        assert "leftovers" not in sandbox.note().read_text()
    finally:
        stranger.kill()
        stranger.wait()


def test_the_storm_guard_lets_the_longest_waiting_go_first(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(SETTINGS + "max_restarts_per_check = 1\n")
    rows = [f"- old{i}: `codex exec old{i}`\n  - dir: {sandbox.root}\n" for i in range(2)]
    note = sandbox.write_note("## Active Long-Running Processes\n\n" + "".join(rows))
    sandbox.allow("old0", "old1")
    assert sandbox.check(env=at(sandbox, 0)).stdout == "old0: new -> dead (restarted)\n"
    # A newer entry, listed first, is dead too: old1 has waited longer.
    note.write_text(
        "## Active Long-Running Processes\n\n"
        f"- fresh: `codex exec fresh`\n  - dir: {sandbox.root}\n" + "".join(rows)
    )
    sandbox.allow("fresh")

    result = sandbox.check(env=at(sandbox, 5))

    assert result.stdout == "old1: dead (restarted)\n"


def test_kill_stops_what_outlives_the_session(sandbox: Sandbox) -> None:
    stubborn_agent(sandbox)
    launch(sandbox, "api", "stubborn")
    sandbox.wait(lambda: (sandbox.root / "child.pid").exists())
    child = int((sandbox.root / "child.pid").read_text())

    try:
        result = sandbox.run("kill", "api")

        assert result.returncode == 0, result.stderr
        assert "api: 1 of its processes outlived the session: stopped" in result.stdout
        sandbox.wait(lambda: not _alive(child))
        assert not sandbox.alive("api")
    finally:
        if _alive(child):
            os.kill(child, 9)
