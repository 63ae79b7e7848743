"""An entry deleted from the notes while its session runs: told once, never silently
unwatched, and told again only when it comes back and goes again."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import Sandbox
from test_cost import settled
from test_launch_and_check import launch


def gone_line(box: Sandbox, name: str) -> str:
    return (
        f"{name}: no longer in the notes, its session still runs on {box.socket} "
        "(heartbeat adopt or tmux kill-session)"
    )


def cut_entry(note: Path, name: str) -> str:
    """Delete the entry's lines from the note, as a person would; returns them."""
    lines = note.read_text().splitlines(keepends=True)
    head = next(i for i, line in enumerate(lines) if line.startswith(f"- [ ] **{name}**"))
    end = head + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    note.write_text("".join(lines[:head] + lines[end:]))
    return "".join(lines[head:end])


def state_files(box: Sandbox) -> dict[str, tuple[int, int, int]]:
    """Each file of the state folder by inode, size and mtime (the last check's time is
    kept as a file time alone, so it is left out)."""
    return {
        path.name: (info.st_ino, info.st_size, info.st_mtime_ns)
        for path in box.state.iterdir()
        if path.is_file() and path.name != "last-check"
        for info in [os.stat(path)]
    }


def test_an_entry_deleted_while_its_session_runs_is_told_once(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    launch(sandbox, "web", "codex", "exec", "work")
    assert sandbox.check().returncode == 0
    cut_entry(sandbox.note(), "api")
    settled(sandbox.note())  # old enough for the parse cache to keep it

    told = sandbox.check("--quiet")  # cron's check: what needs a person is printed
    steady = state_files(sandbox)
    again = sandbox.check("--quiet")

    assert (told.returncode, told.stdout) == (1, gone_line(sandbox, "api") + "\n")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert state_files(sandbox) == steady  # a quiet check after it writes nothing
    log = (sandbox.state / "heartbeat.log").read_text()
    assert log.count(gone_line(sandbox, "api")) == 1
    assert sandbox.alive("api") and sandbox.alive("web")  # left alone: a person decides
    assert "**web**" in sandbox.note().read_text()


def test_told_again_only_after_it_comes_back_and_goes_again(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    note = sandbox.note()
    block = cut_entry(note, "api")
    # Deleted before any check looked: the launch said which note it is in.
    assert sandbox.check().stdout == gone_line(sandbox, "api") + "\n"

    note.write_text(note.read_text() + block)  # pasted back
    back = sandbox.check()
    assert (back.returncode, back.stdout) == (0, "")  # watched again, still running
    assert sandbox.check().stdout == ""

    cut_entry(note, "api")
    assert sandbox.check().stdout == gone_line(sandbox, "api") + "\n"
    assert sandbox.check().stdout == ""


def test_an_entry_deleted_after_its_session_ended_is_not_news(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    sandbox.check()
    cut_entry(sandbox.note(), "api")
    subprocess.run(["tmux", "-S", sandbox.socket, "kill-session", "-t", "=api"], check=True)

    result = sandbox.check("--quiet")

    assert (result.returncode, result.stdout) == (0, "")
    assert not sandbox.alive("api")  # and nothing restarts what the notes no longer name


def test_an_unreadable_note_is_not_read_as_entries_gone(sandbox: Sandbox) -> None:
    """A note heartbeat cannot read says so; its entries are not judged gone from it."""
    launch(sandbox, "api", "codex", "exec", "work")
    sandbox.check()
    note = sandbox.note()
    text = note.read_text()
    note.write_bytes(text.encode() + b"\xff\xfe a pasted byte\n")

    unreadable = sandbox.check()

    assert "not valid UTF-8" in unreadable.stderr
    assert "no longer in the notes" not in unreadable.stdout
    note.write_text(text.replace("- [ ] **api**", "- [ ] **api2**"))  # mended, and renamed
    renamed = sandbox.check()
    assert gone_line(sandbox, "api") in renamed.stdout.splitlines()


def test_another_notes_folder_does_not_make_entries_gone(sandbox: Sandbox) -> None:
    """A check of another folder (HEARTBEAT_NOTES set elsewhere) does not see this
    folder's notes: it must not call their entries gone."""
    launch(sandbox, "api", "codex", "exec", "work")
    sandbox.check()
    other = sandbox.root / "other-memory"
    other.mkdir(mode=0o700)

    elsewhere = sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOTES=str(other)))
    here = sandbox.check()

    assert "no longer in the notes" not in elsewhere.stdout
    assert (here.returncode, here.stdout) == (0, "")


def test_a_check_started_by_tmuxs_hook_leaves_it_to_a_check_that_is_read(
    sandbox: Sandbox,
) -> None:
    """tmux's session-closed hook runs `check --hook` in the background: what it would
    print reaches nobody, so the next check (cron's) says it."""
    launch(sandbox, "api", "codex", "exec", "work")
    cut_entry(sandbox.note(), "api")

    hooked = sandbox.check("--hook")
    scheduled = sandbox.check("--quiet")

    assert (hooked.returncode, hooked.stdout) == (0, "")
    assert (scheduled.returncode, scheduled.stdout) == (1, gone_line(sandbox, "api") + "\n")
