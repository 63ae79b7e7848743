"""After a check, a note differs only by inserted lines and ticked boxes."""

from __future__ import annotations

import difflib
import errno
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import NOW, Sandbox

from heartbeat import config, files
from heartbeat.check import run as core
from heartbeat.notes import edit as note_edits
from heartbeat.tmux.server import Tmux


def only_insertions_and_ticks(before: str, after: str) -> bool:
    """True when `after` is `before` plus inserted text and `[ ]` turned into `[x]`."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("equal", "insert"):
            continue
        ticked = before[i1 - 1 : i2 + 1] == "[ ]" and after[j1:j2] == "x"
        if not (op == "replace" and ticked):
            return False
    return True


def messy_note(box: Sandbox) -> str:
    return (
        "---\r\n"
        "title: Tuesday — notes\r\n"
        "tags: [agents, ünïcode]\r\n"
        "---\r\n"
        "\r\n"
        "# Tuesday 🚀\r\n"
        "\r\n"
        "Prose with trailing spaces   \r\n"
        "and a tab\tinside.\r\n"
        "\r\n"
        "```markdown\r\n"
        "## Active Long-Running Processes\r\n"
        "- fake: `touch fake-was-run`\r\n"
        "```\r\n"
        "\r\n"
        "## Active Long-Running Processes\r\n"
        "\r\n"
        f"- [ ] **api** — `codex exec work`\r\n"
        f"  - dir: `{box.root}`\r\n"
        "  - a note the person wrote: keep me  \r\n"
        f"- [ ] **done** — `codex exec exit:0`\r\n"
        f"  - dir: `{box.root}`\r\n"
        "\r\n"
        "### Sub-heading inside the section\r\n"
        "\r\n"
        "## Other section\r\n"
        "\r\n"
        "- groceries: `not a command`\r\n"
        "Last line without a newline — ende"
    )


def test_a_check_only_inserts_lines_and_ticks_boxes(sandbox: Sandbox) -> None:
    path = sandbox.write_note("")
    path.write_bytes(messy_note(sandbox).encode())
    sandbox.allow("api", "done")
    before = path.read_bytes().decode()

    first = sandbox.check()
    assert first.returncode == 0, first.stderr
    assert sorted(first.stdout.splitlines()) == [
        "api: new -> dead (restarted)",
        "done: new -> dead (restarted)",
    ]
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("done"))
    second = sandbox.check()
    assert second.stdout == "done: running -> finished (closed)\n"

    after = path.read_bytes().decode()
    assert only_insertions_and_ticks(before, after)
    assert "- [x] **done**" in after
    assert after.count("\r\n") == before.count("\r\n") + 5  # three status lines, two hosts
    assert "\n" not in after.replace("\r\n", "")  # no bare LF slipped in
    assert not after.endswith("\n")  # still no final newline
    assert not (sandbox.root / "fake-was-run").exists()
    assert not sandbox.alive("fake")


def test_an_edit_saved_while_a_check_runs_survives(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- [ ] **api** — `codex exec work`\n  - dir: `{sandbox.root}`\n"
    )
    sandbox.allow("api")
    real_start = Tmux.start

    def start_while_the_person_types(*args: object, **kwargs: object) -> object:
        # The person saves the note after the check read it and before it writes.
        with path.open("a") as handle:
            handle.write("- a thought typed during the check\n")
        return real_start(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Tmux, "start", start_while_the_person_types)
    settings = config.load(sandbox.env)
    outcome = core.check(settings, datetime.fromisoformat(NOW))

    assert [change.line() for change in outcome.changes] == ["api: new -> dead (restarted)"]
    text = path.read_text()
    assert "- a thought typed during the check\n" in text
    assert "  - 2026-11-24 10:00 — dead · not a git repo, restarted afresh (no session)\n" in text


def test_an_edit_saved_between_our_read_and_our_rename_survives(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- [ ] **api** — `codex exec work`\n  - dir: `{sandbox.root}`\n"
    )
    sandbox.allow("api")
    real_apply = note_edits.apply_edits
    saves = []

    def apply_while_the_person_saves(*args: object, **kwargs: object) -> str:
        if not saves:  # the first time only: the person saves once
            saves.append(1)
            with path.open("a") as handle:
                handle.write("- saved while heartbeat was writing\n")
        return real_apply(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(note_edits, "apply_edits", apply_while_the_person_saves)
    core.check(config.load(sandbox.env), datetime.fromisoformat(NOW))

    text = path.read_text()
    assert "- saved while heartbeat was writing\n" in text
    assert "  - 2026-11-24 10:00 — dead · not a git repo, restarted afresh (no session)\n" in text


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")],
)
def test_status_lines_a_failed_write_lost_are_written_by_the_next_check(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    path = sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- [ ] **api** — `codex exec work`\n  - dir: `{sandbox.root}`\n"
    )
    sandbox.allow("api")
    before = path.read_bytes()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(code, words)

    with monkeypatch.context() as patch:
        patch.setattr(files, "_temp_copy", disk_full)
        outcome = core.check(config.load(sandbox.env), datetime.fromisoformat(NOW))
    [problem] = outcome.problems
    assert problem.endswith(f"memory/2026-11-24.md:1: cannot write: {words}")
    assert path.read_bytes() == before  # the note untouched

    again = core.check(config.load(sandbox.env), datetime.fromisoformat(NOW))

    assert again.changes == []  # nothing new happened ...
    assert (
        "  - 2026-11-24 10:00 — dead · not a git repo, restarted afresh (no session)\n"
        in path.read_text()
    )  # ... yet the line is there


def test_a_line_first_written_late_and_then_dropped_by_a_stale_save_is_written_again(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- [ ] **api** — `codex exec work`\n  - dir: `{sandbox.root}`\n"
    )
    sandbox.allow("api")
    line = "  - 2026-11-24 10:00 — dead · not a git repo, restarted afresh (no session)\n"

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(files, "_temp_copy", read_only)
        core.check(config.load(sandbox.env), datetime.fromisoformat(NOW))
    stale = path.read_text()  # an editor reads the note before the line is written ...
    core.check(config.load(sandbox.env), datetime.fromisoformat(NOW))  # ... which it is
    assert line in path.read_text()
    path.write_text(stale + "- typed in the editor\n")  # ... and saves its stale copy

    again = core.check(config.load(sandbox.env), datetime.fromisoformat(NOW))

    assert again.changes == []
    text = path.read_text()
    assert text.count(line) == 1
    assert "- typed in the editor\n" in text


def test_a_save_landing_just_before_our_swap_is_merged(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- [ ] **api** — `codex exec work`\n  - dir: `{sandbox.root}`\n"
    )
    sandbox.allow("api")
    real_exchange = files._exchange
    saved = []

    def editor_renames_first(first: Path, second: Path) -> bool:
        if not saved:  # an editor's atomic save, after our last look and before our swap
            saved.append(1)
            fresh = second.with_name(".editor-save")
            fresh.write_text(second.read_text() + "- the editor's own line\n")
            os.replace(fresh, second)
        return real_exchange(first, second)

    monkeypatch.setattr(files, "_exchange", editor_renames_first)
    core.check(config.load(sandbox.env), datetime.fromisoformat(NOW))

    text = path.read_text()
    assert "- the editor's own line\n" in text
    assert (
        text.count("  - 2026-11-24 10:00 — dead · not a git repo, restarted afresh (no session)\n")
        == 1
    )
    assert not [p for p in sandbox.notes.iterdir() if p.name.startswith(".")]


def test_status_lines_a_stale_save_dropped_are_written_again(sandbox: Sandbox) -> None:
    launch = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert launch.returncode == 0
    stale = sandbox.note().read_text()  # an editor reads the note ...
    sandbox.server.cmd("kill-session", "-t", "=api")
    assert sandbox.check().stdout == "api: running -> dead (restarted)\n"
    sandbox.note().write_text(stale + "- typed in the editor\n")  # ... and saves it later

    again = sandbox.check()

    text = sandbox.note().read_text()
    assert again.stdout == ""
    # Once, whether the agent had written its session by then (resumed) or not.
    assert text.count("  - 2026-11-24 10:00 — dead · ") == 1
    assert "- typed in the editor\n" in text
    assert sandbox.check().stdout == "" and sandbox.note().read_text() == text


EDITOR = """
import os, random, sys, time
path, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    time.sleep(random.random() / 200)  # the person types
    fresh = path + ".editor-tmp"
    with open(fresh, "w", encoding="utf-8") as handle:
        handle.write(text + f"- editor line {i}\\n")
    os.replace(fresh, path)  # saved the way most editors save: write, then rename
    time.sleep(random.random() / 100)
"""


@pytest.mark.timeout(240)  # a busy two-core machine
def test_an_editor_saving_200_times_during_50_checks_loses_nothing(sandbox: Sandbox) -> None:
    result = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "sleep", "999")
    assert result.returncode == 0, result.stderr
    settings = config.load(sandbox.env)
    editor = subprocess.Popen([sys.executable, "-c", EDITOR, str(sandbox.note()), "200"])
    reported: list[str] = []
    odd: list[object] = []
    start = datetime.fromisoformat(NOW)
    for tick in range(1, 51):
        sandbox.server.cmd("kill-session", "-t", "=api")  # something to write every check
        moment = start + timedelta(minutes=11 * tick)  # each run lasted 10 minutes
        outcome = core.check(settings, moment)
        if any("(restarted)" in change.line() for change in outcome.changes):
            # Known by its time: its words depend on whether the agent had written its
            # session before the check (resumed, or failed to resume) or not.
            reported.append(f"  - {moment:%Y-%m-%d %H:%M} — ")
        else:
            odd.append((tick, [c.line() for c in outcome.changes], outcome.problems))
    assert editor.wait(timeout=120) == 0
    core.check(settings, start + timedelta(minutes=11 * 51))  # writes again what a save dropped

    text = sandbox.note().read_text()
    assert all(f"- editor line {i}\n" in text for i in range(200))
    assert (len(reported), odd) == (50, [])
    missing = [line for line in reported if line not in text]
    assert missing == []


def test_a_replayed_line_never_lands_under_a_new_entry_of_that_name(sandbox: Sandbox) -> None:
    first = sandbox.run("launch", "job", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert first.returncode == 0
    sandbox.server.cmd("kill-session", "-t", "=job")
    sandbox.check()  # writes "dead, restarted" under the first entry
    # The person deletes that entry, then launches a new one of the same name.
    sandbox.note().write_text(sandbox.note().read_text().split("- [ ] **job**")[0])
    sandbox.server.cmd("kill-session", "-t", "=job")
    again = sandbox.run("launch", "job", "--dir", str(sandbox.root), "--", "codex", "exec", "y")
    assert again.returncode == 0, again.stderr

    sandbox.check()

    text = sandbox.note().read_text()
    assert text.count("**job**") == 1 and "exec y" in text
    assert "dead · not a git repo, restarted afresh (no session)" not in text


def test_a_status_line_removed_by_hand_comes_back_once_at_most(sandbox: Sandbox) -> None:
    launched = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert launched.returncode == 0
    sandbox.server.cmd("kill-session", "-t", "=api")
    sandbox.check()
    line = "  - 2026-11-24 10:00 — dead · not a git repo, restarted afresh (no session)\n"
    for _ in range(3):  # the person removes it three times
        sandbox.note().write_text(sandbox.note().read_text().replace(line, ""))
        sandbox.check()
    assert sandbox.note().read_text().count(line) <= 1
