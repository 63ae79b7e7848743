"""The git worktrees heartbeat makes for agents (`launch --worktree BRANCH`), and the
record of the ones it made (`worktrees.json` in the state folder): only those are ever
removed, and only while they hold no uncommitted work."""

from __future__ import annotations

import json
import os
from pathlib import Path

from heartbeat import files, trust
from heartbeat.config import Config, worktrees_dir
from heartbeat.errors import RefusedError
from heartbeat.records import asdict, frozen
from heartbeat.work import git

FILE = "worktrees.json"


@frozen
class Made:
    """A worktree heartbeat made."""

    path: str  # the worktree's folder, resolved
    repo: str  # the work tree it was made from: git runs there to remove it
    branch: str
    name: str  # the entry it was made for
    socket: str
    created: str
    new_branch: bool  # the branch was made with it


def load(state_dir: Path) -> dict[str, Made]:
    """The worktrees heartbeat made, by path; a lost or unreadable record only means that
    heartbeat removes none of them (it never removes what it has no record of)."""
    try:
        raw = json.loads(files.read_private(state_dir / FILE).decode("utf-8"))
        return {str(path): Made(**value) for path, value in raw.items()}
    except files.NotPrivate as error:
        raise RefusedError(f"{state_dir / FILE}: {error.strerror}: remove it") from None
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def save(state_dir: Path, made: dict[str, Made]) -> None:
    data = {path: asdict(one) for path, one in sorted(made.items())}
    files.write_private(state_dir / FILE, json.dumps(data, indent=1) + "\n")


def folder_name(common: str, branch: str) -> str:
    """`<repository>-<branch>`: the repository named by its main work tree's folder (or a
    bare repository's, without `.git`), the branch's slashes made dashes."""
    repo = os.path.basename(os.path.dirname(common)) if os.path.basename(common) == ".git" else ""
    repo = repo or os.path.basename(common).removesuffix(".git") or "repo"
    return f"{repo}-{branch.replace('/', '-')}"


def create(
    config: Config, directory: str, branch: str, name: str, stamp: str
) -> tuple[str, Made, bool]:
    """A worktree on BRANCH (made from HEAD when it does not exist) for the agent that
    would run in `directory`; returns the folder the agent runs in (the same place
    inside the worktree), the record, and whether it was made now. A worktree heartbeat
    made before for this branch is used again; any other folder in the way is refused."""
    top = git.toplevel(directory)
    common = git.common_dir(directory)
    if top is None or common is None:
        raise RefusedError(f"--worktree: {directory} is not in a git work tree")
    start = git.head(top)
    if start is not None and not start.sha:
        raise RefusedError(f"--worktree: {top} has no commit yet: a worktree starts from one")
    checked = git.branch_name(top, branch)
    if checked is None:
        raise RefusedError(f"--worktree: {branch!r} is not a valid branch name")
    base = worktrees_dir(config)
    path = os.path.join(os.path.realpath(base), folder_name(common, checked))
    inside = os.path.relpath(os.path.realpath(directory), top)
    agent_dir = path if inside == "." else os.path.join(path, inside)
    made = load(config.state_dir)
    known = made.get(path)
    if known is not None and os.path.isdir(path):
        if known.branch != checked or git.common_dir(path) != common:
            raise RefusedError(f"--worktree: {path} is heartbeat's worktree of another branch")
        return _there(agent_dir, inside, known), known, False
    if os.path.lexists(path):
        raise RefusedError(
            f"--worktree: {path} exists, and heartbeat did not make it: choose another "
            "branch, or another folder (worktrees in the config)"
        )
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise RefusedError(f"--worktree: cannot make {base}: {error.strerror}") from None
    refused = trust.unsafe(base, f"worktrees folder {base}")
    if refused:
        raise RefusedError(refused)
    record = Made(path, top, checked, name, config.socket, stamp, not git.has_branch(top, checked))
    # Recorded before it is made: a worktree heartbeat made is never one it forgot.
    save(config.state_dir, {**made, path: record})
    said = git.add_worktree(top, path, checked, record.new_branch)
    if said is not None:
        forget(config.state_dir, path)
        raise RefusedError(f"--worktree: git worktree add {path}: {said}")
    try:
        return _there(agent_dir, inside, record), record, True
    except RefusedError:
        undo(config.state_dir, record)
        raise


def _there(agent_dir: str, inside: str, record: Made) -> str:
    """The agent's folder in the worktree, which must be there: git keeps no folder that
    holds no tracked file."""
    if not os.path.isdir(agent_dir):
        raise RefusedError(
            f"--worktree: {inside} is not in branch {record.branch} (git keeps no folder "
            "without a tracked file)"
        )
    return agent_dir


def undo(state_dir: Path, record: Made) -> None:
    """Take back a worktree just made for a launch that did not happen: the worktree,
    and its branch when it was made with it (it holds no commit of its own yet)."""
    if git.remove_worktree(record.repo, record.path) is None:
        if record.new_branch:
            git.delete_branch(record.repo, record.branch)
        forget(state_dir, record.path)


def forget(state_dir: Path, path: str) -> None:
    made = load(state_dir)
    if made.pop(path, None) is not None:
        save(state_dir, made)


@frozen
class Swept:
    """What `clean` did with one worktree heartbeat made, or would do."""

    made: Made
    removed: bool  # removed (or, in a dry run, would be)
    gone: bool = False  # its folder was removed by someone else: only the record went
    dirty: tuple[str, ...] = ()  # its uncommitted files: it is left for a person
    problem: str | None = None  # why git could not say, or could not remove it


def sweep(state_dir: Path, path: str, dry_run: bool) -> Swept:
    """Remove one worktree heartbeat made, when it holds no uncommitted work (`git
    worktree remove`, never forced; its branch and commits stay)."""
    record = load(state_dir)[path]
    if not os.path.isdir(path):
        if not dry_run:
            forget(state_dir, path)
        return Swept(record, removed=False, gone=True)
    dirty = git.uncommitted(path)
    if dirty is None:
        return Swept(record, removed=False, problem="git cannot say what it holds")
    if dirty:
        return Swept(record, removed=False, dirty=tuple(dirty))
    if dry_run:
        return Swept(record, removed=True)
    said = git.remove_worktree(record.repo, path)
    if said is not None:
        return Swept(record, removed=False, problem=said)
    forget(state_dir, path)
    return Swept(record, removed=True)
