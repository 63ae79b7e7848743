"""Settings, shortcuts, duplicates, the carry-over window, and tmux calls per check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Sandbox
from test_launch_and_check import launch

from heartbeat import config
from heartbeat.errors import UsageError


def test_settings_come_from_flags_then_environment_then_defaults(tmp_path: Path) -> None:
    env = {"HOME": "/home/ada", "PATH": "/usr/bin:/bin", "HEARTBEAT_NOTES": "/n"}
    defaults = config.load(env)
    assert defaults.socket == "/home/ada/.tmux/sock"
    assert defaults.state_dir == Path("/home/ada/.local/state/heartbeat")
    assert config.load({**env, "XDG_STATE_HOME": "/x"}).state_dir == Path("/x/heartbeat")
    from_env = config.load({**env, "HEARTBEAT_SOCKET": "/s/sock", "HEARTBEAT_NOTES": "/n"})
    assert (from_env.socket, from_env.notes_dir) == ("/s/sock", Path("/n"))
    from_flags = config.load({**env, "HEARTBEAT_SOCKET": "/s/sock"}, notes="/f", socket="/t/sock")
    assert (from_flags.socket, from_flags.notes_dir) == ("/t/sock", Path("/f"))


def test_a_socket_path_too_long_for_tmux_is_refused_clearly() -> None:
    with pytest.raises(UsageError, match="longer than tmux accepts"):
        config.load({"HOME": "/h", "HEARTBEAT_NOTES": "/n"}, socket="/tmp/" + "x" * 120)


def test_the_notes_folder_is_the_openclaw_workspaces_memory_else_refused(tmp_path: Path) -> None:
    """OpenClaw's documentation (concepts/agent-workspace): the workspace is
    OPENCLAW_WORKSPACE_DIR, else agents.defaults.workspace in ~/.openclaw/openclaw.json
    (JSON5), else ~/.openclaw/workspace."""
    from heartbeat.errors import ConfigError

    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    with pytest.raises(ConfigError, match="no notes folder: pass --notes DIR, set HEARTBEAT_NOTES"):
        config.load(env)  # never a silent ./memory in whatever folder this runs in

    default = home / ".openclaw" / "workspace" / "memory"
    default.mkdir(parents=True)
    assert config.load(env).notes_dir == default

    elsewhere = tmp_path / "ws"
    (elsewhere / "memory").mkdir(parents=True)
    settings = home / ".openclaw" / "openclaw.json"
    settings.write_text(
        f'// JSON5\n{{ agents: {{ defaults: {{ workspace: "{elsewhere}", }}, }}, }}\n'
    )
    settings.chmod(0o600)
    assert config.load(env).notes_dir == elsewhere / "memory"

    settings.chmod(0o666)  # another user could point heartbeat anywhere: not read
    assert config.load(env).notes_dir == default
    assert config.load({**env, "HEARTBEAT_NOTES": "/n"}).notes_dir == Path("/n")


def test_usage_errors_exit_2(sandbox: Sandbox) -> None:
    result = sandbox.run("launch", "api", "--", "codex")
    assert result.returncode == 2
    assert "--dir" in result.stderr
    both = sandbox.run("launch", "api", "--dir", ".", "--codex", "x", "--", "codex")
    assert both.returncode == 2
    nothing = sandbox.run("launch", "api", "--dir", ".")
    assert (nothing.returncode, nothing.stderr) == (
        2,
        "heartbeat: no command given: heartbeat launch NAME --dir DIR -- COMMAND\n",
    )
    assert sandbox.run("tail", "api", "-n", "-5").returncode == 2
    bad_clock = sandbox.run("status", env=dict(sandbox.env, HEARTBEAT_NOW="garbage"))
    assert (bad_clock.returncode, bad_clock.stderr) == (
        2,
        "heartbeat: HEARTBEAT_NOW is not an ISO time: 'garbage'\n",
    )


@pytest.mark.parametrize(
    ("flags", "call"),
    [
        (["--codex", "Add tests"], "exec --full-auto Add tests"),
        (["--ralph", "PRD.md"], "--codex --prd PRD.md"),
        (["--ralph", "PRD.md", "--parallel"], "--codex --parallel --prd PRD.md"),
    ],
)
def test_launch_shortcuts(sandbox: Sandbox, flags: list[str], call: str) -> None:
    result = sandbox.run("launch", "agent", "--dir", str(sandbox.root), *flags)
    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: sandbox.calls() == [f"{sandbox.root}|{call}"])


def test_a_notify_command_gets_the_text_as_one_argument(sandbox: Sandbox) -> None:
    record = sandbox.root / "notified"
    script = sandbox.bin / "notify-me"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    script.chmod(0o755)
    env = dict(sandbox.env, HEARTBEAT_NOTIFY="notify-me --title hb {text} --end")
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("completion_check = true\n")

    launch(sandbox, "api", "codex", "exec", "exit:0", env=env)
    sandbox.wait(record.exists)

    assert record.read_text().splitlines() == [
        "--title",
        "hb",
        f"api in {sandbox.root}: finished (exit 0) · not a git repo",
        "--end",
    ]


def test_the_same_name_open_twice_manages_the_newest(sandbox: Sandbox) -> None:
    section = "## Active Long-Running Processes\n\n"
    sandbox.write_note(
        section + f"- api: `codex exec old`\n  - dir: {sandbox.root}\n"
        f"- api: `codex exec new`\n  - dir: {sandbox.root}\n"
    )
    sandbox.allow("api")

    result = sandbox.check()

    assert result.returncode == 1
    assert result.stderr == (
        "memory/2026-11-24.md:3: api is logged again at memory/2026-11-24.md:5; "
        "only the newer entry is watched\n"
    )
    sandbox.wait(lambda: sandbox.calls() == [f"{sandbox.root}|exec new"])


def test_open_entries_older_than_the_window_are_reported(sandbox: Sandbox) -> None:
    sandbox.write_note(
        "## Active Long-Running Processes\n\n- old: `codex exec x`\n", day="2026-11-10"
    )

    result = sandbox.check()

    assert result.returncode == 1
    assert result.stderr.startswith("memory/2026-11-10.md:3: old is open but older than the 7-day")
    assert not sandbox.note().exists()
    assert sandbox.calls() == []


def test_a_missing_notes_folder_is_one_clear_line(sandbox: Sandbox) -> None:
    shutil.rmtree(sandbox.notes)
    result = sandbox.check()
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "memory: notes folder not found\n"


def test_a_check_asks_tmux_once_per_socket(sandbox: Sandbox) -> None:
    for name in ("one", "two", "three"):
        launch(sandbox, name, "codex", "exec", name)
    log = sandbox.root / "tmux-calls"
    counting = sandbox.bin / "counting-tmux"
    # Logs each call's subcommand: the first argument that is not an option.
    counting.write_text(
        "#!/bin/sh\n"
        f'for arg in "$@"; do case "$arg" in -*) ;; *) echo "$arg" >> {log}; break ;; esac; done\n'
        f'exec {shutil.which("tmux")} "$@"\n'
    )
    counting.chmod(0o755)
    env = dict(sandbox.env, HEARTBEAT_TMUX=str(counting))

    quiet = sandbox.check(env=env)
    assert (quiet.returncode, quiet.stdout) == (0, "")
    assert log.read_text().splitlines() == ["list-panes"]

    sandbox.server.cmd("kill-session", "-t", "=two")
    os.unlink(log)
    restart = sandbox.check(env=env)
    assert restart.stdout == "two: running -> dead (restarted)\n"
    assert log.read_text().splitlines() == ["list-panes", "new-session"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"\xff\xfe", "not valid UTF-8"),
        (b"carry_days = true\n", "carry_days must be int, not True"),
        (b"carry_days = -1\n", "carry_days must be at least 0"),
        (b"max_restarts_per_check = 0\n", "max_restarts_per_check must be at least 1"),
        (b'socket = ""\n', "socket must not be empty"),
        (b"socket = 5\n", "socket must be str, not 5"),
        (b"notfy = 1\n", "unknown setting"),
        (b"tags = [open\n", "config.toml: "),
    ],
)
def test_a_bad_config_file_is_one_clear_line(sandbox: Sandbox, text: bytes, message: str) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_bytes(text)
    result = sandbox.check()
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


def test_a_config_file_named_but_missing_is_an_error(sandbox: Sandbox) -> None:
    env = dict(sandbox.env, HEARTBEAT_CONFIG=str(sandbox.root / "nope.toml"))
    result = sandbox.check(env=env)
    assert (result.returncode, result.stderr) == (
        1,
        f"heartbeat: {sandbox.root / 'nope.toml'}: config file not found\n",
    )


def test_a_refused_note_is_named_when_an_entry_cannot_be_found(sandbox: Sandbox) -> None:
    sandbox.write_note("## Active Long-Running Processes\n\n- api: `codex`\n").chmod(0o666)
    result = sandbox.run("allow", "api")
    assert result.returncode == 1
    assert "no open entry named api in memory (memory/2026-11-24.md: anyone can write it" in (
        result.stderr
    )


def test_output_cut_short_by_the_reader_is_no_error(sandbox: Sandbox) -> None:
    sandbox.write_note(
        f"## Active Long-Running Processes\n\n- api: `codex`\n  - dir: {sandbox.root}\n"
    )
    command = f"{sys.executable} -m heartbeat allow api | head -1"
    for _ in range(5):
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            env=sandbox.env,
            cwd=sandbox.root,
            capture_output=True,
            text=True,
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, "api: allowed\n", "")
