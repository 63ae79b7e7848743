"""Verifying finished work against real git repositories, and stalls."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from conftest import Sandbox
from test_restart_policy import at

PRD = "# PRD\n\n## Tasks\n\n- [ ] Add the endpoint\n- [ ] Validate input\n- [x] Set up\n"


@pytest.fixture
def repo(sandbox: Sandbox) -> Path:
    """A real git repository with one commit and a PRD, as an agent would find it."""
    folder = sandbox.root / "repo"
    folder.mkdir()
    (folder / "PRD.md").write_text(PRD)
    git = ["git", "-C", str(folder), "-c", "user.name=Ada", "-c", "user.email=ada@example.org"]
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    # Committed before the sandbox's clock starts (10:00), as a repository would be.
    dated = dict(
        os.environ, GIT_COMMITTER_DATE="2026-11-24T09:00:00", GIT_AUTHOR_DATE="2026-11-24T09:00:00"
    )
    subprocess.run([*git, "commit", "-qm", "start"], check=True, env=dated)
    sandbox.env |= {
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.org",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.org",
    }
    return folder


def launch_in(box: Sandbox, folder: Path, name: str, *command: str) -> None:
    result = box.run("launch", name, "--dir", str(folder), "--", *command)
    assert result.returncode == 0, result.stderr


def finish(box: Sandbox, name: str, code: int = 0) -> str:
    box.wait(lambda: f"EXITED: {code}" in box.pane_text(name))
    result = box.check(env=at(box, 30))  # half an hour later: not a quick exit
    return result.stdout


def test_a_commit_is_verified(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "api", "ralphy", "--codex", "--prd", "PRD.md", "commit:add endpoint")
    assert finish(sandbox, "api") == "api: running -> finished (closed)\n"
    assert "— finished (exit 0) · 1 commit · 1 file +1 -0 · PRD 1/3 · verified" not in (
        sandbox.note().read_text()
    )  # the commit is committed: no uncommitted file
    assert "— finished (exit 0) · 1 commit · PRD 1/3 · verified" in sandbox.note().read_text()


def test_ticked_boxes_without_work_are_claimed_not_done(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "api", "ralphy", "--codex", "--prd", "PRD.md", "tick")
    finish(sandbox, "api")
    assert (
        "— finished (exit 0) · no changes · PRD 3/3 · claimed, not done · "
        "PRD boxes ticked without a commit or a diff" in sandbox.note().read_text()
    )


def test_an_agent_that_reads_and_leaves_is_a_no_op_exit(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "api", "codex", "exec", "exit:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 1))  # a minute after it started
    assert (
        "· no changes · PRD 1/3 · no-op exit · the agent read and left: run it as a Ralph loop"
        in (sandbox.note().read_text())
    )


def test_uncommitted_work_is_verified_too(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "api", "sh", "-c", "printf 'a\\nb\\n' > new.py; exit 3")
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 30))
    assert (
        "failed (exit 3) · 1 file +2 -0 · PRD 1/3 · verified, restarted"
        in sandbox.note().read_text()
    )


def test_verify_reports_on_a_closed_entry(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "api", "codex", "exec", "commit:add endpoint")
    finish(sandbox, "api")

    result = sandbox.run("verify", "api")

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"api (closed) in {repo}\n")
    assert "$ git log --oneline -3\n" in out and " add endpoint\n" in out and " start\n" in out
    assert "$ git diff --stat\n(nothing)" in out
    assert "EXITED: 0" in out  # the pane's end
    assert "PRD 1/3 tasks ticked" in out
    assert "since start: 1 commit" in out
    # Closed: the verdict is the one written when it stopped.
    assert out.endswith("verdict: finished (exit 0) · 1 commit · PRD 1/3 · verified\n")


def test_verify_exits_1_unless_the_work_is_there(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "api", "codex", "exec", "tick")  # boxes ticked, nothing done
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))

    result = sandbox.run("verify", "api")

    assert "verdict: claimed, not done" in result.stdout
    assert result.returncode == 1


def test_git_is_asked_without_taking_the_index_lock(sandbox: Sandbox, repo: Path) -> None:
    log = sandbox.root / "git-calls"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout
    wrapper = sandbox.bin / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> {log}\nexec {real.strip()} "$@"\n')
    wrapper.chmod(0o755)
    launch_in(sandbox, repo, "api", "codex", "exec", "exit:0")
    finish(sandbox, "api")
    sandbox.run("verify", "api")

    calls = log.read_text().splitlines()
    assert len(calls) > 5
    assert set(calls) == {"--no-optional-locks"}


def test_a_quiet_agent_is_stalled_once_and_told(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "quiet", "codex", "exec", "think")
    assert sandbox.check().stdout == ""  # seen running, quiet from now on
    assert sandbox.check(env=at(sandbox, 29)).stdout == ""

    stalled = sandbox.check(env=at(sandbox, 31))
    later = sandbox.check(env=at(sandbox, 45))

    assert stalled.stdout == "quiet: running -> stalled (no action)\n"
    assert later.stdout == ""
    assert "— stalled: no output and no new commit for 30 min" in sandbox.note().read_text()
    assert sum("stalled" in n[3] for n in sandbox.notifications()) == 1
    assert len(sandbox.calls()) == 1  # notify only, by default


def test_git_is_asked_about_a_stalled_agent_once_every_few_minutes(
    sandbox: Sandbox, repo: Path
) -> None:
    log = sandbox.root / "git-calls"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout
    wrapper = sandbox.bin / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real.strip()} "$@"\n')
    wrapper.chmod(0o755)
    launch_in(sandbox, repo, "quiet", "codex", "exec", "think")
    sandbox.check()

    def asked(minutes: float) -> int:
        log.write_text("")
        sandbox.check(env=at(sandbox, minutes))
        return sum("-1 --format=%ct" in line for line in log.read_text().splitlines())

    # Stalled at 31 minutes; asked again 5 minutes on, not on every check between.
    assert [asked(m) for m in (31, 32, 33, 35, 36, 37)] == [1, 0, 0, 0, 1, 0]
    assert sandbox.note().read_text().count("— stalled:") == 1


def test_on_stall_restart_restarts_it(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "quiet", "codex", "exec", "think")
    note = sandbox.note()
    note.write_text(note.read_text().replace("  - started:", "  - on-stall: restart\n  - started:"))
    sandbox.allow("quiet")  # the entry was edited by hand
    sandbox.check()

    result = sandbox.check(env=at(sandbox, 31))

    assert result.stdout == "quiet: running -> stalled (restarted)\n"
    sandbox.wait(lambda: len(sandbox.calls()) == 2)


def test_prd_new_writes_a_skeleton_and_never_over_a_file(sandbox: Sandbox) -> None:
    first = sandbox.run("prd", "new", str(sandbox.root))
    again = sandbox.run("prd", "new", str(sandbox.root / "PRD.md"))

    assert first.returncode == 0, first.stderr
    text = (sandbox.root / "PRD.md").read_text()
    assert "## Tasks\n\n- [ ] " in text
    assert (again.returncode, "exists already" in again.stderr) == (1, True)


def test_prd_new_never_writes_a_file_named_after_a_missing_folder(sandbox: Sandbox) -> None:
    for missing in ("newdir", "nope/"):
        result = sandbox.run("prd", "new", str(sandbox.root / missing))
        assert result.returncode == 1 and "does not exist" in result.stderr, result
    assert not (sandbox.root / "newdir").exists() and not (sandbox.root / "nope").exists()


def test_status_shows_prd_progress_and_the_verdict(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "api", "ralphy", "--codex", "--prd", "PRD.md", "tick")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))
    sandbox.run("launch", "web", "--dir", str(repo), "--", "ralphy", "--codex", "--prd", "PRD.md")
    sandbox.check(env=at(sandbox, 30))

    rows = {
        row["name"]: row for row in json.loads(sandbox.run("status", "--json").stdout)["entries"]
    }

    assert rows["web"]["prd"] == "3/3"  # the other loop ticked them all
    assert rows["web"]["verdict"] is None  # still running
    # Finished, box ticked: no longer watched, its session in its tail until `clean`.
    assert rows["api"]["state"] == "tail"
    assert "claimed, not done" in sandbox.note().read_text()


def test_every_action_is_in_the_log_file(sandbox: Sandbox, repo: Path) -> None:
    launch_in(sandbox, repo, "api", "codex", "exec", "exit:0")
    finish(sandbox, "api")
    log = (sandbox.state / "heartbeat.log").read_text()
    assert f"api: launched in {repo}: codex exec exit:0" in log
    assert "api: running -> finished (closed)" in log


def test_a_commit_that_only_ticks_the_prd_is_not_the_work(sandbox: Sandbox, repo: Path) -> None:
    script = "sed -i 's/- \\[ \\]/- [x]/' PRD.md && git commit -qam tick && exit 0"
    launch_in(sandbox, repo, "api", "sh", "-c", script, "--prd=PRD.md")
    sandbox.wait(lambda: "EXITED" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 30))
    assert "· no changes · PRD 3/3 · claimed, not done" in sandbox.note().read_text()


def test_each_run_is_judged_on_its_own_work(sandbox: Sandbox, repo: Path) -> None:
    # Commits on its first run only, then fails without doing anything.
    script = "if [ ! -e done ]; then touch done; git add done; git commit -qm once; fi; exit 1"
    launch_in(sandbox, repo, "api", "sh", "-c", script)
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 30))
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 60))
    lines = [line for line in sandbox.note().read_text().splitlines() if "failed (exit 1)" in line]
    assert "· 1 commit · PRD 1/3 · verified" in lines[0]
    assert "· no changes · PRD 1/3" in lines[1]


def test_the_completion_hook_restarts_a_failed_agent_itself(sandbox: Sandbox) -> None:
    Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text("completion_check = true\n")
    result = sandbox.run(
        "launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "exit:1"
    )
    assert result.returncode == 0, result.stderr

    # No check is run here: the hook resumes its session once, and the second failure
    # (a resume that ended at once, so it did not take) waits.
    sandbox.wait(lambda: "restart after" in sandbox.note().read_text(), seconds=20)
    text = sandbox.note().read_text()
    assert "— failed (exit 1) · not a git repo, resumed session" in text
    assert len(sandbox.calls()) == 2
    assert "exec resume " in sandbox.calls()[1]


def test_an_entry_on_another_socket_is_seen_finishing(sandbox: Sandbox) -> None:
    other = f"{sandbox.socket}2"
    result = sandbox.run(
        "launch",
        "api",
        "--dir",
        str(sandbox.root),
        "--socket",
        other,
        "--",
        "codex",
        "exec",
        "exit:0",
    )
    assert result.returncode == 0, result.stderr
    try:
        pane = ["tmux", "-S", other, "capture-pane", "-p", "-t", "=api:"]
        sandbox.wait(
            lambda: "EXITED: 0" in subprocess.run(pane, capture_output=True, text=True).stdout
        )
        # The wrapper marked its exit on its own server, where the check looks.
        assert sandbox.check().stdout == "api: running -> finished (closed)\n"
    finally:
        subprocess.run(["tmux", "-S", other, "kill-server"], capture_output=True)


def _dirty(repo: Path) -> None:
    """Work a person left in the repository before any agent ran: an edit and a new
    file, last changed an hour before the sandbox's start."""
    with (repo / "PRD.md").open("a") as prd_file:
        prd_file.write("\nNotes: the endpoint takes JSON.\n")
    (repo / "scratch.py").write_text("print('draft')\n")
    (repo / "README").write_text("draft\n")
    subprocess.run(["git", "-C", str(repo), "add", "-N", "README"], check=True)
    for name in ("PRD.md", "scratch.py", "README"):
        os.utime(repo / name, (1_700_000_000, 1_700_000_000))


def test_work_already_in_a_dirty_tree_is_not_the_agents(sandbox: Sandbox, repo: Path) -> None:
    _dirty(repo)
    launch_in(sandbox, repo, "api", "codex", "exec", "exit:0")
    finish(sandbox, "api")

    text = sandbox.note().read_text()
    # Not `verified`: the person's files were there before it, untouched.
    assert "— finished (exit 0) · no changes · PRD 1/3\n" in text
    assert sandbox.run("verify", "api").returncode == 1


def test_an_agent_that_changes_a_dirty_file_further_is_credited(
    sandbox: Sandbox, repo: Path
) -> None:
    _dirty(repo)
    launch_in(sandbox, repo, "api", "sh", "-c", "echo more >> scratch.py; exit 3")
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 30))
    # Only the file it changed is its work (README is untouched).
    assert "failed (exit 3) · 1 file +2 -0 · PRD 1/3 · verified" in sandbox.note().read_text()


def test_verify_gives_the_same_answer_before_and_after_later_checks(
    sandbox: Sandbox, repo: Path
) -> None:
    _dirty(repo)
    launch_in(sandbox, repo, "api", "codex", "exec", "exit:0")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("api"))

    before = sandbox.run("verify", "api", env=at(sandbox, 30))
    sandbox.check(env=at(sandbox, 30))
    sandbox.check(env=at(sandbox, 40))
    after = sandbox.run("verify", "api", env=at(sandbox, 40))

    assert "since start: no changes" in before.stdout
    assert before.stdout.rsplit("verdict: ", 1)[1] == "no changes\n"
    assert after.stdout.rsplit("verdict: ", 1)[1] == "finished (exit 0) · no changes · PRD 1/3\n"
    assert (before.returncode, after.returncode) == (1, 1)


def test_a_run_first_seen_running_takes_its_baseline_from_its_sessions_creation(
    sandbox: Sandbox, repo: Path
) -> None:
    _dirty(repo)  # before the session: not its work
    script = repo / "agent.sh"
    script.write_text("while [ ! -e go ]; do sleep 0.05; done\necho 'new' > endpoint.py\n")
    os.utime(script, (1_700_000_000, 1_700_000_000))
    # The skill's own line, run by a person: heartbeat first sees it running.
    line = (
        f'tmux -S {sandbox.socket} new -d -s adopted "cd {repo} && sh agent.sh; '
        'echo EXITED: \\$?; sleep 999999"'
    )
    subprocess.run(["sh", "-c", line], check=True, env=sandbox.env)
    found = sandbox.server.sessions.get(session_name="adopted")
    created = datetime.fromtimestamp(int(found.session_created or 0) if found else 0)
    # On the real clock: the session's creation time is tmux's.
    real = {key: value for key, value in sandbox.env.items() if key != "HEARTBEAT_NOW"}
    today = f"{datetime.now():%Y-%m-%d}"
    note = f"# Today\n\n## Active Long-Running Processes\n\n- `{line}`\n"
    sandbox.write_note(note, day=today)
    git_log = _logging_git(sandbox)
    sandbox.check(env=real)
    assert not git_log.exists()  # not approved: git runs nowhere near its folder
    assert sandbox.run("allow", "adopted", env=real).returncode == 0
    sandbox.check(env=real)  # approved: the baseline is taken now
    assert git_log.exists()
    (repo / "go").touch()
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("adopted"))
    sandbox.check(env=real)

    text = sandbox.note(today).read_text()
    # endpoint.py and go are its work; the person's three files and agent.sh are not.
    assert f"· 2 files +1 -0 · PRD 1/3 · verified · baseline from {created:%H:%M}" in text


def _logging_git(box: Sandbox) -> Path:
    """git on PATH that writes down the folder of every call, then runs the real git."""
    log = box.root / "git-calls"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout
    wrapper = box.bin / "git"
    wrapper.write_text(f'#!/bin/sh\npwd >> {log}\nexec {real.strip()} "$@"\n')
    wrapper.chmod(0o755)
    return log


def test_git_runs_none_of_the_repositorys_own_programs(sandbox: Sandbox, repo: Path) -> None:
    ran = sandbox.root / "ran"
    program = repo.parent / "repo-program"
    program.write_text(f'#!/bin/sh\necho "$0 $*" >> {ran}\ncat\n')
    program.chmod(0o755)
    config = ["git", "-C", str(repo), "config"]
    for key in ("core.fsmonitor", "filter.lfs.clean", "filter.a=b.process", "diff.lfs.textconv"):
        subprocess.run([*config, key, str(program)], check=True)
    (repo / ".gitattributes").write_text("*.py filter=lfs diff=lfs\n*.md filter=a=b\n")
    subprocess.run([*config, "core.hooksPath", str(repo.parent)], check=True)
    # A signed HEAD, which `git log` would verify with gpg.program when told to show it.
    subprocess.run([*config, "log.showSignature", "true"], check=True)
    subprocess.run([*config, "gpg.program", str(program)], check=True)
    git = ["git", "-C", str(repo)]
    tree = subprocess.run([*git, "write-tree"], capture_output=True, text=True).stdout.strip()
    parent = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    signed = (
        f"tree {tree}\nparent {parent.stdout.strip()}\n"
        "author Ada <ada@example.org> 1700000000 +0000\n"
        "committer Ada <ada@example.org> 1700000000 +0000\n"
        "gpgsig -----BEGIN PGP SIGNATURE-----\n \n -----END PGP SIGNATURE-----\n\nsigned\n"
    )
    commit = subprocess.run(
        [*git, "hash-object", "-t", "commit", "-w", "--stdin"],
        input=signed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([*git, "update-ref", "HEAD", commit], check=True)
    # A submodule whose own config names a filter: git would run it inside.
    sub = repo.parent / "sub"
    subprocess.run(["git", "init", "-q", str(sub)], check=True)
    (sub / "lib.c").write_text("int x;\n")
    subprocess.run(["git", "-C", str(sub), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(sub), "commit", "-qm", "lib"],
        check=True,
        env=sandbox.env
        | dict(os.environ, **{k: v for k, v in sandbox.env.items() if k.startswith("GIT_")}),
    )
    subprocess.run(
        [*git, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "sub"],
        check=True,
        capture_output=True,
    )
    inner = ["git", "-C", str(repo / "sub"), "config"]
    subprocess.run([*inner, "filter.inner.clean", str(program)], check=True)
    (repo / "sub" / ".gitattributes").write_text("*.c filter=inner\n")
    (repo / "sub" / "lib.c").write_text("int y;\n")
    ran.unlink(missing_ok=True)  # the set-up's own git ran them: from here, none may run
    launch_in(sandbox, repo, "api", "sh", "-c", "echo x > new.py; echo y >> PRD.md; exit 3")
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("api"))
    sandbox.check(env=at(sandbox, 30))
    sandbox.run("verify", "api")

    assert "verified" in sandbox.note().read_text()
    assert not ran.exists(), ran.read_text()
