"""Who may make heartbeat run a command: approvals, and notes nobody else can change."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import SETTINGS, Sandbox

SECTION = "## Active Long-Running Processes\n\n"


def hand_entry(box: Sandbox, name: str = "hand", task: str = "work") -> Path:
    return box.write_note(SECTION + f"- {name}: `codex exec {task}`\n  - dir: {box.root}\n")


def test_a_hand_written_command_runs_only_once_allowed(sandbox: Sandbox) -> None:
    note = hand_entry(sandbox)

    first = sandbox.check()
    again = sandbox.check()

    assert (first.returncode, first.stdout) == (1, "hand: new -> dead (needs approval)\n")
    assert first.stderr == (
        "memory/2026-11-24.md:3: hand: new command, not run: heartbeat allow hand\n"
    )
    assert (again.returncode, again.stdout, again.stderr) == (1, "", "")
    assert note.read_text().count("— needs approval: heartbeat allow hand · dead\n") == 1
    assert sandbox.calls() == []

    allowed = sandbox.run("allow", "hand")

    assert allowed.stdout.splitlines() == [
        "hand: allowed",
        "  command: codex exec work",
        f"  dir: {sandbox.root}",
        f"  socket: {sandbox.socket}",
        "  restart: on-failure · on-stall: notify · resume: auto",
        "  note: memory/2026-11-24.md:3",
    ]
    allow_file = sandbox.state / "allowed.json"
    assert stat.S_IMODE(allow_file.stat().st_mode) == 0o600
    assert not str(allow_file).startswith(str(sandbox.notes))
    assert sandbox.check().stdout == "hand: dead (restarted)\n"
    sandbox.wait(lambda: sandbox.calls() == [f"{sandbox.root}|exec work"])


@pytest.mark.parametrize("edit", ["command", "dir", "socket"])
def test_an_edited_command_dir_or_socket_needs_approval_again(sandbox: Sandbox, edit: str) -> None:
    note = hand_entry(sandbox)
    sandbox.allow("hand")
    other = sandbox.root / "other"
    other.mkdir()
    text = note.read_text()
    if edit == "command":
        text = text.replace("exec work", "exec other-work")
    elif edit == "dir":
        text = text.replace(f"dir: {sandbox.root}", f"dir: {other}")
    else:
        text += f"  - socket: {sandbox.socket}2\n"
    note.write_text(text)

    result = sandbox.check()

    assert result.returncode == 1
    if edit == "socket":  # a socket it names is not even connected to before approval
        assert result.stdout == "" and "which heartbeat watches only once it is approved" in (
            result.stderr
        )
    else:
        assert result.stdout == "hand: new -> dead (needs approval)\n"
    assert sandbox.calls() == []


def test_log_records_a_running_hand_started_session_and_approves_it(sandbox: Sandbox) -> None:
    subprocess.run(
        ["tmux", "-S", sandbox.socket, "new-session", "-d", "-s", "byhand", "sleep", "300"],
        env=sandbox.env,
        check=True,
    )

    logged = sandbox.run(
        "log", "byhand", "--dir", str(sandbox.root), "--", "codex", "exec", "resume"
    )

    assert logged.returncode == 0, logged.stderr
    assert "- [ ] **byhand** — `codex exec resume`" in sandbox.note().read_text()
    assert sandbox.check().stdout == ""  # running: nothing to say
    sandbox.server.cmd("kill-session", "-t", "=byhand")
    assert sandbox.check().stdout == "byhand: running -> dead (restarted)\n"
    sandbox.wait(lambda: sandbox.calls() == [f"{sandbox.root}|exec resume"])


def test_log_refuses_a_session_that_is_not_running(sandbox: Sandbox) -> None:
    result = sandbox.run("log", "ghost", "--dir", str(sandbox.root), "--", "codex")
    assert result.returncode == 1
    assert "no session ghost" in result.stderr
    assert not sandbox.note().exists()


def test_the_config_file_can_trust_every_owned_note(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(SETTINGS + "trust_owned_notes = true\n")
    hand_entry(sandbox)
    assert sandbox.check().stdout == "hand: new -> dead (restarted)\n"


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (0o666, "anyone can write it: chmod o-w memory/2026-11-24.md"),
        (0o620, None),  # group-writable by the user's own group alone is fine
    ],
)
def test_notes_others_can_write_are_refused(
    sandbox: Sandbox, mode: int, message: str | None
) -> None:
    note = hand_entry(sandbox)
    sandbox.allow("hand")
    note.chmod(mode)

    result = sandbox.check()

    if message is None:
        assert result.stdout == "hand: new -> dead (restarted)\n"
    else:
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == f"memory/2026-11-24.md: {message}\n"
        assert sandbox.calls() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner or group needs root")
def test_notes_owned_or_shared_by_others_are_refused(sandbox: Sandbox) -> None:
    note = hand_entry(sandbox)
    sandbox.allow("hand")
    os.chown(note, -1, 65534)  # nogroup: the group of the user nobody
    note.chmod(0o660)
    shared = sandbox.check()
    assert shared.stderr.startswith("memory/2026-11-24.md: other users in group")
    assert "chmod g-w memory/2026-11-24.md" in shared.stderr

    os.chown(note, 65534, 0)
    note.chmod(0o600)
    foreign = sandbox.check()
    assert "owned by" in foreign.stderr and "not by you" in foreign.stderr
    assert sandbox.calls() == []


def test_a_symlinked_note_and_an_open_folder_are_refused(sandbox: Sandbox) -> None:
    real = sandbox.root / "elsewhere.md"
    real.write_text(SECTION + f"- hand: `codex exec work`\n  - dir: {sandbox.root}\n")
    sandbox.note().symlink_to(real)
    linked = sandbox.check()
    assert "memory/2026-11-24.md: is a symbolic link" in linked.stderr

    sandbox.note().unlink()
    hand_entry(sandbox)
    sandbox.notes.chmod(0o777)
    open_folder = sandbox.check()
    assert open_folder.returncode == 1
    assert open_folder.stderr == (
        "memory: anyone can write it: chmod o-w memory (no note in it is read)\n"
    )
    launched = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex")
    assert launched.returncode == 1 and "chmod o-w" in launched.stderr
    assert sandbox.calls() == []


@pytest.mark.parametrize("hidden", ["\x1b[1G\x1b[K", "\u202e", "\x08\x08"])
def test_invisible_characters_in_a_command_are_refused(sandbox: Sandbox, hidden: str) -> None:
    sandbox.write_note(
        SECTION + f"- web: `touch pwned #{hidden}  codex exec fix`\n  - dir: {sandbox.root}\n"
    )
    result = sandbox.run("allow", "web")
    check = sandbox.check()
    assert result.returncode == 1
    assert "invisible character (U+" in check.stderr
    assert not (sandbox.root / "pwned").exists()


def test_allow_shows_every_value_a_tmux_line_sets(sandbox: Sandbox) -> None:
    line = (
        f"tmux -S {sandbox.socket} new -d -s envy -e PATH=/opt/evil/bin -e "
        f"'LD_PRELOAD=/tmp/x y.so' -c {sandbox.root} 'codex exec work'"
    )
    sandbox.write_note(f"## Active Long-Running Processes\n\n- `{line}`\n  - restart: always\n")

    shown = sandbox.run("allow", "envy").stdout.splitlines()

    assert "  env: PATH=/opt/evil/bin" in shown
    assert "  env: LD_PRELOAD='/tmp/x y.so'" in shown
    assert "  restart: always · on-stall: notify · resume: auto" in shown
