"""Parsing notes from strings, and the minimal edits."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heartbeat.notes.edit import Edit, apply_edits, status_text
from heartbeat.notes.parse import Note, ReadContext, split_lines
from heartbeat.notes.parse import parse as parse_note

CONTEXT = ReadContext("/home/ada/.tmux/sock", {"HOME": "/home/ada", "USER": "ada"})
DAY = date(2026, 11, 24)
KEY_A = ("/home/ada/.tmux/sock", "a")


def parse(text: str) -> Note:
    return parse_note(text, "memory/2026-11-24.md", DAY, CONTEXT)


def section(*rows: str, heading: str = "## Active Long-Running Processes") -> str:
    return f"# Day\n\n{heading}\n\n" + "\n".join(rows) + "\n"


class FormCase(NamedTuple):
    test_id: str
    rows: tuple[str, ...]
    name: str
    dir: str
    command: str | tuple[str, ...]
    wrapped: bool
    is_open: bool = True


FORM_CASES = [
    FormCase(
        "launch form",
        (
            "- [ ] **api** — `codex exec 'x'`",
            "  - dir: `~/src/api`",
            "  - started: 2026-11-24 10:00",
        ),
        "api",
        "/home/ada/src/api",
        "codex exec 'x'",
        True,
    ),
    FormCase(
        "name colon code", ("- web: `ralphy --codex`",), "web", "/home/ada", "ralphy --codex", True
    ),
    FormCase(
        "bold name with en dash and dir sub-item",
        ("- **docs** – `codex exec d`", "  - dir: /srv/docs"),
        "docs",
        "/srv/docs",
        "codex exec d",
        True,
    ),
    FormCase(
        "ticked box closes", ("- [x] **api** — `true`",), "api", "/home/ada", "true", True, False
    ),
    FormCase("struck name closes", ("- ~~api~~: `true`",), "api", "/home/ada", "true", True, False),
    FormCase(
        "closed status line closes",
        ("- api: `true`", "  - 2026-11-24 10:00 — closed: finished (exit 0)"),
        "api",
        "/home/ada",
        "true",
        True,
        False,
    ),
    FormCase(
        "skill line in a code span",
        ('- `tmux -S ~/.tmux/sock new -d -s sk "cd ~/p && codex exec \\$X"`',),
        "sk",
        "/home/ada/p",
        "cd ~/p && codex exec $X",
        False,
    ),
    FormCase(
        "skill line in a fenced block, continued",
        (
            "- fenced",
            "  ```sh",
            "  tmux new -d -s fenced -c /srv \\",
            "    'codex exec y'",
            "  ```",
        ),
        "fenced",
        "/srv",
        "codex exec y",
        False,
    ),
    FormCase(
        "a multi-line command in a fence",
        ("- multi:", "  ```sh", "  codex exec one &&", "  codex exec two", "  ```"),
        "multi",
        "/home/ada",
        "codex exec one &&\ncodex exec two",
        True,
    ),
]


@pytest.mark.parametrize("case", FORM_CASES, ids=[c.test_id for c in FORM_CASES])
def test_each_form_reads_as_an_entry(case: FormCase) -> None:
    note = parse(section(*case.rows))
    assert note.problems == ()
    [entry] = note.entries
    assert (entry.name, entry.dir, entry.command, entry.wrapped, entry.is_open) == (
        case.name,
        case.dir,
        case.command,
        case.wrapped,
        case.is_open,
    )
    assert entry.line == 5


def test_headings_in_code_and_other_sections_do_not_count() -> None:
    text = (
        "```\n## Active Long-Running Processes\n- a: `x`\n```\n\n"
        "### active long-running processes:\n\n- b: `y`\n\n#### Detail\n\n- c: `z`\n\n"
        "### Other\n\n- d: `w`\n"
    )
    assert [entry.name for entry in parse(text).entries] == ["b", "c"]


def test_a_heading_within_an_entry_or_a_quote_is_no_section_boundary() -> None:
    """Only headings at the note's top level make sections: an entry's head underlined
    while a sub-item is typed (`  ---`), or a heading in an item or a quote, is part of it."""
    text = "## Active Long-Running Processes\n- a: `x`\n- b: `y`\n  ---\n- ## Meetings\n- c: `z`\n"
    note = parse(text)
    assert [entry.name for entry in note.entries] == ["a", "c"]  # b's head is a heading now
    assert (note.append_after, note.append_gap) == (5, False)  # below c, in the list
    quoted = parse("> ## Active Long-Running Processes\n> - a: `x`\n")
    assert quoted.entries == ()
    assert ["the section title is not a heading" in str(p) for p in quoted.problems] == [True]


def test_a_section_within_a_section_reads_each_entry_once() -> None:
    """A sub-heading that is the section's title again starts a section of its own: its
    entries are read once, not once for each section around them."""
    text = (
        "## Active Long-Running Processes\n- a: `x`\n\n"
        "### Active long-running processes:\n- b: `y`\n\n## Meetings\n"
    )
    note = parse(text)
    assert [entry.name for entry in note.entries] == ["a", "b"]
    assert note.problems == ()


def test_entries_keep_their_socket() -> None:
    note = parse(section("- a: `x`", "  - socket: /tmp/other.sock", "- `tmux new -s b y`"))
    assert [entry.socket for entry in note.entries] == [
        "/tmp/other.sock",
        f"/tmp/tmux-{__import__('os').getuid()}/default",
    ]


class BadCase(NamedTuple):
    test_id: str
    row: str
    message: str


BAD_CASES = [
    BadCase("no command", "- just words", "cannot read this entry"),
    BadCase("bad name", "- a.b: `x`", "invalid session name 'a.b'"),
    BadCase("unclosed span", "- a: `x", "not closed"),
    BadCase("relative dir", "- a: `x`\n  - dir: src", "dir must be an absolute path"),
    BadCase("unknown variable", '- `tmux new -s a "cd $P && x"`', "`$P` would be expanded"),
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c.test_id for c in BAD_CASES])
def test_unreadable_entries_name_file_and_line(case: BadCase) -> None:
    note = parse(section("- ok: `x`", case.row))
    assert [entry.name for entry in note.entries] == ["ok"]
    [problem] = note.problems
    assert str(problem).startswith("memory/2026-11-24.md:6: ")
    assert case.message in str(problem)


def test_invalid_front_matter_names_its_line_and_leaves_the_note_alone() -> None:
    note = parse("---\ntitle: ok\ntags: [unclosed\n---\n" + section("- a: `x`"))
    assert (note.entries, note.fatal) == ((), True)
    assert str(note.problems[0]).startswith("memory/2026-11-24.md:")
    assert "invalid YAML front matter" in str(note.problems[0])


def test_edits_insert_status_lines_and_tick_boxes_only() -> None:
    text = section("- [ ] **a** — `x`", "  * dir: /srv", "- b: `y`", "", "More prose.")
    note = parse(text)
    edits = [
        Edit(("/home/ada/.tmux/sock", "a"), "2026-11-24 10:00", "finished (exit 0)", True),
        Edit(("/home/ada/.tmux/sock", "b"), "2026-11-24 10:00", "finished (exit 0)", True),
    ]
    assert apply_edits(text, note, edits) == section(
        "- [x] **a** — `x`",
        "  * dir: /srv",
        "  * 2026-11-24 10:00 — finished (exit 0)",
        "- b: `y`",
        "  - 2026-11-24 10:00 — closed: finished (exit 0)",
        "",
        "More prose.",
    )


def test_an_entry_added_to_a_note_without_the_section_adds_the_section() -> None:
    text = "# Day\r\n\r\nProse, no final newline"
    result = apply_edits(text, parse(text), [], added=["- a: `x`"])
    assert result == (
        "# Day\r\n\r\nProse, no final newline\r\n\r\n## Active Long-Running Processes\r\n\r\n- a: `x`"
    )
    assert [entry.name for entry in parse(result).entries] == ["a"]


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029a- ")), max_size=60)
)
def test_lines_break_where_markdown_breaks_them(text: str) -> None:
    """Only at a line feed, a carriage return or both: markdown-it's line numbers are the
    ones heartbeat edits by. Python's `splitlines` breaks at eight characters more."""
    from markdown_it import MarkdownIt

    lines = split_lines(text)
    assert "".join(lines) == text
    for line in lines[:-1]:
        body = line.removesuffix("\r\n") if line.endswith("\r\n") else line[:-1]
        assert line[len(body) :] in ("\n", "\r", "\r\n") and not set(body) & set("\r\n")
    paragraphs = [t.map for t in MarkdownIt("commonmark").parse(text) if t.type == "paragraph_open"]
    for start, end in paragraphs:  # each starts and ends on a line of its own text
        assert all(lines[n].strip(" \r\n") for n in range(start, end))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("#- *`[]x~:\n\r\tabc—\\\"'$")), max_size=200))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    note = parse(section(text))
    for entry in note.entries:
        edited = apply_edits(text, note, [Edit(entry.key, "2026-11-24 10:00", "x", close=True)])
        assert len(edited) >= len(text)


@settings(max_examples=100, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
        max_size=40,
    )
)
def test_our_status_lines_never_read_as_entries(detail: str) -> None:
    status = status_text("2026-11-24 10:00", detail.strip() or "dead, restarted")
    assert parse(section(f"- {status}")).entries == ()


def test_the_title_in_prose_is_not_a_section() -> None:
    note = parse("# Day\n\nMoved my Active Long-Running Processes to the wiki.\n")
    assert (note.entries, note.problems, note.append_after) == ((), (), None)


def test_an_entry_added_after_an_html_block_stays_an_entry() -> None:
    text = section("- a: `x`", "", "<details>", "old stuff", "</details>")
    result = apply_edits(text, parse(text), [], added=["- b: `y`"])
    assert [entry.name for entry in parse(result).entries] == ["a", "b"]
    tight = section("- a: `x`", "  - dir: /srv")
    assert apply_edits(tight, parse(tight), [], added=["- b: `y`"]) == section(
        "- a: `x`", "  - dir: /srv", "- b: `y`"
    )


@pytest.mark.parametrize(
    ("row", "name", "is_open"),
    [
        ("- api-: `x`", "api-", True),
        ("- api_ — `x`", "api_", True),
        ("- api: `x`\n  - 2026-11-24 10:00 — closed the PR, still going", "api", True),
        ("- api: `x`\n  - 2026-11-24 10:00 — closed: finished (exit 0)", "api", False),
    ],
)
def test_names_keep_their_own_characters_and_only_closed_colon_closes(
    row: str, name: str, is_open: bool
) -> None:
    [entry] = parse(section(row)).entries
    assert (entry.name, entry.is_open) == (name, is_open)


def test_edits_applied_twice_change_nothing_the_second_time() -> None:
    text = section("- [ ] **a** — `x`", "- c: `z`")
    edits = [
        Edit(KEY_A, "2026-11-24 10:00", "finished (exit 0)", True),
        Edit(("/home/ada/.tmux/sock", "c"), "2026-11-24 10:00", "dead, restarted"),
    ]
    once = apply_edits(text, parse(text), edits, added=["- b: `y`"])
    twice = apply_edits(once, parse(once), edits, added=["- b: `y`"])
    assert once != text
    assert twice == once
