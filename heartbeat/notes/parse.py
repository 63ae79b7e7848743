"""Daily notes: parse text into entries.

Parsing works on strings; reading and writing files happens at the edge (`notebook`).
The edits heartbeat makes are in `edit`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from heartbeat.errors import NoteError
from heartbeat.model import Entry
from heartbeat.records import field, frozen
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
    # Where the note can be read again from, when the text up to there is unchanged.
    splits: tuple[Split, ...] = ()

    @functools.cached_property
    def by_key(self) -> dict[tuple[str, str], list[Entry]]:
        """The entries of each socket and name (a note may log one name twice)."""
        found: dict[tuple[str, str], list[Entry]] = {}
        for entry in self.entries:
            found.setdefault(entry.key, []).append(entry)
        return found


@frozen
class Split:
    """A heading at the note's top level and first column, outside the section: every
    block before it ends there, so what follows reads the same whatever came before.
    When a note changes below one (a person adds to a later section), the note is read
    again from there, and what came before is taken from its last reading."""

    line: int  # 0-based
    digest: bytes  # of the text up to the end of that line
    end: int  # where in the text that line ends
    # How the note stood before it: its last section's place for a new entry.
    append_after: int | None
    append_gap: bool
    sections_before: int


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
    text: str,
    where: str,
    day: date,
    context: ReadContext,
    earlier: Note | None = None,
    reusable: Note | None = None,
) -> Note:
    """Read the entries of a note's "Active Long-Running Processes" sections.

    `earlier` is this note as last parsed, if known: its front matter, if unchanged, is
    taken as it was, without loading YAML. `reusable` is that parse when it was made
    with the same inputs: the note is then read again only from its last split (see
    `Split`) above which nothing changed.
    """
    raw_lines = split_lines(text)
    lines = list(raw_lines)
    if lines and lines[0].startswith(BOM):
        # Some editors begin a UTF-8 file with a byte-order mark: not part of its heading.
        lines[0] = lines[0][1:]
    problems: list[NoteError] = []
    front_matter, source, body, front_lines = _front_matter(lines, where, problems, earlier)
    if problems:
        # A note whose front matter is broken is left alone until a person mends it.
        return Note(where, (), tuple(problems), None, front_matter, fatal=True)
    if _SECTION_KEY not in text.casefold():
        return Note(where, (), tuple(problems), None, front_matter, front_matter_source=source)

    from heartbeat.notes.entry import read_item  # here: a note read from the cache needs none

    kept = _unchanged_until(reusable, text)
    if kept is not None and kept.line < front_lines:
        kept = None  # a front matter closed below it now: the heading is in it
    entries: list[Entry] = []
    append_after: int | None = None
    append_gap = True
    before = 0  # sections before the part read
    splits: list[Split] = []
    if kept is not None:
        # Blank lines for the part taken as it was, so that line numbers stay the file's.
        body = "\n" * kept.line + "".join(lines[kept.line :])
        assert reusable is not None
        entries = [entry for entry in reusable.entries if entry.span.head < kept.line]
        # Above it, only its entries' problems (none without a section above it: the
        # one said of a section title that is not a heading is looked for again below).
        problems = [p for p in reusable.problems if p.line <= kept.line and kept.sections_before]
        append_after, append_gap, before = kept.append_after, kept.append_gap, kept.sections_before
        splits = [split for split in reusable.splits if split.line < kept.line]
        if _SECTION_KEY not in body.casefold():
            # No section below it: nothing to parse (nor markdown to load). The split
            # itself stays the place to read again from.
            if not before:
                problems += _title_not_a_heading(lines, where)
            return Note(
                where,
                tuple(entries),
                tuple(problems),
                append_after,
                front_matter,
                append_gap,
                front_matter_source=source,
                splits=(*splits, kept),
            )
    tokens = _markdown().parse(body)
    sections = list(_sections(tokens))
    if not sections and not before:
        problems += _title_not_a_heading(lines, where)
    after_sections: list[tuple[int, int, int | None, bool]] = []  # heading, end, append
    for heading_line, start, end in sections:
        # New entries go after the section's last non-blank line ...
        last = (tokens[end].map or [0])[0] - 1 if end < len(tokens) else len(lines) - 1
        ends_at = last + 1
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
        after_sections.append((heading_line, ends_at, append_after, append_gap))
    splits += _splits(tokens, lines, raw_lines, text, kept, after_sections, before)
    return Note(
        where,
        tuple(entries),
        tuple(problems),
        append_after,
        front_matter,
        append_gap,
        front_matter_source=source,
        splits=tuple(splits),
    )


def _unchanged_until(reusable: Note | None, text: str) -> Split | None:
    """The last split of the note's last reading above which its text is unchanged."""
    if reusable is None or reusable.fatal:
        return None
    from heartbeat.notes.cache import digest_of  # the hash the parse cache keeps notes by

    for split in reversed(reusable.splits):
        if split.end <= len(text) and digest_of(text[: split.end]) == split.digest:
            return split
    return None


def _splits(
    tokens: Sequence[Any],
    lines: Sequence[str],
    raw_lines: Sequence[str],
    text: str,
    kept: Split | None,
    sections: Sequence[tuple[int, int, int | None, bool]],
    before: int,
) -> list[Split]:
    """The splits among the headings read, each with how the note stood above it."""
    from heartbeat.notes.cache import digest_of

    found: list[Split] = []
    ends: list[int] = []
    for token in tokens:
        if token.type != "heading_open" or token.level != 0 or not token.map:
            continue
        line = token.map[0]
        if not token.markup.startswith("#") or not lines[line].startswith("#"):
            continue  # underlined (`#tag` over `---` is one), or indented
        if not raw_lines[line].endswith(("\n", "\r")):
            continue  # the note's last line, still being typed: `#` may become `#wip`
        if any(heading < line < ends_at for heading, ends_at, _, _ in sections):
            continue  # within a section: its entries would be read apart
        if not ends:  # where each line ends in the text, counted once
            total = 0
            for raw in raw_lines:
                total += len(raw)
                ends.append(total)
        above = [section for section in sections if section[0] < line]
        append_after, append_gap = (
            (above[-1][2], above[-1][3])
            if above
            else (kept.append_after, kept.append_gap)
            if kept is not None
            else (None, True)
        )
        end = ends[line]
        found.append(
            Split(
                line,
                digest_of(text[:end]),
                end,
                append_after,
                append_gap,
                before + len(above),
            )
        )
    return found


@functools.cache
def _markdown() -> Any:
    """The block parser. Inline parsing is left out: entries are read from the raw text
    of their paragraphs, and inline parsing would make a note half again as slow to read."""
    from markdown_it import MarkdownIt  # imported here: most checks never parse a note

    return MarkdownIt("commonmark").disable("inline")


def _front_matter(
    lines: list[str], where: str, problems: list[NoteError], earlier: Note | None
) -> tuple[dict[str, Any], str, str, int]:
    """The YAML front matter, its text, the body with the front matter blanked out, and
    how many lines the front matter takes.

    The front matter's lines become empty lines, so markdown-it's line numbers are the
    file's line numbers.
    """
    if not lines or lines[0].rstrip("\r\n") != "---":
        return {}, "", "".join(lines), 0
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n").rstrip() in ("---", "..."):
            break
    else:
        return {}, "", "".join(lines), 0
    raw = "".join(lines[1:index])
    body = "\n" * (index + 1) + "".join(lines[index + 1 :])
    if earlier is not None and not earlier.fatal and earlier.front_matter_source == raw:
        return earlier.front_matter, raw, body, index + 1
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
    return metadata, raw, body, index + 1


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
    """Heading line and token range of each section whose heading is the section title.

    A section ends at a heading of its level or above, or at one that is the section's
    title again (a sub-heading of that name starts a section of its own: its entries are
    read once)."""
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or not _is_section_title(tokens, index):
            continue
        level = int(token.tag[1])
        end = index + 3
        while end < len(tokens):
            other = tokens[end]
            if other.type == "heading_open" and (
                int(other.tag[1]) <= level or _is_section_title(tokens, end)
            ):
                break
            end += 1
        yield token.map[0], index + 3, end


def _is_section_title(tokens: Sequence[Any], heading: int) -> bool:
    return bool(tokens[heading + 1].content.strip().rstrip(":").strip().casefold() == _SECTION_KEY)


def _top_level_items(tokens: Sequence[Any], start: int, end: int) -> Iterable[tuple[int, int]]:
    for index in range(start, end):
        token = tokens[index]
        if token.type == "list_item_open" and token.level == 1:
            close = index + 1
            while not (tokens[close].type == "list_item_close" and tokens[close].level == 1):
                close += 1
            yield index, close
