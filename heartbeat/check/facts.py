"""The plain data that passes between a check's stages.

A sighting, a plan and a done are built once and never changed (frozen to the type
checker: see heartbeat/records); decide returns a changed copy with `replace`.

observe -> `Sighting` (what is true of one entry) -> decide -> `Plan` (what to do, and
the record once it is done) -> act -> `Done` (what was done and what to write) -> run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from heartbeat.model import Action, Baseline, Decision, Entry, Observation, Pane, Record
from heartbeat.records import field, frozen, mutable

if TYPE_CHECKING:
    from heartbeat.check.notify import Notice
    from heartbeat.notes.edit import Edit
    from heartbeat.work.verify import Report


@frozen
class Quiet:
    """The stall clock: when an agent's pane (or its git HEAD) last moved."""

    seen_activity: int | None  # the pane activity time last seen
    quiet_since: str | None  # ISO time the pane was first seen still at it
    commit_asked: str | None  # when git last said a quiet agent made no commit


@frozen(eq=False)
class Sighting:
    """What one check found true of one entry: all that `decide` works from."""

    note: Path
    entry: Entry
    record: Record  # as the state has it for this entry's command
    pane: Pane | None
    observed: Observation
    approved: bool  # a person (or heartbeat's own launch) allowed its command
    read_activity: int | None = None  # the pane's activity when its end was read now
    baseline: Baseline | None = None  # taken now: first seen running, without one
    quiet: Quiet | None = None  # the stall clock as this look leaves it
    verdict: Report | None = None  # for a run that just stopped: what git says it did
    # For a run that just stopped before finishing, of an agent that keeps sessions:
    keeps_sessions: bool = False
    session: str | None = None  # its conversation
    resume: tuple[str, ...] | None = None  # the argv that continues it
    resume_refused: str | None = None  # why the run, itself a resume, did not take
    provider: str | None = None  # whose quota and login it uses (asked on stops only)

    @property
    def old(self) -> str:
        """The state the last check left, as a change line names it."""
        return self.record.state.value if self.record.state else "new"


@frozen(eq=False)
class Plan:
    """What to do about one entry, and its record once that is done."""

    sighting: Sighting
    decision: Decision
    record: Record
    problem: str | None = None  # what a person is told now (a command awaiting approval)
    resume: tuple[str, ...] | None = None  # a restart continues the conversation so

    @property
    def is_quiet(self) -> bool:
        """Nothing to do: no restart, no status line (all but a few plans of a check)."""
        return not self.decision.changed and self.decision.action is not Action.RESTART


@frozen
class Change:
    """One entry whose state changed in this check."""

    name: str
    old: str
    new: str
    action: str
    needs_person: bool = False

    def line(self) -> str:
        """`api: running -> failed (restarted)`: what was seen, then what heartbeat did;
        a state seen again is named once (`api: failed (restarted)`)."""
        seen = self.new if self.old == self.new else f"{self.old} -> {self.new}"
        return f"{self.name}: {seen} ({self.action})"


@frozen(eq=False)
class Done:
    """What acting on one plan did: the record to store, the note's line, the news."""

    plan: Plan
    record: Record
    change: Change | None = None
    edit: Edit | None = None
    notice: Notice | None = None  # the event to tell of, once restarts are done
    server_pid: int | None = None  # of the tmux server a restart ran on


@mutable(eq=False)
class Outcome:
    """What a check did, for the command line to print."""

    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # new ones, to print
    needs_person: bool = False
    skipped: bool = False  # another check held the lock
    # Entries gone from the notes while their sessions still run: each said once.
    unwatched: list[str] = field(default_factory=list)
