"""Another local user, and files that are not what they seem: heartbeat acts on nothing
it cannot trust, and says so in one line naming the file and the fix.

Where a test needs a file owned by someone else it plays that user with a spare uid
(`chown`, which needs root); without root those tests are skipped, with the reason.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from conftest import Sandbox
from test_hand_written import note_with

OTHER_UID = 4242  # nobody's: a user the test plays
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")


def hand_written(box: Sandbox, name: str = "job") -> None:
    box.write_note(note_with(f"- {name}: `codex exec work`", f"  - dir: {box.root}"))


def refused_everywhere(box: Sandbox, expected: str) -> None:
    """Every verb that uses the state folder refuses, with one line."""
    for verb in (["check"], ["status"], ["allow", "job"], ["doctor"], ["reset", "job"]):
        result = box.run(*verb)
        assert result.returncode == 1, (verb, result.stdout, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and expected in lines[0], (verb, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_state_folder_others_can_write_is_refused(sandbox: Sandbox) -> None:
    hand_written(sandbox)
    sandbox.state.mkdir(mode=0o700)
    (sandbox.state / "hook.sh").write_text("#!/bin/sh\ntouch /tmp/owned\n")
    os.chmod(sandbox.state, 0o777)

    refused_everywhere(sandbox, f"state folder {sandbox.state}: anyone can write it: chmod o-w")
    assert not sandbox.alive("job")


def test_a_new_state_folder_is_made_for_the_user_alone(sandbox: Sandbox) -> None:
    hand_written(sandbox)
    old = os.umask(0o000)  # a careless umask: the folder is still private
    try:
        assert sandbox.check().returncode == 1  # needs approval
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(sandbox.state).st_mode) == 0o700


def test_an_allow_list_that_is_a_link_approves_nothing(sandbox: Sandbox) -> None:
    hand_written(sandbox)
    sandbox.state.mkdir(mode=0o700)
    elsewhere = sandbox.root / "shared-allowed.json"
    elsewhere.write_text(json.dumps({"0" * 64: {"name": "job"}}))
    os.chmod(elsewhere, 0o666)
    (sandbox.state / "allowed.json").symlink_to(elsewhere)

    refused_everywhere(sandbox, "allowed.json: is a symbolic link")
    assert not sandbox.alive("job")


@AS_ROOT
def test_a_file_in_the_state_folder_owned_by_another_user_is_refused(sandbox: Sandbox) -> None:
    hand_written(sandbox)
    sandbox.allow("job")
    hook = sandbox.state / "hook.sh"
    hook.write_text("#!/bin/sh\ntouch /tmp/owned\n")
    os.chown(hook, OTHER_UID, OTHER_UID)

    refused_everywhere(sandbox, f"{hook}: owned by {OTHER_UID}, not by you: remove it")
    assert not sandbox.alive("job")


def test_a_file_in_the_state_folder_others_can_write_is_refused(sandbox: Sandbox) -> None:
    hand_written(sandbox)
    sandbox.allow("job")
    os.chmod(sandbox.state / "allowed.json", 0o666)

    refused_everywhere(sandbox, "allowed.json: others may write it: chmod go-w")


def test_a_parent_others_can_write_is_refused_unless_sticky(sandbox: Sandbox) -> None:
    parent = sandbox.root / "shared"
    parent.mkdir()
    os.chmod(parent, 0o777)
    sandbox.env["HEARTBEAT_STATE_DIR"] = str(parent / "state")
    hand_written(sandbox)

    refused_everywhere(sandbox, f"others can write its parent {parent}: chmod go-w {parent}")

    os.chmod(parent, 0o1777)  # sticky, as /tmp is: nobody may rename another's files
    result = sandbox.check()
    assert result.returncode == 1 and "heartbeat allow job" in result.stderr


def test_an_unapproved_entry_names_a_socket_heartbeat_never_connects_to(
    sandbox: Sandbox,
) -> None:
    """Another user's socket would receive the check's whole environment."""
    import socket
    import threading

    other = sandbox.root / "other.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(other))
    listener.listen(8)
    listener.settimeout(0.05)
    connections: list[int] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connections.append(1)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    sandbox.write_note(
        note_with("- job: `codex exec work`", f"  - dir: {sandbox.root}", f"  - socket: {other}")
    )
    try:
        checked = sandbox.check()
        status = json.loads(sandbox.run("status", "--json").stdout)
    finally:
        stop.set()
        thread.join()
        listener.close()

    assert connections == []
    assert checked.returncode == 1
    assert f"on socket {other}, which heartbeat watches only once it is approved" in (
        checked.stderr
    )
    row = status["entries"][0]
    # Never "dead" nor "unknown": what is true is that it waits for a person.
    assert row["state"] == "needs approval"
    assert row["reason"].startswith("new command: heartbeat allow")


def test_nothing_runs_in_an_unapproved_entrys_folder(sandbox: Sandbox) -> None:
    """Its repository's fsmonitor would be a program of the note's writer's choosing."""
    import subprocess

    repo = sandbox.root / "repo"
    repo.mkdir()
    ran = sandbox.root / "ran"
    program = sandbox.root / "monitor"
    program.write_text(f"#!/bin/sh\ntouch {ran}\n")
    program.chmod(0o755)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "config", "core.fsmonitor", str(program)], check=True)
    calls = sandbox.root / "git-calls"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout
    (sandbox.bin / "git").write_text(f'#!/bin/sh\npwd >> {calls}\nexec {real.strip()} "$@"\n')
    (sandbox.bin / "git").chmod(0o755)
    sandbox.write_note(note_with("- job: `codex exec work`", f"  - dir: {repo}"))

    first = sandbox.check()
    second = sandbox.check()

    assert "heartbeat allow job" in first.stderr and second.returncode == 1
    assert not ran.exists()
    assert not calls.exists()  # git was not even asked
    assert not sandbox.alive("job")


def test_a_notification_carries_none_of_an_unapproved_entrys_text(sandbox: Sandbox) -> None:
    folder = sandbox.root / "Click https:  evil.example  now"
    folder.mkdir()
    sandbox.write_note(note_with("- job: `codex exec work`", f"  - dir: {folder}"))

    sandbox.check()

    told = [" ".join(lines) for lines in sandbox.notifications()]
    assert len(told) == 1 and "heartbeat allow job" in told[0]
    assert "evil" not in told[0]


def test_a_clock_given_with_a_zone_works(sandbox: Sandbox) -> None:
    result = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert result.returncode == 0, result.stderr
    sandbox.server.cmd("kill-session", "-t", "=api")
    zoned = dict(sandbox.env, HEARTBEAT_NOW="2026-11-24T10:05:00+00:00", TZ="UTC")

    checked = sandbox.check(env=zoned)

    assert (checked.returncode, checked.stderr) == (0, "")
    assert checked.stdout == "api: running -> dead (restarted)\n"


def test_words_ending_in_a_semicolon_reach_tmux_whole(sandbox: Sandbox) -> None:
    """tmux takes an argument's trailing `;` as the end of its command."""
    folder = sandbox.root / "odd;"
    folder.mkdir()

    result = sandbox.run("launch", "semi", "--dir", str(folder), "--", "sleep 600;")

    assert result.returncode == 0, result.stderr
    shown = sandbox.server.cmd("display", "-p", "-t", "=semi:", "#{pane_current_path}").stdout
    assert shown == [str(folder)]
    assert sandbox.alive("semi")


def test_a_state_folder_with_a_space_a_quote_and_a_dollar_gets_its_hook(sandbox: Sandbox) -> None:
    from pathlib import Path as P

    odd = sandbox.root / "my state 'x' $HOME"
    sandbox.env["HEARTBEAT_STATE_DIR"] = str(odd)
    P(sandbox.env["HEARTBEAT_CONFIG"]).write_text("restart_spacing_seconds = 0\n")
    for name in ("api", "keeper"):
        launched = sandbox.run(
            "launch", name, "--dir", str(sandbox.root), "--", "codex", "exec", name
        )
        assert launched.returncode == 0, launched.stderr
    sandbox.wait(lambda: len(sandbox.calls()) == 2)

    sandbox.server.cmd("kill-session", "-t", "=api")

    # No check is run here: tmux's session-closed hook runs one, from that folder.
    sandbox.wait(lambda: len(sandbox.calls()) == 3, seconds=15)
    sandbox.wait(lambda: sandbox.alive("api"))
    assert (odd / "state.json").exists()


def test_a_socket_deleted_right_after_a_launch_is_recreated(sandbox: Sandbox) -> None:
    """No check ran between the launch and the deletion: the launch knew the server."""
    launched = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert launched.returncode == 0, launched.stderr
    sandbox.wait(lambda: len(sandbox.calls()) == 1)
    os.unlink(sandbox.socket)

    result = sandbox.check()

    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert os.path.exists(sandbox.socket) and sandbox.alive("api")
    assert len(sandbox.calls()) == 1  # it ran once


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_socket_path_that_is_not_a_socket_is_a_problem_not_a_dead_server(
    sandbox: Sandbox, kind: str
) -> None:
    """Never a second server there, and never the first one's agents called leftovers."""
    launched = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert launched.returncode == 0, launched.stderr
    sandbox.wait(lambda: len(sandbox.calls()) == 1)
    pids = sandbox.server.cmd("list-panes", "-a", "-F", "#{pane_pid}").stdout
    moved = sandbox.socket + ".real"
    os.rename(sandbox.socket, moved)  # the server lives on, reached by the other name
    if kind == "file":
        Path(sandbox.socket).write_text("")
    else:
        os.mkdir(sandbox.socket)

    first = sandbox.check()
    second = sandbox.check()

    what = "folder" if kind == "folder" else "file that is not a socket"
    assert first.returncode == 1 and second.returncode == 1
    assert f"tmux socket {sandbox.socket}: is a {what}: its entries are left alone" in first.stderr
    assert first.stdout == second.stdout == ""
    assert len(sandbox.calls()) == 1
    import libtmux

    alive = libtmux.Server(socket_path=moved)
    assert alive.cmd("list-panes", "-a", "-F", "#{pane_pid}").stdout == pids
    alive.cmd("kill-server")


def test_a_note_that_begins_with_a_byte_order_mark_is_read(sandbox: Sandbox) -> None:
    text = f"\ufeff## Active Long-Running Processes\n\n- job: `codex exec work`\n  - dir: {sandbox.root}\n"
    sandbox.write_note(text)
    sandbox.allow("job")

    result = sandbox.check()

    assert result.stdout == "job: new -> dead (restarted)\n", result.stderr
    assert sandbox.note().read_text().startswith("\ufeff## Active")  # its mark is kept


def test_a_section_title_that_is_not_a_heading_is_reported(sandbox: Sandbox) -> None:
    sandbox.write_note(
        "# Today\n\n**Active Long-Running Processes**\n\n"
        f"- job: `codex exec work`\n  - dir: {sandbox.root}\n"
    )

    result = sandbox.check()

    assert result.returncode == 1
    assert result.stderr == (
        "memory/2026-11-24.md:3: the section title is not a heading: "
        "make it a heading: ## Active Long-Running Processes\n"
    )


def test_entries_in_a_note_dated_after_today_are_still_watched(sandbox: Sandbox) -> None:
    """The clock was a day ahead when the note was written, then put right."""
    sandbox.write_note(
        note_with("- job: `codex exec work`", f"  - dir: {sandbox.root}"), day="2026-11-25"
    )
    sandbox.allow("job")

    result = sandbox.check()

    assert "job: new -> dead (restarted)" in result.stdout
    assert "memory/2026-11-25.md: dated after today (was the clock ahead?)" in result.stderr


def test_a_slow_notifier_never_stretches_a_check_past_its_bound(sandbox: Sandbox) -> None:
    """Six events and a notifier that takes a second each: the check sends what fits
    in its bound, and the next checks send the rest, each once."""
    import time

    told = sandbox.root / "told"
    slow = sandbox.bin / "slow-notify"
    slow.write_text(f'#!/bin/sh\nsleep 1\necho "$1" >> {told}\n')
    slow.chmod(0o755)
    config = Path(sandbox.env["HEARTBEAT_CONFIG"])
    config.write_text(config.read_text() + "check_timeout_seconds = 3\n")
    sandbox.env["HEARTBEAT_NOTIFY"] = str(slow)
    rows = [f"- job{i}: `codex exec work{i}`\n  - dir: {sandbox.root}" for i in range(6)]
    sandbox.write_note(note_with(*rows))

    took = []
    for minute in range(12):
        began = time.monotonic()
        sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOW=f"2026-11-24T10:{minute:02d}:00"))
        took.append(time.monotonic() - began)
        if told.exists() and len(told.read_text().splitlines()) == 6:
            break

    lines = told.read_text().splitlines()
    assert sorted(lines) == sorted(set(lines)) and len(lines) == 6  # each once
    assert len(took) > 1  # not all in the first check
    assert max(took) < 3 + 3  # its bound, and the interpreter's start


def test_a_hung_git_never_holds_a_check_past_its_bound(sandbox: Sandbox) -> None:
    import time

    hung = sandbox.bin / "git"
    hung.write_text("#!/bin/sh\nexec sleep 600\n")  # and its children with it
    hung.chmod(0o755)
    config = Path(sandbox.env["HEARTBEAT_CONFIG"])
    config.write_text(config.read_text() + "check_timeout_seconds = 8\n")
    launched = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert launched.returncode == 0
    sandbox.server.cmd("kill-session", "-t", "=api")

    began = time.monotonic()
    result = sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOW="2026-11-24T10:30:00"))

    assert time.monotonic() - began < 8 + 3
    # git's wait did not take the time the restart needed.
    assert "api: running -> dead (restarted)" in result.stdout


def test_a_fifo_where_a_note_or_the_config_should_be_never_hangs(sandbox: Sandbox) -> None:
    os.mkfifo(sandbox.note())

    result = sandbox.run("check", timeout=20)

    assert result.returncode == 1
    assert "memory/2026-11-24.md" in result.stderr and "Traceback" not in result.stderr

    sandbox.note().unlink()
    config = Path(sandbox.env["HEARTBEAT_CONFIG"])
    config.unlink()
    os.mkfifo(config)
    result = sandbox.run("check", timeout=20)
    assert (result.returncode, result.stderr) == (1, f"heartbeat: {config}: not a regular file\n")


def test_a_finished_run_stays_finished_when_the_state_file_is_rebuilt(sandbox: Sandbox) -> None:
    launched = sandbox.run(
        "launch", "done", "--dir", str(sandbox.root), "--", "codex", "exec", "exit:0"
    )
    assert launched.returncode == 0, launched.stderr
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("done"))
    sandbox.server.cmd("kill-session", "-t", "=done")  # killed by hand after it finished
    (sandbox.state / "state.json").write_text('{"version": 1, "records": [')  # and damaged

    result = sandbox.check()

    assert "state file unreadable" in result.stderr
    assert result.stdout == "done: new -> finished (closed)\n"
    assert len(sandbox.calls()) == 1  # it did not run again


def test_a_state_folder_that_cannot_be_written_restarts_nothing(sandbox: Sandbox) -> None:
    """Its starts could not be counted: a failing agent would be restarted forever."""
    launched = sandbox.run(
        "launch", "crash", "--dir", str(sandbox.root), "--", "codex", "exec", "exit:1"
    )
    assert launched.returncode == 0, launched.stderr
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("crash"))
    state_file = sandbox.state / "state.json"
    state_file.unlink()
    state_file.mkdir()  # as good as a full disk: it cannot be replaced

    results = [
        sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOW=f"2026-11-24T1{h}:00:00"))
        for h in range(5)
    ]

    assert len(sandbox.calls()) == 1  # never started again
    assert all(result.returncode == 1 for result in results)
    assert "cannot be written" in results[0].stderr and "nothing is restarted" in results[0].stderr
    assert all("Traceback" not in result.stderr for result in results)


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
time.sleep(600)
"""


def test_a_hung_check_never_silences_heartbeat(sandbox: Sandbox) -> None:
    """A check stuck past its bound holds the lock: the next check ends it, and works."""
    import subprocess
    import sys
    import time

    config = Path(sandbox.env["HEARTBEAT_CONFIG"])
    config.write_text(config.read_text() + "check_timeout_seconds = 1\n")
    launched = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert launched.returncode == 0, launched.stderr
    sandbox.server.cmd("kill-session", "-t", "=api")
    lock = str(sandbox.state / "lock")
    # Its command line is a check's (`python -c ... heartbeat check`).
    hung = subprocess.Popen([sys.executable, "-c", HOLDER, lock, "heartbeat", "check"])
    try:
        sandbox.wait(lambda: not sandbox.lock_is_free())
        young = sandbox.check()
        assert (young.returncode, young.stdout) == (0, "")  # within its bound: waited for
        began = time.monotonic()
        sandbox.wait(lambda: time.monotonic() - began > 4.5, seconds=15)  # past 1 s + 3 s

        result = sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOW="2026-11-24T10:30:00"))

        assert result.stdout == "api: running -> dead (restarted)\n"
        assert hung.wait(timeout=5) != 0
        assert (
            f"ended a hung check (process {hung.pid})"
            in (sandbox.state / "heartbeat.log").read_text()
        )
    finally:
        hung.kill()
        hung.wait()


def test_a_lock_holder_that_is_not_heartbeat_is_never_ended(sandbox: Sandbox) -> None:
    import subprocess
    import sys
    import time

    config = Path(sandbox.env["HEARTBEAT_CONFIG"])
    config.write_text(config.read_text() + "check_timeout_seconds = 1\n")
    sandbox.state.mkdir(mode=0o700)
    other = subprocess.Popen([sys.executable, "-c", HOLDER, str(sandbox.state / "lock"), "backup"])
    try:
        sandbox.wait(lambda: (sandbox.state / "lock").exists() and not sandbox.lock_is_free())
        began = time.monotonic()
        sandbox.wait(lambda: time.monotonic() - began > 4.5, seconds=15)

        result = sandbox.check()

        assert (result.returncode, result.stdout) == (0, "")
        assert other.poll() is None  # still running
    finally:
        other.kill()
        other.wait()


def test_ten_thousand_entries_make_a_screenful_within_the_bound(sandbox: Sandbox) -> None:
    import time

    rows = [f"- job{i}: `codex exec work{i}`\n  - dir: {sandbox.root}" for i in range(10_000)]
    sandbox.write_note(note_with(*rows))
    config = Path(sandbox.env["HEARTBEAT_CONFIG"])
    config.write_text(config.read_text() + "check_timeout_seconds = 10\n")

    began = time.monotonic()
    result = sandbox.run("check", timeout=120)
    took = time.monotonic() - began

    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 50, lines[-3:]
    assert lines[-1].startswith("... and ") and lines[-1].endswith(
        " more problems (all are in heartbeat.log)"
    )
    assert took < 10 + 10, took  # its bound, and reading 10,000 entries


def test_a_notes_folder_whose_parent_others_can_write_is_refused(sandbox: Sandbox) -> None:
    shared = sandbox.root / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    notes = shared / "memory"
    notes.mkdir(mode=0o700)
    (notes / "2026-11-24.md").write_text(
        note_with("- job: `codex exec work`", f"  - dir: {sandbox.root}")
    )

    result = sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOTES=str(notes)))

    assert result.returncode == 1
    assert f"others can write its parent {shared}: chmod go-w {shared}" in result.stderr
    assert "(no note in it is read)" in result.stderr and "heartbeat allow" not in result.stderr


def test_a_notes_folder_swapped_for_a_link_after_its_check_is_never_read(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename race: the folder passes its check, then another user (who could
    write its parent) puts a link to their own notes in its place."""
    from datetime import date

    from heartbeat import config as config_module
    from heartbeat import trust
    from heartbeat.notes.notebook import Notebook

    theirs = sandbox.root / "theirs"
    theirs.mkdir()
    (theirs / "2026-11-24.md").write_text(note_with("- evil: `codex exec evil`", "  - dir: /"))
    sandbox.write_note(note_with("- job: `codex exec work`", f"  - dir: {sandbox.root}"))
    checked = trust.unsafe

    def check_then_swap(path: Path, label: str) -> str | None:
        verdict = checked(path, label)
        if path == sandbox.notes:
            os.rename(sandbox.notes, sandbox.root / "mine")
            os.symlink(theirs, sandbox.notes)
        return verdict

    monkeypatch.setattr(trust, "unsafe", check_then_swap)
    book = Notebook(config_module.load(sandbox.env), date(2026, 11, 24))
    book.read_all()

    names = [entry.name for loaded in book.loaded for entry in loaded.note.entries]
    assert "evil" not in names
    assert any("cannot be read" in problem for problem in book.problems), book.problems


def test_a_partial_clones_missing_object_fetches_nothing(sandbox: Sandbox) -> None:
    """git would fetch it from the promisor remote by the upload-pack command the
    repository's config names."""
    import subprocess

    repo = sandbox.root / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    git = ["git", "-C", str(repo), "-c", "user.name=A", "-c", "user.email=a@b"]
    (repo / "f").write_text("one\n")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    ran = sandbox.root / "ran"
    launched = sandbox.run("launch", "v", "--dir", str(repo), "--", "sleep", "300")
    assert launched.returncode == 0, launched.stderr
    for key, value in (
        ("core.repositoryformatversion", "1"),
        ("extensions.partialClone", "origin"),
        ("remote.origin.url", str(repo)),
        ("remote.origin.promisor", "true"),
        ("remote.origin.uploadpack", f"sh -c 'touch {ran}; false'"),
    ):
        subprocess.run([*git, "config", key, value], check=True)
    blob = subprocess.run([*git, "rev-parse", "HEAD:f"], capture_output=True, text=True)
    sha = blob.stdout.strip()
    (repo / ".git" / "objects" / sha[:2] / sha[2:]).unlink()
    (repo / "f").write_text("changed\n")
    sandbox.server.cmd("kill-session", "-t", "=v")

    sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOW="2026-11-24T10:30:00"))
    sandbox.run("verify", "v")

    assert not ran.exists()


def test_a_fifo_in_an_agents_folder_never_hangs_a_check(sandbox: Sandbox) -> None:
    import subprocess

    repo = sandbox.root / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    launched = sandbox.run("launch", "r", "--dir", str(repo), "--ralph", "PRD.md")
    assert launched.returncode == 0, launched.stderr
    os.mkfifo(repo / "PRD.md")
    os.mkfifo(repo / "notes.txt")  # untracked: its lines would be counted
    sandbox.server.cmd("kill-session", "-t", "=r")

    result = sandbox.run(
        "check", env=dict(sandbox.env, HEARTBEAT_NOW="2026-11-24T10:30:00"), timeout=40
    )

    assert "r: running -> dead (restarted)" in result.stdout


@AS_ROOT
def test_a_config_file_another_user_could_change_is_refused(sandbox: Sandbox) -> None:
    config = Path(sandbox.env["HEARTBEAT_CONFIG"])
    config.write_text(config.read_text() + "trust_owned_notes = true\n")
    hand_written(sandbox)
    for change in (lambda: os.chmod(config, 0o666), lambda: os.chown(config, OTHER_UID, OTHER_UID)):
        os.chmod(config, 0o644)
        change()
        result = sandbox.check()
        assert result.returncode == 1 and "(it decides what runs)" in result.stderr
        assert not sandbox.alive("job")


def test_a_socket_in_a_folder_others_can_write_is_left_alone(sandbox: Sandbox) -> None:
    shared = sandbox.root / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # sticky, as /tmp: still, another user could plant the socket
    socket = shared / "agents.sock"

    result = sandbox.run(
        "launch", "s", "--dir", str(sandbox.root), "--socket", str(socket), "--", "sleep", "300"
    )

    assert result.returncode == 1
    assert f"its folder {shared} must be yours and writable by you alone" in result.stderr
    assert not socket.exists()


def test_wrong_types_in_the_state_file_rebuild_it(sandbox: Sandbox) -> None:
    launched = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert launched.returncode == 0
    path = sandbox.state / "state.json"
    raw = json.loads(path.read_text())
    record = next(iter(raw["records"].values()))
    record.update(exit_code="x", state="failed")
    raw["pending"] = {str(sandbox.note()): [{"key": ["a", "b"], "stamp": "s", "text": "t"}]}
    path.write_text(json.dumps(raw))

    result = sandbox.check()

    assert "state file unreadable" in result.stderr and "Traceback" not in result.stderr


def test_a_clock_out_of_range_is_a_usage_error(sandbox: Sandbox) -> None:
    result = sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOW="0001-01-01T00:00:00+14:00"))
    assert (result.returncode, result.stderr.count("\n")) == (2, 1)
    assert "HEARTBEAT_NOW is out of range" in result.stderr
