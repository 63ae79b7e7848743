"""The verbs about one logged entry: allow, kill, reset, tail and verify; and `prd new`."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from heartbeat import agents, files, logs, render, state, trust
from heartbeat.check.start import tmux_at
from heartbeat.config import Config
from heartbeat.errors import RefusedError, TmuxError
from heartbeat.model import Baseline, Entry, Record, State, stamp_of
from heartbeat.notes.edit import Edit
from heartbeat.notes.notebook import LoadedNote, Notebook, label_of, select
from heartbeat.records import frozen, replace
from heartbeat.state import StateFile
from heartbeat.work import git, prd, verify


def allow(config: Config, now: datetime, name: str) -> Entry:
    """Approve the command of NAME's entry as it stands in the notes now."""
    with files.locked(config.state_dir, wait=True):
        book = Notebook(config, now.date())
        book.read_all()
        _, entry = find_entry(book, name)
        allowed = trust.AllowList.load(config.state_dir)
        stamp = stamp_of(now)
        allowed.allow(entry, stamp)
        allowed.save()
        state.log(config.state_dir, stamp, f"{name}: allowed {entry.digest}")
    return entry


def find_entry(book: Notebook, name: str) -> tuple[LoadedNote, Entry]:
    """The watched entry called NAME (on the configured socket when there are several)."""
    matches = [(loaded, entry) for loaded, entry in select(book).managed if entry.name == name]
    if len(matches) > 1:
        matches = [pair for pair in matches if pair[1].socket == book.config.socket]
    if not matches:
        why = f" ({'; '.join(book.problems)})" if book.problems else ""
        raise RefusedError(f"no open entry named {name} in {label_of(book.config.notes_dir)}{why}")
    return matches[0]


KILL_GRACE_SECONDS = 1.0  # for the agent's processes to end with their session


@frozen
class Killed:
    entry: Entry
    leftovers: int  # the agent's processes that outlived its session, then stopped
    stuck: bool  # some of them could not be stopped
    tail: int | None = None  # a closed entry's ended session was removed: its exit code


def kill(config: Config, now: datetime, name: str) -> Killed:
    """Close NAME's entry, then stop its whole run, so nothing revives it: the session,
    then the agent's processes that outlived it (an agent that ignores SIGHUP keeps
    working in its repository), found as a restart finds them. An entry closed already
    (finished) whose session sits in its tail: that session is removed."""
    from heartbeat.tmux import procs  # here: only a kill and a restart look at processes

    stamp = stamp_of(now)
    with files.locked(config.state_dir, wait=True):
        book = Notebook(config, now.date())
        book.read_all()
        try:
            loaded, entry = find_entry(book, name)
        except RefusedError:
            tail = _remove_tail(config, book, name, stamp)
            if tail is None:
                raise
            return tail
        book.edit(loaded.path, [Edit(entry.key, stamp, "killed by heartbeat kill", True)])
        at = tmux_at(config, entry.socket)
        pane = at.snapshot(commands=False).panes.get(entry.name)
        at.kill(entry.name)
        leftovers, stuck = 0, False
        if pane is not None and pane.pid is not None:
            group, pane_id = pane.pid, pane.pane_id
            if not procs.gone_within(group, entry.socket, pane_id, KILL_GRACE_SECONDS):
                leftovers = len(procs.group_members(group, entry.socket, pane_id))
                stuck = not procs.stop(group, entry.socket, pane_id)
        saved = state.load(config.state_dir)
        saved.records.pop(StateFile.key(entry.socket, entry.name), None)
        state.save(config.state_dir, saved)
        said = f", and {leftovers} of its processes that outlived it" if leftovers else ""
        state.log(config.state_dir, stamp, f"{name}: killed by heartbeat kill{said}")
    return Killed(entry, leftovers, stuck)


def _remove_tail(config: Config, book: Notebook, name: str, stamp: str) -> Killed | None:
    """Remove the session of NAME's closed entry when its agent has ended (it sits in
    its tail); None when there is no such session. Only on a socket heartbeat trusts, and
    never a session an open entry names (there is none: the caller looked)."""
    from heartbeat.verbs import clean  # here: only a kill of a closed entry needs it

    selection = select(book)
    closed = [entry for _, entry in selection.finished if entry.name == name]
    closed.sort(key=lambda entry: entry.socket != config.socket)  # the configured first
    trusted = clean.trusted_sockets(config, selection)
    for entry in closed:
        if entry.socket not in trusted:
            continue
        at = tmux_at(config, entry.socket)
        pane = at.snapshot().panes.get(entry.name)
        code = clean.ended(config, entry.socket, pane) if pane is not None else None
        if code is None:
            continue
        at.kill(entry.name)
        tail = clean.Tail(entry.name, entry.socket, code, entry)
        state.log(config.state_dir, stamp, f"{name}: {clean.tail_removed(tail)}")
        return Killed(entry, 0, False, code)
    return None


def reset(config: Config, now: datetime, name: str) -> Entry:
    """Forget NAME's failed starts, so that the next check may restart it again."""
    with files.locked(config.state_dir, wait=True):
        book = Notebook(config, now.date())
        book.read_all()
        _, entry = find_entry(book, name)
        saved = state.load(config.state_dir)
        held = saved.record(entry.socket, entry.name).state is State.AUTH_EXPIRED
        provider = agents.recognise(entry.command).provider if held else None
        lifted = [entry]
        if provider is not None and saved.holds.pop(provider, None) is not None:
            # The login hold is lifted by hand: every entry it held is seen afresh.
            lifted += [
                other
                for _, other in select(book).managed
                if saved.record(*other.key).state is State.AUTH_EXPIRED
                and agents.recognise(other.command).provider == provider
            ]
        for one in lifted:
            saved.records[StateFile.key(*one.key)] = saved.record(*one.key).forgive()
        state.save(config.state_dir, saved)
        state.log(config.state_dir, stamp_of(now), f"{name}: reset")
    return entry


def tail(config: Config, now: datetime, name: str, lines: int) -> list[str]:
    book = Notebook(config, now.date())
    book.read_all()
    try:
        socket = find_entry(book, name)[1].socket
    except RefusedError:
        socket = config.socket
    at = tmux_at(config, socket)
    if not at.has_session(name):
        raise RefusedError(f"no session {name} on {socket}")
    return at.capture(name, lines)


@frozen
class VerifyReport:
    entry: Entry
    state: str
    log: list[str]
    diff: list[str]
    pane: list[str]
    report: verify.Report
    baseline: Baseline | None
    verified: bool  # the work is there: `heartbeat verify` exits 0
    pane_from: str = "pane"  # or the run log, when the pane is gone


def verify_entry(config: Config, now: datetime, name: str) -> VerifyReport:
    """Everything that tells whether NAME's work is done: works on any entry, even closed."""
    book = Notebook(config, now.date())
    book.read_all()
    entries = [
        (loaded.order, e)
        for loaded in book.in_window()
        for e in loaded.note.entries
        if e.name == name
    ]
    if not entries:
        raise RefusedError(f"no entry named {name} in {label_of(config.notes_dir)}")
    # The newest, an open one first within its day; a day's plain note, then its slugged ones.
    entry = max(entries, key=lambda pair: (pair[0][0], pair[1].is_open, pair[0], pair[1].line))[1]
    saved = state.load(config.state_dir)
    record = saved.records.get(StateFile.key(entry.socket, entry.name), Record())
    pane_lines: list[str] = []
    at = tmux_at(config, entry.socket)
    observed_state = "closed" if not entry.is_open else (record.state or State.RUNNING).value
    pane_from = "pane"
    try:
        if at.has_session(entry.name):
            pane_lines = at.capture(entry.name, 20)
    except TmuxError:
        pass
    if not pane_lines:
        # The pane is gone (a killed session, a rebooted machine): its run log is not.
        from heartbeat.verbs import logs as run_logs

        kept = logs.runs(config.state_dir, entry.socket, entry.name)
        if kept:
            pane_lines = logs.last_lines(kept[-1], 20, run_logs.SHOW_BYTES, strip_ansi=True)
            pane_from = f"run log {kept[-1].name}"
    start = record.baseline
    report = verify.measure(entry.command, entry.dir, start, record.exit_code, now)
    stopped = [s for s in entry.statuses if " · " in s]
    verified = report.verdict == verify.VERIFIED
    if not entry.is_open and stopped:
        # Closed: its baseline is gone, but the line written when it stopped says it all.
        line = stopped[-1].split(" — ", 1)[1]
        verified = re.search(rf"(?:^| · ){verify.VERIFIED}(?:,| · |$)", line) is not None
        report = replace(report, verdict=line, hint="")
    return VerifyReport(
        entry,
        observed_state,
        git.log_oneline(entry.dir, 3),
        git.diff_stat(entry.dir),
        pane_lines,
        report,
        start,
        verified,
        pane_from,
    )


def new_prd(path: str) -> Path:
    """Write the PRD skeleton to PATH (a folder gets PRD.md), never over a file."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / prd.DEFAULT_NAME
    elif path.endswith("/") or target.suffix.lower() != ".md":
        # A folder that is not there: never a file named after it.
        raise RefusedError(f"folder {target} does not exist (a PRD file's name ends in .md)")
    if not target.parent.is_dir():
        raise RefusedError(f"folder {target.parent} does not exist")
    title = target.parent.resolve().name or "project"
    if not files.create_exclusively(target, render.prd(title), mode=0o644):
        raise RefusedError(f"{target} exists already")
    return target
