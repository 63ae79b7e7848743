"""The only edits heartbeat makes to a note: status lines inserted, boxes ticked, entries
added. Every other byte the person wrote stays where it was."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from heartbeat.model import Entry
from heartbeat.notes.parse import CLOSED_PREFIX, SECTION_TITLE, Note, split_lines
from heartbeat.records import frozen


@frozen
class Edit:
    """One change to one entry: a status line, and maybe closing it.

    An entry with a box is closed by ticking it; one without says `closed:` in its
    status line.
    """

    key: tuple[str, str]
    stamp: str
    text: str
    close: bool = False
    # Which entry it was for (its digest and start), so that a line written again after
    # a stale save never lands under a new entry of the same name.
    entry_id: str = ""
    # A `key: value` sub-item (text), not a status line: added unless the entry says that
    # already (its last such line wins, as a later run's `session:` line does).
    option: bool = False

    def option_item(self) -> tuple[str, str]:
        key, _, value = self.text.partition(":")
        return key.strip().casefold(), value.strip()

    def as_json(self) -> dict[str, Any]:
        return {
            "key": list(self.key),
            "stamp": self.stamp,
            "text": self.text,
            "close": self.close,
            "entry": self.entry_id,
            "option": self.option,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Edit:
        socket, name = raw["key"]
        return cls(
            (socket, name),
            raw["stamp"],
            raw["text"],
            bool(raw["close"]),
            raw.get("entry", ""),
            bool(raw.get("option", False)),
        )


def entry_id(entry: Entry) -> str:
    return f"{entry.digest}:{entry.options.get('started', '')}"


def is_written(note: Note, edit: Edit) -> bool:
    """Whether the edit's status line is in the note (or its entry is gone or new)."""
    targets = [entry for entry in note.by_key.get(edit.key, ()) if entry_id(entry) == edit.entry_id]
    if edit.option:
        # Written once the entry has the key, whatever its value: a person who changed
        # it (`host: server`) is not written over.
        key, _ = edit.option_item()
        return not targets or any(key in entry.options for entry in targets)
    wanted = {
        status_text(edit.stamp, edit.text),
        status_text(edit.stamp, f"{CLOSED_PREFIX}: {edit.text}"),
    }
    return not targets or any(
        wanted & set(entry.statuses) and not (edit.close and entry.is_open) for entry in targets
    )


def status_text(stamp: str, text: str) -> str:
    return f"{stamp} — {text}"


def apply_edits(
    text: str,
    note: Note,
    edits: Sequence[Edit],
    added: Sequence[str] = (),
) -> str:
    """`text` with the edits made, by key, to the entries `note` (parsed from it) lists.

    `added` are whole entry blocks appended to the section. Only lines are
    inserted and `[ ]` turns into `[x]`; every other byte stays where it was. Applying
    the same edits twice changes nothing the second time: a status line or an entry
    that is already there is not added again.
    """
    lines = split_lines(text)
    by_key: dict[tuple[str, str], Entry] = {}
    for entry in note.entries:
        current: Entry | None = by_key.get(entry.key)
        if current is None or entry.is_open or not current.is_open:
            by_key[entry.key] = entry
    insertions: list[tuple[int, str]] = []
    for edit in dict.fromkeys(edits):  # the same edit twice is made once
        target = by_key.get(edit.key)
        if target is None:
            continue
        span = target.span
        if edit.option:
            key, value = edit.option_item()
            if target.options.get(key) != value:
                insertions.append(
                    (span.last, f"{span.child_indent}{span.child_marker} {edit.text}")
                )
            continue
        words = edit.text
        if edit.close and span.box_column is not None:
            line = lines[span.head]
            lines[span.head] = line[: span.box_column] + "x" + line[span.box_column + 1 :]
        elif edit.close and not words.startswith(CLOSED_PREFIX):
            words = f"{CLOSED_PREFIX}: {words}"
        status = status_text(edit.stamp, words)
        if target.statuses[-1:] == (status,):
            continue  # this very edit, made already (a rebuild on a save that kept it)
        insertions.append((span.last, f"{span.child_indent}{span.child_marker} {status}"))
    # A block already there (a rebuild on a save that kept it) is not added twice.
    plain = text.replace("\r\n", "\n")
    blocks = [block for block in added if block not in plain]
    if blocks:
        anchor = note.append_after
        gap = note.append_gap
        if anchor is None:
            anchor, gap = len(lines) - 1, True
            insertions.append((anchor, f"\n## {SECTION_TITLE}"))
        body = "\n".join(blocks)
        insertions.append((anchor, f"\n{body}" if gap else body))
    # Bottom-up, so that earlier line numbers stay valid; at one anchor the rows
    # listed last go in first, so that they end up in the order listed.
    ordered = sorted(enumerate(insertions), key=lambda item: (item[1][0], item[0]), reverse=True)
    for _, (anchor, row) in ordered:
        _insert_after(lines, anchor, row)
    return "".join(lines)


def _insert_after(lines: list[str], anchor: int, row: str) -> None:
    newline = _newline_of(lines)
    row = row.replace("\n", newline)
    if not lines:
        lines.append(row + newline)
        return
    anchor = min(anchor, len(lines) - 1)
    line = lines[anchor]
    ending = line[len(line.rstrip("\r\n")) :]
    if ending:
        lines.insert(anchor + 1, row + ending)
    else:
        # The file has no final newline: keep it that way, after our line.
        lines.insert(anchor + 1, newline + row)


def _newline_of(lines: list[str]) -> str:
    for line in lines:
        if line.endswith("\r\n"):
            return "\r\n"
        if line.endswith("\n"):
            return "\n"
        if line.endswith("\r"):
            return "\r"
    return "\n"


def carried_block(text: str, entry: Entry, stamp: str, origin: str) -> str:
    """The entry's own lines, less its status lines, with a line saying where it came from."""
    lines = split_lines(text)
    dropped: set[int] = set()
    for first, end in entry.span.status_ranges:
        dropped.update(range(first, end))
    kept = [
        lines[i].rstrip("\r\n")
        for i in range(entry.span.head, entry.span.last + 1)
        if i not in dropped
    ]
    while kept and not kept[-1].strip():
        kept.pop()
    kept.append(
        f"{entry.span.child_indent}{entry.span.child_marker} "
        + status_text(stamp, f"carried over from {origin}")
    )
    return "\n".join(kept)
