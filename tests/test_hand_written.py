"""Entries written by hand (forms b and c), carry-over, bad entries and bad names."""

from __future__ import annotations

import subprocess

from conftest import Sandbox

SKILL_LINE = (
    'tmux -S {socket} new -d -s {name} "cd {dir} && \\\n'
    "  PATH=/opt/homebrew/bin:\\$PATH codex exec --full-auto '{task}'; \\\n"
    "  EXIT_CODE=\\$?; echo 'EXITED:' \\$EXIT_CODE; \\\n"
    "  openclaw system event --text '{name} finished (exit \\$EXIT_CODE) in {dir}' --mode now; \\\n"
    '  sleep 999999"'
)


def skill_line(box: Sandbox, name: str, task: str) -> str:
    return SKILL_LINE.format(socket=box.socket, name=name, dir=box.root, task=task)


def note_with(*entries: str) -> str:
    return "# Today\n\n## Active Long-Running Processes\n\n" + "\n".join(entries) + "\n"


def test_hand_written_entries_are_watched_and_restarted(sandbox: Sandbox) -> None:
    sandbox.write_note(
        note_with(
            "- docs: `codex exec --full-auto 'Write docs'`",
            f"  - dir: {sandbox.root}",
            "- **web** — `ralphy --codex --prd PRD.md`",
            f"  - dir: `{sandbox.root}`",
        )
    )
    sandbox.allow("docs", "web")

    result = sandbox.check()

    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "docs: new -> dead (restarted)",
        "web: new -> dead (restarted)",
    ]
    sandbox.wait(lambda: len(sandbox.calls()) == 2)
    assert sorted(sandbox.calls()) == [
        f"{sandbox.root}|--codex --prd PRD.md",
        f"{sandbox.root}|exec --full-auto Write docs",
    ]
    assert sandbox.check().stdout == ""


def test_a_hand_written_entry_that_finishes_is_closed_with_a_status_line(sandbox: Sandbox) -> None:
    sandbox.write_note(note_with("- quick: `codex exec exit:0`", f"  - dir: {sandbox.root}"))
    sandbox.allow("quick")
    sandbox.check()
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("quick"))

    result = sandbox.check()

    assert result.stdout == "quick: running -> finished (closed)\n"
    assert (
        "  - 2026-11-24 10:00 — closed: finished (exit 0) · not a git repo\n"
        in sandbox.note().read_text()
    )
    sandbox.server.cmd("kill-session", "-t", "=quick")
    assert sandbox.check().stdout == ""
    assert len(sandbox.calls()) == 1


def test_the_skills_tmux_line_is_read_as_a_shell_would_and_restarted(sandbox: Sandbox) -> None:
    sandbox.write_note(note_with(f"- `{skill_line(sandbox, 'skill', 'Fix the bug')}`"))
    sandbox.allow("skill")

    result = sandbox.check()

    assert result.returncode == 0, result.stderr
    assert result.stdout == "skill: new -> dead (restarted)\n"
    sandbox.wait(lambda: len(sandbox.calls()) == 1)
    # `\$PATH` reached the shell as `$PATH`: the stand-in on PATH was found.
    assert sandbox.calls() == [f"{sandbox.root}|exec --full-auto Fix the bug"]


def test_the_skills_line_in_a_fenced_block_is_classified_from_its_exited_line(
    sandbox: Sandbox,
) -> None:
    line = skill_line(sandbox, "fenced", "exit:4")
    sandbox.write_note(
        note_with(
            "- fenced",
            "  ```sh",
            *[f"  {row}" for row in line.splitlines()],
            "  ```",
            "  - restart: never",
        )
    )
    # The person runs the skill's line in their shell, then logs it.
    subprocess.run(["/bin/sh", "-c", line], env=sandbox.env, check=True)
    sandbox.wait(lambda: "EXITED: 4" in sandbox.pane_text("fenced"))

    result = sandbox.check()

    assert result.returncode == 1
    assert result.stdout == "fenced: new -> failed (needs a person)\n"
    # Later checks still see it failed: the pane is not read again, and nothing re-runs.
    again = sandbox.check()
    assert (again.returncode, again.stdout) == (1, "")
    assert "running again" not in sandbox.note().read_text()
    assert len(sandbox.calls()) == 1
    # The line's own completion hook fired, exactly as a shell runs it: the skill
    # quotes $EXIT_CODE in single quotes, so its text keeps the variable's name.
    texts = [n[3] for n in sandbox.notifications()]
    assert f"fenced finished (exit $EXIT_CODE) in {sandbox.root}" in texts
    # And heartbeat told a person once, with the reason it is not restarted.
    assert [t for t in texts if t.startswith("fenced in ")] == [
        f"fenced in {sandbox.root}: failed (exit 4), not restarted (restart: never)"
    ]


def test_an_open_entry_in_yesterdays_note_is_carried_into_today(sandbox: Sandbox) -> None:
    yesterday = sandbox.write_note(
        "# Monday\n\n## Active Long-Running Processes\n\n"
        f"- [ ] **api** — `codex exec work`\n  - dir: `{sandbox.root}`\n"
        "  - 2026-11-23 09:00 — dead · not a git repo, restarted\n",
        day="2026-11-23",
    )
    sandbox.allow("api")

    result = sandbox.check()

    assert result.stdout == "api: new -> dead (restarted)\n"
    today = sandbox.note().read_text()
    assert today.count("**api**") == 1
    assert f"  - dir: `{sandbox.root}`" in today
    assert "carried over from 2026-11-23.md" in today
    assert "2026-11-23 09:00" not in today  # old status lines stay behind
    assert "— dead · not a git repo, restarted" in today  # watched in today's note
    old = yesterday.read_text()
    assert "— closed: continued in 2026-11-24.md" in old
    assert old.startswith(
        "# Monday\n\n## Active Long-Running Processes\n\n- [ ] **api** — `codex exec work`\n"
    )
    assert sandbox.check().stdout == ""
    assert sandbox.note().read_text() == today


def test_a_malformed_entry_is_reported_with_file_and_line_and_others_still_run(
    sandbox: Sandbox,
) -> None:
    sandbox.write_note(
        note_with(
            "- this line is not an entry",
            "- ok: `codex exec fine`",
            f"  - dir: {sandbox.root}",
            '- broken: `tmux new -d -s broken "unterminated`',
        )
    )
    sandbox.allow("ok")

    result = sandbox.check("--quiet")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("memory/2026-11-24.md:5: cannot read this entry")
    assert lines[1].startswith("memory/2026-11-24.md:8: cannot read the tmux line")
    assert len(lines) == 2
    sandbox.wait(lambda: sandbox.calls() == [f"{sandbox.root}|exec fine"])
    again = sandbox.check("--quiet")
    assert (again.returncode, again.stderr) == (1, "")  # printed once, still needs a person


def test_unsafe_names_are_refused_and_nothing_runs(sandbox: Sandbox) -> None:
    for name in ("x;touch pwned", "a.b", "-x", "häst"):
        result = sandbox.run("launch", name, "--dir", str(sandbox.root), "--", "touch", "pwned")
        assert result.returncode != 0
        assert not sandbox.note().exists()
    sandbox.write_note(note_with("- x;touch pwned: `touch pwned`", "- a.b: `touch pwned`"))
    result = sandbox.check()
    assert result.returncode == 1
    assert result.stderr.count("invalid session name") == 2
    assert not (sandbox.root / "pwned").exists()
    assert not (sandbox.home / "pwned").exists()
    assert not sandbox.server.is_alive()


def test_launch_refuses_a_missing_dir(sandbox: Sandbox) -> None:
    result = sandbox.run("launch", "api", "--dir", str(sandbox.root / "nope"), "--", "codex")
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert not sandbox.note().exists()
    assert not sandbox.server.is_alive()
