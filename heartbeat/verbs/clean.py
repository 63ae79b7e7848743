"""`heartbeat clean`: remove what finished runs leave behind. A session whose agent has
ended sits in its `sleep` tail so that its pane stays readable, holding its name on the
socket; a worktree made with `launch --worktree` stays after its agent finished."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime

from heartbeat import files, state
from heartbeat.check.observe import (
    CAPTURE_LINES,
    NON_EXEC_SHELLS,
    TAIL_COMMAND,
    exit_code_in,
    watched_sockets,
)
from heartbeat.check.start import tmux_at
from heartbeat.config import Config
from heartbeat.errors import TmuxError
from heartbeat.model import Entry, Pane, stamp_of
from heartbeat.notes.notebook import Notebook, Selection, select
from heartbeat.records import field, frozen, mutable
from heartbeat.trust import AllowList
from heartbeat.work import worktrees


def ended(config: Config, socket: str, pane: Pane) -> int | None:
    """The exit code of a session whose agent has ended, or None while it may still run:
    heartbeat's wrapper records it in the pane, tmux in a dead pane, and the skill's own
    line prints `EXITED: N` before its `sleep` (read only when the pane runs `sleep`, or a
    shell that does not exec its last command). Raises TmuxError."""
    if pane.exit_option is not None:
        return pane.exit_option
    if pane.dead_status is not None:
        return pane.dead_status
    if pane.current_command != TAIL_COMMAND and pane.current_command not in NON_EXEC_SHELLS:
        return None
    return exit_code_in(tmux_at(config, socket).capture(pane.session, CAPTURE_LINES))


@frozen
class Tail:
    """A session no open entry names whose agent has ended."""

    name: str
    socket: str
    code: int
    entry: Entry | None  # the closed entry that names it; None: no entry does


@mutable
class Cleaned:
    tails: list[Tail] = field(default_factory=list)
    worktrees: list[worktrees.Swept] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def needs_person(self) -> bool:
        """A worktree left with uncommitted work, or one git could not handle."""
        return any(swept.dirty or swept.problem for swept in self.worktrees)


def open_entries(book: Notebook) -> list[Entry]:
    """Every open entry of the notes read, watched or not: their sessions are never
    anyone's leftovers."""
    return [entry for loaded in book.loaded for entry in loaded.note.entries if entry.is_open]


def trusted_sockets(config: Config, selection: Selection) -> set[str]:
    """The configured socket and those of approved entries, open or closed: the only
    sockets heartbeat removes sessions from."""
    allowed = None if config.settings.trust_owned_notes else AllowList.load(config.state_dir)
    named = [entry for _, entry in (*selection.managed, *selection.finished)]
    return watched_sockets(config, named, allowed)


def find_tails(
    config: Config,
    selection: Selection,
    needed: set[tuple[str, str]],
    problems: list[str],
) -> tuple[list[Tail], dict[str, dict[str, Pane]]]:
    """The ended sessions on the trusted sockets that no open entry (`needed`) names, and
    what each socket that answered holds."""
    closed = {entry.key: entry for _, entry in selection.finished}
    found: list[Tail] = []
    panes: dict[str, dict[str, Pane]] = {}
    for socket in sorted(trusted_sockets(config, selection)):
        try:
            panes[socket] = tmux_at(config, socket).snapshot().panes
        except TmuxError as error:
            problems.append(str(error))
            continue
        for name, pane in sorted(panes[socket].items()):
            if (socket, name) in needed:
                continue
            try:
                code = ended(config, socket, pane)
            except TmuxError as error:
                problems.append(str(error))
                continue
            if code is not None:
                found.append(Tail(name, socket, code, closed.get((socket, name))))
    return found, panes


def clean(config: Config, now: datetime, dry_run: bool = False) -> Cleaned:
    """Remove the sessions of ended runs that no open entry needs, then the worktrees
    heartbeat made for entries that are done, when they hold no uncommitted work."""
    stamp = stamp_of(now)
    done = Cleaned()
    with files.locked(config.state_dir, wait=True):  # no check starts a session meanwhile
        book = Notebook(config, now.date())
        book.read_all()
        selection = select(book)
        done.problems += book.problems
        if book.problems:
            # A note (or an entry) that could not be read may name a session or a
            # worktree still needed: nothing is removed until the notes are mended.
            done.problems.append("nothing removed: mend the notes above, then clean again")
            return done
        needed = open_entries(book)
        done.tails, panes = find_tails(config, selection, {e.key for e in needed}, done.problems)
        for tail in list(done.tails):
            if dry_run:
                continue
            try:
                tmux_at(config, tail.socket).kill(tail.name)
            except TmuxError as error:
                done.problems.append(str(error))
                done.tails.remove(tail)
                continue
            state.log(config.state_dir, stamp, f"{tail.name}: {tail_removed(tail)}")
        ended_keys = {(tail.socket, tail.name) for tail in done.tails}
        for path, made in sorted(worktrees.load(config.state_dir).items()):
            if _in_use(path, needed):
                continue
            if made.socket not in panes and os.path.isdir(path):
                continue  # what runs on its socket is not known: kept
            session = panes.get(made.socket, {}).get(made.name)
            if session is not None and (made.socket, made.name) not in ended_keys:
                continue  # its agent may still be at work there (its box ticked by hand)
            swept = worktrees.sweep(config.state_dir, path, dry_run)
            done.worktrees.append(swept)
            if swept.removed and not dry_run:
                state.log(config.state_dir, stamp, f"{made.name}: removed worktree {path}")
    return done


def tail_removed(tail: Tail) -> str:
    """`removed its finished session (exit 0)`."""
    word = "finished" if tail.code == 0 else "failed"
    return f"removed its {word} session (exit {tail.code})"


def _in_use(path: str, entries: Iterable[Entry]) -> bool:
    """Whether an open entry runs in the worktree at `path` (or in a folder inside it)."""
    for entry in entries:
        folder = os.path.realpath(os.path.expanduser(entry.dir))
        if folder == path or folder.startswith(path + os.sep):
            return True
    return False
