"""What git says about an agent's folder: HEAD, new commits, uncommitted work.

Every call runs `git --no-optional-locks`, so a check never takes the repository's
index lock and an agent's own commit never fails because heartbeat was looking.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

TIMEOUT_SECONDS = 10.0
UNTRACKED_BYTES_READ = 1 << 20  # past this an untracked file's lines are not counted


@dataclass(frozen=True)
class Head:
    """Where a repository stood when an agent started."""

    sha: str  # empty in a repository without commits
    branch: str


@dataclass(frozen=True)
class Changes:
    """What changed in the folder since a recorded HEAD."""

    commits: int
    files: int
    added: int
    removed: int

    @property
    def any(self) -> bool:
        return bool(self.commits or self.files)

    def describe(self) -> str:
        """`3 commits · 12 files +340 -80`, the parts that are not zero."""
        parts = []
        if self.commits:
            parts.append(f"{self.commits} commit{'s' if self.commits != 1 else ''}")
        if self.files:
            plural = "s" if self.files != 1 else ""
            parts.append(f"{self.files} file{plural} +{self.added} -{self.removed}")
        return " · ".join(parts) or "no changes"


def _git(folder: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", folder, *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def head(folder: str) -> Head | None:
    """HEAD and branch, or None when the folder is not in a git repository."""
    inside = _git(folder, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.stdout.strip() != "true":
        return None
    sha = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
    branch = _git(folder, "symbolic-ref", "--short", "-q", "HEAD")
    return Head(
        sha.stdout.strip() if sha and sha.returncode == 0 else "",
        branch.stdout.strip() if branch and branch.returncode == 0 else "",
    )


def changes(folder: str, since: str, ignore: str | None = None) -> Changes:
    """Commits since `since`, and uncommitted work (untracked files included), in this
    folder only (another project in the same repository is not this agent's work).

    `ignore` (a path) is left out: ticking the PRD's boxes is not the work itself.
    """
    scope = ["--", "."]
    if ignore and os.path.isabs(ignore) and ignore.startswith(os.path.realpath(folder) + os.sep):
        scope.append(f":(exclude,literal){os.path.relpath(ignore, os.path.realpath(folder))}")
    elif ignore:
        scope.append(f":(exclude,literal){os.path.relpath(ignore, folder)}")
    # A repository that had no commits at the start (or none at all): every commit is new.
    counted = _git(folder, "rev-list", "--count", f"{since}..HEAD" if since else "HEAD", *scope)
    ok = counted is not None and counted.returncode == 0 and counted.stdout.strip().isdigit()
    commits = int(counted.stdout.strip()) if ok and counted else 0
    files = added = removed = 0
    has_head = _git(folder, "rev-parse", "-q", "--verify", "HEAD")
    base = ["HEAD"] if has_head and has_head.returncode == 0 else ["--cached"]
    numstat = _git(folder, "-c", "core.quotePath=false", "diff", "--numstat", *base, *scope)
    for line in (numstat.stdout if numstat else "").splitlines():
        plus, minus, _ = line.split("\t", 2)
        files += 1
        added += int(plus) if plus.isdigit() else 0
        removed += int(minus) if minus.isdigit() else 0
    untracked = _git(folder, "ls-files", "--others", "--exclude-standard", "-z", *scope)
    for name in (untracked.stdout if untracked else "").split("\0"):
        if name:
            files += 1
            added += _count_lines(os.path.join(folder, name))
    return Changes(commits, files, added, removed)


def _count_lines(path: str) -> int:
    try:
        with open(path, "rb") as handle:
            data = handle.read(UNTRACKED_BYTES_READ)
    except OSError:
        return 0
    return 0 if b"\0" in data else data.count(b"\n")


def last_commit_time(folder: str) -> int | None:
    """When HEAD was committed (seconds since the epoch), or None."""
    result = _git(folder, "log", "-1", "--format=%ct")
    text = result.stdout.strip() if result and result.returncode == 0 else ""
    return int(text) if text.isdigit() else None


def log_oneline(folder: str, count: int = 3) -> list[str]:
    result = _git(folder, "log", "--oneline", f"-{count}")
    return result.stdout.splitlines() if result and result.returncode == 0 else []


def diff_stat(folder: str) -> list[str]:
    result = _git(folder, "diff", "--stat", "HEAD")
    return result.stdout.splitlines() if result and result.returncode == 0 else []
