"""A restart continues the agent's own conversation: Claude Code pinned to a session id
at launch and resumed with `claude -p --resume ID PROMPT`; Codex's id found in the rollout
file its run created and resumed with `codex exec resume ID PROMPT`. A resume that does
not take is followed by the original command; a finished run is never resumed.

The stand-ins (tests/bin/claude, tests/bin/codex) keep transcripts and rollout files
where and as the real agents do; their docstrings cite the sources.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import datetime
from pathlib import Path

from conftest import NOW, Sandbox
from test_restart_policy import at

from heartbeat.config import CONTINUE_PROMPT

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def start(box: Sandbox, name: str, *args: str) -> None:
    before = len(box.calls())
    result = box.run("launch", name, "--dir", str(box.root), *args)
    assert result.returncode == 0, result.stderr
    box.wait(lambda: len(box.calls()) > before)


def session_line(box: Sandbox) -> str:
    found = re.findall(rf"- session: ({UUID})", box.note().read_text())
    assert found, box.note().read_text()
    return found[-1]


def transcript(box: Sandbox, session: str) -> Path:
    project = re.sub(r"[^a-zA-Z0-9]", "-", str(box.root))
    return box.home / ".claude" / "projects" / project / f"{session}.jsonl"


def test_claude_is_pinned_at_launch_and_resumed_after_a_crash(sandbox: Sandbox) -> None:
    start(sandbox, "api", "--claude", "crash-once", "--", "--model", "opus")
    session = session_line(sandbox)
    first = sandbox.calls()[0].split("|", 1)[1]
    assert (
        first == f"-p crash-once --session-id {session} --permission-mode acceptEdits --model opus"
    )
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))

    result = sandbox.check()

    assert result.stdout == "api: running -> failed (restarted)\n"
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    resumed = sandbox.calls()[1].split("|", 1)[1]  # the argv, as the agent got it, joined
    assert resumed == " ".join(
        [
            "-p",
            CONTINUE_PROMPT,
            "--resume",
            session,
            "--permission-mode",
            "acceptEdits",
            "--model",
            "opus",
        ]
    )
    assert (
        f"failed (exit 3) · not a git repo, resumed session {session[:8]}…"
        in sandbox.note().read_text()
    )
    sandbox.wait(lambda: len(transcript(sandbox, session).read_text().splitlines()) == 2)
    lines = transcript(sandbox, session).read_text().splitlines()
    assert [json.loads(line)["message"]["content"] for line in lines] == [
        "crash-once",
        CONTINUE_PROMPT,
    ]
    assert "EXITED" not in sandbox.pane_text("api")  # the resumed run goes on working


def test_codex_finds_its_session_in_the_rollout_and_resumes_it(sandbox: Sandbox) -> None:
    codex_home = sandbox.root / "codex-home"
    codex_home.mkdir()
    env = dict(sandbox.env, CODEX_HOME=str(codex_home))
    before = len(sandbox.calls())
    assert (
        sandbox.run(
            "launch", "api", "--dir", str(sandbox.root), "--codex", "crash-once", env=env
        ).returncode
        == 0
    )
    sandbox.wait(lambda: len(sandbox.calls()) > before)
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))
    rollouts = list(codex_home.glob("sessions/*/*/*/rollout-*.jsonl"))
    assert len(rollouts) == 1
    session = json.loads(rollouts[0].read_text().splitlines()[0])["payload"]["id"]

    # cron's environment has no CODEX_HOME: the launch recorded it.
    result = sandbox.check(env=sandbox.cron_env())

    assert result.stdout == "api: running -> failed (restarted)\n", result.stderr
    assert session_line(sandbox) == session
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    resumed = sandbox.calls()[-1].split("|", 1)[1]
    assert resumed == " ".join(["exec", "--full-auto", "resume", session, CONTINUE_PROMPT])
    assert "resumed session" in sandbox.note().read_text()


def test_a_rollout_written_long_before_tmux_returns_is_still_found(sandbox: Sandbox) -> None:
    """A loaded machine's tmux client may return a second after the agent it started
    has named its rollout file (whole seconds): the run's start is taken before."""
    codex_home = sandbox.root / "codex-home"
    slow = sandbox.bin / "slow-tmux"
    # Returns from a new-session only once a rollout exists, and a second after that.
    slow.write_text(
        "#!/bin/sh\n"
        f'{shutil.which("tmux")} "$@"; code=$?\n'
        'case " $* " in *" new-session "*)\n'
        f"  for _ in $(seq 200); do ls {codex_home}/sessions/*/*/*/rollout-* >/dev/null"
        " 2>&1 && break; sleep 0.05; done\n"
        "  sleep 1.1 ;;\n"
        "esac\n"
        'exit "$code"\n'
    )
    slow.chmod(0o755)
    env = dict(sandbox.env, CODEX_HOME=str(codex_home), HEARTBEAT_TMUX=str(slow))
    result = sandbox.run(
        "launch", "api", "--dir", str(sandbox.root), "--codex", "crash-once", env=env
    )
    assert result.returncode == 0, result.stderr
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))

    sandbox.check(env=env)

    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert " resume " in sandbox.calls()[1]


def test_a_decoy_rollout_of_another_folder_is_not_taken(sandbox: Sandbox) -> None:
    codex_home = sandbox.root / "codex-home"
    env = dict(sandbox.env, CODEX_HOME=str(codex_home))
    elsewhere = sandbox.root / "elsewhere"
    elsewhere.mkdir()
    # Another run, in another folder, started at the same moment: newest, but not ours.
    assert (
        sandbox.run(
            "launch", "api", "--dir", str(sandbox.root), "--codex", "crash-once", env=env
        ).returncode
        == 0
    )
    assert (
        sandbox.run(
            "launch", "other", "--dir", str(elsewhere), "--codex", "work", env=env
        ).returncode
        == 0
    )
    sandbox.wait(lambda: len(list(codex_home.glob("sessions/*/*/*/rollout-*.jsonl"))) == 2)
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))
    ours = [
        json.loads(path.read_text().splitlines()[0])["payload"]
        for path in codex_home.glob("sessions/*/*/*/rollout-*.jsonl")
    ]
    mine = next(meta["id"] for meta in ours if meta["cwd"] == str(sandbox.root))

    sandbox.check(env=env)

    assert session_line(sandbox) == mine


def test_a_resume_that_does_not_take_is_followed_by_the_original_command(sandbox: Sandbox) -> None:
    start(sandbox, "api", "--claude", "crash-once")
    session = session_line(sandbox)
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))
    transcript(sandbox, session).unlink()  # the conversation is gone

    sandbox.check()  # resumes: claude says "No conversation found", exit 1
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 1))  # the resume's end: a failed start, backed off
    result = sandbox.check(env=at(sandbox, 2))

    text = sandbox.note().read_text()
    assert "resume failed: the conversation is missing; started afresh" in text
    assert result.stdout == "api: failed (restarted)\n"
    sandbox.wait(lambda: len(sandbox.calls()) == 3)
    # The logged command, as it was but for a conversation of its own.
    assert re.sub(UUID, "ID", sandbox.calls()[-1]) == re.sub(UUID, "ID", sandbox.calls()[0])
    assert session not in sandbox.calls()[-1] and session_line(sandbox) != session


def test_a_finished_run_is_never_resumed_and_starts_a_conversation_of_its_own(
    sandbox: Sandbox,
) -> None:
    start(sandbox, "api", "--claude", "exit:0", "--restart", "always")
    first = session_line(sandbox)
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))

    assert sandbox.check().stdout == "api: running -> finished (restarted)\n"

    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    again = sandbox.calls()[1].split("|", 1)[1]
    assert "--resume" not in again and first not in again
    # A new id, since Claude Code refuses a --session-id whose conversation exists.
    second = session_line(sandbox)
    assert second != first and f"--session-id {second}" in again
    assert "resumed session" not in sandbox.note().read_text()


def test_resume_never_restarts_afresh_and_says_so(sandbox: Sandbox) -> None:
    start(sandbox, "api", "--claude", "crash-once", "--resume", "never")
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))

    sandbox.check()

    assert "restarted afresh (resume: never)" in sandbox.note().read_text()
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert "--resume" not in sandbox.calls()[-1]


def test_a_command_without_a_session_restarts_afresh_and_says_so(sandbox: Sandbox) -> None:
    sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- api: `claude -p crash-once`\n  - dir: {sandbox.root}\n"
    )
    sandbox.allow("api")

    sandbox.check()

    assert "dead · not a git repo, restarted afresh (no session)" in sandbox.note().read_text()


def test_after_a_restart_afresh_codex_resumes_the_new_runs_session(sandbox: Sandbox) -> None:
    """Not the older conversation a `session:` line still names."""
    codex_home = sandbox.root / "codex-home"
    env = dict(sandbox.env, CODEX_HOME=str(codex_home))
    assert (
        sandbox.run(
            "launch", "api", "--dir", str(sandbox.root), "--codex", "exit:1", env=env
        ).returncode
        == 0
    )
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    sandbox.check(env=env)  # resumes the first session; the resume ends at once
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 1) | {"CODEX_HOME": str(codex_home)})  # its end, backed off
    sandbox.check(env=at(sandbox, 2) | {"CODEX_HOME": str(codex_home)})  # afresh: a new session
    sandbox.wait(lambda: len(list(codex_home.glob("sessions/*/*/*/rollout-*.jsonl"))) == 2)
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    first = session_line(sandbox)
    metas = [
        json.loads(p.read_text().splitlines()[0])["payload"]
        for p in codex_home.glob("sessions/*/*/*/rollout-*.jsonl")
    ]
    newest = next(m["id"] for m in metas if m["id"] != first)

    sandbox.check(env=at(sandbox, 6) | {"CODEX_HOME": str(codex_home)})  # its end: backed off
    sandbox.check(env=at(sandbox, 8) | {"CODEX_HOME": str(codex_home)})

    assert session_line(sandbox) == newest  # the new run's, written when found
    sandbox.wait(lambda: f"resume {newest}" in sandbox.calls()[-1])


def test_a_session_line_naming_another_folders_conversation_is_not_resumed(
    sandbox: Sandbox,
) -> None:
    elsewhere = sandbox.root / "elsewhere"
    elsewhere.mkdir()
    assert (
        sandbox.run("launch", "other", "--dir", str(elsewhere), "--codex", "work").returncode == 0
    )
    sandbox.wait(lambda: len(list(sandbox.home.glob(".codex/sessions/*/*/*/rollout-*.jsonl"))) == 1)
    rollout = next(sandbox.home.glob(".codex/sessions/*/*/*/rollout-*.jsonl"))
    theirs = json.loads(rollout.read_text().splitlines()[0])["payload"]["id"]
    sandbox.write_note(
        sandbox.note().read_text()
        + f"- api: `codex exec crash-once`\n  - dir: {sandbox.root}\n  - session: {theirs}\n"
    )
    sandbox.allow("api")

    sandbox.check()  # api starts (never ran): dead, restarted
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 1))

    assert not [call for call in sandbox.calls() if f"resume {theirs}" in call]


def test_an_option_of_several_words_keeps_them_all_and_never_takes_the_prompt() -> None:
    """Claude Code's `--allowedTools A B` takes every word up to the next option."""
    from heartbeat.agents import claude

    words = ["claude", "-p", "task", "--allowedTools", "Edit", "Bash", "--session-id", "x"]
    resumed = claude.resume_argv(words, "0e72080f-7355-42dc-88c8-486cad502e3c", "go on")

    assert resumed == [
        "claude",
        "-p",
        "go on",
        "--resume",
        "0e72080f-7355-42dc-88c8-486cad502e3c",
        "--allowedTools",
        "Edit",
        "Bash",
    ]


def test_a_headless_claude_writing_its_transcript_is_not_stalled(sandbox: Sandbox) -> None:
    start(sandbox, "busy", "--claude", "work-quietly")
    session = session_line(sandbox)
    written = transcript(sandbox, session)
    sandbox.wait(lambda: written.exists() and written.stat().st_size > 1000)
    assert sandbox.check().stdout == ""  # seen running; its pane prints nothing

    # Half an hour without a byte in its pane, and no commit: but its transcript grew.
    # (Its time set back before the sandbox's clock, then moved on by the agent's writes.)
    before = datetime.fromisoformat(NOW).timestamp() - 60
    os.utime(written, (before, before))
    sandbox.wait(lambda: written.stat().st_mtime > before)
    assert sandbox.check(env=at(sandbox, 31)).stdout == ""
    assert sandbox.check(env=at(sandbox, 62)).stdout == ""
    assert "stalled" not in sandbox.note().read_text()


def test_a_headless_claude_whose_transcript_is_still_is_stalled(sandbox: Sandbox) -> None:
    start(sandbox, "idle", "--claude", "think")  # says nothing, writes nothing more
    assert sandbox.check().stdout == ""
    before = datetime.fromisoformat(NOW).timestamp() - 60  # on the sandbox's clock
    written = transcript(sandbox, session_line(sandbox))
    sandbox.wait(written.exists)
    os.utime(written, (before, before))

    assert sandbox.check(env=at(sandbox, 31)).stdout == "idle: running -> stalled (no action)\n"


def test_a_live_claude_waiting_at_its_limit_is_left_alone_until_the_reset(
    sandbox: Sandbox,
) -> None:
    sandbox.env["TZ"] = "UTC"  # the machine's zone, which the reset is shown in
    start(sandbox, "chat", "--", "claude", "wait-at-limit")  # interactive: no -p
    sandbox.wait(lambda: "Stop and wait for limit to reset" in sandbox.pane_text("chat"))
    assert sandbox.check().stdout == ""

    # Quiet for half an hour: not stalled, but waiting for 4:50 in Rome (03:50 UTC).
    waiting = sandbox.check(env=at(sandbox, 31))
    later = sandbox.check(env=at(sandbox, 90))
    status = json.loads(sandbox.run("status", "--json", env=at(sandbox, 91)).stdout)

    assert waiting.stdout == "chat: running -> waiting (no action)\n"
    assert later.stdout == ""
    text = sandbox.note().read_text()
    assert text.count("— waiting for limit reset (until Wed 03:50)") == 1
    assert "stalled" not in text
    row = status["entries"][0]
    assert (row["state"], row["until"]) == ("waiting", "2026-11-25T03:50:00+00:00")
    assert sandbox.alive("chat") and len(sandbox.calls()) == 1  # nothing done to it

    # Past the reset, still quiet: it did not go on by itself; and a day on, its old
    # words are not read as a new limit.
    past = sandbox.check(env=at(sandbox, 18 * 60))
    assert past.stdout == "chat: waiting -> stalled (no action)\n"
    assert [sandbox.check(env=at(sandbox, hours * 60)).stdout for hours in (21, 42, 46)] == [
        "",
        "",
        "",
    ]


def test_a_wait_that_ends_with_the_agent_going_on_holds_no_restart(sandbox: Sandbox) -> None:
    sandbox.env["TZ"] = "UTC"
    start(sandbox, "chat", "--", "claude", "wait-at-limit")
    sandbox.wait(lambda: "Stop and wait for limit to reset" in sandbox.pane_text("chat"))
    sandbox.check()
    assert "waiting" in sandbox.check(env=at(sandbox, 31)).stdout
    # tmux counts activity in whole seconds: the new output comes in a later one.
    quiet = json.loads((sandbox.state / "state.json").read_text())["records"]
    seen = next(iter(quiet.values()))["seen_activity"]
    sandbox.wait(lambda: time.time() >= seen + 1.05)
    for line in range(15):  # it prints again: its words push the limit's up
        sandbox.server.cmd("send-keys", "-t", "=chat:", f"going on {line}", "Enter")
    sandbox.wait(lambda: "going on 14" in sandbox.pane_text("chat"))

    assert sandbox.check(env=at(sandbox, 32)).stdout == "chat: waiting -> running (no action)\n"
    sandbox.server.cmd("kill-session", "-t", "=chat")
    assert sandbox.check(env=at(sandbox, 33)).stdout == "chat: running -> dead (restarted)\n"
