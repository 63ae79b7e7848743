"""A session started by hand (the skill's tmux line, or any command) and logged in the
note is asked about while it runs, when a person is likely there, not when it dies at
night: `check` says `NAME: needs approval: heartbeat allow NAME` once and exits 1, and
`status` shows `needs approval`. Nothing of it is touched before approval."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import Sandbox
from test_hand_written import note_with, skill_line

EXIT_NEEDS_PERSON = 1


def git_repo(box: Sandbox) -> tuple[Path, Path]:
    """A repository for the entry, and a file where every git call heartbeat makes (the
    `git` first on PATH) is written down."""
    repo = box.root / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    calls = box.root / "git-calls"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout
    (box.bin / "git").write_text(f'#!/bin/sh\npwd >> {calls}\nexec {real.strip()} "$@"\n')
    (box.bin / "git").chmod(0o755)
    return repo, calls


def start_by_hand(box: Sandbox, line: str) -> None:
    """The person runs the skill's line in their shell."""
    subprocess.run(["/bin/sh", "-c", line], env=box.env, check=True)


def status_of(box: Sandbox, name: str) -> dict[str, str]:
    report = json.loads(box.run("status", "--json").stdout)
    return next(row for row in report["entries"] if row["name"] == name)


def test_the_skills_line_started_by_hand_asks_for_approval_while_it_runs(
    sandbox: Sandbox,
) -> None:
    repo, git_calls = git_repo(sandbox)
    line = skill_line(sandbox, "skill", "Fix the bug").replace(str(sandbox.root), str(repo))
    sandbox.write_note(note_with(f"- `{line}`"))
    start_by_hand(sandbox, line)
    sandbox.wait(lambda: len(sandbox.calls()) == 1)  # the agent the line started

    first = sandbox.check()
    again = sandbox.check()

    assert (first.returncode, first.stdout) == (EXIT_NEEDS_PERSON, "")
    assert first.stderr == "memory/2026-11-24.md:5: skill: needs approval: heartbeat allow skill\n"
    # Said once, as every problem is; the exit code says it until it is approved.
    assert (again.returncode, again.stdout, again.stderr) == (EXIT_NEEDS_PERSON, "", "")
    row = status_of(sandbox, "skill")
    assert (row["state"], row["reason"]) == ("needs approval", "new command: heartbeat allow skill")
    table = sandbox.run("status").stdout
    assert "skill  needs approval" in table and "heartbeat allow skill" in table
    # Nothing of it ran or was read before approval: no git in its repository.
    assert not git_calls.exists()
    assert len(sandbox.calls()) == 1
    assert "needs approval" not in sandbox.note().read_text()

    sandbox.allow("skill")
    approved = sandbox.check()

    assert (approved.returncode, approved.stdout, approved.stderr) == (0, "", "")
    assert git_calls.exists()  # its baseline, taken now that it is approved
    assert status_of(sandbox, "skill")["state"] == "running"
    # And when it dies at night, it is restarted, not refused.
    sandbox.server.cmd("kill-session", "-t", "=skill")
    restarted = sandbox.check()
    assert (restarted.returncode, restarted.stdout) == (0, "skill: running -> dead (restarted)\n")
    sandbox.wait(lambda: len(sandbox.calls()) == 2)


def test_a_hand_written_entry_whose_session_runs_asks_for_approval(sandbox: Sandbox) -> None:
    sandbox.write_note(note_with("- web: `codex exec work`", f"  - dir: {sandbox.root}"))
    sandbox.server.new_session("web", attach=False, start_directory=str(sandbox.root))

    checked = sandbox.check("--quiet")

    assert checked.returncode == EXIT_NEEDS_PERSON
    assert checked.stderr == "memory/2026-11-24.md:5: web: needs approval: heartbeat allow web\n"
    assert status_of(sandbox, "web")["state"] == "needs approval"
    assert sandbox.calls() == []


def test_an_entry_heartbeat_would_never_restart_does_not_ask(sandbox: Sandbox) -> None:
    line = skill_line(sandbox, "once", "Fix the bug")
    sandbox.write_note(note_with(f"- `{line}`", "  - restart: never"))
    start_by_hand(sandbox, line)
    sandbox.wait(lambda: len(sandbox.calls()) == 1)

    checked = sandbox.check()

    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    assert status_of(sandbox, "once")["state"] == "running"


def test_an_entry_restarted_when_it_stalls_asks_even_under_restart_never(
    sandbox: Sandbox,
) -> None:
    line = skill_line(sandbox, "stall", "Fix the bug")
    sandbox.write_note(note_with(f"- `{line}`", "  - restart: never", "  - on-stall: restart"))
    start_by_hand(sandbox, line)
    sandbox.wait(lambda: len(sandbox.calls()) == 1)

    checked = sandbox.check()

    assert checked.returncode == EXIT_NEEDS_PERSON
    assert "stall: needs approval: heartbeat allow stall" in checked.stderr


def test_an_unapproved_entry_whose_session_is_gone_shows_needs_approval_not_dead(
    sandbox: Sandbox,
) -> None:
    sandbox.write_note(note_with("- gone: `codex exec work`", f"  - dir: {sandbox.root}"))

    checked = sandbox.check()

    assert checked.returncode == EXIT_NEEDS_PERSON
    assert "gone: new command, not run: heartbeat allow gone" in checked.stderr
    row = status_of(sandbox, "gone")
    assert (row["state"], row["reason"]) == ("needs approval", "new command: heartbeat allow gone")
