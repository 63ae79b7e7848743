"""Daily notes: parse text into entries.

Parsing works on strings; reading and writing files happens at the edge (`notebook`).
The edits heartbeat makes are in `edit`.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from heartbeat.errors import NoteError
from heartbeat.model import Entry
from heartbeat.records import field, frozen, replace
from heartbeat.shell import KNOWN_VARIABLES

SECTION_TITLE = "Active Long-Running Processes"
BOM = "\ufeff"
_SECTION_KEY = SECTION_TITLE.casefold()
# A day's note: `YYYY-MM-DD.md`, or a slugged one beside it, `YYYY-MM-DD-<slug>.md`, as
# OpenClaw's session-memory hook writes (`2026-01-16-vendor-pitch.md`, `2026-01-16-1430.md`).
SLUG = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
NOTE_NAME = re.compile(rf"(\d{{4}})-(\d{{2}})-(\d{{2}})(?:-({SLUG}))?\.md")
CLOSED_PREFIX = "closed"  # a status line that closes an entry without a box starts so
DIGEST_SIZE = 16  # bytes of a hash of a note's text, or of a stretch of it
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Where Python's `splitlines` breaks a line and markdown-it does not.
_OTHER_BREAKS = re.compile("[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


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
    item_starts: tuple[ItemStarts, ...] = ()

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
class ItemStarts:
    """The first lines of a section's items, each a place the note can be read again
    from when nothing above that line's end changed: the blocks of the items above end
    where an item begins (CommonMark 0.31, 5.2 and 5.3: an item holds only the lines
    indented to its content, and the lazy lines of a paragraph, which a new item
    interrupts), and the item's own line is read again. Not the note's last line when it
    has no line break yet: typed on, an empty item (`-`) becomes a lazy line of the
    paragraph above (`-a`). A person logging an entry by hand adds it at the section's
    end: the note is read again from the last item, not the whole section.

    Kept compactly, numbers and one string of hashes, since a section may hold thousands
    and every check loads the parse cache: a record for each would cost a warm check of
    2,000 entries 2 ms."""

    heading_line: int  # 0-based, of the section's heading
    level: int  # the heading's level
    sections_before: int
    lines: tuple[int, ...]  # 0-based, of each item's first line
    ends: tuple[int, ...]  # where in the text that line ends
    # A hash of the text up to the end of the first item's line, then one of each
    # stretch of text from there to the end of the next item's line.
    digests: bytes

    def unchanged_in(self, text: str) -> int:
        """The index of the last item above whose line's end the text is as it was, or -1
        (the text hashed once, in stretches, up to the first that changed)."""
        found, start = -1, 0
        for index, end in enumerate(self.ends):
            at = index * DIGEST_SIZE
            if end > len(text) or digest_of(text[start:end]) != self.digests[at : at + DIGEST_SIZE]:
                break
            found, start = index, end
        return found

    def up_to(self, index: int) -> ItemStarts:
        """The items up to and including the one at `index`."""
        return replace(
            self,
            lines=self.lines[: index + 1],
            ends=self.ends[: index + 1],
            digests=self.digests[: (index + 1) * DIGEST_SIZE],
        )


@frozen
class _Resume:
    """Where a note is read again from, and how it stood above there."""

    line: int  # 0-based
    append_after: int | None
    append_gap: bool
    sections_before: int
    splits: tuple[Split, ...]  # those above
    item_starts: tuple[ItemStarts, ...]  # of the sections above
    heading: Split | None = None  # the heading read again from
    section: ItemStarts | None = None  # the section an item read again from is in, to it


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


def digest_of(text: str) -> bytes:
    """A note's text, or a stretch of it, hashed: the same hash is the same text."""
    import hashlib  # here: only a note read, not one known by its stamp, is hashed

    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_SIZE).digest()


def split_lines(text: str) -> list[str]:
    """Lines with their own endings, broken where markdown-it breaks them."""
    if not _OTHER_BREAKS.search(text):
        return text.splitlines(keepends=True)  # the same breaks, found ten times faster
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
    with the same inputs: the note is then read again only from the last place above
    which nothing changed, a heading outside the sections (`Split`) or an item within
    one (`ItemStarts`), and what is above taken from it.
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

    resume = _resume_point(reusable, text)
    if resume is not None and resume.line < front_lines:
        resume = None  # a front matter closed below it now: it is in the front matter
    entries: list[Entry] = []
    append_after: int | None = None
    append_gap = True
    before = 0  # sections before the part read
    splits: list[Split] = []
    item_starts: list[ItemStarts] = []
    section: ItemStarts | None = None  # the section the part read begins in
    if resume is not None:
        body = "".join(lines[resume.line :])
        assert reusable is not None
        entries = [entry for entry in reusable.entries if entry.span.head < resume.line]
        # Above it, only its entries' problems (none without a section above it: the
        # one said of a section title that is not a heading is looked for again below).
        # An entry's problem is said of its first line, counted from 1.
        if resume.sections_before or resume.section is not None:
            problems = [p for p in reusable.problems if p.line <= resume.line]
        append_after, append_gap = resume.append_after, resume.append_gap
        before, section = resume.sections_before, resume.section
        splits, item_starts = list(resume.splits), list(resume.item_starts)
        if section is None and _SECTION_KEY not in body.casefold():
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
                splits=(*splits, *([resume.heading] if resume.heading else [])),
                item_starts=tuple(item_starts),
            )
    tokens = _markdown().parse(body)
    if resume is not None:
        # Line numbers are the file's: the part read starts at the resume line. (Not by
        # blank lines before it, which markdown-it would go through a character at a time.)
        for token in tokens:
            if token.map:
                token.map = [token.map[0] + resume.line, token.map[1] + resume.line]
    sections = list(_sections(tokens, section))
    if not sections and not before:
        problems += _title_not_a_heading(lines, where)
    line_ends = list(itertools.accumulate(map(len, raw_lines))) if sections else []
    after_sections: list[tuple[int, int, int | None, bool]] = []  # heading, end, append
    for heading_line, level, start, end in sections:
        # New entries go after the section's last non-blank line ...
        last = (tokens[end].map or [0])[0] - 1 if end < len(tokens) else len(lines) - 1
        ends_at = last + 1
        while last > heading_line and not lines[last].strip():
            last -= 1
        append_after, append_gap = last, True
        # The section read on from one of its items starts with what is known above it.
        known = section if section is not None and section.heading_line == heading_line else None
        starts = _StartsFound(heading_line, level, before + len(after_sections), known)
        for item_start, item_end in _top_level_items(tokens, start, end):
            item_map = tokens[item_start].map or [0, 0]
            # ... right below the list when that line ends one of its items, else after
            # a blank line, so that prose or an HTML block cannot swallow the entry.
            if item_map[0] <= last < item_map[1]:
                append_gap = False
            starts.add(item_map[0], text, line_ends)
            entry_or_error = read_item(tokens, item_start, item_end, lines, where, day, context)
            if isinstance(entry_or_error, Entry):
                entries.append(entry_or_error)
            elif entry_or_error is not None:
                problems.append(entry_or_error)
        after_sections.append((heading_line, ends_at, append_after, append_gap))
        if starts.lines:
            item_starts.append(starts.record())
    defaults = (resume.append_after, resume.append_gap) if resume is not None else (None, True)
    splits += _splits(tokens, lines, raw_lines, text, defaults, after_sections, before)
    return Note(
        where,
        tuple(entries),
        tuple(problems),
        append_after,
        front_matter,
        append_gap,
        front_matter_source=source,
        splits=tuple(splits),
        item_starts=tuple(item_starts),
    )


class _StartsFound:
    """A section's item starts, as they are read (see `ItemStarts`)."""

    def __init__(self, heading_line: int, level: int, before: int, known: ItemStarts | None):
        self.heading_line, self.level, self.before = heading_line, level, before
        self.lines = list(known.lines) if known else []
        self.ends = list(known.ends) if known else []
        self.digests = [known.digests] if known else []

    def add(self, line: int, text: str, line_ends: Sequence[int]) -> None:
        if self.lines and line <= self.lines[-1]:
            return  # known already: the item read again from
        if line_ends[line] == len(text) and not text.endswith(("\n", "\r")):
            return  # the note's last line, still being typed: `-` may become `-a`
        start, end = (self.ends[-1] if self.ends else 0), line_ends[line]
        self.lines.append(line)
        self.ends.append(end)
        self.digests.append(digest_of(text[start:end]))

    def record(self) -> ItemStarts:
        return ItemStarts(
            self.heading_line,
            self.level,
            self.before,
            tuple(self.lines),
            tuple(self.ends),
            b"".join(self.digests),
        )


def _resume_point(reusable: Note | None, text: str) -> _Resume | None:
    """The latest place of the note's last reading above which its text is unchanged: a
    heading outside the sections (`Split`) or an item within one (`ItemStarts`),
    whichever is further down."""
    if reusable is None or reusable.fatal:
        return None
    found: _Resume | None = None
    for split in reversed(reusable.splits):
        if split.end <= len(text) and digest_of(text[: split.end]) == split.digest:
            found = _Resume(
                split.line,
                split.append_after,
                split.append_gap,
                split.sections_before,
                tuple(other for other in reusable.splits if other.line < split.line),
                tuple(s for s in reusable.item_starts if s.heading_line < split.line),
                heading=split,
            )
            break
    for starts in reusable.item_starts:
        if found is not None and starts.lines[-1] <= found.line:
            continue
        index = starts.unchanged_in(text)
        if index < 0 or (found is not None and starts.lines[index] <= found.line):
            continue
        line = starts.lines[index]
        found = _Resume(
            line,
            None,  # where a new entry goes: found again, the section being read on
            True,
            starts.sections_before,
            tuple(split for split in reusable.splits if split.line < line),
            tuple(s for s in reusable.item_starts if s.heading_line < starts.heading_line),
            section=starts.up_to(index),
        )
    return found


def _splits(
    tokens: Sequence[Any],
    lines: Sequence[str],
    raw_lines: Sequence[str],
    text: str,
    defaults: tuple[int | None, bool],
    sections: Sequence[tuple[int, int, int | None, bool]],
    before: int,
) -> list[Split]:
    """The splits among the headings read, each with how the note stood above it
    (`defaults` when no section read is above it)."""
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
            ends = list(itertools.accumulate(map(len, raw_lines)))
        above = [section for section in sections if section[0] < line]
        append_after, append_gap = (above[-1][2], above[-1][3]) if above else defaults
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


def _sections(
    tokens: Sequence[Any], read_on: ItemStarts | None = None
) -> Iterable[tuple[int, int, int, int]]:
    """Heading line, level and token range of each section whose heading is the section
    title; first the one the text is read on in from one of its items (`read_on`), whose
    heading is above the text.

    Only headings at the note's top level count: one within a list item or a quote is
    part of it (an entry's head underlined as it is typed, `- a` over `  ---`, is not the
    end of the section). A section ends at a heading of its level or above, or at one
    that is the section's title again (a sub-heading of that name starts a section of
    its own: its entries are read once)."""

    def end_of(start: int, level: int) -> int:
        end = start
        while end < len(tokens):
            other = tokens[end]
            if (
                other.type == "heading_open"
                and other.level == 0
                and (int(other.tag[1]) <= level or _is_section_title(tokens, end))
            ):
                break
            end += 1
        return end

    if read_on is not None:
        yield read_on.heading_line, read_on.level, 0, end_of(0, read_on.level)
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0:
            continue
        if not _is_section_title(tokens, index):
            continue
        level = int(token.tag[1])
        yield token.map[0], level, index + 3, end_of(index + 3, level)


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
