"""The records that flow through a check: entries from notes, panes from tmux, decisions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

# tmux rewrites `.` and `:` in session names, and under cron's C locale non-ASCII
# names come back mangled: such a session would look dead forever.
SESSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


NAME_RULE = "use letters, digits, '-' and '_', starting with a letter or digit"


def stamp_of(now: datetime) -> str:
    """The time as heartbeat's status lines and records write it: `2026-11-24 10:45`."""
    return now.strftime("%Y-%m-%d %H:%M")


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
    GAVE_UP = "gave-up"  # held until `heartbeat reset`: too many failed starts
    AUTH_EXPIRED = "auth-expired"  # held until `heartbeat reset`: a login is needed


HELD = frozenset({State.GAVE_UP, State.AUTH_EXPIRED})


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


@dataclass(frozen=True)
class Span:
    """Where an entry sits in its note, so that edits touch only what heartbeat owns."""

    head: int  # 0-based line of the list item
    last: int  # 0-based last non-blank line of the item
    box_column: int | None  # column of the space inside `[ ]`, when the item has a box
    child_indent: str  # indentation for a new sub-item
    child_marker: str  # `-`, `*` or `+`
    status_ranges: tuple[tuple[int, int], ...] = ()  # heartbeat's status sub-items


@dataclass(frozen=True)
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
        object.__setattr__(self, "digest", digest)  # frozen: set once, at creation

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
    def line(self) -> int:
        return self.span.head + 1

    @property
    def location(self) -> str:
        return f"{self.where}:{self.line}"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Snapshot:
    """Everything tmux said about one socket in one call."""

    socket: str
    server_running: bool
    panes: dict[str, Pane]
    server_pid: int | None = None


# Why an agent stopped, when its last words or its own records say (see `agents`).
AUTH_EXPIRED = "auth-expired"  # a login is needed: a restart cannot fix it
RATE_LIMITED = "rate-limited"  # a provider's limit: no restart before it lifts
RATE_LIMIT_WAIT = timedelta(minutes=15)  # when the agent does not say when it lifts


@dataclass(frozen=True)
class Reason:
    """A known cause of a stop, with what to do about it."""

    kind: str  # AUTH_EXPIRED or RATE_LIMITED
    hint: str
    retry_at: datetime | None = None  # for rate limits, when the text says

    def describe(self) -> str:
        return f"{self.kind}: {self.hint}" if self.hint else self.kind


@dataclass(frozen=True)
class Baseline:
    """How an agent's folder stood when its run started: its work is measured from here."""

    head: str | None  # None: not a git repository
    prd_ticked: frozenset[str] | None  # None: no PRD
    started: datetime


@dataclass(frozen=True)
class Observation:
    """What a check learned about one entry's session."""

    present: bool
    exit_code: int | None = None  # set when the agent is known to have ended
    reason: Reason | None = None  # what its last words say, when they say it
    stalled: bool = False  # running, but quiet (no output, no commit) for too long

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


@dataclass(frozen=True)
class History:
    """What the state file remembers of an entry, as the policy needs it."""

    state: State | None = None
    failures: tuple[datetime, ...] = ()  # when recent failed runs were seen ending
    last_start: datetime | None = None
    not_before: datetime | None = None  # a rate limit's reset time


@dataclass(frozen=True)
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
