"""A note changed below a top-level heading, or below an item of its entries' section, is
read again from there, and what it says is what reading it whole says (hypothesis, over
notes made of every kind of block, changed by whole lines and within a line).

Read again from a heading at the top level and the first column: markdown ends every
block before such a line (CommonMark 0.31, 4.2 and 5: a list item, block quote,
paragraph or indented code cannot continue over it; a fenced code block or an HTML block
can, and then the heading is no heading, so no top-level heading token is there).
Read again from an item of the section that begins in the first column: the blocks of
the items above it end there (5.2: an item holds only lines indented to its content, or
a paragraph's lazy lines, which a new item interrupts); the section is known to go on.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from heartbeat import records
from heartbeat.notes import parse as parsing
from heartbeat.notes.parse import Note, ReadContext

CONTEXT = ReadContext("/home/ada/.tmux/sock", {"HOME": "/home/ada", "USER": "ada"})
DAY = date(2026, 11, 24)

BLOCKS = st.sampled_from(
    [
        "## Active Long-Running Processes\n",
        "### Active long-running processes:\n",
        "# Tuesday\n",
        "## Meetings\n",
        "### Sub-heading\n",
        "  ## Indented heading\n",
        "Underlined heading\n---\n",
        "Underlined too\n===\n",
        "- [ ] **api** — `codex exec --full-auto 'task'`\n  - dir: `/srv/api`\n  - started: 2026-11-24 09:00\n",
        "- [x] **done** — `true`\n  - dir: /tmp\n  - 2026-11-24 11:00 — finished (exit 0)\n",
        "- web: `ralphy --codex --prd PRD.md`\n  - dir: /srv/web\n",
        '- sk:\n  ```sh\n  tmux -S /tmp/s new -d -s sk "cd /tmp && codex exec x; sleep 999999"\n  ```\n',
        "- a.b: `touch pwned`\n",
        "- loose item\n\n  continued after a blank line\n",
        "1. Standup.\n2. Planning.\n",
        "Prose with ünïcode.\n",
        "Prose that goes on\n## Heading right after prose\n",
        "> a quote\n> ## quoted heading\n",
        "> lazy quote\n## heading after a quote\n",
        "```\n## not a heading: fenced\n```\n",
        "````\n```\n## still fenced\n````\n",
        "```\n## an unclosed fence\n",
        "~~~\n# tilde fenced\n~~~\n",
        "<!--\n## inside a comment\n-->\n",
        "<details>\n\n## inside details\n\n</details>\n",
        "    ## indented code\n",
        "\n",
        "\n\n",
        "\t# a tab\n",
        "[ref]: /url\n",
        "---\n",
        "title: daily\n",
        "#tag\n---\n",
        "#\n",
        # Items read again from: of each list marker, indented, empty, lazily continued,
        # holding an unclosed fence, after an HTML block, with Windows line breaks.
        "- b2: `sleep 2`\n  - dir: /tmp\n",
        "* star: `sleep 3`\n  - dir: /tmp\n",
        "2. num: `sleep 4`\n   - dir: /tmp\n",
        " - one space: `sleep 5`\n   - dir: /tmp\n",
        "  - indented: `sleep 6`\n",
        "    - deeper: `sleep 6`\n",
        "-\n",
        "-   \n  spaced: `sleep 7`\n",
        "lazy continuation line\n",
        "  - dir: /elsewhere\n",
        "  - 2026-11-24 12:00 — finished (exit 0)\n",
        "- fenced:\n  ```\n  - inside the fence\n",
        "<div>\n- in html: `sleep 8`\n",
        "- crlf: `sleep 9`\r\n  - dir: /tmp\r\n",
        "> - quoted: `sleep 1`\n",
        "- [ ] **boxed** — `sleep 1`\n  - dir: /tmp\n\n",
        # Headings within items: underlined as a sub-item is typed, or written in one.
        "- y: `sleep 1`\n  ===\n",
        "  -\n",
        "- ## Nested heading\n",
        "> ## Active Long-Running Processes\n",
    ]
)
# Some notes end without a line break, as some editors save them.
NOTES = st.tuples(st.lists(BLOCKS, max_size=14), st.booleans()).map(
    lambda made: "".join(made[0]).rstrip("\n") if made[1] else "".join(made[0])
)


def read(text: str, reusable: Note | None = None) -> Note:
    return parsing.parse(text, "memory/2026-11-24.md", DAY, CONTEXT, None, reusable)


def same(one: Note, other: Note) -> None:
    # Problems are exceptions, equal only to themselves: compared by what they say. The
    # splits may differ (a part without a section is not parsed, so its headings are not
    # known); that they lead to the same reading is what the next change tries.
    assert records.replace(one, problems=(), splits=(), item_starts=()) == records.replace(
        other, problems=(), splits=(), item_starts=()
    )
    assert [(e.options, e.digest) for e in one.entries] == [
        (e.options, e.digest) for e in other.entries
    ]
    assert [str(p) for p in one.problems] == [str(p) for p in other.problems]


WITH_A_SUB_HEADING = (
    "## Active Long-Running Processes\n- web: `ralphy --codex --prd PRD.md`\n  - dir: /srv/web\n"
    "### Sub-heading\n- a: `sleep 1`\n  - dir: /tmp\n### Sub-heading\n- b: `sleep 2`\n"
    "  - dir: /tmp\n## Meetings\n"
)


@settings(max_examples=400, deadline=None)
@given(NOTES, st.integers(0, 60), st.integers(0, 3), st.lists(BLOCKS, max_size=3).map("".join))
@example(WITH_A_SUB_HEADING, 7, 0, "1. Standup.\n")  # below a sub-heading of the section
@example(WITH_A_SUB_HEADING, 4, 0, "Prose with ünïcode.\n")
@example("```\n" + WITH_A_SUB_HEADING, 12, 0, "```\n")  # the fence closed: all new
@example("---\n## Active Long-Running Processes\n", 2, 0, "---\n")  # now a front matter
# A heading on a last line without its line break, typed on: `#` becomes `### Later`.
@example(
    "## Active Long-Running Processes\n- a: `sleep 1`\n  - dir: /tmp\n\n#",
    4,
    1,
    "### Later\n- b: `sleep 2`\n  - dir: /tmp\n",
)
# `#tag` over `---` is an underlined heading, which the line below decides.
@example(
    "## Active Long-Running Processes\n- a: `sleep 1`\n  - dir: /tmp\n\n#tag\n---\n",
    5,
    1,
    "\n- b: `sleep 2`\n  - dir: /tmp\n",
)
def test_read_again_below_a_heading_as_when_read_whole(
    before: str, at: int, removed: int, inserted: str
) -> None:
    lines = before.splitlines(keepends=True)
    at = min(at, len(lines))
    after = "".join([*lines[:at], inserted, *lines[at + removed :]])

    first = read(before)
    again = read(after, reusable=first)

    same(again, read(after))
    # And from what was read in part, the next change too.
    changed = after + "## Later\n\n- late: `sleep 1`\n  - dir: /tmp\n"
    same(read(changed, reusable=again), read(changed))


PIECES = st.sampled_from(
    ["", " ", "  ", "-", "- ", "*", "1.", "#", "> ", "`", "```", "\n", "\r", "a", ":", "<div>"]
)


@settings(max_examples=400, deadline=None)
@given(NOTES, st.integers(0, 2_000), st.integers(0, 3), st.lists(PIECES, max_size=3).map("".join))
# An item's first line made indented: it joins the item above.
@example("## Active Long-Running Processes\n- a: `sleep 1`\n- b: `sleep 2`\n", 48, 0, "  ")
# The last line, an item without its line break, typed on: `- -` becomes a thematic
# break, `-` a paragraph or a lazy line of the paragraph above (`  - started: ...`).
@example(
    "## Active Long-Running Processes\n- [ ] **api** — `codex exec --full-auto 'task'`\n"
    "  - dir: `/srv/api`\n  - started: 2026-11-24 09:00\n-",
    2_000,
    0,
    "a",
)
@example("## Active Long-Running Processes\n- a: `sleep 1`\n- -", 2_000, 0, " -")
@example("## Active Long-Running Processes\n- a: `sleep 1`\n\n-", 2_000, 0, "a")
@example("## Active Long-Running Processes\n- a: `sleep 1`\n* b", 2_000, 0, ":")
# A sub-item begun under the last entry underlines its head (`  -`): a heading within
# the item, which does not end the section.
@example("## Active Long-Running Processes\n- a: `sleep 1`\n- b: `sleep 2`\n", 2_000, 0, "  -")
# An item's line broken in two: `- a` and `: `sleep 1``.
@example("## Active Long-Running Processes\n- a: `sleep 1`\n- b: `sleep 2`\n", 36, 0, "\n")
def test_read_again_after_a_change_within_a_line_as_when_read_whole(
    before: str, at: int, removed: int, inserted: str
) -> None:
    at = min(at, len(before))
    after = before[:at] + inserted + before[at + removed :]
    first = read(before)
    again = read(after, reusable=first)
    same(again, read(after))
    changed = after + "- late: `sleep 1`\n  - dir: /tmp\n"
    same(read(changed, reusable=again), read(changed))


def test_a_change_in_a_later_section_reads_only_that_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The typical edit of a daily note: a line added to another section."""
    active = "".join(
        f"- [ ] **agent{n}** — `sleep 86400`\n  - dir: `/srv`\n  - started: 2026-11-24 08:00\n\n"
        for n in range(50)
    )
    before = (
        f"# Tuesday\n\n## Active Long-Running Processes\n\n{active}## Meetings\n\n1. Standup.\n"
    )
    first = read(before)
    assert len(first.entries) == 50
    markdown = parsing._markdown()
    read_texts: list[str] = []

    class Recording:
        def parse(self, text: str) -> object:
            read_texts.append(text)
            return markdown.parse(text)

    monkeypatch.setattr(parsing, "_markdown", Recording)

    after = before + "2. Planning: next sprint.\n"
    again = read(after, reusable=first)

    assert read_texts == []  # no section below the change: nothing parsed
    assert again.entries == first.entries and again.append_after == first.append_after

    # A section added below: read from the heading above it.
    more = after + "\n## Active Long-Running Processes\n\n- late: `sleep 1`\n  - dir: /tmp\n"
    fourth = read(more, reusable=again)
    [text] = read_texts
    assert text.startswith("## Meetings\n\n1. Standup.\n")
    same(fourth, read(more))  # the lines of what was read in part are the file's
    assert [e.name for e in fourth.entries] == [*(e.name for e in first.entries), "late"]

    # A change within the section reads it again from the item above the change.
    read_texts.clear()
    edited = after.replace("agent7**", "agent7b**")
    third = read(edited, reusable=fourth)
    [text] = read_texts
    assert text.startswith("- [ ] **agent6**")
    assert [e.name for e in third.entries][6:9] == ["agent6", "agent7b", "agent8"]
    assert third.entries[:6] == first.entries[:6]

    # A line added at the section's end, as a person logs an entry by hand: read again
    # from the section's last item.
    read_texts.clear()
    logged = edited.replace("\n## Meetings", "- mine: `sleep 1`\n  - dir: /tmp\n\n## Meetings")
    fifth = read(logged, reusable=third)
    [text] = read_texts
    assert text.startswith("- [ ] **agent49**")
    assert [e.name for e in fifth.entries][-3:] == ["agent48", "agent49", "mine"]
    same(fifth, read(logged))
