"""Parsed notes kept between checks, so that a check parses only the notes that changed.

A note is known by what the file system says of it (inode, size, mtime and ctime: sync
tools keep mtimes and ticking a box keeps the size, but every write moves the ctime) and
by everything its parse depends on (its label, its date, the default socket, the
variables it may expand). A note's stamp is trusted alone only once it has settled: one
written within SETTLE_NS of being read could be written again within the same tick of
the file system's clock, its stamp unmoved (git's "racy clean" problem). Such a note is
read again, and its parse reused when its bytes' hash is the one parsed: a burst of
checks after an edit parses it once. The cache is a pickle in the private state folder, read only
when this user owns it and nobody else can write it, like the hook script beside it,
which tmux runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pickle
import sys
import time
from collections.abc import Hashable
from pathlib import Path

import heartbeat
from heartbeat import files
from heartbeat.notes.parse import Note
from heartbeat.records import field, mutable

FILE_NAME = "notes.cache"
FORMAT = 4
# A note written within this time of being read may be written again within the same
# tick of the file system's clock, leaving its stamp as it was (git's "racy clean"
# problem): its stamp alone is not trusted, its bytes are read and their hash compared.
SETTLE_NS = 2_000_000_000
# The code that decides what a parse returns: a changed one (an upgrade, an edit) drops
# the cache. Libraries are known by their files' times, found without importing them.
_PARSER_MODULES = (
    "notes/parse.py",
    "notes/entry.py",
    "notes/tmuxline.py",
    "shell.py",
    "notes/notebook.py",
    "model.py",
    "records.py",
    "config.py",
    "errors.py",
)
_PARSER_LIBRARIES = ("markdown_it", "frontmatter", "yaml")

Key = tuple[Hashable, ...]
_STAMP_PARTS = 4  # a key's stamp, before what parsing depends on
# What is kept of a note: its key, its text's hash, whether its stamp had settled (and
# can be trusted alone), and its parse.
Kept = tuple[Key, bytes, bool, Note]


def key_of(stamp: files.Stamp, *parse_inputs: Hashable) -> Key:
    return (stamp.inode, stamp.size, stamp.mtime_ns, stamp.ctime_ns, *parse_inputs)


@mutable(eq=False, repr=False)
class NoteCache:
    """Parsed notes by path; those used in this run are what the next run finds."""

    path: Path
    found: dict[str, Kept] = field(default_factory=dict)
    used: dict[str, Kept] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> NoteCache:
        """The cache the last run left, or an empty one (missing, unsafe, stale, broken)."""
        path = state_dir / FILE_NAME
        cache = cls(path)
        # Unpickling fails in many ways (a truncated file, a renamed class): all mean
        # "parse again".
        with contextlib.suppress(Exception):
            data = files.read_private(path)  # not ours alone: never unpickled
            version, notes = pickle.loads(data)
            if version == _version() and isinstance(notes, dict):
                cache.found = notes
        return cache

    def get(self, note_path: Path, key: Key) -> Note | None:
        """The parse of an unchanged note, known by its stamp alone (a settled one)."""
        hit = self.found.get(str(note_path))
        if hit is None or hit[0] != key or not hit[2]:
            return None
        self.used[str(note_path)] = hit
        return hit[3]

    def same_text(self, note_path: Path, key: Key, digest: bytes) -> Note | None:
        """The parse of a note just read, when its text is the one parsed (with the same
        parse inputs), whatever its stamp says."""
        hit = self.found.get(str(note_path))
        if hit is None or hit[1] != digest or hit[0][_STAMP_PARTS:] != key[_STAMP_PARTS:]:
            return None
        return hit[3]

    def reusable(self, note_path: Path, key: Key) -> Note | None:
        """The note as last parsed with the same parse inputs, whatever its text."""
        hit = self.found.get(str(note_path))
        return hit[3] if hit is not None and hit[0][_STAMP_PARTS:] == key[_STAMP_PARTS:] else None

    def earlier(self, note_path: Path) -> Note | None:
        """The note as last parsed, whatever changed since."""
        hit = self.found.get(str(note_path))
        return hit[3] if hit is not None else None

    def put(self, note_path: Path, key: Key, note: Note, stamp: files.Stamp, digest: bytes) -> None:
        settled = time.time_ns() - stamp.ctime_ns > SETTLE_NS
        self.used[str(note_path)] = (key, digest, settled, note)

    def save(self) -> None:
        """Write what this run used, when it differs from what was found."""
        if self.used == self.found:
            return
        with contextlib.suppress(OSError):
            files.write_private_bytes(
                self.path,
                pickle.dumps((_version(), self.used), pickle.HIGHEST_PROTOCOL),
                durable=False,  # after a crash, a torn cache is only a cache to rebuild
            )


def _version() -> tuple[Hashable, ...]:
    package = Path(heartbeat.__file__).parent
    sources = [str(package / module) for module in _PARSER_MODULES]
    for library in _PARSER_LIBRARIES:
        spec = importlib.util.find_spec(library)
        sources.append(spec.origin if spec is not None and spec.origin else library)
    stamps = []
    for source in sources:
        with contextlib.suppress(OSError):
            stamps.append(os.stat(source).st_mtime_ns)
    return (FORMAT, heartbeat.__version__, sys.version_info[:2], *stamps)
