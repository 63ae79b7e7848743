"""Surviving faults: a hung or vanished tmux, broken notes, sync tools, a corrupt state."""

from __future__ import annotations

import os
import signal
import socket as socketlib
import subprocess
from pathlib import Path

from conftest import SETTINGS, Sandbox
from test_launch_and_check import launch

SECTION = "## Active Long-Running Processes\n\n"


def server_pid(box: Sandbox) -> int:
    return int(box.server.cmd("display-message", "-p", "#{pid}").stdout[0])


def test_a_hung_tmux_server_costs_a_bounded_wait_and_other_sockets_still_work(
    sandbox: Sandbox,
) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(
        SETTINGS + "tmux_timeout_seconds = 1\ncheck_timeout_seconds = 10\n"
    )
    launch(sandbox, "api", "codex", "exec", "work")
    other = f"{sandbox.socket}2"
    sandbox.write_note(
        sandbox.note().read_text()
        + f"- web: `codex exec web`\n  - dir: {sandbox.root}\n  - socket: {other}\n"
    )
    sandbox.allow("web")
    hung = server_pid(sandbox)
    os.kill(hung, signal.SIGSTOP)
    try:
        result = sandbox.check()
    finally:
        os.kill(hung, signal.SIGCONT)

    assert result.returncode == 1
    assert result.stderr == f"tmux on {sandbox.socket} did not answer within 1s (list-panes)\n"
    assert result.stdout == "web: new -> dead (restarted)\n"  # the other socket's entry
    assert sandbox.check().stdout == ""  # once it answers again, api is still running
    assert sandbox.calls()[0].endswith("|exec work") and len(sandbox.calls()) == 2


def test_a_hung_call_ends_the_clients_of_its_own_socket_alone(tmp_path: Path) -> None:
    """Sockets are asked at once: the client ended for not answering is that socket's,
    never another's answering at the same moment (nor one whose socket's name only
    begins the same)."""
    from heartbeat.tmux import server

    waiting = tmp_path / "tmux-client"  # waits, as a client of a stopped server does
    waiting.write_text("#!/bin/sh\nwhile :; do sleep 1; done\n")
    waiting.chmod(0o755)
    hung = subprocess.Popen([str(waiting), "-S/tmp/hung.sock", "list-panes"])
    other = subprocess.Popen([str(waiting), "-S/tmp/hung.sock2", "list-panes"])
    try:
        server._kill_hung_clients("/tmp/hung.sock")
        assert hung.wait(timeout=10) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for process in (hung, other):
            process.kill()
            process.wait()


def test_a_deleted_socket_is_recreated_instead_of_starting_a_second_server(
    sandbox: Sandbox,
) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    pid = server_pid(sandbox)
    pane_before = sandbox.server.cmd("list-panes", "-a", "-F", "#{pane_pid}").stdout
    sandbox.check()  # the check learns which server answers on the socket
    os.unlink(sandbox.socket)

    result = sandbox.check()

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert os.path.exists(sandbox.socket)
    assert server_pid(sandbox) == pid
    assert sandbox.server.cmd("list-panes", "-a", "-F", "#{pane_pid}").stdout == pane_before
    assert len(sandbox.calls()) == 1


def test_a_stale_socket_is_replaced(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    os.kill(server_pid(sandbox), signal.SIGKILL)
    sandbox.wait(lambda: not sandbox.server.is_alive())
    if os.path.exists(sandbox.socket):
        os.unlink(sandbox.socket)
    stale = socketlib.socket(socketlib.AF_UNIX)
    stale.bind(sandbox.socket)  # a socket file with no server behind it
    stale.close()

    result = sandbox.check()

    assert result.stdout == "api: running -> dead (restarted)\n"
    sandbox.wait(lambda: len(sandbox.calls()) == 2)


def test_tmux_missing_is_one_clear_line(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    before = sandbox.note().read_bytes()
    env = dict(sandbox.env, HEARTBEAT_TMUX=str(sandbox.root / "no-tmux-here"))

    result = sandbox.check(env=env)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "tmux not found: install it (apt install tmux)\n"
    assert sandbox.note().read_bytes() == before


def test_broken_notes_are_left_alone_and_the_others_still_handled(sandbox: Sandbox) -> None:
    bad_utf8 = sandbox.note("2026-11-22")
    bad_utf8.write_bytes(SECTION.encode() + b"- a: `codex exec \xff`\n")
    bad_yaml = sandbox.write_note(
        "---\ntags: [open\n---\n" + SECTION + "- b: `codex exec b`\n", "2026-11-23"
    )
    huge = sandbox.note("2026-11-21")
    with huge.open("w") as handle:
        handle.write(SECTION + "- c: `codex exec c`\n" + "x" * (50 * 2**20) + "\n")
    sandbox.write_note(SECTION + f"- good: `codex exec good`\n  - dir: {sandbox.root}\n")
    sandbox.allow("good")
    before = {path: path.stat().st_mtime_ns for path in (bad_utf8, bad_yaml, huge)}

    result = sandbox.check()

    assert result.returncode == 1
    assert sorted(result.stderr.splitlines()) == [
        f"memory/2026-11-21.md:1: {huge.stat().st_size:,} bytes, more than heartbeat reads (5,242,880): left alone",
        "memory/2026-11-22.md:3: not valid UTF-8; heartbeat leaves this note alone",
        "memory/2026-11-23.md:3: invalid YAML front matter: did not find expected ',' or ']'",
    ]
    assert result.stdout == "good: new -> dead (restarted)\n"
    assert {path: path.stat().st_mtime_ns for path in before} == before


def test_sync_conflict_copies_and_icloud_placeholders_are_reported(sandbox: Sandbox) -> None:
    for name in (
        "2026-11-24 (Ada's conflicted copy 2026-11-24).md",
        "2026-11-24 2.md",
        "2026-11-24.sync-conflict-20261124-101112-ABCDEF.md",
    ):
        (sandbox.notes / name).write_text(SECTION + "- x: `codex exec x`\n")
    (sandbox.notes / ".2026-11-24.md.icloud").write_bytes(b"bplist00")
    sandbox.write_note(SECTION + f"- y: `codex exec y`\n  - dir: {sandbox.root}\n", "2026-11-23")
    sandbox.allow("y")

    result = sandbox.check()

    problems = result.stderr.splitlines()
    assert sum("a sync conflict copy of 2026-11-24.md, not read" in p for p in problems) == 3
    assert (
        "memory/.2026-11-24.md.icloud: 2026-11-24.md is in iCloud but not downloaded"
        in result.stderr
    )
    assert "memory/2026-11-24.md is in iCloud but not downloaded: open it once" in result.stderr
    assert not sandbox.note().exists()  # not created beside the placeholder
    assert result.stdout == "y: new -> dead (restarted)\n"  # still watched where it is
    launched = sandbox.run("launch", "z", "--dir", str(sandbox.root), "--", "codex")
    assert launched.returncode == 1 and "not downloaded" in launched.stderr


def test_a_corrupt_state_file_is_rebuilt_with_one_warning(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    (sandbox.state / "state.json").write_text("{not json")

    result = sandbox.check()

    assert result.stderr.endswith(
        "state.json: state file unreadable (JSONDecodeError); "
        "rebuilding it from tmux and the notes\n"
    )
    assert result.stdout == ""  # the running session is seen as running: no restart
    assert sandbox.check().stderr == ""
    assert len(sandbox.calls()) == 1
