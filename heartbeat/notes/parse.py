"""Daily notes: parse text into entries.

Parsing works on strings; reading and writing files happens at the edge (`notebook`).
The edits heartbeat makes are in `edit`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from heartbeat.config import MAX_SOCKET_BYTES, expand_home
from heartbeat.errors import NoteError, ShellSyntaxError
from heartbeat.model import NAME_RULE, Entry, RestartMode, Span, StallMode, valid_session_name
from heartbeat.notes import shell

SECTION_TITLE = "Active Long-Running Processes"
_SECTION_KEY = SECTION_TITLE.casefold()
NOTE_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})\.md")
# A status line heartbeat writes: `2026-11-24 10:45 — dead, restarted`.
STATUS_LINE = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) — (.+)", re.DOTALL)
CLOSED_PREFIX = "closed"
KNOWN_KEYS = frozenset({"dir", "socket", "started", "restart", "host", "on-stall"})
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ITEM_START = re.compile(r"([ \t]*)([-*+]|\d{1,9}[.)])([ \t]+|$)")
_BOX = re.compile(r"\[([ xX])\][ \t]")
_TMUX_LINE = re.compile(r"\s*(?:\S*/)?tmux\s")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class ReadContext:
    """What parsing needs from outside: the default socket and the environment."""

    default_socket: str
    env: Mapping[str, str]

    @property
    def home(self) -> str:
        return self.env.get("HOME") or os.path.expanduser("~")

    def inputs(self) -> tuple[str | int | None, ...]:
        """Everything from outside that a parse depends on (for the parse cache)."""
        variables = (self.env.get(name) for name in (*shell.KNOWN_VARIABLES, "TMUX_TMPDIR"))
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
    match = NOTE_NAME.fullmatch(filename)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
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
    problems: list[NoteError] = []
    front_matter, source, body = _front_matter(lines, where, problems, earlier)
    if problems:
        # A note whose front matter is broken is left alone until a person mends it.
        return Note(where, (), tuple(problems), None, front_matter, fatal=True)
    if _SECTION_KEY not in text.casefold():
        return Note(where, (), tuple(problems), None, front_matter, front_matter_source=source)

    tokens = _markdown().parse(body)
    entries: list[Entry] = []
    append_after: int | None = None
    append_gap = True
    for heading_line, start, end in _sections(tokens):
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
            entry_or_error = _read_item(tokens, item_start, item_end, lines, where, day, context)
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


def _children(tokens: Sequence[Any], start: int, end: int, level: int) -> list[Any]:
    return [t for t in tokens[start:end] if t.level == level]


def _read_item(
    tokens: Sequence[Any],
    start: int,
    end: int,
    lines: list[str],
    where: str,
    day: date,
    context: ReadContext,
) -> Entry | NoteError | None:
    item = tokens[start]
    head_line = item.map[0]
    last = item.map[1] - 1
    while last > head_line and not lines[last].strip():
        last -= 1
    direct = _children(tokens, start + 1, end, 2)
    head_raw = ""
    if tokens[start + 1].type == "paragraph_open":  # the item's first block
        head_raw = tokens[start + 2].content
    fences = [t for t in direct if t.type in ("fence", "code_block")]

    options: dict[str, str] = {}
    statuses: list[str] = []
    status_ranges: list[tuple[int, int]] = []
    child_indent, child_marker = _content_indent(lines[head_line]), "-"
    sub_items = [
        index
        for index in range(start, end)
        if tokens[index].type == "list_item_open" and tokens[index].level == 3
    ]
    for position, index in enumerate(sub_items):
        sub = tokens[index]
        if position == 0:
            child_indent, child_marker = _item_indent(lines[sub.map[0]])
        inline = tokens[index + 2] if tokens[index + 1].type == "paragraph_open" else None
        text = inline.content if inline is not None else ""
        status = STATUS_LINE.fullmatch(text.strip())
        if status:
            statuses.append(text.strip())
            status_ranges.append((sub.map[0], sub.map[1]))
            continue
        key, sep, value = text.partition(":")
        if sep and key.strip().casefold() in KNOWN_KEYS:
            options[key.strip().casefold()] = _unquote(value.strip())

    box_match = _BOX.match(head_raw)
    box = box_match[1] if box_match else None
    head_rest = head_raw[box_match.end() :] if box_match else head_raw
    name_part, code = _split_head(head_rest)
    struck = "~~" in name_part
    closed = (box is not None and box in "xX") or struck or any(is_closing(s) for s in statuses)
    span = Span(
        head=head_line,
        last=last,
        box_column=_box_column(lines[head_line]) if box is not None else None,
        child_indent=child_indent,
        child_marker=child_marker,
        status_ranges=tuple(status_ranges),
    )

    def problem(message: str) -> NoteError | None:
        # A closed entry is not watched, so nothing in it needs fixing.
        return None if closed else NoteError(where, head_line + 1, message)

    if STATUS_LINE.fullmatch(head_raw.strip()):
        return problem("a status line outside any entry: indent it under its entry")
    # `**api**:`, `api —`, `~~api~~:` -> api; a name's own trailing `-` or `_` stays.
    name = re.sub(r"\s+(?:\u2014|\u2013|-{1,2})\s*$", "", name_part.strip()).rstrip(":")
    name = name.strip("*~ \t").rstrip(":").strip()
    if code is None:
        if not fences:
            return problem("cannot read this entry: write `NAME: `COMMAND`` or a tmux line")
        code = fences[0].content.rstrip("\n")
    if isinstance(code, NoteError):
        return problem(code.message)

    if _TMUX_LINE.match(code):
        try:
            launch = shell.parse_tmux_launch(code, context.env)
        except ShellSyntaxError as error:
            return problem(f"cannot read the tmux line: {error}")
        # The head may be prose ("launched by hand:"); only a bare name must agree.
        if valid_session_name(name) and name != launch.name:
            return problem(f"entry is named {name!r} but its tmux line starts {launch.name!r}")
        name = launch.name
        socket = launch.socket or os.path.join(shell.default_socket_dir(context.env), "default")
        folder = launch.start_dir or options.get("dir") or context.home
        command: str | tuple[str, ...] = launch.command
        environment = launch.environment
        wrapped = False
    else:
        if not name:
            return problem("entry has no name: write `NAME: `COMMAND``")
        if not code.strip():
            return problem(f"{name}: entry has an empty command")
        socket = options.get("socket") or context.default_socket
        folder = options.get("dir") or context.home
        command, environment, wrapped = code, (), True
    for key, enum in (("restart", RestartMode), ("on-stall", StallMode)):
        if key in options and options[key] not in {mode.value for mode in enum}:
            modes = ", ".join(mode.value for mode in enum)
            return problem(f"{name}: {key} must be one of {modes}, not {options[key]!r}")
    texts = [command] if isinstance(command, str) else list(command)
    hidden = _hidden_character(" ".join([*texts, folder, socket, *options.values()]))
    if hidden:
        # Terminal escapes or bidi marks could show a person one command and run another.
        return problem(f"{name}: the entry holds an invisible character ({hidden}): not run")
    if not valid_session_name(name):
        return problem(f"invalid session name {name!r}: {NAME_RULE}")
    socket = expand_home(socket, context.home)
    folder = expand_home(folder, context.home)
    for label, path in (("dir", folder), ("socket", socket)):
        if not os.path.isabs(path):
            return problem(f"{name}: {label} must be an absolute path, not {path!r}")
    if len(os.fsencode(socket)) > MAX_SOCKET_BYTES:
        return problem(f"{name}: socket path is longer than tmux accepts: {socket}")
    return Entry(
        name=name,
        socket=os.path.normpath(socket),
        dir=os.path.normpath(folder),
        command=command,
        wrapped=wrapped,
        where=where,
        note_date=day,
        span=span,
        is_open=not closed,
        environment=environment,
        options=options,
        statuses=tuple(statuses),
    )


def _hidden_character(text: str) -> str | None:
    """The first control, format (bidi) or separator character, other than newline and tab."""
    if text.isascii():  # the usual case, and a fast one: ASCII's only such are controls
        control = _ASCII_CONTROL.search(text)
        return f"U+{ord(control[0]):04X}" if control else None
    import unicodedata  # here: only parsing needs it, and most checks parse nothing

    for char in text:
        if char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"U+{ord(char):04X}"
    return None


def is_closing(status: str) -> bool:
    """Whether a status line closes its entry (`... — closed: ...`)."""
    match = STATUS_LINE.fullmatch(status)
    return match is not None and match[2].startswith(f"{CLOSED_PREFIX}:")


def _split_head(head: str) -> tuple[str, str | NoteError | None]:
    """Split an item's first paragraph into the name part and its first code span."""
    opening = re.search(r"`+", head)
    if opening is None:
        return head, None
    ticks = opening.group(0)
    closing = re.compile(r"(?<!`)" + ticks + r"(?!`)")
    found = closing.search(head, opening.end())
    if found is None:
        return head[: opening.start()], NoteError("", 0, "the command's code span is not closed")
    content = head[opening.end() : found.start()]
    if content.startswith(" ") and content.endswith(" ") and content.strip(" "):
        content = content[1:-1]
    return head[: opening.start()], content


def _unquote(value: str) -> str:
    match = re.fullmatch(r"(`+)\s?(.*?)\s?\1", value)
    return match[2] if match else value


def _item_indent(line: str) -> tuple[str, str]:
    match = _ITEM_START.match(line)
    if not match:
        return "  ", "-"
    marker = match[2] if match[2] in "-*+" else "-"
    return match[1], marker


def _content_indent(line: str) -> str:
    match = _ITEM_START.match(line)
    if not match:
        return "  "
    spaces = len(match[3].expandtabs(4)) if match[3] else 1
    if spaces > 4:  # CommonMark: content then starts one space after the marker
        spaces = 1
    return " " * (len(match[1].expandtabs(4)) + len(match[2]) + spaces)


def _box_column(line: str) -> int | None:
    match = _ITEM_START.match(line)
    if not match:
        return None
    box = _BOX.match(line, match.end())
    return box.start(1) if box else None
