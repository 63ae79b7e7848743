"""One `heartbeat check`, top to bottom: read the notes -> entries -> observe (tmux once
per socket) -> decide (pure) -> act (start, stop, notify) -> write status lines, one
atomic edit per note, and the state. Nothing here prints or reads the clock: `now`
comes in, the outcome goes out as a value.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heartbeat import deadline, files, lazy, state, trust
from heartbeat.check import decide, observe
from heartbeat.check.budget import Budget
from heartbeat.check.facts import Done, Outcome, Plan
from heartbeat.config import Config
from heartbeat.errors import HeartbeatError
from heartbeat.model import Action, Entry, Hold, Pane, stamp_of
from heartbeat.notes.notebook import Notebook, Selection, carry_over, select
from heartbeat.records import replace
from heartbeat.state import StateFile

if TYPE_CHECKING:
    from heartbeat import agents
    from heartbeat.check import act, gone, notify
    from heartbeat.notes import edit
    from heartbeat.notes.edit import Edit
else:  # only a rate limit, a configured ping, an entry gone from the notes, a restart or a
    # status line needs them
    agents = lazy.module("heartbeat.agents")
    gone = lazy.module("heartbeat.check.gone")
    notify = lazy.module("heartbeat.check.notify")
    act = lazy.module("heartbeat.check.act")
    edit = lazy.module("heartbeat.notes.edit")

UNINSTALLED_MARK = "uninstalled"  # left by `heartbeat uninstall` (install/setup.py)
HOOK_PENDING = "hook-pending"  # a hook found a check running: that check looks again
# How many checks' status lines are checked again: an editor holding a stale copy of
# the note for up to this many checks cannot make heartbeat's lines go missing.
WRITTEN_MEMORY = 10
NOTICES_KEPT = 100  # notifications waiting for a check with time to send them
_LINE_NUMBER = re.compile(r"(?<=\.md):\d+")

Located = tuple[Path, Entry]  # an entry, and the note it is in


def check(config: Config, now: datetime, only: str | None = None, hook: bool = False) -> Outcome:
    """One heartbeat (of the entry named `only`, when given). A check that finds another
    one running does nothing: that one, or the next, does the work.

    A tmux hook (`hook`) that finds a check running leaves a note for it instead, and
    that check looks once more before it ends: many sessions closing at once start one
    check, and none is missed. The completion hook (`only`) waits its turn instead, for
    as long as a check may take: what holds the lock may be the launch of this very
    agent, or a check that looked before the agent ended.
    """
    trust.require_state_folder(config.state_dir, config.env.get("HOME"))
    if (hook or only is not None) and (config.state_dir / UNINSTALLED_MARK).exists():
        return Outcome(skipped=True)  # uninstalled: what hooks start does nothing
    pending = config.state_dir / HOOK_PENDING
    waiting = config.settings.check_timeout_seconds if only is not None else None
    started = time.monotonic()
    with files.locked(config.state_dir, wait=only is not None, within=waiting) as acquired:
        if not acquired:
            if hook:
                with contextlib.suppress(OSError):
                    pending.touch()
                return Outcome(skipped=True)
            if not end_hung_check(config, now):
                return Outcome(skipped=True)
            return check(config, now, only, hook)  # the hung one is gone: the lock is free
        if waiting is not None:
            now += timedelta(seconds=time.monotonic() - started)  # the time spent waiting
        outcome = Outcome()
        for _ in range(3):
            # A tmux hook's note asks for every entry to be looked at, not only `only`.
            everything = pending.exists()
            pending.unlink(missing_ok=True)
            latest = run(config, now, only=None if everything else only, hook=hook)
            outcome.changes += latest.changes
            outcome.problems += latest.problems
            outcome.needs_person |= latest.needs_person
            outcome.unwatched += latest.unwatched
            if not pending.exists():
                break
        return outcome


def run(
    config: Config,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
    only: str | None = None,
    hook: bool = False,
) -> Outcome:
    """The check's stages, in order, under the lock, within the check's time bound
    (which every helper it runs, git and the notify command, is held to as well).
    `hook`: started by tmux's hook, whose output nobody reads."""
    budget = Budget.of(config.settings.check_timeout_seconds)
    with deadline.within(budget.deadline):
        # A check of one entry (the completion hook) asks for what that entry needs.
        ahead = observe.Ahead() if only is not None else observe.ask_ahead(config, budget)
        return _stages(config, now, sleep, only, budget, ahead, hook)


def _stages(
    config: Config,
    now: datetime,
    sleep: Callable[[float], None],
    only: str | None,
    budget: Budget,
    ahead: observe.Ahead,
    hook: bool = False,
) -> Outcome:
    problems: list[str] = []
    book, selection = read_notes(config, now, problems)
    managed, adopted = this_hosts(config, selection, only)
    changed = {loaded.path for loaded in book.loaded if loaded.changed}
    asking = observe.ask(config, managed, budget, ahead, changed)  # answered as state is read
    saved = state.load(config.state_dir)
    if saved.warning:
        problems.insert(0, saved.warning)
    forget_closed(saved, selection)

    # What observing asks of git may not eat the time a restart needs.
    with deadline.within(budget.deadline - budget.restart_reserve * 1.2):
        look = observe.observe(config, saved, asking, now, problems, budget)
    remember_servers(saved, look.servers)

    limits = limits_of(config)
    held = decide.holds_in_force(look.sightings, saved.holds, look.lifted)
    plans = [decide.plan(sighting, now, limits, held) for sighting in look.sightings]
    problems += [plan.problem for plan in plans if plan.problem]
    limited = decide.limited_groups(plans, now, limit_group)
    plans = decide.storm_guard(plans, config.settings.max_restarts_per_check, limited, limit_group)
    plans = count_starts_first(config, saved, plans, problems)

    if all(plan.is_quiet for plan in plans):  # most checks: acting (and its code) not needed
        done = [Done(plan, plan.record) for plan in plans]
    else:
        done = act.act(config, plans, now, problems, budget, sleep)
    for one in done:
        saved.records[StateFile.key(*one.plan.sighting.entry.key)] = one.record
        if one.server_pid is not None:  # a server a restart started, known from now on
            saved.servers[one.plan.sighting.entry.socket] = one.server_pid
    remember_holds(config, saved, look, held, now)
    remember_notes(saved, managed)
    if only is None:  # unsaid, the next check asks after reading the notes, as the first
        with contextlib.suppress(OSError):
            observe.remember_ahead(config, ahead, asking)
    # Said by a check whose output a person reads (cron mails it), never by a hook's.
    unwatched = (
        []
        if only is not None or hook
        else left_notes(config, saved, book, selection, look, asking, budget)
    )

    write_notes(book, saved, status_edits(config, done, adopted, now), problems)
    # Told after the restarts and the notes, within the time left; the rest wait.
    events = [one.notice for one in done if one.notice is not None]
    notices = list(saved.notices)
    if events or saved.folded:
        # Each event once, by its identity in the state; past the rate, into a digest.
        per_hour = config.settings.notify_per_entry_per_hour
        notices += notify.admit(events, saved.told, saved.sent, saved.folded, now, per_hour)
    if notices:
        saved.notices = act.tell(config, notices, now, problems, budget)[-NOTICES_KEPT:]
    outcome = outcome_of(done, problems, saved)
    outcome.unwatched, outcome.needs_person = unwatched, outcome.needs_person or bool(unwatched)
    # Each new problem, once; each entry gone from the notes, once.
    state.log_lines(config.state_dir, stamp_of(now), [*unwatched, *outcome.problems])
    try:
        state.save(config.state_dir, saved)
    except OSError as error:
        unsaved = f"{state.state_path(config.state_dir)}: cannot be written ({error.strerror})"
        if not any(problem.startswith(unsaved) for problem in problems):
            outcome.problems.append(unsaved)  # said on every check until it can be
        outcome.needs_person = True
    if only is None:
        state.record_check(config.state_dir, now)  # for `status`: is heartbeat running?
        ping(config, outcome, problems, now)
    return outcome


HUNG_AFTER_EXTRA = 3.0  # seconds past its bound by which a check surely hangs


def end_hung_check(config: Config, now: datetime) -> bool:
    """A check that holds the lock past its own time bound hangs (a stuck system call, a
    stopped process): end it, so that heartbeat is never silenced by it. True when it
    was ended. A check within its bound, or a holder that is not a heartbeat check, is
    left alone."""
    from heartbeat.tmux import procs  # here: needed only when the lock is held

    holder = files.lock_holder(config.state_dir)
    older_than = config.settings.check_timeout_seconds + HUNG_AFTER_EXTRA
    if holder is None or holder == os.getpid() or not procs.hung_check(holder, older_than):
        return False
    ended = procs.end(holder)
    what = "ended" if ended else "could not end"
    state.log(config.state_dir, stamp_of(now), f"{what} a hung check (process {holder})")
    return ended


def limit_group(entry: Entry) -> str:
    """What a rate limit on the entry slows (asked only while a limit is in play, so a
    quiet check does not load the agents' modules)."""
    return agents.limit_group(entry)


def limits_of(config: Config) -> decide.Limits:
    settings = config.settings
    return decide.Limits(
        stall_after=timedelta(minutes=settings.stall_after_minutes),
        limit_wait=timedelta(seconds=settings.rate_limit_wait_seconds),
    )


def read_notes(config: Config, now: datetime, problems: list[str]) -> tuple[Notebook, Selection]:
    """The notes of the carry window, rolled over into today's, and their entries."""
    book = Notebook(config, now.date(), keep_cache=True)
    book.read_all()
    try:
        carry_over(book, stamp_of(now))
    except (HeartbeatError, OSError) as error:
        problems.append(str(error))
    selection = select(book)
    problems += book.problems + selection.problems
    return book, selection


def remember_notes(saved: StateFile, managed: Sequence[Located]) -> None:
    """Keep in each record the note its entry is in now; an entry back in the notes
    after it went is watched again (and its next going is news)."""
    for path, entry in managed:
        key = StateFile.key(*entry.key)
        record = saved.records.get(key)
        where = str(path)
        if record is not None and (record.note != where or record.left_notes):
            saved.records[key] = replace(record, note=where, left_notes=False)


def left_notes(
    config: Config,
    saved: StateFile,
    book: Notebook,
    selection: Selection,
    look: observe.Look,
    asking: observe.Asking,
    budget: Budget,
) -> list[str]:
    """What to say of entries deleted from the notes while their sessions run (once each;
    see check/gone). Nothing is loaded or asked while no record waits to be judged; an
    answer taken before the notes were read is asked again (the session may have been
    stopped, and then its entry deleted, since)."""
    watched = {StateFile.key(*entry.key) for _, entry in selection.managed}
    waiting = [
        (key, record)
        for key, record in saved.records.items()
        if record.note is not None and not record.left_notes and key not in watched
    ]
    if not waiting:
        return []
    found = gone.missing(config, book, waiting)
    if not found:
        return []
    ahead = config.socket if asking.changed is not None else None
    panes = {socket: panes for socket, panes in look.panes.items() if socket != ahead}
    return gone.tell(config, saved, found, panes, budget.deadline)


def forget_closed(saved: StateFile, selection: Selection) -> None:
    """A closed entry is done with: a new entry of that name starts afresh."""
    for socket, name in selection.closed:
        saved.records.pop(StateFile.key(socket, name), None)


def this_hosts(
    config: Config, selection: Selection, only: str | None
) -> tuple[list[Located], list[Located]]:
    """The entries this check manages, and those it adopts for this host.

    Notes are synced between machines: each check manages its own host's entries only,
    and adopts a hand-written entry that names no host.
    """
    managed = [
        (loaded.path, entry)
        for loaded, entry in selection.managed
        if only is None or entry.name == only
    ]
    adopted = [pair for pair in managed if "host" not in pair[1].options]
    mine = [pair for pair in managed if pair[1].options.get("host", config.host) == config.host]
    return mine, adopted


def remember_holds(
    config: Config,
    saved: StateFile,
    look: observe.Look,
    held: dict[str, decide.InForce],
    now: datetime,
) -> None:
    """Expired logins: a renewed one is forgotten; a new one is kept with the stamp of its
    login file, whose change lifts it."""
    for provider in look.lifted:
        saved.holds.pop(provider, None)
    for provider, hold in held.items():
        if provider in saved.holds:
            continue
        # The entry whose login failed: its pane says when it failed.
        mine = [s for s in look.sightings if s.provider == provider]
        leader = next((s for s in mine if s.entry.key == hold.teller), mine[0])
        path = agents.credential_file(provider, {**config.env, **dict(leader.record.homes)})
        if path is not None:
            stamp = agents.credential_stamp(path)
            if stamp is not None and leader.pane is not None and renewed_since(stamp, leader.pane):
                stamp = None  # renewed after the agent failed: the next check lifts it
            saved.holds[provider] = Hold(path, stamp, now.isoformat(), hold.hint)


def renewed_since(stamp: tuple[int, int, int], pane: Pane) -> bool:
    """Whether a login file changed after the pane last printed (its failure): a whole
    second later, since tmux counts activity in seconds."""
    return stamp[2] >= (pane.activity + 1) * 1_000_000_000


def count_starts_first(
    config: Config, saved: StateFile, plans: list[Plan], problems: list[str]
) -> list[Plan]:
    """Write down the starts about to be made before making them (as systemd counts a
    start): a state folder that cannot be written (full, read-only) would let an agent
    that fails at once be restarted forever, each start uncounted. Then no restart."""
    restarts = [plan for plan in plans if plan.decision.action is Action.RESTART]
    if not restarts:
        return plans
    for plan in restarts:
        saved.records[StateFile.key(*plan.sighting.entry.key)] = plan.record
    try:
        state.save(config.state_dir, saved)
    except OSError as error:
        problems.append(
            f"{state.state_path(config.state_dir)}: cannot be written ({error.strerror}): "
            "nothing is restarted until it can be, since no start would be counted"
        )
        return [
            replace(plan, decision=decide.deferred(plan.decision))
            if plan.decision.action is Action.RESTART
            else plan
            for plan in plans
        ]
    return plans


def remember_servers(saved: StateFile, servers: dict[str, int | None]) -> None:
    for socket, pid in servers.items():
        if pid is None:
            saved.servers.pop(socket, None)
        else:
            saved.servers[socket] = pid


def status_edits(
    config: Config, done: Sequence[Done], adopted: Sequence[Located], now: datetime
) -> dict[Path, list[Edit]]:
    """This check's lines for each note: adopted entries' `host:`, then status lines."""
    edits: dict[Path, list[Edit]] = defaultdict(list)
    stamp = stamp_of(now)
    for path, entry in adopted:
        host = edit.Edit(entry.key, stamp, f"host: {config.host}", option=True)
        edits[path].append(replace(host, entry_id=edit.entry_id(entry)))
    for one in done:
        found = one.plan.sighting
        # A session this check learned (found, or pinned anew by a restart afresh).
        session = one.record.session
        learned = session != found.record.session or session == found.session
        if session and learned and found.entry.options.get("session") != session:
            # The conversation, where a person (or an agent after a compaction) sees it.
            line = edit.Edit(found.entry.key, stamp, f"session: {session}", option=True)
            edits[found.note].append(replace(line, entry_id=edit.entry_id(found.entry)))
        if one.edit is not None:
            edits[found.note].append(one.edit)
    return edits


def write_notes(
    book: Notebook, saved: StateFile, edits: dict[Path, list[Edit]], problems: list[str]
) -> None:
    """Write this check's lines and those still owed, one atomic edit per note, and
    remember them, so that one a stale save drops is written again."""
    failed, dropped = owed_edits(book, saved)
    written: dict[str, list[dict[str, Any]]] = {}
    for path in {**failed, **dropped, **edits}:
        # Lines never written yet count as this check's own: written now for the first
        # time, they are remembered from now on, like the lines written at once.
        fresh = list(dict.fromkeys(failed.get(path, []) + edits.get(path, [])))
        note_edits = list(dict.fromkeys(dropped.get(path, []) + fresh))
        try:
            book.edit(path, note_edits)
            if fresh:
                # Only lines written for the first time: one is written again at most
                # until its check leaves the memory, so a line a person deletes stays
                # deleted.
                written[str(path)] = [line.as_json() for line in fresh]
        except (HeartbeatError, OSError) as error:
            problems.append(str(error))
            # Status lines are written on changes only: keep them for the next check.
            saved.pending[str(path)] = [line.as_json() for line in note_edits]
    if written:
        saved.written = [*saved.written, written][-WRITTEN_MEMORY:]


def owed_edits(
    book: Notebook, saved: StateFile
) -> tuple[dict[Path, list[Edit]], dict[Path, list[Edit]]]:
    """Status lines still owed: those a failed write left, and those a stale save dropped.

    An editor that read the note before our write and saved after it writes our lines
    away; they are written again by the next checks, while they are in the memory.
    """
    failed: dict[Path, list[Edit]] = defaultdict(list)
    for path_text, raws in saved.pending.items():
        failed[Path(path_text)].extend(edit.Edit.from_json(raw) for raw in raws)
    dropped: dict[Path, list[Edit]] = defaultdict(list)
    # A note known by its stamp (unread) is as a check found it after its last write,
    # with the lines that check looked for: only a note read again is looked at.
    by_path = {str(loaded.path): loaded.note for loaded in book.loaded if loaded.text is not None}
    for written in saved.written:
        for path_text, raws in written.items():
            note = by_path.get(path_text)
            if note is None:
                continue
            for line in map(edit.Edit.from_json, raws):
                if edit.is_written(note, line):
                    continue
                if line not in dropped[Path(path_text)]:
                    dropped[Path(path_text)].append(line)
    saved.pending = {}
    return failed, dropped


def outcome_of(done: Sequence[Done], problems: list[str], saved: StateFile) -> Outcome:
    """What to print: the changes, and each problem once.

    A problem is known by its file and text, not its line, since heartbeat's own status
    lines move the lines below them.
    """
    outcome = Outcome()
    for one in done:
        outcome.needs_person |= one.plan.decision.needs_person
        if one.change is not None:
            outcome.needs_person |= one.change.needs_person
            outcome.changes.append(one.change)
    keys = {problem: _LINE_NUMBER.sub("", problem) for problem in problems}
    outcome.problems = [p for p in problems if keys[p] not in saved.printed]
    saved.printed = sorted(set(keys.values()))
    outcome.needs_person |= bool(problems)
    return outcome


def ping(config: Config, outcome: Outcome, problems: list[str], now: datetime) -> None:
    """Tell a dead-man's switch, when one is configured, that a check ran."""
    if not config.settings.ping_url:
        return
    changes = [change.line() for change in outcome.changes]
    body = "\n".join([*changes, *outcome.unwatched, *problems])
    failed = notify.ping(config.settings.ping_url, outcome.needs_person, body, 3.0)
    if failed:
        state.log(config.state_dir, stamp_of(now), failed)
