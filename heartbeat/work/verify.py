"""Is the work there? git and the PRD, compared with how they stood at the start.

Agents tick PRD boxes without doing the work and exit 0 having read a few files, so a
clean exit is not finished work: heartbeat checks git, not checkboxes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from heartbeat import agents
from heartbeat.model import Baseline, Command
from heartbeat.records import frozen
from heartbeat.work import git, prd
from heartbeat.work.git import Changes

NO_OP_WITHIN = timedelta(minutes=5)
VERIFIED = "verified"
CLAIMED = "claimed, not done"
NO_OP = "no-op exit"
NOT_GIT = "not a git repo"
UNCHANGED = "no changes"


@frozen
class Report:
    changes: Changes | None  # None: not a git repository
    prd: prd.Progress | None
    verdict: str
    hint: str = ""
    guessed_from: datetime | None = None  # the baseline is a guess, from this time

    def summary(self) -> str:
        """`3 commits · 12 files +340 -80 · PRD 7/7 · verified`."""
        parts = [self.changes.describe()] if self.changes is not None else []
        if self.prd is not None:
            parts.append(self.prd.describe())
        if self.verdict not in parts:
            parts.append(self.verdict)
        if self.guessed_from is not None:
            parts.append(f"baseline from {self.guessed_from:%H:%M}")
        if self.hint:
            parts.append(self.hint)
        return " · ".join(parts)


def baseline(command: Command, folder: str, now: datetime) -> Baseline:
    """How the folder stands as a run starts: HEAD, ticked PRD tasks, uncommitted files."""
    start = git.head(folder)
    progress = prd.read(prd.path_for(command, folder))
    return Baseline(
        start.sha if start is not None else None,
        progress.ticked if progress is not None else None,
        now,
        tuple(sorted(git.dirty_files(folder).items())) if start is not None else (),
    )


def guessed_baseline(command: Command, folder: str, created: datetime, now: datetime) -> Baseline:
    """For a run heartbeat first sees running (adopted, or the skill's line pasted in):
    how the folder stood when its session was created, as far as can be told: the last
    commit before then, and the uncommitted files not changed since."""
    progress = prd.read(prd.path_for(command, folder))
    head = git.commit_before(folder, created.timestamp())
    dirty = git.dirty_files(folder, before=created.timestamp()) if head is not None else {}
    return Baseline(
        head,
        progress.ticked if progress is not None else None,
        now,
        tuple(sorted(dirty.items())),
        created,
    )


def judge(
    exit_code: int | None,
    changes: Changes | None,
    ticked_before: frozenset[str] | None,
    progress: prd.Progress | None,
    ran_for: timedelta | None,
) -> tuple[str, str]:
    """The verdict on a stopped run, and a hint for the next step: pure."""
    if changes is None:
        return NOT_GIT, ""
    if changes.any:
        return VERIFIED, ""
    newly_ticked = progress.ticked - ticked_before if progress and ticked_before is not None else ()
    if newly_ticked:
        return CLAIMED, "PRD boxes ticked without a commit or a diff"
    if exit_code == 0 and ran_for is not None and ran_for < NO_OP_WITHIN:
        return NO_OP, agents.NO_OP_HINT
    return UNCHANGED, ""


def measure(
    command: Command, folder: str, start: Baseline | None, exit_code: int | None, now: datetime
) -> Report:
    """Compare the folder with the baseline (git calls never take the index lock)."""
    head = git.head(folder)
    prd_path = prd.path_for(command, folder)
    progress = prd.read(prd_path)
    if head is None:
        return Report(None, progress, NOT_GIT)
    # No repository at the start (the agent ran `git init`): every commit is its work.
    since = start.head if start is not None and start.head is not None else ""
    if start is None:
        since = head.sha
    already = dict(start.dirty) if start is not None else {}
    changes = git.changes(folder, since, ignore=prd_path, already=already)
    ticked_before = start.prd_ticked if start is not None else None
    began = start.guessed_from or start.started if start is not None else None
    ran_for = now - began if began is not None else None
    verdict, hint = judge(exit_code, changes, ticked_before, progress, ran_for)
    return Report(changes, progress, verdict, hint, start.guessed_from if start else None)
