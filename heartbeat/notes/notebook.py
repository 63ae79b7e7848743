"""The notes folder as one run sees it: reading notes, choosing entries, rolling over."""

from __future__ import annotations

import functools
import os
import re
import stat
import weakref
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from heartbeat import files, lazy, trust
from heartbeat.config import Config
from heartbeat.errors import NoteError, RefusedError
from heartbeat.model import Entry
from heartbeat.notes.cache import NoteCache, key_of
from heartbeat.notes.parse import (
    CLOSED_PREFIX,
    SLUG,
    Note,
    ReadContext,
    digest_of,
    note_name,
    parse,
)
from heartbeat.records import field, frozen, mutable, replace

if TYPE_CHECKING:
    from heartbeat import render
    from heartbeat.notes import edit
    from heartbeat.notes.edit import Edit
else:  # only a new note needs its template; only an edit or a carry-over, the edits
    render = lazy.module("heartbeat.render")
    edit = lazy.module("heartbeat.notes.edit")

# Daily notes are small; a huge one is a mistake (a pasted log), not a note to parse.
MAX_NOTE_BYTES = 5 * 1024 * 1024
# Copies that sync tools make when two machines edit one note (Dropbox, Nextcloud,
# iCloud, Syncthing): reported, since their entries would otherwise go unseen.
CONFLICT_COPY = re.compile(
    rf"(\d{{4}}-\d{{2}}-\d{{2}}(?:-{SLUG})?)"
    r"(?: \([^)]*conflict[^)]*\)| \d+|\.sync-conflict-[^.]*)\.md",
    re.IGNORECASE,
)
ICLOUD_PLACEHOLDER = re.compile(rf"\.((\d{{4}}-\d{{2}}-\d{{2}})(-{SLUG})?)\.md\.icloud")


@frozen(eq=False)
class LoadedNote:
    path: Path
    day: date
    text: str | None  # None when the note came from the parse cache, unread
    note: Note
    slug: str = ""  # "" for the day's plain note, else the slug of `YYYY-MM-DD-<slug>.md`
    changed: bool = True  # its text is not the one the last check parsed

    @property
    def order(self) -> tuple[date, str]:
        """Where the note stands among the others: by day, the plain note first."""
        return self.day, self.slug


def label_of(path: Path) -> str:
    """How a note is named in messages: relative to here when it is below here."""
    try:
        here = os.getcwd()
    except FileNotFoundError:  # run from a folder since deleted (an agent's, say)
        return str(path)
    parent, name = os.path.split(os.path.normpath(os.path.join(here, path)))
    folder = _relative_folder(parent, here)
    if folder is not None and name:
        return os.path.join(folder, name)
    # Here itself, or not below here.
    return "." if os.path.join(parent, name) == here else str(path)


@functools.lru_cache(maxsize=16)
def _relative_folder(folder: str, here: str) -> str | None:
    """`folder` relative to `here` ("" for here itself), or None when not below here: a
    year of notes is named without a `relpath` each."""
    relative = os.path.relpath(folder, here)
    if relative.startswith(".."):
        return None
    return "" if relative == "." else relative


@mutable(eq=False, repr=False)
class Notebook:
    """The notes folder as one run sees it."""

    config: Config
    today: date
    loaded: list[LoadedNote] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    placeholders: set[date] = field(default_factory=set)  # notes iCloud has not downloaded
    cache: NoteCache | None = None  # parsed notes from earlier runs; read_all loads it
    keep_cache: bool = False  # write what this run parsed for the next (checks only)
    folder_fd: int | None = None  # the notes folder, opened once by read_all
    # One run's time to wait for notes being written in place, its reads and edits together.
    patience: files.Patience = field(default_factory=files.Patience)

    @functools.cached_property
    def context(self) -> ReadContext:
        return ReadContext(self.config.socket, self.config.env)

    @functools.cached_property
    def parse_inputs(self) -> tuple[str | int | None, ...]:
        return self.context.inputs()

    def path_for(self, day: date) -> Path:
        return self.config.notes_dir / f"{day.isoformat()}.md"

    def read_all(self) -> None:
        folder = self.config.notes_dir
        if not folder.is_dir():
            what = "not a folder" if folder.exists() else "notes folder not found"
            self.problems.append(f"{label_of(folder)}: {what}")
            return
        refused = trust.unsafe(folder, label_of(folder)) or trust.strict_parents(
            folder, f"notes folder {label_of(folder)}", self.config.env.get("HOME")
        )
        if refused:
            self.problems.append(f"{refused} (no note in it is read)")
            return
        # Opened once, without following a link, and judged as opened: a folder swapped
        # for a link after the look above is never read (each note is opened in it).
        try:
            self.folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as error:
            self.problems.append(f"{label_of(folder)}: cannot be read: {error.strerror}")
            return
        weakref.finalize(self, os.close, self.folder_fd)
        refused = trust.unsafe_open(self.folder_fd, label_of(folder))
        if refused:
            self.problems.append(f"{refused} (no note in it is read)")
            return
        found: list[tuple[date, str, Path]] = []
        for name in os.listdir(self.folder_fd):
            child = folder / name
            named = note_name(child.name)
            if named is None:
                self._notice_sync_files(child)
                continue
            day, slug = named
            if day > self.today:
                # Written while the clock was ahead: its entries are still watched.
                self.problems.append(
                    f"{label_of(child)}: dated after today (was the clock ahead?): "
                    "its entries are watched where they are"
                )
            try:
                info = os.stat(name, dir_fd=self.folder_fd, follow_symlinks=False)
            except OSError:
                continue  # gone meanwhile
            refused = None
            if stat.S_ISLNK(info.st_mode):
                refused = trust.unsafe(child, label_of(child))  # says it is a link
            if refused:
                self.problems.append(refused)
            elif stat.S_ISREG(info.st_mode):
                found.append((day, slug, child))
            else:  # a folder or a FIFO named like a note: never opened
                self.problems.append(f"{label_of(child)}: not a regular file: left alone")
        self.cache = NoteCache.load(self.config.state_dir)
        self.loaded = []
        for day, slug, path in sorted(found):
            loaded = self.read(path, day, slug=slug)
            if loaded is not None:
                self.loaded.append(loaded)
        if self.keep_cache:
            self.cache.save()

    def _notice_sync_files(self, child: Path) -> None:
        label = label_of(child)
        conflict = CONFLICT_COPY.fullmatch(child.name)
        if conflict:
            self.problems.append(
                f"{label}: a sync conflict copy of {conflict[1]}.md, not read: "
                "merge it into that note by hand, then delete it"
            )
        placeholder = ICLOUD_PLACEHOLDER.fullmatch(child.name)
        if placeholder:
            try:
                day = date.fromisoformat(placeholder[2])
            except ValueError:
                return  # not a day: not a note's placeholder
            if not placeholder[3]:
                self.placeholders.add(day)  # the plain note: never created beside it
            if day >= self.window_start():
                self.problems.append(
                    f"{label}: {placeholder[1]}.md is in iCloud but not downloaded, so its "
                    "entries are not watched: open it once (or: brctl download)"
                )

    def read(
        self, path: Path, day: date, with_text: bool = False, slug: str = ""
    ) -> LoadedNote | None:
        """The note parsed; from the cache, unread, when it has not changed since."""
        label = label_of(path)
        old = day < self.window_start()
        inputs = (label, day, old, *self.parse_inputs)
        try:
            in_folder = self.folder_fd if path.parent == self.config.notes_dir else None
            if self.cache is not None and not with_text:
                stamp = files.Stamp.of(path, in_folder)
                cached = self.cache.get(path, key_of(stamp, *inputs)) if stamp else None
                if cached is not None:
                    self.problems.extend(str(problem) for problem in cached.problems)
                    return LoadedNote(path, day, None, cached, slug, changed=False)
            # Only a still note: a half-written one would name entries by half (a
            # restart in the wrong folder) or not at all.
            opened = self._opener(label, in_folder)
            text, stamp = files.read_text(path, label, MAX_NOTE_BYTES, self.patience, opened)
        except (NoteError, RefusedError) as error:
            self.problems.append(str(error))
            return None
        except OSError as error:
            self.problems.append(f"{label}: cannot read: {error.strerror}")
            return None
        key, digest = key_of(stamp, *inputs), digest_of(text)
        # Read again because its stamp could not be trusted (written moments ago), or
        # only touched: the same text needs no parse.
        note = self.cache.same_text(path, key, digest) if self.cache is not None else None
        changed = note is None
        if note is None:
            earlier = self.cache.earlier(path) if self.cache is not None else None
            reusable = self.cache.reusable(path, key) if self.cache is not None else None
            note = parse(text, label, day, self.context, earlier, reusable)
            if old:  # of a note older than the window only open entries matter (`select`)
                note = replace(note, entries=tuple(e for e in note.entries if e.is_open))
        if self.cache is not None:
            self.cache.put(path, key, note, stamp, digest)
        self.problems.extend(str(problem) for problem in note.problems)
        return LoadedNote(path, day, text, note, slug, changed)

    def _opener(self, label: str, in_folder: int | None) -> files.Opener | None:
        """How a note is opened: in the notes folder as it was opened (never through a
        link), and used only when it is the user's alone."""
        if in_folder is None:
            return None

        def opened(path: Path) -> int:
            fd = os.open(path.name, files.NOTE_FLAGS, dir_fd=in_folder)
            refused = trust.unsafe_open(fd, label)
            if refused:
                os.close(fd)
                raise RefusedError(refused)
            return fd

        return opened

    def reload(self, path: Path, with_text: bool = False) -> None:
        for index, loaded in enumerate(self.loaded):
            if loaded.path == path:
                fresh = self.read(path, loaded.day, with_text, loaded.slug)
                if fresh is not None:
                    self.loaded[index] = fresh
                return
        named = note_name(path.name)
        if named is not None:
            fresh = self.read(path, named[0], slug=named[1])
            if fresh is not None:
                self.loaded.append(fresh)
                self.loaded.sort(key=lambda item: item.order)

    def window_start(self) -> date:
        return self.today - timedelta(days=self.config.carry_days)

    def in_window(self) -> list[LoadedNote]:
        start = self.window_start()
        return [loaded for loaded in self.loaded if loaded.day >= start]

    def note_of_today(self) -> LoadedNote | None:
        """Today's plain note, the one heartbeat writes new entries into."""
        return next((item for item in self.loaded if item.order == (self.today, "")), None)

    def notes_of_today(self) -> list[LoadedNote]:
        """Today's notes: the plain one and the slugged ones beside it."""
        return [item for item in self.loaded if item.day == self.today]

    def edit(
        self,
        path: Path,
        edits: Sequence[Edit],
        added: Sequence[str] = (),
    ) -> None:
        """Make the edits on the note as it is now: a save made meanwhile is kept. A note
        that is being written and does not keep still in time is a NoteError: its lines
        are written by the next check."""
        label = label_of(path)
        known = next((item.text for item in self.loaded if item.path == path), None)
        named = note_name(path.name)
        day = named[0] if named is not None else self.today

        def build(text: str) -> str:
            note = parse(text, label, day, self.context)
            if note.fatal:
                raise NoteError(label, note.problems[0].line, "left alone until it is mended")
            return edit.apply_edits(text, note, edits, added)

        try:
            files.rewrite(path, label, MAX_NOTE_BYTES, build, self.patience, known)
        except OSError as error:
            raise NoteError(label, 1, f"cannot write: {error.strerror}") from None

    def refuse_unsafe_today(self) -> None:
        """Raise when the notes folder or today's note is one heartbeat must not use."""
        for checked in (self.config.notes_dir, self.path_for(self.today)):
            refused = trust.unsafe(checked, label_of(checked))
            if refused:
                raise RefusedError(refused)

    def ensure_today(self) -> Path:
        """Today's note, created from the template when missing."""
        self.refuse_unsafe_today()
        path = self.path_for(self.today)
        if self.today in self.placeholders or path.with_name(f".{path.name}.icloud").exists():
            # Creating it would make iCloud keep two notes for one day.
            raise RefusedError(f"{label_of(path)} is in iCloud but not downloaded: open it once")
        if not path.exists():
            # One level only: a mistyped --notes must not grow a tree of folders.
            if not self.config.notes_dir.parent.is_dir():
                raise RefusedError(f"notes folder {label_of(self.config.notes_dir)} not found")
            self.config.notes_dir.mkdir(exist_ok=True, mode=0o700)
            files.create_exclusively(path, render.note(self.today.isoformat()))
        return path


@mutable(eq=False)
class Selection:
    """The entries to manage, and what the notes say about the others."""

    managed: list[tuple[LoadedNote, Entry]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    closed: set[tuple[str, str]] = field(default_factory=set)  # newest entry is closed
    # Those closed newest entries themselves, with their notes (`status --all`).
    finished: list[tuple[LoadedNote, Entry]] = field(default_factory=list)


def select(book: Notebook) -> Selection:
    """The entries to manage: for each socket and name, the newest entry, if open."""
    problems: list[str] = []
    start = book.window_start()
    groups: dict[tuple[str, str], list[tuple[LoadedNote, Entry]]] = defaultdict(list)
    for loaded in book.loaded:
        for entry in loaded.note.entries:
            if loaded.day < start:
                if entry.is_open:
                    problems.append(
                        f"{entry.location}: {entry.name} is open but older than the "
                        f"{book.config.carry_days}-day window, so it is not watched: "
                        "tick its box, or copy it into today's note"
                    )
                continue
            groups[entry.key].append((loaded, entry))
    managed: list[tuple[LoadedNote, Entry]] = []
    closed: set[tuple[str, str]] = set()
    finished: list[tuple[LoadedNote, Entry]] = []
    for group in groups.values():
        group.sort(key=lambda pair: (pair[0].order, pair[1].line))
        newest_note, newest = group[-1]
        for _, older in group[:-1]:
            if older.is_open:
                problems.append(
                    f"{older.location}: {older.name} is logged again at {newest.location}; "
                    "only the newer entry is watched"
                )
        if newest.is_open:
            managed.append((newest_note, newest))
        else:
            closed.add(newest.key)
            finished.append((newest_note, newest))
    managed.sort(key=lambda pair: (pair[0].order, pair[1].line))
    finished.sort(key=lambda pair: (pair[0].order, pair[1].line))
    return Selection(managed, problems, closed, finished)


def carry_over(book: Notebook, stamp: str) -> None:
    """Copy open entries of earlier notes in the window into today's note.

    Today's note must always list what runs: an agent that reads it after a restart
    or a compaction has to see it. The old entry says where it continued, which
    closes it.
    """
    newest = _to_carry(book)
    if any(loaded.text is None for loaded, _ in newest.values()):
        # Parsed from the cache, unread: the entries are copied from the text itself.
        for old_path in {loaded.path for loaded, _ in newest.values()}:
            book.reload(old_path, with_text=True)
        newest = _to_carry(book)
    blocks = [
        edit.carried_block(loaded.text, entry, stamp, loaded.path.name)
        for loaded, entry in newest.values()
        if loaded.text is not None
    ]
    if not blocks:
        return
    path = book.ensure_today()
    book.edit(path, [], added=blocks)
    book.reload(path)
    by_note: dict[Path, list[Edit]] = defaultdict(list)
    for key, (loaded, _) in newest.items():
        if loaded.text is None:
            continue
        by_note[loaded.path].append(
            edit.Edit(key, stamp, f"{CLOSED_PREFIX}: continued in {path.name}")
        )
    for old_path, edits in by_note.items():
        book.edit(old_path, edits)
        book.reload(old_path)


def _to_carry(book: Notebook) -> dict[tuple[str, str], tuple[LoadedNote, Entry]]:
    """The newest open entry of each name that earlier notes in the window hold and
    today's notes do not (an entry in today's slugged note is watched where it is)."""
    today_keys = {entry.key for today in book.notes_of_today() for entry in today.note.entries}
    newest: dict[tuple[str, str], tuple[LoadedNote, Entry]] = {}
    for loaded in book.in_window():
        if loaded.day >= book.today:
            continue  # a note dated after today (the clock was ahead) keeps its own
        for entry in loaded.note.entries:
            if entry.is_open and entry.key not in today_keys:
                newest[entry.key] = (loaded, entry)
    return newest
