"""Run logs: each run heartbeat starts keeps its output in the state folder, so that what a
run said before it died is still there after the restart (`heartbeat logs`), and a
check whose pane is gone reads its stop reason from there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import NOW, SETTINGS, Sandbox
from test_hand_written import note_with, skill_line
from test_launch_and_check import launch
from test_reasons import CAPTURES
from test_restart_policy import at

from heartbeat import config, logs, runlog, state
from heartbeat.verbs import logs as run_logs

RED, RESET = "\x1b[31m", "\x1b[0m"


def with_settings(box: Sandbox, extra: str) -> None:
    Path(box.env["HEARTBEAT_CONFIG"]).write_text(SETTINGS + extra)


def odd_state_folder(box: Sandbox) -> None:
    """A state folder whose path holds a space, a `$`, a quote and a tmux format, which tmux hands to
    /bin/sh in the pipe-pane command."""
    odd = box.root / "my state $HOME 'x' #{pane_id}"
    box.state = odd
    box.env["HEARTBEAT_STATE_DIR"] = str(odd)


def agent_output(box: Sandbox, text: str, name: str = "said.txt") -> Path:
    """What the stand-in agent prints (`say:FILE:N`), colour codes and all."""
    path = box.root / name
    path.write_text(text)
    return path


def record_of(box: Sandbox, name: str) -> dict[str, object]:
    raw = json.loads((box.state / "state.json").read_text())
    record: dict[str, object] = raw["records"][state.StateFile.key(box.socket, name)]
    return record


def logs_of(box: Sandbox, name: str) -> list[Path]:
    return logs.runs(box.state, box.socket, name)


def test_a_dead_runs_last_words_are_there_after_its_restart(sandbox: Sandbox) -> None:
    odd_state_folder(sandbox)
    said = agent_output(
        sandbox, f"working on it\n{RED}Error:{RESET} the build broke\nlast words of run one\n"
    )
    launch(sandbox, "api", "codex", "exec", f"say:{said}:3")
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))
    said.write_text("run two is working\n")

    restarted = sandbox.check(env=at(sandbox, 1))
    assert restarted.stdout == "api: running -> failed (restarted)\n", restarted.stderr
    sandbox.wait(lambda: "run two is working" in sandbox.pane_text("api"))

    previous = sandbox.run("logs", "api", "--previous")
    assert previous.returncode == 0, previous.stderr
    # The dead run's words, colour codes stripped (the default), and its exit.
    assert previous.stdout.splitlines()[-4:] == [
        "working on it",
        "Error: the build broke",
        "last words of run one",
        "EXITED: 3",
    ]
    newest = sandbox.run("logs", "api", "-n", "2")
    assert newest.stdout.splitlines()[0] == "run two is working"
    assert sandbox.run("logs", "api", "--run", "2").stdout == previous.stdout
    kept = logs_of(sandbox, "api")
    assert len(kept) == 2 and record_of(sandbox, "api")["log"] == str(kept[-1])
    assert {oct(path.stat().st_mode & 0o777) for path in kept} == {"0o600"}
    listing = sandbox.run("logs", "api", "--list").stdout.splitlines()
    assert [line.split()[0] for line in listing] == ["1", "2"]
    assert sandbox.run("logs", "api", "--run", "3").returncode == 1


def test_colour_codes_are_kept_when_the_config_says_so(sandbox: Sandbox) -> None:
    with_settings(sandbox, "log_keep_ansi = true\n")
    said = agent_output(sandbox, f"{RED}Error:{RESET} red\n")
    launch(sandbox, "api", "codex", "exec", f"say:{said}:1")
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    (log,) = logs_of(sandbox, "api")
    sandbox.wait(lambda: b"EXITED" in log.read_bytes())
    assert f"{RED}Error:{RESET} red".encode() in log.read_bytes()


def test_a_link_planted_where_the_log_goes_is_not_followed(sandbox: Sandbox) -> None:
    target = sandbox.root / "precious.txt"
    target.write_text("mine\n")
    folder = logs.folder(sandbox.state)
    folder.mkdir(parents=True, mode=0o700)
    moment = datetime.fromisoformat(NOW)
    mark = state.entry_mark(sandbox.socket, "api")
    planted = folder / f"api-{mark}-{moment:%Y%m%dT%H%M%S}.log"
    planted.symlink_to(target)

    said = agent_output(sandbox, "hello from the agent\n")
    launch(sandbox, "api", "codex", "exec", f"say:{said}:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))

    assert target.read_text() == "mine\n"
    assert planted.is_symlink()
    log = Path(str(record_of(sandbox, "api")["log"]))
    assert log.name.endswith("-2.log") and not log.is_symlink()
    sandbox.wait(lambda: "hello from the agent" in log.read_text())


def test_the_writer_never_follows_a_link_nor_dies_on_odd_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o700)
    target = tmp_path / "target"
    target.write_bytes(b"")
    (folder / "link.log").symlink_to(target)
    writer = [sys.executable, "-I", "-m", "heartbeat.runlog"]
    odd = b"\xff\xfe\x00bin\x1b[3" + b"1mary\x1b]0;title\x07\r\nnext\r"
    linked = subprocess.run([*writer, str(folder / "link.log")], input=odd, timeout=30)
    assert linked.returncode == 0 and target.read_bytes() == b""
    plain = subprocess.run([*writer, str(folder / "run.log")], input=odd * 3, timeout=30)
    assert plain.returncode == 0
    assert (folder / "run.log").read_bytes() == (b"\xff\xfe\x00binary\nnext\r") * 3
    assert runlog.strip(odd) == b"\xff\xfe\x00binary\nnext\r"


def test_a_log_past_its_cap_moves_to_dot_one(sandbox: Sandbox) -> None:
    with_settings(sandbox, "log_max_bytes = 2048\n")
    lines = [f"line {number:04d} of the agent's long output" for number in range(400)]
    said = agent_output(sandbox, "\n".join(lines) + "\n")
    launch(sandbox, "api", "codex", "exec", f"say:{said}:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))
    (log,) = logs_of(sandbox, "api")
    sandbox.wait(lambda: b"EXITED: 0" in log.read_bytes())

    older = logs.rotated(log)
    # Past the cap only by the end of the line under way, so that each file starts
    # with a whole line.
    most = 2048 + len(lines[0]) + 1
    assert log.stat().st_size <= most and older.stat().st_size <= most
    shown = sandbox.run("logs", "api", "-n", "1000").stdout.splitlines()
    # The end of the run, in order, from the rotated half into the log.
    assert shown[-1] == "EXITED: 0" and shown[-2] == lines[-1]
    body = shown[:-1]
    assert body == lines[-len(body) :] and len(body) > 2048 // len(lines[0]) + 2


def test_old_runs_logs_go_at_a_runs_start_never_in_a_quiet_check(sandbox: Sandbox) -> None:
    folder = logs.folder(sandbox.state)
    folder.mkdir(parents=True, mode=0o700)
    moment = datetime.fromisoformat(NOW)
    mark = state.entry_mark(sandbox.socket, "old")
    old = folder / f"old-{mark}-20261101T090000.log"
    recent = folder / f"old-{mark}-20261120T090000.log"
    for path, age in ((old, timedelta(days=8)), (recent, timedelta(days=4))):
        path.write_text("said long ago\n")
        os.chmod(path, 0o600)
        stamp = (moment - age).timestamp()
        os.utime(path, (stamp, stamp))
    mine = folder / "notes-of-mine.txt"  # not a run log: never heartbeat's to remove
    mine.write_text("")
    os.utime(mine, (0, 0))

    quiet = sandbox.check("--quiet")
    assert quiet.returncode == 0 and old.exists()

    launch(sandbox, "api", "codex", "exec", "run quietly")
    assert not old.exists()
    assert recent.exists() and mine.exists()


def test_a_stop_reason_is_read_from_the_log_when_the_pane_is_gone(sandbox: Sandbox) -> None:
    # Claude Code at an expired login, interactive: it prints the API's 401 and waits at
    # its prompt (tests/captures/claude-oauth-expired.txt); then its session is killed.
    capture = CAPTURES / "claude-oauth-expired.txt"
    launch(sandbox, "web", "claude", f"show:{capture}")
    sandbox.wait(lambda: "Please run /login" in sandbox.pane_text("web"))
    log = Path(str(record_of(sandbox, "web")["log"]))
    sandbox.wait(lambda: "Please run /login" in log.read_text())
    sandbox.server.kill_session("web")

    held = sandbox.check(env=at(sandbox, 1))
    assert held.stdout == "web: running -> auth-expired (needs a login)\n", held.stderr
    assert not sandbox.alive("web")
    assert "auth-expired" in sandbox.note().read_text()


def test_verify_shows_the_log_when_the_pane_is_gone(sandbox: Sandbox) -> None:
    said = agent_output(sandbox, "I changed nothing at all\n")
    launch(sandbox, "api", "codex", "exec", f"show:{said}")
    sandbox.wait(lambda: "I changed nothing" in sandbox.pane_text("api"))
    log = Path(str(record_of(sandbox, "api")["log"]))
    sandbox.wait(lambda: "I changed nothing" in log.read_text())
    sandbox.server.kill_session("api")

    shown = sandbox.run("verify", "api").stdout
    assert f"run log {log.name} (last 20 lines):\nI changed nothing at all" in shown


def test_follow_prints_new_lines_into_the_next_run_and_ends_on_ctrl_c(
    sandbox: Sandbox,
) -> None:
    said = agent_output(sandbox, "first line\n")
    command = ["tail", "-n", "+1", "-f", str(said)]  # prints what is added to `said`
    started = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", *command)
    assert started.returncode == 0, started.stderr
    sandbox.wait(lambda: "first line" in sandbox.pane_text("api"))
    log = Path(str(record_of(sandbox, "api")["log"]))
    sandbox.wait(lambda: "first line" in log.read_text())
    out = sandbox.root / "follow.out"
    with open(out, "w") as sink:
        follower = subprocess.Popen(
            [sys.executable, "-m", "heartbeat", "logs", "api", "-f"],
            env=sandbox.env,
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        sandbox.wait(lambda: "first line" in out.read_text())
        with open(said, "a") as more:
            more.write("second line\n")
        sandbox.wait(lambda: "second line" in out.read_text())

        sandbox.server.kill_session("api")  # it died: the check restarts it
        assert "restarted" in sandbox.check(env=at(sandbox, 1)).stdout
        sandbox.wait(lambda: out.read_text().count("first line") == 2)
        followed = out.read_text().splitlines()
        assert followed[:2] == ["first line", "second line"]
        assert followed[2].startswith("--- api: a new run, api-")
        assert followed[3:5] == ["first line", "second line"]
    finally:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0 and "Traceback" not in err


def test_every_entry_form_heartbeat_starts_keeps_a_log(sandbox: Sandbox) -> None:
    said = agent_output(sandbox, "said by a hand-written entry\n")
    sandbox.write_note(
        note_with(
            "- docs:",
            "  ```sh",
            *("  " + line for line in skill_line(sandbox, "docs", "exit:4").splitlines()),
            "  ```",
            f"- web: `codex exec 'show:{said}'`",
            f"  - dir: {sandbox.root}",
        )
    )
    sandbox.allow("docs", "web")
    started = sandbox.check()
    assert sorted(started.stdout.splitlines()) == [
        "docs: new -> dead (restarted)",
        "web: new -> dead (restarted)",
    ], started.stderr
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    for name in ("docs", "web"):
        (log,) = logs_of(sandbox, name)
        assert record_of(sandbox, name)["log"] == str(log)
    # The skill's own line prints its `EXITED: N`; the hand-written entry what it said.
    sandbox.wait(lambda: "EXITED: 4" in sandbox.run("logs", "docs").stdout)
    sandbox.wait(lambda: "said by a hand-written entry" in sandbox.run("logs", "web").stdout)


def test_follow_goes_on_into_the_file_a_rotation_starts(sandbox: Sandbox) -> None:
    moment = datetime.fromisoformat(NOW)
    sandbox.state.mkdir(mode=0o700)
    log = logs.new_log(sandbox.state, sandbox.socket, "api", moment)
    log.write_bytes(b"one\n")

    def rotate() -> None:  # as the writer does at its cap
        with open(log, "ab") as old:
            old.write(b"one-b\n")
        log.rename(logs.rotated(log))
        log.write_bytes(b"two\n")

    def append() -> None:
        with open(log, "ab") as new:
            new.write(b"three\n")

    def interrupt() -> None:
        raise KeyboardInterrupt

    steps = iter([rotate, append, interrupt])
    followed = []
    with pytest.raises(KeyboardInterrupt):
        found = config.load(sandbox.env)
        for line in run_logs.follow(found, moment, "api", 10, sleep=lambda _: next(steps)()):
            followed.append(line)
    assert followed == ["one", "one-b", "two", "three"]


def test_a_follow_started_with_ctrl_c_ignored_still_ends_on_it(sandbox: Sandbox) -> None:
    """SIGINT ignored (or blocked) is inherited: a follow started so, as `cmd &` in a script
    starts it, takes Ctrl-C back."""
    said = agent_output(sandbox, "first line\n")
    command = ["tail", "-n", "+1", "-f", str(said)]
    started = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", *command)
    assert started.returncode == 0, started.stderr
    log = Path(str(record_of(sandbox, "api")["log"]))
    sandbox.wait(lambda: "first line" in log.read_text())
    out = sandbox.root / "follow.out"

    def deaf() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    with open(out, "w") as sink:
        follower = subprocess.Popen(
            [sys.executable, "-m", "heartbeat", "logs", "api", "-f"],
            env=sandbox.env,
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=deaf,
        )
    try:
        sandbox.wait(lambda: "first line" in out.read_text())
    finally:
        follower.send_signal(signal.SIGINT)
        try:
            _, err = follower.communicate(timeout=15)
        finally:
            follower.kill()
    assert follower.returncode == 0 and "Traceback" not in err


def test_a_log_full_within_a_line_ends_that_line_before_it_moves(tmp_path: Path) -> None:
    """Output arrives in chunks that may end within a line: the file that fills up at
    such a chunk's end takes the rest of that line, and `.1` and the new file each hold
    whole lines."""
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o700)
    log = runlog.Log(str(folder / "api.log"), 10)
    log.write(b"aaaaa\nbbbb")  # exactly full, within the line `bbbbcc`
    log.write(b"cc\ndd\n")
    assert (folder / "api.log.1").read_bytes() == b"aaaaa\nbbbbcc\n"
    assert (folder / "api.log").read_bytes() == b"dd\n"
