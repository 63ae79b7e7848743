"""One entry of a note: its head (name and command, or the skill's tmux line), its
`key: value` sub-items and heartbeat's status lines, checked before anything may run it."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

from heartbeat.config import MAX_SOCKET_BYTES, expand_home
from heartbeat.errors import NoteError, ShellSyntaxError
from heartbeat.model import (
    NAME_RULE,
    Entry,
    RestartMode,
    ResumeMode,
    Span,
    StallMode,
    valid_session_name,
)
from heartbeat.notes import tmuxline
from heartbeat.notes.parse import CLOSED_PREFIX, ReadContext

# A status line heartbeat writes: `2026-11-24 10:45 — dead, restarted`.
STATUS_LINE = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}) — (.+)", re.DOTALL)
KNOWN_KEYS = frozenset(
    {"dir", "socket", "started", "restart", "host", "on-stall", "session", "resume"}
)
_ITEM_START = re.compile(r"([ \t]*)([-*+]|\d{1,9}[.)])([ \t]+|$)")
_BOX = re.compile(r"\[([ xX])\][ \t]")
_TMUX_LINE = re.compile(r"\s*(?:\S*/)?tmux\s")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _children(tokens: Sequence[Any], start: int, end: int, level: int) -> list[Any]:
    return [t for t in tokens[start:end] if t.level == level]


class _SubItems(NamedTuple):
    """What an entry's sub-items say: its options, and heartbeat's status lines."""

    options: dict[str, str]
    statuses: list[str]
    status_ranges: list[tuple[int, int]]
    child_indent: str  # where a new sub-item goes
    child_marker: str


class _Launch(NamedTuple):
    """What an entry runs, and where."""

    name: str
    socket: str
    folder: str
    command: str | tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    wrapped: bool


def read_item(
    tokens: Sequence[Any],
    start: int,
    end: int,
    lines: list[str],
    where: str,
    day: date,
    context: ReadContext,
) -> Entry | NoteError | None:
    """One top-level item of the section: an entry, or what is wrong with it (None when
    it is closed: a closed entry is not watched, so nothing in it needs fixing).

    Somewhat long: it reads the item's parts in the order the note holds them (head,
    box, name, command, sub-items), each step a line or two, and returns at the first
    that is wrong.
    """
    head_line, last = tokens[start].map[0], _last_line(lines, tokens[start].map)
    head_raw = ""
    if tokens[start + 1].type == "paragraph_open":  # the item's first block
        head_raw = tokens[start + 2].content
    subs = _sub_items(tokens, start, end, lines, _content_indent(lines[head_line]))

    box_match = _BOX.match(head_raw)
    box = box_match[1] if box_match else None
    head_rest = head_raw[box_match.end() :] if box_match else head_raw
    name_part, code = _split_head(head_rest)
    struck = "~~" in name_part
    closed = (box is not None and box in "xX") or struck or any(map(is_closing, subs.statuses))
    span = Span(
        head=head_line,
        last=last,
        box_column=_box_column(lines[head_line]) if box is not None else None,
        child_indent=subs.child_indent,
        child_marker=subs.child_marker,
        status_ranges=tuple(subs.status_ranges),
    )

    def problem(message: str) -> NoteError | None:
        return None if closed else NoteError(where, head_line + 1, message)

    if STATUS_LINE.fullmatch(head_raw.strip()):
        return problem("a status line outside any entry: indent it under its entry")
    if code is None:
        fences = [t for t in _children(tokens, start + 1, end, 2) if t.type in _CODE_BLOCKS]
        if not fences:
            return problem("cannot read this entry: write `NAME: `COMMAND`` or a tmux line")
        code = fences[0].content.rstrip("\n")
    if isinstance(code, NoteError):
        return problem(code.message)
    launch = _launch_of(_name_of(name_part), code, subs.options, context)
    if isinstance(launch, str):
        return problem(launch)
    launch = _checked(launch, subs.options, context)
    if isinstance(launch, str):
        return problem(launch)
    return Entry(
        name=launch.name,
        socket=launch.socket,
        dir=launch.folder,
        command=launch.command,
        wrapped=launch.wrapped,
        where=where,
        note_date=day,
        span=span,
        is_open=not closed,
        environment=launch.environment,
        options=subs.options,
        statuses=tuple(subs.statuses),
    )


_CODE_BLOCKS = ("fence", "code_block")


def _last_line(lines: list[str], item_map: list[int]) -> int:
    """The 0-based last non-blank line of an item."""
    head, last = item_map[0], item_map[1] - 1
    while last > head and not lines[last].strip():
        last -= 1
    return last


def _name_of(head: str) -> str:
    """`**api**:`, `api —`, `~~api~~:` -> api; a name's own trailing `-` or `_` stays."""
    name = re.sub(r"\s+(?:\u2014|\u2013|-{1,2})\s*$", "", head.strip()).rstrip(":")
    return name.strip("*~ \t").rstrip(":").strip()


def _sub_items(
    tokens: Sequence[Any], start: int, end: int, lines: list[str], child_indent: str
) -> _SubItems:
    """An entry's sub-items: `key: value` options and heartbeat's status lines."""
    found = _SubItems({}, [], [], child_indent, "-")
    sub_items = [
        index
        for index in range(start, end)
        if tokens[index].type == "list_item_open" and tokens[index].level == 3
    ]
    for position, index in enumerate(sub_items):
        sub = tokens[index]
        if position == 0:
            indent, marker = _item_indent(lines[sub.map[0]])
            found = found._replace(child_indent=indent, child_marker=marker)
        inline = tokens[index + 2] if tokens[index + 1].type == "paragraph_open" else None
        text = inline.content if inline is not None else ""
        if STATUS_LINE.fullmatch(text.strip()):
            found.statuses.append(text.strip())
            found.status_ranges.append((sub.map[0], sub.map[1]))
            continue
        key, sep, value = text.partition(":")
        if sep and key.strip().casefold() in KNOWN_KEYS:
            found.options[key.strip().casefold()] = _unquote(value.strip())
    return found


def _launch_of(
    name: str, code: str, options: dict[str, str], context: ReadContext
) -> _Launch | str:
    """What the entry runs: the skill's tmux line, or a command heartbeat's wrapper runs.
    A string says why it cannot be read."""
    if _TMUX_LINE.match(code):
        try:
            launch = tmuxline.parse_tmux_launch(code, context.env)
        except ShellSyntaxError as error:
            return f"cannot read the tmux line: {error}"
        # The head may be prose ("launched by hand:"); only a bare name must agree.
        if valid_session_name(name) and name != launch.name:
            return f"entry is named {name!r} but its tmux line starts {launch.name!r}"
        socket = launch.socket or os.path.join(tmuxline.default_socket_dir(context.env), "default")
        folder = launch.start_dir or options.get("dir") or context.home
        return _Launch(launch.name, socket, folder, launch.command, launch.environment, False)
    if not name:
        return "entry has no name: write `NAME: `COMMAND``"
    if not code.strip():
        return f"{name}: entry has an empty command"
    socket = options.get("socket") or context.default_socket
    folder = options.get("dir") or context.home
    return _Launch(name, socket, folder, code, (), True)


def _checked(launch: _Launch, options: dict[str, str], context: ReadContext) -> _Launch | str:
    """The launch with its paths made whole, or why it must not run."""
    name = launch.name
    for key, enum in (("restart", RestartMode), ("on-stall", StallMode), ("resume", ResumeMode)):
        if key in options and options[key] not in {mode.value for mode in enum}:
            modes = ", ".join(mode.value for mode in enum)
            return f"{name}: {key} must be one of {modes}, not {options[key]!r}"
    command = launch.command
    texts = [command] if isinstance(command, str) else list(command)
    hidden = _hidden_character(" ".join([*texts, launch.folder, launch.socket, *options.values()]))
    if hidden:
        # Terminal escapes or bidi marks could show a person one command and run another.
        return f"{name}: the entry holds an invisible character ({hidden}): not run"
    if not valid_session_name(name):
        return f"invalid session name {name!r}: {NAME_RULE}"
    socket = expand_home(launch.socket, context.home)
    folder = expand_home(launch.folder, context.home)
    for label, path in (("dir", folder), ("socket", socket)):
        if not os.path.isabs(path):
            return f"{name}: {label} must be an absolute path, not {path!r}"
    if len(os.fsencode(socket)) > MAX_SOCKET_BYTES:
        return f"{name}: socket path is longer than tmux accepts: {socket}"
    return launch._replace(socket=os.path.normpath(socket), folder=os.path.normpath(folder))


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


def is_roll_over(status: str) -> bool:
    """Whether a status line is the roll-over's own bookkeeping (`carried over from
    ...`, `closed: continued in ...`), not news of the run."""
    match = STATUS_LINE.fullmatch(status)
    return match is not None and (
        match[2].startswith(CARRIED) or match[2].startswith(f"{CLOSED_PREFIX}: continued in ")
    )


def is_carried(status: str) -> bool:
    """Whether a status line says its entry is a roll-over's copy of an earlier one."""
    match = STATUS_LINE.fullmatch(status)
    return match is not None and match[2].startswith(CARRIED)


CARRIED = "carried over from "  # what notes/edit.py's carried_block writes
