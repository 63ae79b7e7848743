"""Clean stops: the sessions finished runs leave in their `sleep` tail, `heartbeat clean`,
two agents in one git work tree, and the worktrees `launch --worktree` makes.

The tails are the skill's own (`echo 'EXITED:' $EXIT_CODE; ...; sleep 999999`, in
/work/shared/reference's coding-sessions skill, as test_hand_written.py quotes it) and
heartbeat's wrapper's. The worktrees are git's own (`git worktree add`, `git worktree
remove`, which refuses a worktree with modified or untracked files without --force).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import Sandbox
from test_hand_written import note_with, skill_line
from test_launch_and_check import launch
from test_restart_policy import at


def finished(box: Sandbox, name: str, code: int = 0) -> None:
    """Wait for NAME's agent to end, then let a check close its entry."""
    box.wait(lambda: f"EXITED: {code}" in box.pane_text(name))
    box.check(env=at(box, 30))


def states(box: Sandbox) -> dict[str, str]:
    result = box.run("status", "--json")
    return {row["name"]: row["state"] for row in json.loads(result.stdout)["entries"]}


def git(folder: Path, *args: str) -> str:
    who = ["-c", "user.name=Ada", "-c", "user.email=ada@example.org"]
    done = subprocess.run(
        ["git", "-C", str(folder), *who, *args], check=True, capture_output=True, text=True
    )
    return done.stdout


@pytest.fixture
def repo(sandbox: Sandbox) -> Path:
    """A real git repository with one commit, and the identity its agents commit as."""
    folder = sandbox.root / "api"
    (folder / "src").mkdir(parents=True)
    (folder / "README").write_text("api\n")
    (folder / "src" / "main.py").write_text("print('api')\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "start")
    for role in ("AUTHOR", "COMMITTER"):
        sandbox.env |= {f"GIT_{role}_NAME": "Ada", f"GIT_{role}_EMAIL": "ada@example.org"}
    return folder


# --- a finished name's session -----------------------------------------------------------


def test_kill_removes_a_finished_entrys_tail(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "exit:0")
    finished(sandbox, "api")
    assert sandbox.alive("api")  # closed, in its tail

    result = sandbox.run("kill", "api")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "api: removed its finished session (exit 0); its entry was closed\n"
    assert not sandbox.alive("api")
    log = (sandbox.state / "heartbeat.log").read_text()
    assert "api: removed its finished session (exit 0)" in log
    again = sandbox.run("kill", "api")
    assert again.returncode == 1 and "no open entry named api" in again.stderr


def test_status_shows_a_finished_runs_tail_until_clean(sandbox: Sandbox) -> None:
    launch(sandbox, "done", "codex", "exec", "exit:0")
    launch(sandbox, "busy", "codex", "exec", "work")
    finished(sandbox, "done")

    before = json.loads(sandbox.run("status", "--json").stdout)["entries"]
    table = sandbox.run("status").stdout
    cleaned = sandbox.run("clean")

    tail = next(row for row in before if row["name"] == "done")
    assert tail["state"] == "tail"
    assert tail["reason"] == "ended (exit 0), its session kept: heartbeat clean removes it"
    assert tail["note"]["path"].endswith("memory/2026-11-24.md")  # the closed entry
    assert any(line.split()[:2] == ["done", "tail"] for line in table.splitlines())
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout == "done: removed its finished session (exit 0)\n"
    assert states(sandbox) == {"busy": "running"}
    assert sandbox.alive("busy") and not sandbox.alive("done")


def test_clean_removes_every_ended_session_no_open_entry_needs(sandbox: Sandbox) -> None:
    launch(sandbox, "done", "codex", "exec", "exit:0")
    launch(sandbox, "busy", "codex", "exec", "work")
    flags = ("--dir", str(sandbox.root), "--restart", "never")
    broke = sandbox.run("launch", "broke", *flags, "--", "codex", "exec", "exit:3")
    assert broke.returncode == 0, broke.stderr
    sandbox.wait(lambda: "EXITED: 3" in sandbox.pane_text("broke"))
    finished(sandbox, "done")  # broke: failed, not restarted: open, in its tail
    # The skill's own line, started by hand and logged, then ticked: `EXITED: 0` in its pane.
    line = skill_line(sandbox, "skill", "exit:0")
    subprocess.run(["/bin/sh", "-c", line], env=sandbox.env, check=True)
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("skill"))
    block = ["- [x] skill", "  ```sh", *[f"  {row}" for row in line.splitlines()], "  ```"]
    sandbox.write_note(sandbox.note().read_text() + "\n".join(block) + "\n")
    # A session started by hand that still runs, and one whose agent ended.
    tmux = ["tmux", "-S", sandbox.socket, "new-session", "-d"]
    subprocess.run([*tmux, "-s", "stray", "sleep", "300"], env=sandbox.env, check=True)
    ended_by_hand = "echo 'EXITED:' 0; sleep 999999"
    subprocess.run([*tmux, "-s", "old", "sh", "-c", ended_by_hand], env=sandbox.env, check=True)
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("old"))

    dry = sandbox.run("clean", "--dry-run")
    alive_after_dry = {name: sandbox.alive(name) for name in ("done", "skill", "old")}
    real = sandbox.run("clean")

    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "done: would remove its finished session (exit 0)",
        "old: would remove its finished session (exit 0)",
        "skill: would remove its finished session (exit 0)",
    ]
    assert alive_after_dry == {"done": True, "skill": True, "old": True}
    assert real.stdout.splitlines() == [
        line.replace("would remove", "removed") for line in dry.stdout.splitlines()
    ]
    assert not any(sandbox.alive(name) for name in ("done", "skill", "old"))
    # Never a session an open entry names (broke is open, failed, in its tail), nor one
    # whose agent may still run.
    assert sandbox.alive("busy") and sandbox.alive("broke") and sandbox.alive("stray")
    assert sandbox.run("clean").stdout == "nothing to clean\n"


def test_clean_leaves_sockets_no_approved_entry_names_alone(sandbox: Sandbox) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hbo", dir="/tmp"))
    other = str(folder / "sock")
    try:
        subprocess.run(
            [
                "tmux",
                "-S",
                other,
                "new-session",
                "-d",
                "-s",
                "far",
                "sh",
                "-c",
                "echo 'EXITED:' 0; sleep 999999",
            ],
            env=sandbox.env,
            check=True,
        )
        # A closed entry nobody approved names that socket.
        sandbox.write_note(
            note_with(
                "- [x] far: `codex exec x`", f"  - dir: {sandbox.root}", f"  - socket: {other}"
            )
        )

        result = sandbox.run("clean")
        kill = sandbox.run("kill", "far")

        assert (result.returncode, result.stdout) == (0, "nothing to clean\n")
        assert kill.returncode == 1
        listed = subprocess.run(["tmux", "-S", other, "has-session", "-t", "=far"], check=False)
        assert listed.returncode == 0
    finally:
        subprocess.run(["tmux", "-S", other, "kill-server"], capture_output=True)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


# --- two agents in one work tree -----------------------------------------------------------


def test_launch_warns_when_another_open_entry_runs_in_the_same_work_tree(
    sandbox: Sandbox, repo: Path
) -> None:
    first = sandbox.run("launch", "one", "--dir", str(repo), "--", "codex", "exec", "work")
    # A folder inside the same checkout, named through a link: the same work tree.
    (sandbox.root / "link").symlink_to(repo)
    second = sandbox.run(
        "launch", "two", "--dir", str(sandbox.root / "link" / "src"), "--", "codex", "exec", "w"
    )
    elsewhere = sandbox.run(
        "launch", "three", "--dir", str(sandbox.root), "--", "codex", "exec", "w"
    )

    assert first.returncode == 0 and first.stderr == ""
    assert second.returncode == 0, second.stderr
    assert second.stderr == (
        "heartbeat: warning: one runs in the same git work tree as two: two agents in one "
        "checkout undo each other's work (--worktree BRANCH gives each its own)\n"
    )
    assert sandbox.alive("two")  # warned, and launched all the same
    assert elsewhere.returncode == 0 and elsewhere.stderr == ""


# --- worktrees -------------------------------------------------------------------------------


def worktree_launch(box: Sandbox, repo: Path, name: str, branch: str, task: str) -> str:
    result = box.run(
        "launch", name, "--dir", str(repo), "--worktree", branch, "--", "codex", "exec", task
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_launch_worktree_runs_the_agent_in_a_worktree_heartbeat_made(
    sandbox: Sandbox, repo: Path
) -> None:
    one = sandbox.run("launch", "one", "--dir", str(repo), "--", "codex", "exec", "work")
    said = worktree_launch(sandbox, repo, "two", "feature/login", "commit:add login")

    place = sandbox.home / ".local" / "share" / "heartbeat" / "worktrees" / "api-feature-login"
    assert one.returncode == 0
    assert said.splitlines()[0] == f"two: in worktree {place} on branch feature/login"
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert sandbox.calls()[1] == f"{place}|exec commit:add login"  # it ran there
    assert f"  - dir: `{place}`" in sandbox.note().read_text()
    assert f"worktree {place}" in git(repo, "worktree", "list", "--porcelain")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("two"))
    assert git(repo, "log", "--format=%s", "feature/login").splitlines() == ["add login", "start"]
    assert git(repo, "log", "--format=%s", "main").splitlines() == ["start"]
    made = json.loads((sandbox.state / "worktrees.json").read_text())
    assert made[str(place)]["branch"] == "feature/login" and made[str(place)]["name"] == "two"


def test_clean_removes_a_finished_entrys_worktree_and_keeps_its_branch(
    sandbox: Sandbox, repo: Path
) -> None:
    places = sandbox.root / "trees"
    config = Path(sandbox.env["HEARTBEAT_CONFIG"])
    config.write_text(config.read_text() + f'worktrees = "{places}"\n')
    worktree_launch(sandbox, repo, "fix", "fix-bug", "commit:fix the bug")
    place = places / "api-fix-bug"
    assert place.is_dir()
    running = sandbox.run("clean", "--dry-run")  # not finished yet: nothing
    finished(sandbox, "fix")

    dry = sandbox.run("clean", "--dry-run")
    real = sandbox.run("clean")

    assert running.stdout == "nothing to clean\n"
    assert dry.stdout.splitlines() == [
        "fix: would remove its finished session (exit 0)",
        f"fix: would remove worktree {place} (branch fix-bug kept)",
    ]
    assert real.returncode == 0, real.stderr
    assert real.stdout.splitlines() == [
        "fix: removed its finished session (exit 0)",
        f"fix: removed worktree {place} (branch fix-bug kept)",
    ]
    assert not place.exists()
    assert f"{place}" not in git(repo, "worktree", "list")
    assert git(repo, "log", "--format=%s", "fix-bug").splitlines() == ["fix the bug", "start"]
    assert json.loads((sandbox.state / "worktrees.json").read_text()) == {}


def test_clean_reports_a_worktree_with_uncommitted_work_and_keeps_it(
    sandbox: Sandbox, repo: Path
) -> None:
    git(repo, "branch", "existing")  # an existing branch is checked out, not made
    worktree_launch(sandbox, repo, "wip", "existing", "exit:0")
    place = sandbox.home / ".local" / "share" / "heartbeat" / "worktrees" / "api-existing"
    finished(sandbox, "wip")
    (place / "notes.txt").write_text("half done\n")  # the agent's work, not committed
    (place / "README").write_text("changed\n")

    result = sandbox.run("clean")

    assert result.returncode == 1
    assert result.stdout == "wip: removed its finished session (exit 0)\n"
    assert result.stderr == (
        f"wip: worktree {place} holds uncommitted work (2 files: README, notes.txt): "
        f"left for you (git -C {place} status)\n"
    )
    assert (place / "notes.txt").read_text() == "half done\n"
    assert git(place, "rev-parse", "--abbrev-ref", "HEAD").strip() == "existing"
    again = sandbox.run("clean")
    assert again.returncode == 1 and again.stdout == ""


def test_clean_never_removes_a_worktree_heartbeat_did_not_make(
    sandbox: Sandbox, repo: Path
) -> None:
    mine = sandbox.root / "my-tree"
    git(repo, "worktree", "add", "-q", "-b", "mine", str(mine))
    launch_mine = sandbox.run("launch", "mine", "--dir", str(mine), "--", "codex", "exec", "exit:0")
    assert launch_mine.returncode == 0, launch_mine.stderr
    finished(sandbox, "mine")
    # And a folder where heartbeat would put a worktree, which it did not make.
    places = sandbox.home / ".local" / "share" / "heartbeat" / "worktrees"
    (places / "api-taken").mkdir(parents=True)
    taken = sandbox.run(
        "launch", "taken", "--dir", str(repo), "--worktree", "taken", "--", "codex", "exec", "x"
    )

    result = sandbox.run("clean")

    assert result.stdout == "mine: removed its finished session (exit 0)\n"
    assert mine.is_dir() and f"{mine}" in git(repo, "worktree", "list")
    assert taken.returncode == 1
    assert "api-taken exists, and heartbeat did not make it" in taken.stderr
    assert not sandbox.alive("taken") and "taken" not in sandbox.note().read_text()
    assert git(repo, "branch", "--list", "taken") == ""


def test_a_worktree_launch_outside_a_repository_is_refused(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "launch", "x", "--dir", str(sandbox.root), "--worktree", "b", "--", "codex", "exec", "x"
    )

    assert result.returncode == 1
    assert result.stderr == f"heartbeat: --worktree: {sandbox.root} is not in a git work tree\n"
    assert not sandbox.alive("x") and not (sandbox.home / ".local" / "share").exists()


def test_a_worktree_needs_a_commit_to_start_from(sandbox: Sandbox) -> None:
    empty = sandbox.root / "empty"
    subprocess.run(["git", "init", "-q", str(empty)], check=True)

    result = sandbox.run(
        "launch", "x", "--dir", str(empty), "--worktree", "b", "--", "codex", "exec", "x"
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"heartbeat: --worktree: {empty} has no commit yet: a worktree starts from one\n"
    )


def test_a_later_launch_on_the_branch_uses_heartbeats_worktree_again(
    sandbox: Sandbox, repo: Path
) -> None:
    flags = ("--dir", str(repo / "src"), "--worktree", "docs")
    first = sandbox.run("launch", "docs", *flags, "--", "codex", "exec", "exit:0")
    finished(sandbox, "docs")
    made = (sandbox.state / "worktrees.json").read_text()

    again = sandbox.run("launch", "docs", *flags, "--", "codex", "exec", "two")

    place = sandbox.home / ".local" / "share" / "heartbeat" / "worktrees" / "api-docs"
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == f"docs: in worktree {place} on branch docs"
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    # At DIR's place inside the worktree, both times.
    assert sandbox.calls() == [f"{place}/src|exec exit:0", f"{place}/src|exec two"]
    assert (sandbox.state / "worktrees.json").read_text() == made
    log = (sandbox.state / "heartbeat.log").read_text()
    assert f"docs: worktree {place} made" in log and f"docs: worktree {place} used again" in log
    # Running again: clean leaves its worktree, whatever its tail was.
    assert sandbox.run("clean").stdout == "nothing to clean\n" and place.is_dir()


def test_a_folder_the_branch_does_not_hold_is_refused_and_the_worktree_taken_back(
    sandbox: Sandbox, repo: Path
) -> None:
    (repo / "scratch").mkdir()  # untracked: not in any worktree

    result = sandbox.run(
        "launch", "x", "--dir", str(repo / "scratch"), "--worktree", "b", "--", "codex", "exec", "x"
    )

    assert result.returncode == 1
    assert result.stderr == (
        "heartbeat: --worktree: scratch is not in branch b "
        "(git keeps no folder without a tracked file)\n"
    )
    place = sandbox.home / ".local" / "share" / "heartbeat" / "worktrees" / "api-b"
    assert not place.exists() and git(repo, "branch", "--list", "b") == ""
    assert json.loads((sandbox.state / "worktrees.json").read_text()) == {}
    assert not sandbox.alive("x")


def test_a_note_that_cannot_be_read_stops_clean_removing_anything(sandbox: Sandbox) -> None:
    """An open entry in a note heartbeat refuses (others may write it) may still need its
    ended session: a check would judge it again once the note is mended."""
    launch(sandbox, "done", "codex", "exec", "exit:0")
    finished(sandbox, "done")
    sandbox.note().chmod(0o666)

    cleaned = sandbox.run("clean")

    assert cleaned.returncode == 1
    assert "nothing removed: mend the notes above, then clean again" in cleaned.stderr
    assert sandbox.alive("done")
