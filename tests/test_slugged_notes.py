"""A day's slugged notes, `memory/YYYY-MM-DD-<slug>.md`, beside its plain one.

OpenClaw's bundled session-memory hook (openclaw/openclaw,
src/hooks/bundled/session-memory/HOOK.md and handler.ts) writes
`<workspace>/memory/YYYY-MM-DD-slug.md` on `/new`: the slug an LLM made of the
conversation, lower case and hyphenated (`2026-01-16-vendor-pitch.md`,
`2026-01-16-api-design.md`), or the time as HHMM when that fails (`2026-01-16-1430.md`).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from conftest import TODAY, Sandbox
from test_cost import parsed  # noqa: F401  (a fixture)
from test_launch_and_check import launch

from heartbeat import config
from heartbeat.notes import cache as notecache
from heartbeat.notes.notebook import Notebook, select

SECTION = "## Active Long-Running Processes\n\n"
# What the session-memory hook writes at the top of the file (handler.ts).
HOOK_HEAD = (
    "# Session: {day} 14:30:00 UTC\n\n"
    "- **Session Key**: agent:main:main\n"
    "- **Session ID**: abc123def456\n"
    "- **Source**: telegram\n\n"
)


def slugged(box: Sandbox, slug: str, *entries: str, day: str = TODAY) -> str:
    path = box.notes / f"{day}-{slug}.md"
    path.write_text(HOOK_HEAD.format(day=day) + SECTION + "".join(entries), encoding="utf-8")
    return path.name


def hand(box: Sandbox, name: str, task: str = "work") -> str:
    return f"- {name}: `codex exec {task}`\n  - dir: {box.root}\n"


def book_of(box: Sandbox) -> Notebook:
    book = Notebook(config.load(box.env), date.fromisoformat(TODAY), keep_cache=True)
    book.read_all()
    return book


def test_an_entry_in_todays_slugged_note_is_watched_where_it_is(sandbox: Sandbox) -> None:
    name = slugged(sandbox, "vendor-pitch", hand(sandbox, "pitch"))
    sandbox.allow("pitch")

    result = sandbox.check()

    assert (result.returncode, result.stdout) == (0, "pitch: new -> dead (restarted)\n")
    sandbox.wait(lambda: sandbox.calls() == [f"{sandbox.root}|exec work"])
    # Its status line is written under it, in its own note; it is not carried over into
    # today's plain note, which nothing needed to create.
    text = (sandbox.notes / name).read_text()
    assert text.startswith(HOOK_HEAD.format(day=TODAY) + SECTION + hand(sandbox, "pitch"))
    assert "  - 2026-11-24 10:00 — dead · not a git repo, restarted" in text
    assert not sandbox.note().exists()
    assert sandbox.check().stdout == ""
    status = sandbox.run("status", "--json")
    (row,) = json.loads(status.stdout)["entries"]
    assert (Path(row["note"]["path"]).name, row["note"]["line"]) == (name, 9)


def test_an_older_days_slugged_entry_is_carried_over_like_the_plain_ones(
    sandbox: Sandbox,
) -> None:
    name = slugged(sandbox, "api-design", hand(sandbox, "api"), day="2026-11-23")
    sandbox.write_note(SECTION + hand(sandbox, "docs"), day="2026-11-23")
    sandbox.allow("api", "docs")

    result = sandbox.check()

    assert sorted(result.stdout.splitlines()) == [
        "api: new -> dead (restarted)",
        "docs: new -> dead (restarted)",
    ]
    today = sandbox.note().read_text()
    assert "carried over from 2026-11-23-api-design.md" in today
    assert "carried over from 2026-11-23.md" in today
    # The plain note's entries first, then the slugged note's: the day's order.
    assert today.index("- docs:") < today.index("- api:")
    old = (sandbox.notes / name).read_text()
    assert "— closed: continued in 2026-11-24.md" in old
    assert sandbox.check().stdout == ""


def test_a_launch_writes_into_the_plain_note_even_beside_a_slugged_one(
    sandbox: Sandbox,
) -> None:
    name = slugged(sandbox, "1430")  # the hook's fallback name: the time, HHMM
    before = (sandbox.notes / name).read_bytes()

    launch(sandbox, "api", "codex", "exec", "work")

    assert (sandbox.notes / name).read_bytes() == before
    assert "**api**" in sandbox.note().read_text()


def test_a_days_notes_are_read_plain_first_then_by_slug(sandbox: Sandbox) -> None:
    slugged(sandbox, "zz-last", hand(sandbox, "api", "third"))
    slugged(sandbox, "bug-fix", hand(sandbox, "api", "second"))
    sandbox.write_note(SECTION + hand(sandbox, "api", "first"))

    book = book_of(sandbox)
    selection = select(book)

    assert [loaded.path.name for loaded in book.loaded] == [
        "2026-11-24.md",
        "2026-11-24-bug-fix.md",
        "2026-11-24-zz-last.md",
    ]
    # The newest entry of a name is watched: the last in the day's order.
    [(loaded, entry)] = selection.managed
    assert (loaded.path.name, entry.command) == ("2026-11-24-zz-last.md", "codex exec third")
    assert sorted(Path(problem.split(":")[0]).name for problem in selection.problems) == [
        "2026-11-24-bug-fix.md",
        "2026-11-24.md",
    ]


def test_slugged_notes_that_did_not_change_are_not_parsed_again(
    sandbox: Sandbox,
    parsed: list[str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notecache, "SETTLE_NS", 0)
    slugged(sandbox, "vendor-pitch", hand(sandbox, "pitch"))
    slugged(sandbox, "api-design", hand(sandbox, "api"), day="2026-11-20")

    first = book_of(sandbox)
    assert sorted(Path(label).name for label in parsed) == [
        "2026-11-20-api-design.md",
        "2026-11-24-vendor-pitch.md",
    ]
    second = book_of(sandbox)

    assert len(parsed) == 2  # both from the cache
    assert [loaded.text for loaded in second.loaded] == [None, None]
    assert [(loaded.day, loaded.slug) for loaded in second.loaded] == [
        (date(2026, 11, 20), "api-design"),
        (date(2026, 11, 24), "vendor-pitch"),
    ]
    assert [loaded.note.entries for loaded in second.loaded] == [
        loaded.note.entries for loaded in first.loaded
    ]


@pytest.mark.parametrize(
    "file_name",
    [
        "2026-11-24.md.bak",
        "2026-11-24-.md",
        "2026-11-24-vendor-pitch-.md",
        "2026-11-24--pitch.md",
        "2026-11-24-vendor pitch.md",
        "2026-02-30-pitch.md",
        "2026-13-01.md",
        "2026-11-24-pitch.md.bak",
        "x2026-11-24-pitch.md",
    ],
)
def test_files_that_merely_look_like_notes_are_ignored(sandbox: Sandbox, file_name: str) -> None:
    (sandbox.notes / file_name).write_text(SECTION + hand(sandbox, "ghost"))

    result = sandbox.check()

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert (sandbox.notes / file_name).read_text() == SECTION + hand(sandbox, "ghost")
    assert not sandbox.note().exists()


def test_a_sync_conflict_copy_of_a_slugged_note_is_reported(sandbox: Sandbox) -> None:
    (sandbox.notes / "2026-11-24-vendor-pitch (conflicted copy).md").write_text(
        SECTION + hand(sandbox, "ghost")
    )

    result = sandbox.check()

    assert result.returncode == 1
    assert "a sync conflict copy of 2026-11-24-vendor-pitch.md, not read" in result.stderr, (
        result.stderr
    )
