"""status, tail, kill, help, and the shipped cron templates."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import Sandbox
from test_launch_and_check import launch

from heartbeat.cli import VERBS


def test_status_shows_live_state_and_changes_nothing(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    launch(sandbox, "done", "codex", "exec", "exit:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("done"))
    note_before = sandbox.note().read_bytes()

    table = sandbox.run("status")
    result = sandbox.run("status", "--json")

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("last check: never; no schedule installed")
    start = lines.index(next(line for line in lines if line.startswith("NAME")))
    header = ["NAME", "STATE", "AGE", "RESTARTS", "PRD", "VERDICT", "LAST", "STATUS"]
    assert lines[start].split() == header
    rows = {line.split()[0]: line.split()[1] for line in lines[start + 1 :]}
    assert rows == {"api": "running", "done": "finished"}
    entries = json.loads(result.stdout)["entries"]
    assert [(e["name"], e["state"], e["dir"]) for e in entries] == [
        ("api", "running", str(sandbox.root)),
        ("done", "finished", str(sandbox.root)),
    ]
    assert sandbox.note().read_bytes() == note_before
    assert not (sandbox.state / "state.json").read_text().count('"finished"')


def test_tail_prints_the_last_lines_of_the_pane(sandbox: Sandbox) -> None:
    launch(sandbox, "done", "codex", "exec", "exit:7")
    sandbox.wait(lambda: "EXITED: 7" in sandbox.pane_text("done"))

    result = sandbox.run("tail", "done", "-n", "1")

    assert (result.returncode, result.stdout) == (0, "EXITED: 7\n")
    missing = sandbox.run("tail", "nope")
    assert missing.returncode == 1 and "no session nope" in missing.stderr


def test_kill_closes_the_entry_and_the_session_stays_dead(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")

    result = sandbox.run("kill", "api")

    assert result.returncode == 0, result.stderr
    assert not sandbox.alive("api")
    text = sandbox.note().read_text()
    assert "- [x] **api**" in text
    assert "— killed by heartbeat kill" in text
    assert sandbox.check().stdout == ""
    assert not sandbox.alive("api")
    assert len(sandbox.calls()) == 1


def test_every_command_has_help_with_an_example() -> None:
    assert len(VERBS) >= 10
    listing = subprocess.run(
        [sys.executable, "-m", "heartbeat", "--help"], capture_output=True, text=True
    )
    for verb in (verb for verb in VERBS if not verb.hidden):  # an old name is unlisted
        path = " ".join(["heartbeat", *verb.words])
        listed = re.search(rf"^    {verb.words[0]}\s", listing.stdout, re.MULTILINE)
        assert listed, path  # by `heartbeat --help`
        shown = subprocess.run(
            [sys.executable, "-m", *path.split(), "--help"], capture_output=True, text=True
        )
        assert shown.returncode == 0, path
        assert f"Example: {path}" in shown.stdout, path


def test_a_command_goes_after_dashes_and_only_where_one_is_taken(sandbox: Sandbox) -> None:
    without = sandbox.run("launch", "api", "--dir", str(sandbox.root), "codex", "exec", "x")
    stray = sandbox.run("status", "--", "codex")

    assert without.returncode == 2
    assert "unrecognized arguments: codex exec x (an agent's command goes after --)" in (
        without.stderr
    )
    assert not sandbox.note().exists() and sandbox.calls() == []
    assert stray.returncode == 2
    assert stray.stderr.endswith("heartbeat status: error: unrecognized arguments: -- codex\n")


def test_adopt_is_the_verb_and_log_still_works_unlisted(sandbox: Sandbox) -> None:
    listed = sandbox.run("--help").stdout
    assert "    adopt " in listed and "    log " not in listed
    for verb, name in (("adopt", "one"), ("log", "two")):
        subprocess.run(
            ["tmux", "-S", sandbox.socket, "new-session", "-d", "-s", name, "sleep", "300"],
            env=sandbox.env,
            check=True,
        )
        result = sandbox.run(verb, name, "--dir", str(sandbox.root), "--", "codex", "exec", "x")
        assert result.returncode == 0, result.stderr
        assert f"- [ ] **{name}** — `codex exec x`" in sandbox.note().read_text()


def test_a_check_run_by_hand_says_another_one_is_running(sandbox: Sandbox) -> None:
    """On a terminal only: cron and --quiet stay silent; the exit code is 0 either way."""
    import os
    import pty

    from heartbeat import files

    sandbox.state.mkdir(mode=0o700)
    with files.locked(sandbox.state, wait=False) as held:  # this test is the other check
        assert held
        leader, follower = pty.openpty()
        on_terminal = subprocess.run(
            [sys.executable, "-m", "heartbeat", "check"],
            env=sandbox.env,
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=30,
        )
        os.close(follower)
        shown = os.read(leader, 4096).decode()
        os.close(leader)
        quiet = sandbox.check("--quiet")
        piped = sandbox.check()

    assert on_terminal.returncode == 0
    assert f"another check is running (pid {os.getpid()}), started " in shown
    assert (quiet.returncode, quiet.stdout, piped.returncode, piped.stdout) == (0, "", 0, "")


def test_status_lists_sessions_no_open_entry_names(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    subprocess.run(
        ["tmux", "-S", sandbox.socket, "new-session", "-d", "-s", "stray", "sleep", "300"],
        env=sandbox.env,
        check=True,
    )

    rows = json.loads(sandbox.run("status", "--json").stdout)["entries"]

    states = {row["name"]: row["state"] for row in rows}
    assert states == {"api": "running", "stray": "unlisted"}
    stray = next(row for row in rows if row["name"] == "stray")
    assert stray["reason"].startswith("not in the notes: heartbeat adopt stray")
    assert (stray["note"], stray["last_status"]) == (None, None)


def test_a_finished_runs_session_is_not_unlisted(sandbox: Sandbox) -> None:
    launch(sandbox, "done", "codex", "exec", "exit:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("done"))
    sandbox.check()  # closed; its session sits in its tail

    rows = json.loads(sandbox.run("status", "--json").stdout)["entries"]

    # Shown as what it is, a finished run's tail, until `heartbeat clean` removes it.
    assert [(row["name"], row["state"]) for row in rows] == [("done", "tail")]
