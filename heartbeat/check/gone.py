"""Entries deleted from the notes while their sessions still run.

Nothing watches such a session any more: it is not restarted when it dies, and its end
is never judged. A person is told once for each disappearance (a status line on the
check's output and in the log); an entry that comes back and goes again is news again.
The state's records are the memory: each keeps the note its entry was last seen in, and
whether it has been seen gone (check/run keeps them up to date, and loads this module
only when a record is waiting to be judged). A quiet check in steady state changes none.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from heartbeat.check.start import tmux_at
from heartbeat.config import Config
from heartbeat.errors import TmuxError
from heartbeat.model import Pane, Record
from heartbeat.notes.notebook import Notebook
from heartbeat.records import replace
from heartbeat.state import StateFile
from heartbeat.trust import AllowList


def missing(
    config: Config, book: Notebook, waiting: Iterable[tuple[str, Record]]
) -> list[tuple[str, Record]]:
    """Of the records `waiting` (not among the watched entries, not yet seen gone), those
    of entries that no note names any more.

    Judged only where that is sure: the note the entry was last seen in was read whole
    by this check (no problem in it: an entry made unreadable by an edit is reported as
    such, not as gone), or it was deleted from a folder that was read. A record of
    another notes folder's entry is never judged from this one.
    """
    read = {str(loaded.path): loaded.note for loaded in book.loaded}
    named = {StateFile.key(*entry.key) for note in read.values() for entry in note.entries}
    found = []
    for key, record in waiting:
        note = record.note
        if note is None or key in named or Path(note).parent != config.notes_dir:
            continue  # in a note (not watched, or another host's), or another folder's
        if note in read:
            whole = not read[note].problems and not read[note].fatal
        else:
            whole = book.folder_fd is not None and not os.path.lexists(note)
        if whole:
            found.append((key, record))
    return found


def tell(
    config: Config,
    saved: StateFile,
    gone: list[tuple[str, Record]],
    panes: Mapping[str, Mapping[str, Pane]],
    deadline: float | None,
) -> list[str]:
    """Mark each gone record, and say which of them still have a running session, as the
    socket's one list call this check answers (`panes`); a socket this check did not ask
    is asked once, when heartbeat may connect to it. A socket that does not answer
    leaves its records for the next check."""
    by_socket: dict[str, list[tuple[str, Record]]] = defaultdict(list)
    for key, record in gone:
        by_socket[key.split("\t", 1)[0]].append((key, record))
    allowed: AllowList | None = None
    lines = []
    for socket, group in by_socket.items():
        answer = panes.get(socket)
        if answer is None:
            if not config.settings.trust_owned_notes and socket != config.socket:
                allowed = allowed or AllowList.load(config.state_dir)
                if not any(record.digest in allowed.approved for _, record in group):
                    continue  # named by nothing approved: never connected to
            try:
                answer = tmux_at(config, socket, deadline).snapshot(commands=False).panes
            except TmuxError:
                continue  # said by the check's own look, if its entries are there
        for key, record in group:
            saved.records[key] = replace(record, left_notes=True)
            name = key.split("\t", 1)[1]
            pane = answer.get(name)
            if pane is not None and pane.exit_option is None and pane.dead_status is None:
                lines.append(
                    f"{name}: no longer in the notes, its session still runs on {socket} "
                    "(heartbeat adopt or tmux kill-session)"
                )
    return lines
