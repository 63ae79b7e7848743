"""Daily notes: parse text into entries.

Parsing works on strings; reading and writing files happens at the edge (`notebook`).
The edits heartbeat makes are in `edit`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from datetime import date
from typing import Any

from heartbeat.errors import NoteError
from heartbeat.frozen import frozen
from heartbeat.model import Entry
from heartbeat.shell import KNOWN_VARIABLES

SECTION_TITLE = "Active Long-Running Processes"
BOM = "\ufeff"
_SECTION_KEY = SECTION_TITLE.casefold()
# A day's note: `YYYY-MM-DD.md`, or a slugged one beside it, `YYYY-MM-DD-<slug>.md`, as
# OpenClaw's session-memory hook writes (`2026-01-16-vendor-pitch.md`, `2026-01-16-1430.md`).
SLUG = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
NOTE_NAME = re.compile(rf"(\d{{4}})-(\d{{2}})-(\d{{2}})(?:-({SLUG}))?\.md")
CLOSED_PREFIX = "closed"  # a status line that closes an entry without a box starts so
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@frozen
class Note:
    """What one note says: its entries, and what in it could not be read."""

    where: str
    entries: tuple[Entry, ...]
    problems: tuple[NoteError, ...]
    # 0-based line after which a carried-over entry is added, or None without a section.
    append_after: int | None
    front_matter: dict[str, Any] = field(default_factory=dict)
    append_gap: bool = True  # a new entry needs a blank line before it
    fatal: bool = False  # heartbeat must not edit this note
    front_matter_source: str = ""  # the YAML text, so that an unchanged one is not reread

    @functools.cached_property
    def by_key(self) -> dict[tuple[str, str], list[Entry]]:
        """The entries of each socket and name (a note may log one name twice)."""
        found: dict[tuple[str, str], list[Entry]] = {}
        for entry in self.entries:
            found.setdefault(entry.key, []).append(entry)
        return found


@frozen
class ReadContext:
    """What parsing needs from outside: the default socket and the environment."""

    default_socket: str
    env: Mapping[str, str]

    @property
    def home(self) -> str:
        return self.env.get("HOME") or os.path.expanduser("~")

    def inputs(self) -> tuple[str | int | None, ...]:
        """Everything from outside that a parse depends on (for the parse cache)."""
        variables = (self.env.get(name) for name in (*KNOWN_VARIABLES, "TMUX_TMPDIR"))
        return (self.default_socket, self.home, os.getuid(), *variables)


def split_lines(text: str) -> list[str]:
    """Lines with their own endings, broken where markdown-it breaks them."""
    lines: list[str] = []
    start = 0
    for match in _LINE_BREAK.finditer(text):
        lines.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def note_date(filename: str) -> date | None:
    named = note_name(filename)
    return named[0] if named is not None else None


def note_name(filename: str) -> tuple[date, str] | None:
    """The day a note is of and its slug ("" for the day's plain note), or None for a
    file that is not a daily note (`2026-12-02.md.bak`, `2026-12-02-.md`, `2026-02-30.md`).
    A day's notes are read in this order: the plain one first, then by slug."""
    match = NOTE_NAME.fullmatch(filename)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3])), match[4] or ""
    except ValueError:
        return None


def parse(
    text: str, where: str, day: date, context: ReadContext, earlier: Note | None = None
) -> Note:
    """Read the entries of a note's "Active Long-Running Processes" sections.

    `earlier` is this note as last parsed, if known: its front matter, if unchanged, is
    taken as it was, without loading YAML.
    """
    lines = split_lines(text)
    if lines and lines[0].startswith(BOM):
        # Some editors begin a UTF-8 file with a byte-order mark: not part of its heading.
        lines[0] = lines[0][1:]
    problems: list[NoteError] = []
    front_matter, source, body = _front_matter(lines, where, problems, earlier)
    if problems:
        # A note whose front matter is broken is left alone until a person mends it.
        return Note(where, (), tuple(problems), None, front_matter, fatal=True)
    if _SECTION_KEY not in text.casefold():
        return Note(where, (), tuple(problems), None, front_matter, front_matter_source=source)

    from heartbeat.notes.entry import read_item  # here: a note read from the cache needs none

    tokens = _markdown().parse(body)
    entries: list[Entry] = []
    append_after: int | None = None
    append_gap = True
    sections = list(_sections(tokens))
    if not sections:
        problems += _title_not_a_heading(lines, where)
    for heading_line, start, end in sections:
        # New entries go after the section's last non-blank line ...
        last = (tokens[end].map or [0])[0] - 1 if end < len(tokens) else len(lines) - 1
        while last > heading_line and not lines[last].strip():
            last -= 1
        append_after, append_gap = last, True
        for item_start, item_end in _top_level_items(tokens, start, end):
            item_map = tokens[item_start].map or [0, 0]
            # ... right below the list when that line ends one of its items, else after
            # a blank line, so that prose or an HTML block cannot swallow the entry.
            if item_map[0] <= last < item_map[1]:
                append_gap = False
            entry_or_error = read_item(tokens, item_start, item_end, lines, where, day, context)
            if isinstance(entry_or_error, Entry):
                entries.append(entry_or_error)
            elif entry_or_error is not None:
                problems.append(entry_or_error)
    return Note(
        where,
        tuple(entries),
        tuple(problems),
        append_after,
        front_matter,
        append_gap,
        front_matter_source=source,
    )


@functools.cache
def _markdown() -> Any:
    """The block parser. Inline parsing is left out: entries are read from the raw text
    of their paragraphs, and inline parsing would make a note half again as slow to read."""
    from markdown_it import MarkdownIt  # imported here: most checks never parse a note

    return MarkdownIt("commonmark").disable("inline")


def _front_matter(
    lines: list[str], where: str, problems: list[NoteError], earlier: Note | None
) -> tuple[dict[str, Any], str, str]:
    """The YAML front matter, its text, and the body with the front matter blanked out.

    The front matter's lines become empty lines, so markdown-it's line numbers are the
    file's line numbers.
    """
    if not lines or lines[0].rstrip("\r\n") != "---":
        return {}, "", "".join(lines)
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n").rstrip() in ("---", "..."):
            break
    else:
        return {}, "", "".join(lines)
    raw = "".join(lines[1:index])
    body = "\n" * (index + 1) + "".join(lines[index + 1 :])
    if earlier is not None and not earlier.fatal and earlier.front_matter_source == raw:
        return earlier.front_matter, raw, body
    # Imported here: only notes whose front matter is new need YAML.
    from frontmatter.default_handlers import YAMLHandler

    metadata: dict[str, Any] = {}
    try:
        loaded = YAMLHandler().load(raw)
        if isinstance(loaded, dict):
            metadata = loaded
        elif loaded is not None:
            problems.append(NoteError(where, 1, "front matter is not a YAML mapping"))
    except Exception as error:  # the YAML library raises many kinds
        mark = getattr(error, "problem_mark", None)
        line = 2 + (mark.line if mark is not None else 0)
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        problems.append(NoteError(where, line, f"invalid YAML front matter: {reason}"))
    return metadata, raw, body


def _title_not_a_heading(lines: Sequence[str], where: str) -> list[NoteError]:
    """A line that is the section's title but not a heading (`**Active Long-Running
    Processes**`, a title indented into a code block): its entries would go unwatched."""
    for number, line in enumerate(lines, 1):
        bare = line.strip().strip("#*_>:` \t-").strip().casefold()
        if bare == _SECTION_KEY:
            fix = f"make it a heading: ## {SECTION_TITLE}"
            return [NoteError(where, number, f"the section title is not a heading: {fix}")]
    return []


def _sections(tokens: Sequence[Any]) -> Iterable[tuple[int, int, int]]:
    """Heading line and token range of each section whose heading is the section title."""
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        title = tokens[index + 1].content.strip().rstrip(":").strip().casefold()
        if title != _SECTION_KEY:
            continue
        level = int(token.tag[1])
        end = index + 3
        while end < len(tokens):
            other = tokens[end]
            if other.type == "heading_open" and int(other.tag[1]) <= level:
                break
            end += 1
        yield token.map[0], index + 3, end


def _top_level_items(tokens: Sequence[Any], start: int, end: int) -> Iterable[tuple[int, int]]:
    for index in range(start, end):
        token = tokens[index]
        if token.type == "list_item_open" and token.level == 1:
            close = index + 1
            while not (tokens[close].type == "list_item_close" and tokens[close].level == 1):
                close += 1
            yield index, close
