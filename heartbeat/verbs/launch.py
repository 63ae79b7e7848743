"""`heartbeat launch` and `heartbeat log`: a new entry in today's note, approved, for a
session heartbeat starts or one started by hand."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from heartbeat import agents, deadline, files, render, state, trust
from heartbeat.check.start import start_session, tmux_at
from heartbeat.config import Config
from heartbeat.errors import HeartbeatError, RefusedError, UsageError
from heartbeat.model import (
    NAME_RULE,
    Entry,
    Record,
    RestartMode,
    ResumeMode,
    State,
    stamp_of,
    valid_session_name,
)
from heartbeat.notes.notebook import Notebook, label_of, select
from heartbeat.records import frozen
from heartbeat.state import StateFile
from heartbeat.work import git, worktrees


def command_text(argv: Sequence[str]) -> str:
    """One argument is a shell command, as tmux takes it; several are quoted words."""
    return argv[0] if len(argv) == 1 else shlex.join(argv)


def _validated(name: str, folder: str, argv: Sequence[str]) -> tuple[str, str]:
    """The absolute folder and the command text of a launch, or why not."""
    if not valid_session_name(name):
        raise RefusedError(f"invalid session name {name!r}: {NAME_RULE}")
    directory = os.path.abspath(os.path.expanduser(folder))
    if not os.path.exists(directory):
        raise RefusedError(f"dir {folder} does not exist")
    if not os.path.isdir(directory):
        raise RefusedError(f"dir {folder} is not a folder")
    if not argv or not "".join(argv).strip():
        raise UsageError("no command given: heartbeat launch NAME --dir DIR -- COMMAND")
    command = command_text(argv)
    if "\n" in command or "\r" in command:
        raise RefusedError("the command must fit on one line of the note")
    return directory, command


def _log_entry(
    config: Config,
    now: datetime,
    name: str,
    directory: str,
    command: str,
    restart: RestartMode,
    extra: Sequence[str] = (),
) -> tuple[Path, Entry]:
    """Add the entry to today's note and approve it: heartbeat launched it.

    The entry is read back from the note, so what is approved is exactly what later
    checks will read.
    """
    stamp = stamp_of(now)
    book = Notebook(config, now.date())
    path = book.ensure_today()
    if restart is not RestartMode.ON_FAILURE:
        extra = [f"restart: {restart.value}", *extra]
    block = render.entry(name, command, directory, config.socket, stamp, config.host, extra)
    book.edit(path, [], added=[block])
    book.reload(path)
    logged = [
        entry
        for loaded in book.loaded
        if loaded.path == path
        for entry in loaded.note.entries
        if entry.key == (config.socket, name) and entry.options.get("started") == stamp
    ]
    if not logged:
        raise RefusedError(f"{label_of(path)}: the new entry for {name} cannot be read back")
    allowed = trust.AllowList.load(config.state_dir)
    allowed.allow(logged[-1], stamp)
    allowed.save()
    return path, logged[-1]


def replace_finished(config: Config, name: str, stamp: str) -> None:
    """Make way for a new run of NAME: a session whose agent has ended (it sits in its
    `sleep` tail, or tmux keeps its dead pane) is removed, and the log says so; a
    session whose agent still runs is refused."""
    at = tmux_at(config, config.socket)
    pane = at.snapshot(commands=False).panes.get(name)
    if pane is None:
        return
    if pane.exit_option is None and pane.dead_status is None:
        raise RefusedError(f"session {name} already exists on {config.socket}")
    at.kill(name)
    code = pane.exit_option if pane.exit_option is not None else pane.dead_status
    state.log(config.state_dir, stamp, f"{name}: replaced its finished session (exit {code})")


SHARING_SECONDS = 3.0  # at most, for git to say which entries share the work tree


@frozen
class Launched:
    """Where a launch was logged and where its agent runs."""

    note: Path
    dir: str  # the folder the agent runs in (inside its worktree, with --worktree)
    sharing: tuple[str, ...] = ()  # other open entries that run in the same git work tree
    worktree: worktrees.Made | None = None  # made (or used again) for it by --worktree


def sharing_work_tree(config: Config, now: datetime, name: str, directory: str) -> list[str]:
    """The other open entries of this machine that run in the git work tree holding
    `directory`: two agents in one checkout undo each other's work. git runs only in
    approved entries' folders, and only in those inside that work tree."""
    top = git.toplevel(directory)
    if top is None:
        return []
    book = Notebook(config, now.date())
    book.read_all()
    allowed = None if config.settings.trust_owned_notes else trust.AllowList.load(config.state_dir)
    found = []
    for _, entry in select(book).managed:
        if entry.key == (config.socket, name) or entry.name in found:
            continue
        if entry.options.get("host", config.host) != config.host:
            continue
        if allowed is not None and not allowed.allows(entry):
            continue
        folder = os.path.realpath(os.path.expanduser(entry.dir))
        if folder != top and not folder.startswith(top + os.sep):
            continue  # outside it: no git call needed to know
        if os.path.isdir(folder) and git.toplevel(folder) == top:
            found.append(entry.name)
    return found


def launch(
    config: Config,
    now: datetime,
    name: str,
    folder: str,
    argv: Sequence[str],
    restart: RestartMode = RestartMode.ON_FAILURE,
    resume: ResumeMode = ResumeMode.AUTO,
    session: str | None = None,
    worktree: str | None = None,
) -> Launched:
    """Start NAME in FOLDER on the socket and log it in today's note.

    `session`: the conversation the command pins (a launch shortcut's); an agent's
    command given after `--` that takes a session id and pins none gets one of
    heartbeat's choosing (`agents.pin`). `worktree`: a branch, checked out in a git
    worktree of FOLDER's repository that heartbeat makes, where the agent runs instead.
    """
    if session is None and len(argv) > 1:
        pinned, session = agents.pin(list(argv))
        argv = pinned
    directory, command = _validated(name, folder, argv)
    stamp = stamp_of(now)
    extra = [f"session: {session}"] if session else []
    if resume is not ResumeMode.AUTO:
        extra.append(f"resume: {resume.value}")
    # Where the agents keep their sessions and logins: cron's environment lacks them.
    homes = tuple((key, config.env[key]) for key in agents.HOME_VARIABLES if config.env.get(key))
    with files.locked(config.state_dir, wait=True):
        Notebook(config, now.date()).refuse_unsafe_today()  # before anything starts
        replace_finished(config, name, stamp_of(now))
        made, fresh = None, False
        if worktree is not None:
            directory, made, fresh = worktrees.create(config, directory, worktree, name, stamp)
        try:
            # A warning only: a hung git must not hold the launch for long.
            with deadline.within(time.monotonic() + SHARING_SECONDS):
                sharing = sharing_work_tree(config, now, name, directory)
            saved = state.load(config.state_dir)
            # Bounded as a check is: a hung git (the baseline) must not hold the launch.
            with deadline.within(time.monotonic() + config.settings.check_timeout_seconds):
                started = start_session(
                    config,
                    name=name,
                    socket=config.socket,
                    folder=directory,
                    command=command,
                    wrapped=True,
                    path=config.path,
                    homes=homes,
                    now=now,
                    session=session,
                )
            try:
                path, entry = _log_entry(config, now, name, directory, command, restart, extra)
            except (HeartbeatError, OSError):
                tmux_at(config, config.socket).kill(name)  # no side effect when not logged
                raise
        except (HeartbeatError, OSError):
            if fresh and made is not None:
                worktrees.undo(config.state_dir, made)  # made for this launch alone
            raise
        # Its note, from the start: deleted from it before any check, it is still told.
        record = Record(path=config.path, digest=entry.digest, homes=homes, note=str(path))
        saved.records[StateFile.key(config.socket, name)] = record.started(started, now)
        if started.server_pid is not None:
            # As a check would: a socket deleted before any check ran is recreated.
            saved.servers[config.socket] = started.server_pid
        state.save(config.state_dir, saved)
        if made is not None:
            how = "made" if fresh else "used again"
            state.log(config.state_dir, stamp, f"{name}: worktree {made.path} {how}")
        state.log(config.state_dir, stamp, f"{name}: launched in {directory}: {command}")
    return Launched(path, directory, tuple(sharing), made)


def log(
    config: Config,
    now: datetime,
    name: str,
    folder: str,
    argv: Sequence[str],
    restart: RestartMode = RestartMode.ON_FAILURE,
) -> Path:
    """Log a session started by hand, and approve its command, in one step."""
    directory, command = _validated(name, folder, argv)
    stamp = stamp_of(now)
    with files.locked(config.state_dir, wait=True):
        if not tmux_at(config, config.socket).has_session(name):
            raise RefusedError(
                f"no session {name} on {config.socket}: start one with heartbeat launch"
            )
        path, entry = _log_entry(config, now, name, directory, command, restart)
        saved = state.load(config.state_dir)
        saved.records[StateFile.key(config.socket, name)] = Record(
            state=State.RUNNING,
            path=config.path,
            since=stamp,
            digest=entry.digest,
            note=str(path),
        )
        state.save(config.state_dir, saved)
        state.log(config.state_dir, stamp, f"{name}: logged in {directory}: {command}")
    return path
