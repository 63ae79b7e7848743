"""Instant restarts: a tmux hook checks the moment a session closes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Sandbox
from test_launch_and_check import launch, waiting_agent

from heartbeat import files


def test_a_killed_session_is_back_within_seconds_without_cron(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("restart_spacing_seconds = 0\n")
    launch(sandbox, "api", "codex", "exec", "work")
    launch(sandbox, "web", "codex", "exec", "web")

    sandbox.server.cmd("kill-session", "-t", "=api")

    # No check is run here: tmux's session-closed hook runs one.
    sandbox.wait(lambda: len(sandbox.calls()) == 3, seconds=15)
    sandbox.wait(lambda: sandbox.alive("api"))
    # The hook's check writes the note after the restart: wait for it too.
    sandbox.wait(lambda: "— dead · not a git repo, restarted" in sandbox.note().read_text())
    assert sandbox.alive("web")


def test_several_sessions_closing_at_once_are_all_restarted_once(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("restart_spacing_seconds = 0\n")
    names = [f"a{i}" for i in range(3)]
    for name in names:
        launch(sandbox, name, "codex", "exec", name)
    launch(sandbox, "keeper", "codex", "exec", "keeper")  # keeps the server alive

    for name in names:
        sandbox.server.cmd("kill-session", "-t", f"={name}")

    sandbox.wait(lambda: len(sandbox.calls()) == 7, seconds=20)
    sandbox.wait(lambda: all(sandbox.alive(name) for name in names))
    sandbox.wait(lambda: sandbox.note().read_text().count("restarted") == 3)
    sandbox.wait(sandbox.lock_is_free)  # the hooks' checks are done: this one runs
    assert sandbox.check().stdout == ""
    assert sandbox.note().read_text().count("restarted") == 3


def test_kill_closes_the_entry_first_so_the_hook_never_revives_it(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("restart_spacing_seconds = 0\n")
    launch(sandbox, "api", "codex", "exec", "work")
    launch(sandbox, "keeper", "codex", "exec", "keeper")

    assert sandbox.run("kill", "api").returncode == 0

    # The hook's check runs (it records when it ran) and finds nothing to do.
    sandbox.wait(lambda: (sandbox.state / "last-check").exists(), seconds=15)
    assert sandbox.check().stdout == ""
    assert not sandbox.alive("api")
    assert len(sandbox.calls()) == 2


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")
def test_a_hooks_note_is_honoured_by_a_completion_check_that_waited(sandbox: Sandbox) -> None:
    """A session closes while the lock is held, and the check that gets the lock next is
    an agent's completion hook: it looks at every entry, not only its own."""
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(
        "restart_spacing_seconds = 0\ncompletion_check = true\n"
    )
    go = waiting_agent(sandbox)
    assert sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "waiter").returncode == 0
    launch(sandbox, "web", "codex", "exec", "web")

    with files.locked(sandbox.state, wait=True):
        sandbox.server.cmd("kill-session", "-t", "=web")
        sandbox.wait((sandbox.state / "hook-pending").exists)  # tmux's hook found us
        go.touch()
        sandbox.wait(sandbox.lock_is_awaited)  # api's completion hook

    sandbox.wait(lambda: sandbox.alive("web"))
    log = sandbox.state / "heartbeat.log"
    sandbox.wait(lambda: "api: running -> finished (closed)" in log.read_text())
    assert "web: running -> dead (restarted)" in log.read_text()


@pytest.mark.user_crontab  # uninstall reads the crontab
def test_uninstall_removes_the_hook_and_quiets_the_checks_sessions_start(
    sandbox: Sandbox,
) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("restart_spacing_seconds = 0\n")
    launch(sandbox, "api", "codex", "exec", "exit:0")  # its completion hook runs a check
    launch(sandbox, "keeper", "codex", "exec", "keeper")
    sandbox.wait(lambda: "- [x] **api**" in sandbox.note().read_text())
    hooks = sandbox.server.cmd("show-hooks", "-g", "session-closed").stdout
    assert any("hook.sh" in line for line in hooks)

    removed = sandbox.run("uninstall")

    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"removed the tmux hook on {sandbox.socket}\n"
    assert not any(
        "hook.sh" in line
        for line in sandbox.server.cmd("show-hooks", "-g", "session-closed").stdout
    )
    # A running session's completion hook, and a hook's check: both do nothing now.
    before = sandbox.note().read_text()
    sandbox.server.cmd("kill-session", "-t", "=keeper")
    hooked = sandbox.run("check", "--hook")
    assert (hooked.returncode, hooked.stdout) == (0, "")
    assert sandbox.note().read_text() == before and not sandbox.alive("keeper")
    # A check by hand or by cron still works; install lifts the mark.
    assert "keeper: running -> dead (restarted)" in sandbox.check().stdout
