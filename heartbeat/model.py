"""The records that flow through a check: entries from notes, panes from tmux, decisions."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from heartbeat.records import field, frozen, replace

# tmux rewrites `.` and `:` in session names, and under cron's C locale non-ASCII
# names come back mangled: such a session would look dead forever.
SESSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


NAME_RULE = "use letters, digits, '-' and '_', starting with a letter or digit"


def stamp_of(now: datetime) -> str:
    """The time as heartbeat's status lines and records write it: `2026-11-24 10:45`."""
    return now.strftime("%Y-%m-%d %H:%M")


def when(moment: datetime, now: datetime) -> str:
    """`15:05` today, `Wed 15:05` within the week, `2026-12-09 15:05` later."""
    if moment.date() == now.date():
        return f"{moment:%H:%M}"
    if moment - now < timedelta(days=6):
        return f"{moment:%a %H:%M}"
    return f"{moment:%Y-%m-%d %H:%M}"


def iso_local(moment: datetime | None) -> str | None:
    """A local time as `--json` gives it: ISO 8601 with its offset, to the second."""
    return moment.astimezone().isoformat(timespec="seconds") if moment else None


def valid_session_name(name: str) -> bool:
    return SESSION_NAME.fullmatch(name) is not None


def digest_of(
    name: str,
    command: str | tuple[str, ...],
    folder: str,
    socket: str,
    environment: tuple[tuple[str, str], ...] = (),
) -> str:
    """Identifies what would run: the session, its command, folder, socket, environment."""
    import hashlib  # here: digests are computed when notes are parsed, and kept with them

    text = json.dumps([name, command, folder, socket, environment])
    return hashlib.sha256(text.encode()).hexdigest()


class State(StrEnum):
    """What an entry's session was last seen doing."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    DEAD = "dead"
    STALLED = "stalled"  # running, but no output and no new commit for a long while
    # Running, idle at a limit its pane says resets at a time: left alone until then.
    WAITING = "waiting"
    GAVE_UP = "gave-up"  # held until `heartbeat reset`: too many failed starts
    AUTH_EXPIRED = "auth-expired"  # held until its login file changes, or `heartbeat reset`
    # What `status` shows, from the record, for a stopped entry: never stored.
    RATE_LIMITED = "rate-limited"  # stopped at a limit: restarted after it lifts
    RESUMING = "resuming"  # a restart that continues the conversation, in its first 30 s
    REMOTE = "remote"  # another machine's entry (its `host:`): never judged here
    UNKNOWN = "unknown"  # its socket is not connected to yet (unapproved), or did not answer
    UNLISTED = "unlisted"  # a session on a watched socket that no open entry names
    NEEDS_APPROVAL = "needs approval"  # a command nobody allowed: never judged dead
    WAITING_FOR_INPUT = "waiting for input"  # its pane shows the agent's approval prompt
    CLOSED = "closed"  # (`status --all`) ticked or struck through, not by a finished run
    TAIL = "tail"  # a session no open entry names whose agent has ended, kept in its tail


HELD = frozenset({State.GAVE_UP, State.AUTH_EXPIRED})
LIVE = (State.RUNNING, State.STALLED, State.WAITING)  # the session is up, its agent at work


class StallMode(StrEnum):
    """An entry's `on-stall:` sub-item. Typing into the pane is not offered: it could
    answer an agent's approval prompt."""

    NOTIFY = "notify"
    RESTART = "restart"


class ResumeMode(StrEnum):
    """An entry's `resume:` sub-item."""

    AUTO = "auto"  # a run that had a session and stopped before finishing continues it
    NEVER = "never"  # every restart starts the logged command afresh


class RestartMode(StrEnum):
    """An entry's `restart:` sub-item."""

    ON_FAILURE = "on-failure"  # a dead session or a non-zero exit is restarted
    ALWAYS = "always"  # an exit 0 too
    NEVER = "never"  # only reported


Command = str | tuple[str, ...]
"""A shell command (text for `sh -c`), or an argv that tmux runs directly."""


@frozen
class Span:
    """Where an entry sits in its note, so that edits touch only what heartbeat owns."""

    head: int  # 0-based line of the list item
    last: int  # 0-based last non-blank line of the item
    box_column: int | None  # column of the space inside `[ ]`, when the item has a box
    child_indent: str  # indentation for a new sub-item
    child_marker: str  # `-`, `*` or `+`
    status_ranges: tuple[tuple[int, int], ...] = ()  # heartbeat's status sub-items


@frozen
class Entry:
    """One logged launch, as read from a note."""

    name: str
    socket: str
    dir: str
    command: Command
    # True: heartbeat's wrapper runs the command (its own and hand-written entries).
    # False: the skill's tmux line, whose command already has its own tail.
    wrapped: bool
    where: str
    note_date: date
    span: Span
    is_open: bool = True
    environment: tuple[tuple[str, str], ...] = ()
    options: dict[str, str] = field(default_factory=dict, compare=False)
    statuses: tuple[str, ...] = ()
    # What approval covers (a changed restart mode can make a one-shot run forever).
    # Computed once, here, so that the parse cache keeps it.
    digest: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        modes: tuple[tuple[str, str], ...] = (
            ("restart", self.restart_mode.value),
            ("on-stall", self.stall_mode.value),
        )
        if "resume" in self.options:  # only when written: earlier approvals stay valid
            modes = (*modes, ("resume", self.options["resume"]))
        digest = digest_of(
            self.name, self.command, self.dir, self.socket, (*self.environment, *modes)
        )
        object.__setattr__(self, "digest", digest)  # read-only to the type checker: set once

    @property
    def key(self) -> tuple[str, str]:
        return (self.socket, self.name)

    @property
    def restart_mode(self) -> RestartMode:
        return RestartMode(self.options.get("restart", RestartMode.ON_FAILURE))

    @property
    def resume_mode(self) -> ResumeMode:
        return ResumeMode(self.options.get("resume", ResumeMode.AUTO))

    @property
    def stall_mode(self) -> StallMode:
        return StallMode(self.options.get("on-stall", StallMode.NOTIFY))

    @property
    def may_restart(self) -> bool:
        """Whether heartbeat may one day have to start it again (its restart modes): only
        then does a command heartbeat did not launch need a person's approval."""
        return self.restart_mode is not RestartMode.NEVER or self.stall_mode is StallMode.RESTART

    @property
    def line(self) -> int:
        return self.span.head + 1

    @property
    def location(self) -> str:
        return f"{self.where}:{self.line}"


@frozen
class Pane:
    """One session's first pane, as one `list-panes -a` call reports it."""

    session: str
    pane_id: str
    pid: int | None
    current_command: str
    exit_option: int | None  # set by heartbeat's wrapper when the agent ends
    dead_status: int | None  # set when tmux keeps a dead pane (remain-on-exit)
    activity: int
    created: int


@frozen
class Snapshot:
    """Everything tmux said about one socket in one call."""

    socket: str
    server_running: bool
    panes: dict[str, Pane]
    server_pid: int | None = None


# Why an agent stopped, when its last words or its own records say (see `agents`).
AUTH_EXPIRED = "auth-expired"  # a login is needed: a restart cannot fix it
RATE_LIMITED = "rate-limited"  # a provider's limit: no restart before it lifts
TRANSIENT = "transient"  # busy servers, a dropped connection: restarted soon
RATE_LIMIT_WAIT = timedelta(minutes=15)  # when the agent does not say when it lifts


@frozen
class Reason:
    """A known cause of a stop, with what to do about it."""

    kind: str  # AUTH_EXPIRED, RATE_LIMITED or TRANSIENT
    hint: str
    retry_at: datetime | None = None  # for rate limits, when the text says

    def describe(self) -> str:
        return f"{self.kind}: {self.hint}" if self.hint else self.kind


@frozen
class Hold:
    """A provider's expired login: every entry of its agents that stops is held, until
    the login file changes (or a person runs `heartbeat reset`)."""

    path: str  # the login file
    stamp: tuple[int, int, int] | None  # its inode, size and mtime then (None: absent)
    since: str  # ISO time
    hint: str  # what to run, as the agent said


@frozen
class Baseline:
    """How an agent's folder stood when its run started: its work is measured from here."""

    head: str | None  # None: not a git repository
    prd_ticked: frozenset[str] | None  # None: no PRD
    started: datetime
    # Uncommitted files then, with their fingerprints: work that was not this run's.
    dirty: tuple[tuple[str, str], ...] = ()
    # For a run heartbeat first saw running: when its session was created, which the
    # baseline is taken from (the last commit before then, the files not changed since).
    guessed_from: datetime | None = None


@frozen
class Observation:
    """What a check learned about one entry's session."""

    present: bool
    exit_code: int | None = None  # set when the agent is known to have ended
    reason: Reason | None = None  # what its last words say, when they say it
    stalled: bool = False  # running, but quiet (no output, no commit) for too long
    waiting_until: datetime | None = None  # running, idle at a limit that resets then

    @property
    def state(self) -> State:
        if not self.present and self.exit_code is None:
            return State.DEAD
        if self.exit_code is None:
            return State.RUNNING
        return State.FINISHED if self.exit_code == 0 else State.FAILED


class Action(StrEnum):
    NONE = "none"
    RESTART = "restart"
    WAIT = "wait"  # a restart is due later (backoff)
    CLOSE = "close"  # finished: tick the box
    REPORT = "report"  # needs a person
    APPROVE = "approve"  # would restart, but nobody has allowed the command yet


@frozen
class History:
    """What the state file remembers of an entry, as the policy needs it."""

    state: State | None = None
    failures: tuple[datetime, ...] = ()  # when recent failed runs were seen ending
    last_start: datetime | None = None
    not_before: datetime | None = None  # a rate limit's reset time


@frozen
class Decision:
    """What to do about one entry, and what to write down."""

    state: State
    action: Action
    changed: bool  # True when the note gets a status line
    status: str  # the status line's text
    needs_person: bool = False
    failures: tuple[datetime, ...] = ()
    due: datetime | None = None  # when the restart may happen
    event: str | None = None  # what a person is told about, when changed


# --- what the state file keeps of an entry --------------------------------------------


@frozen
class Record:
    """What heartbeat knows about one entry, keyed by socket and name.

    Frozen: a check's decide stage returns the next record and its act stage stores it,
    so no code deep in a check changes a record it was handed. The methods below name
    the few changes that happen outside a check's decision.
    """

    state: State | None = None
    exit_code: int | None = None
    run: str | None = None  # id of the run heartbeat started; names its exit file
    path: str | None = None  # PATH at launch, passed to every restart
    pid: int | None = None  # the pane's first process: its process group and session
    pane_id: str | None = None  # the pane's id, which its processes carry in TMUX_PANE
    activity: int | None = None  # pane activity time when its output was last read
    since: str | None = None  # when `state` was first seen
    last_start: str | None = None  # ISO time heartbeat last started it
    failures: tuple[str, ...] = ()  # ISO times of recent failed runs
    not_before: str | None = None  # ISO time a rate limit lifts
    forgiven: bool = False  # reset by a person: the last run's words no longer hold it
    digest: str | None = None  # of command, dir and socket: an edit resets the counts
    # How the folder stood at the first start, to verify the work against.
    baseline_at: str | None = None
    baseline_head: str | None = None  # None: not a git repository
    baseline_prd: tuple[str, ...] | None = None  # ticked PRD tasks
    verdict: str | None = None  # of the last run that stopped
    # For stall detection: when the pane's output or the HEAD last moved.
    seen_activity: int | None = None
    quiet_since: str | None = None
    commit_asked: str | None = None  # when git last said a stalled agent made no commit
    # The events a person was told about since the last healthy run: each is news once
    # (a looping agent would send the same on every stop); a healthy run forgets them.
    told: tuple[str, ...] = ()
    # The agent's own conversation: of the current run, found once or pinned at launch.
    session: str | None = None
    resumed: bool = False  # the current run continues `session`
    stale_session: str | None = None  # a session whose resume failed: not tried again
    resume_failed: str | None = None  # why, until the restart afresh that follows it
    started_at: float | None = None  # the real time (epoch) of the last start
    homes: tuple[tuple[str, str], ...] = ()  # CODEX_HOME and the like, at launch
    # More of the baseline: the uncommitted files then, fingerprinted, and for a run
    # first seen running, its session's creation (the baseline is a guess from then).
    baseline_dirty: tuple[tuple[str, str], ...] = ()
    baseline_from: str | None = None
    log: str | None = None  # the current run's log file (the state folder's logs/)
    # The note the entry was last seen in, and whether it has since gone from the notes
    # (a person is told once, when its session still runs; back in the notes, it is news
    # again the next time it goes).
    note: str | None = None
    left_notes: bool = False
    # Restarts on one local day (`status` shows today's): the day, and how many.
    restarts_day: str | None = None
    restarts_that_day: int = 0

    def for_command(self, digest: str) -> Record:
        """The record as it stands for the command with this digest: a new or edited
        command starts with a clean slate (no failures, no baseline, not held)."""
        if self.digest == digest:
            return self
        held = self.state in HELD
        state = None if held else self.state
        return replace(
            self,
            failures=(),
            digest=digest,
            baseline_at=None,
            state=state,
            told=(),
            session=None,  # the conversation, and the run, were the old command's
            resumed=False,
            stale_session=None,
            resume_failed=None,
            started_at=None,
        )

    def started(self, run: Started, now: datetime) -> Record:
        """A run heartbeat has just started."""
        return replace(
            self,
            run=run.run,
            pid=run.pid,
            pane_id=run.pane_id,
            state=State.RUNNING,
            exit_code=None,
            activity=None,
            since=run.since,
            last_start=now.isoformat(),
            started_at=run.started_at,
            session=run.session,
            resumed=run.resumed,
            resume_failed=None,
            not_before=None,
            forgiven=False,
            log=run.log,
            **_baseline_fields(run.baseline),
        )

    @property
    def baseline(self) -> Baseline | None:
        """How the folder stood when the run started, to verify its work against."""
        if self.baseline_at is None:
            return None
        ticked = frozenset(self.baseline_prd) if self.baseline_prd is not None else None
        guessed = datetime.fromisoformat(self.baseline_from) if self.baseline_from else None
        started = datetime.fromisoformat(self.baseline_at)
        return Baseline(self.baseline_head, ticked, started, self.baseline_dirty, guessed)

    def with_baseline(self, baseline: Baseline) -> Record:
        return replace(self, **_baseline_fields(baseline))

    def restarted(self, day: date) -> Record:
        """One more restart on `day` (the count starts again on another day)."""
        count = self.restarts_that_day + 1 if self.restarts_day == day.isoformat() else 1
        return replace(self, restarts_day=day.isoformat(), restarts_that_day=count)

    def restarts_on(self, day: date) -> int:
        return self.restarts_that_day if self.restarts_day == day.isoformat() else 0

    def forgive(self) -> Record:
        """`heartbeat reset`: failed starts forgotten, and seen afresh if held."""
        state = None if self.state in HELD else self.state
        return replace(self, failures=(), not_before=None, forgiven=True, state=state, told=())


def _baseline_fields(baseline: Baseline) -> dict[str, Any]:
    ticked = tuple(sorted(baseline.prd_ticked)) if baseline.prd_ticked is not None else None
    return {
        "baseline_at": baseline.started.isoformat(),
        "baseline_head": baseline.head,
        "baseline_prd": ticked,
        "baseline_dirty": baseline.dirty,
        "baseline_from": baseline.guessed_from.isoformat() if baseline.guessed_from else None,
    }


@frozen
class Started:
    """What starting a run returns, for its record."""

    run: str | None  # the run id (heartbeat's wrapper only)
    pid: int | None
    pane_id: str | None
    since: str  # the stamp of the start
    baseline: Baseline
    started_at: float  # the real time (epoch), which the agents' own files are named by
    session: str | None = None  # the conversation it runs, when known at the start
    resumed: bool = False  # it continues that conversation
    server_pid: int | None = None  # its tmux server's, to recreate a deleted socket
    log: str | None = None  # the file its output goes to, when one is kept
