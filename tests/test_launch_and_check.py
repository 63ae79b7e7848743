"""heartbeat launch and check end to end, against a real tmux server on a private socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TODAY, Sandbox

from heartbeat import files


def launch(box: Sandbox, name: str, *command: str, env: dict[str, str] | None = None) -> None:
    """Launch through heartbeat and wait until the stand-in agent has started.

    With `--resume never`: the tests that use this are about restarting the logged
    command; continuing an agent's conversation has tests of its own (test_resume.py).
    """
    started = len(box.calls())
    flags = ("--dir", str(box.root), "--resume", "never")
    result = box.run("launch", name, *flags, "--", *command, env=env)
    assert result.returncode == 0, result.stderr
    box.wait(lambda: len(box.calls()) > started)


def test_launch_starts_the_session_and_logs_it_in_todays_note(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "--full-auto", "Add tests")

    assert sandbox.alive("api")
    text = sandbox.note().read_text()
    assert text.startswith("---\n")
    assert "## Active Long-Running Processes" in text
    assert "- [ ] **api** — `codex exec --full-auto 'Add tests'`" in text
    assert f"  - dir: `{sandbox.root}`" in text
    assert f"  - socket: `{sandbox.socket}`" in text
    assert f"  - started: {TODAY} 10:00" in text
    assert sandbox.calls() == [f"{sandbox.root}|exec --full-auto Add tests"]


def test_launching_a_name_twice_is_refused_and_changes_nothing(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "first")
    before = sandbox.note().read_bytes()

    again = sandbox.run(
        "launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "second"
    )

    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert sandbox.note().read_bytes() == before
    assert len(sandbox.server.sessions) == 1
    assert all("second" not in call for call in sandbox.calls())


def test_a_killed_session_is_restarted_once_with_its_command_and_dir(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    sandbox.server.cmd("kill-session", "-t", "=api")

    first = sandbox.check()

    assert first.returncode == 0, first.stderr
    assert first.stdout == "api: running -> dead (restarted)\n"
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert sandbox.calls()[1] == f"{sandbox.root}|exec work"
    assert sandbox.note().read_text().count("— dead · not a git repo, restarted") == 1

    note_after_first = sandbox.note().read_bytes()
    second = sandbox.check()
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert sandbox.note().read_bytes() == note_after_first
    assert len(sandbox.calls()) == 2


def test_a_killed_tmux_server_is_restored_by_one_check(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "one")
    launch(sandbox, "web", "ralphy", "--codex", "--prd", "PRD.md")
    pid = int(sandbox.server.cmd("display-message", "-p", "#{pid}").stdout[0])
    os.kill(pid, signal.SIGKILL)
    sandbox.wait(lambda: not sandbox.server.is_alive())

    result = sandbox.check()

    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "api: running -> dead (restarted)",
        "web: running -> dead (restarted)",
    ]
    sandbox.wait(lambda: sandbox.alive("api") and sandbox.alive("web"))
    assert sandbox.check().stdout == ""


def test_a_restart_under_crons_bare_path_finds_the_agent_found_at_launch(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    sandbox.server.cmd("kill-server")

    result = sandbox.check(env=sandbox.cron_env())

    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert sandbox.calls()[1].endswith("|exec work")


def test_launch_inside_another_tmux_goes_to_heartbeats_socket(sandbox: Sandbox) -> None:
    other = sandbox.root / "other.sock"
    subprocess.run(["tmux", "-S", str(other), "new-session", "-d", "-s", "outer"], check=True)
    try:
        env = dict(sandbox.env, TMUX=f"{other},1,0", TMUX_PANE="%0")
        launch(sandbox, "api", "codex", "exec", "work", env=env)
        assert sandbox.alive("api")
        inside = subprocess.run(
            ["tmux", "-S", str(other), "has-session", "-t", "=api"], capture_output=True
        )
        assert inside.returncode != 0
        pane_env = sandbox.server.cmd("show-environment", "-t", "=api").stdout
        assert not any(line.startswith(f"TMUX={other}") for line in pane_env)
    finally:
        subprocess.run(["tmux", "-S", str(other), "kill-server"], capture_output=True)


def test_an_agent_that_exits_0_is_finished_ticked_and_not_restarted(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "exit:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))

    result = sandbox.check()

    assert result.returncode == 0, result.stderr
    assert result.stdout == "api: running -> finished (closed)\n"
    text = sandbox.note().read_text()
    assert "- [x] **api**" in text
    assert "— finished (exit 0) · not a git repo" in text
    sandbox.server.cmd("kill-session", "-t", "=api")
    assert sandbox.check().stdout == ""
    assert len(sandbox.calls()) == 1


def test_a_finished_session_killed_by_hand_is_not_run_again(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "exit:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))
    # Killed before any check saw it end: only the exit record outside tmux remains.
    sandbox.server.cmd("kill-session", "-t", "=api")

    result = sandbox.check()

    assert result.stdout == "api: running -> finished (closed)\n"
    assert len(sandbox.calls()) == 1
    assert not sandbox.alive("api")


def test_an_agent_that_exits_3_with_restart_never_is_failed_and_reported(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "launch",
        "api",
        "--dir",
        str(sandbox.root),
        "--restart",
        "never",
        "--",
        "codex",
        "exec",
        "exit:3",
    )
    assert result.returncode == 0, result.stderr
    assert "  - restart: never" in sandbox.note().read_text()
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))

    result = sandbox.check("--quiet")

    assert result.returncode == 1
    assert result.stdout == "api: running -> failed (needs a person)\n"
    assert "- [ ] **api**" in sandbox.note().read_text()
    assert (
        "— failed (exit 3) · not a git repo, not restarted (restart: never)"
        in sandbox.note().read_text()
    )
    again = sandbox.check("--quiet")
    assert (again.returncode, again.stdout, again.stderr) == (1, "", "")
    assert len(sandbox.calls()) == 1


def test_an_agent_that_exits_3_is_restarted_by_default(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "exit:3")
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))

    result = sandbox.check("--quiet")

    assert (result.returncode, result.stdout) == (0, "")
    assert "— failed (exit 3) · not a git repo, restarted" in sandbox.note().read_text()
    sandbox.wait(lambda: len(sandbox.calls()) == 2)


def test_the_completion_hook_notifies_once_within_seconds_with_the_verdict(
    sandbox: Sandbox,
) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("completion_check = true\n")
    launch(sandbox, "api", "codex", "exec", "exit:0")

    # No check runs here: the wrapper's own hook checks the entry as the agent ends.
    sandbox.wait(lambda: "- [x] **api**" in sandbox.note().read_text())
    sandbox.wait(sandbox.lock_is_free)  # told after the note is written, in the same check

    assert sandbox.notifications() == [
        [
            "system",
            "event",
            "--text",
            f"api in {sandbox.root}: finished (exit 0) · not a git repo",
            "--mode",
            "now",
        ]
    ]
    assert sandbox.check().stdout == ""
    assert len(sandbox.notifications()) == 1  # once, not again by the next check


def waiting_agent(box: Sandbox) -> Path:
    """A stand-in agent, `waiter`, that ends when the file returned exists."""
    go = box.root / "go"
    agent = box.bin / "waiter"
    agent.write_text(f"#!/bin/sh\nwhile [ ! -e {go} ]; do sleep 0.05; done\n")
    agent.chmod(0o755)
    return go


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")
def test_the_completion_hook_waits_for_the_lock_instead_of_skipping(sandbox: Sandbox) -> None:
    """An agent can end while its own launch, or a check, still holds the lock."""
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("completion_check = true\n")
    go = waiting_agent(sandbox)
    launch_result = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "waiter")
    assert launch_result.returncode == 0, launch_result.stderr

    with files.locked(sandbox.state, wait=True):
        go.touch()
        sandbox.wait(sandbox.lock_is_awaited)  # the hook's check, the agent having ended
        assert sandbox.notifications() == []
    sandbox.wait(lambda: len(sandbox.notifications()) == 1)

    assert f"api in {sandbox.root}: finished (exit 0)" in sandbox.notifications()[0][3]
    # The note is written once the check has told a person: wait for it too.
    sandbox.wait(lambda: "- [x] **api**" in sandbox.note().read_text())


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")
def test_the_completion_hook_waits_no_longer_than_a_check_may_take(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(
        "completion_check = true\ncheck_timeout_seconds = 1\n"
    )
    go = waiting_agent(sandbox)
    assert sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "waiter").returncode == 0

    def tail_reached() -> bool:
        shown = sandbox.server.cmd(
            "display-message", "-p", "-t", "=api:", "#{pane_current_command}"
        )
        return shown.stdout == ["sleep"]

    with files.locked(sandbox.state, wait=True):  # held by a run that never ends
        go.touch()
        sandbox.wait(sandbox.lock_is_awaited)
        # The hook gives up after a second, and the wrapper goes on to its tail.
        sandbox.wait(lambda: tail_reached() and not sandbox.lock_is_awaited())
        assert sandbox.notifications() == []
    assert "- [ ] **api**" in sandbox.note().read_text()  # left to the next check


def test_five_checks_at_once_restart_a_dead_session_exactly_once(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    sandbox.server.cmd("kill-session", "-t", "=api")

    command = [sys.executable, "-m", "heartbeat", "check"]
    checks = [
        subprocess.Popen(
            command,
            env=sandbox.env,
            cwd=sandbox.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(5)
    ]
    results = [check.communicate(timeout=60) for check in checks]
    outputs = [out.decode() for out, _ in results]
    # The lock, not tmux refusing a duplicate name, keeps the others out.
    assert [err.decode() for _, err in results] == [""] * 5

    assert sum(out.count("(restarted)") for out in outputs) == 1
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert sandbox.note().read_text().count("— dead · not a git repo, restarted") == 1
    assert sandbox.check().stdout == ""
    assert len(sandbox.calls()) == 2


def test_a_new_entry_reusing_a_finished_name_starts_afresh(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "exit:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))
    assert sandbox.check().stdout == "api: running -> finished (closed)\n"
    sandbox.server.cmd("kill-session", "-t", "=api")
    sandbox.check()  # sees the entry closed

    launch(sandbox, "api", "codex", "exec", "again")
    sandbox.server.cmd("kill-session", "-t", "=api")
    result = sandbox.check()

    assert result.stdout == "api: running -> dead (restarted)\n"
    sandbox.wait(lambda: sandbox.calls().count(f"{sandbox.root}|exec again") == 2)


def test_a_folder_name_with_tmux_format_characters_is_taken_literally(sandbox: Sandbox) -> None:
    folder = sandbox.root / "odd #(touch PWNED) ##{pane_id}"
    folder.mkdir()
    result = sandbox.run("launch", "api", "--dir", str(folder), "--", "codex", "exec", "work")
    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: len(sandbox.calls()) == 1)
    assert sandbox.calls() == [f"{folder}|exec work"]
    assert not list(sandbox.root.rglob("PWNED")) and not list(sandbox.home.rglob("PWNED"))


def test_a_notify_command_without_a_text_placeholder_gets_it_last(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("completion_check = true\n")
    env = dict(sandbox.env, HEARTBEAT_NOTIFY="openclaw say")
    launch(sandbox, "api", "codex", "exec", "exit:0", env=env)
    sandbox.wait(lambda: len(sandbox.notifications()) == 1)
    assert sandbox.notifications() == [
        ["say", f"api in {sandbox.root}: finished (exit 0) · not a git repo"]
    ]


def test_checks_with_nothing_changed_add_no_byte_to_the_notes(sandbox: Sandbox) -> None:
    from datetime import datetime, timedelta

    from heartbeat import config
    from heartbeat.check import run as core

    for name in ("api", "web", "docs"):
        launch(sandbox, name, "codex", "exec", name)
    settings = config.load(sandbox.env)
    start = datetime.fromisoformat(sandbox.env["HEARTBEAT_NOW"])
    core.check(settings, start)  # the first sighting
    before = sandbox.note().read_bytes()

    # 100 checks over 25 minutes (these silent agents stall at 30: that is a change).
    moments = [start + timedelta(seconds=15 * tick) for tick in range(1, 101)]
    changes = [core.check(settings, moment).changes for moment in moments]

    assert changes == [[]] * 100
    assert sandbox.note().read_bytes() == before


def test_a_finished_name_can_be_launched_again(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "exit:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))  # in its sleep tail
    sandbox.check()  # closed: finished

    again = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "two")
    running = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")

    assert again.returncode == 0, again.stderr
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert sandbox.calls()[1].endswith("|exec two")
    assert (
        "api: replaced its finished session (exit 0)"
        in (sandbox.state / "heartbeat.log").read_text()
    )
    assert running.returncode == 1 and "already exists" in running.stderr  # a live one stays
