"""Choosing the notes folder once (`heartbeat init`, the first `launch --notes`), and the
warning when a command's folder is not the one the schedule checks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import Sandbox
from test_launch_and_check import launch

# A config file a person wrote: comments, other settings, a table after them.
PERSONS_CONFIG = """# heartbeat, as I like it
socket = "~/.tmux/sock"   # the stable socket
completion_check = false

[[pattern]]
reason = "auth-expired"
regex = 'my-agent: session expired'
hint = "run: my-agent login"
"""


def without_notes_variable(box: Sandbox) -> dict[str, str]:
    return {key: value for key, value in box.env.items() if key != "HEARTBEAT_NOTES"}


def config_file(box: Sandbox) -> Path:
    return Path(box.env["HEARTBEAT_CONFIG"])


def test_init_writes_the_folder_keeping_the_persons_config(sandbox: Sandbox) -> None:
    path = config_file(sandbox)
    path.write_text(PERSONS_CONFIG)
    os.chmod(path, 0o640)
    env = without_notes_variable(sandbox)
    chosen = sandbox.root / "notes"

    first = sandbox.run("init", "--notes", str(chosen), env=env)
    written = path.read_text()
    again = sandbox.run("init", "--notes", str(chosen), env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout == f'created {chosen}\nwrote notes = "{chosen}" in {path}\n'
    assert chosen.is_dir() and stat.S_IMODE(os.stat(chosen).st_mode) == 0o700
    # Every line the person wrote is still there, in order, with its comment.
    kept = [line for line in written.splitlines() if not line.startswith("notes = ")]
    assert kept == PERSONS_CONFIG.splitlines()
    assert f'notes = "{chosen}"' in written.split("[[pattern]]")[0]  # a top-level key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640  # its mode kept
    assert (again.returncode, path.read_text()) == (0, written)  # idempotent
    assert again.stdout == f'{path} already has notes = "{chosen}": nothing changed\n'

    # Without the flag or the variable, every command now finds the notes there.
    launch(sandbox, "api", "codex", "exec", "work", env=env)
    assert (chosen / "2026-11-24.md").exists()
    assert not (sandbox.root / "memory").exists() or not any((sandbox.root / "memory").iterdir())


def test_init_replaces_the_folder_the_config_names(sandbox: Sandbox) -> None:
    path = config_file(sandbox)
    path.write_text(path.read_text() + 'notes = "/nowhere/old"  # moved\n')
    chosen = sandbox.root / "notes"
    chosen.mkdir(mode=0o700)

    result = sandbox.run("init", "--notes", str(chosen), env=without_notes_variable(sandbox))

    assert result.returncode == 0, result.stderr
    text = path.read_text()
    assert f'notes = "{chosen}"  # moved\n' in text and "/nowhere/old" not in text


def test_init_without_a_flag_records_what_is_resolved_now(sandbox: Sandbox) -> None:
    """The OpenClaw workspace's memory/ (OpenClaw's documentation, concepts/agent-workspace:
    the workspace defaults to ~/.openclaw/workspace)."""
    env = without_notes_variable(sandbox)
    path = config_file(sandbox)
    before = path.read_text()

    refused = sandbox.run("init", env=env)

    assert refused.returncode == 1
    assert refused.stderr.startswith("heartbeat: no notes folder: pass --notes DIR")
    assert "heartbeat init --notes DIR" in refused.stderr
    assert path.read_text() == before  # nothing written
    workspace = sandbox.home / ".openclaw" / "workspace" / "memory"
    workspace.mkdir(parents=True, mode=0o700)

    result = sandbox.run("init", env=env)

    assert result.returncode == 0, result.stderr
    assert path.read_text() == before + f'notes = "{workspace}"\n'


def test_init_says_when_the_variable_comes_first(sandbox: Sandbox) -> None:
    chosen = sandbox.root / "notes"
    chosen.mkdir(mode=0o700)

    result = sandbox.run("init", "--notes", str(chosen))  # HEARTBEAT_NOTES is set

    assert result.returncode == 0
    assert f"HEARTBEAT_NOTES={sandbox.notes} is set, and comes first" in result.stderr


def test_init_refuses_a_config_file_others_may_write(sandbox: Sandbox) -> None:
    path = config_file(sandbox)
    os.chmod(path, 0o666)
    before = path.read_text()

    result = sandbox.run("init", "--notes", str(sandbox.notes))

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "anyone can write it" in result.stderr
    assert path.read_text() == before


def test_init_creates_a_missing_config_file_privately(sandbox: Sandbox) -> None:
    env = without_notes_variable(sandbox)
    del env["HEARTBEAT_CONFIG"]  # the default place, under XDG_CONFIG_HOME
    env["XDG_CONFIG_HOME"] = str(sandbox.home / ".config")

    result = sandbox.run("init", "--notes", str(sandbox.notes), env=env)

    path = sandbox.home / ".config" / "heartbeat" / "config.toml"
    assert result.returncode == 0, result.stderr
    assert path.read_text() == f'notes = "{sandbox.notes}"\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_the_first_launch_with_notes_records_it(sandbox: Sandbox) -> None:
    env = without_notes_variable(sandbox)
    path = config_file(sandbox)
    before = path.read_text()
    flags = ("--dir", str(sandbox.root), "--resume", "never")

    first = sandbox.run("launch", "one", *flags, "--notes", str(sandbox.notes), "--", "x", env=env)
    second = sandbox.run("launch", "two", *flags, "--notes", str(sandbox.notes), "--", "x", env=env)

    assert first.returncode == 0, first.stderr
    recorded = f"notes folder {sandbox.notes} recorded in {path} (heartbeat init changes it)"
    assert first.stdout.splitlines()[-1] == recorded
    assert path.read_text() == before + f'notes = "{sandbox.notes}"\n'
    assert second.returncode == 0 and "recorded" not in second.stdout  # said once
    # A folder the config already names is not replaced by a launch's flag.
    other = sandbox.root / "elsewhere"
    third = sandbox.run("launch", "three", *flags, "--notes", str(other), "--", "x", env=env)
    assert third.returncode == 0 and "recorded" not in third.stdout
    assert path.read_text() == before + f'notes = "{sandbox.notes}"\n'


WARNING = (
    "notes folder {used} is not the one the schedule checks ({scheduled}): see heartbeat init\n"
)


def install_here(box: Sandbox) -> None:
    installed = box.run("install", "--systemd")  # systemd's files, in the sandbox's HOME
    assert installed.returncode == 0, installed.stderr
    assert f"it checks the notes in {box.notes}" in installed.stdout
    record = json.loads((box.state / "installed.json").read_text())
    assert record["notes"] == str(box.notes)


def folder(box: Sandbox, name: str) -> tuple[Path, dict[str, str]]:
    """Another notes folder, and the environment that uses it."""
    other = box.root / name
    other.mkdir(mode=0o700)
    return other, dict(box.env, HEARTBEAT_NOTES=str(other))


@pytest.mark.user_crontab  # install runs
@pytest.mark.timeout(180)  # a busy two-core machine
def test_a_folder_the_schedule_does_not_check_is_said_once(sandbox: Sandbox) -> None:
    other, elsewhere = folder(sandbox, "other")
    assert sandbox.check("--quiet", env=elsewhere).returncode == 0  # nothing installed
    install_here(sandbox)

    first = sandbox.check("--quiet", env=elsewhere)
    second = sandbox.check("--quiet", env=elsewhere)
    status = sandbox.run("status", env=elsewhere)
    same = sandbox.check("--quiet")  # the scheduled folder itself

    warning = WARNING.format(used=other, scheduled=sandbox.notes)
    assert (first.returncode, first.stdout, first.stderr) == (1, "", warning)
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")  # said once
    assert status.returncode == 0 and "is not the one the schedule checks" not in status.stderr
    assert (same.returncode, same.stderr) == (0, "")


@pytest.mark.user_crontab  # install and uninstall run
@pytest.mark.timeout(180)  # a busy two-core machine
def test_a_new_pair_or_a_new_choice_is_news_again(sandbox: Sandbox) -> None:
    other, elsewhere = folder(sandbox, "other")
    install_here(sandbox)
    assert sandbox.run("status", env=elsewhere).stderr.endswith(
        WARNING.format(used=other, scheduled=sandbox.notes)
    )

    third = sandbox.root / "third"
    launched = sandbox.run(
        "launch", "api", "--dir", str(sandbox.root), "--notes", str(third), "--", "x"
    )
    assert launched.returncode == 0, launched.stderr
    assert launched.stderr == WARNING.format(used=third, scheduled=sandbox.notes)

    # A new choice makes it news again: init, then the same pair as before.
    chosen = sandbox.run("init", "--notes", str(other), env=elsewhere)
    assert f"the schedule checks {sandbox.notes}: run heartbeat install again" in chosen.stderr
    assert sandbox.run("status", env=elsewhere).stderr.endswith(
        WARNING.format(used=other, scheduled=sandbox.notes)
    )

    assert sandbox.run("uninstall").returncode == 0
    _, fourth = folder(sandbox, "fourth")
    assert sandbox.run("status", env=fourth).stderr == ""  # nothing installed: nothing said
