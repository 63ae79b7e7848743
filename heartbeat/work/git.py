"""What git says about an agent's folder: HEAD, new commits, uncommitted work.

Every call runs `git --no-optional-locks`, so a check never takes the repository's
index lock and an agent's own commit never fails because heartbeat was looking, and
with the repository's own programs switched off: a `core.fsmonitor` or a hook named by
the repository's config is the repository's writer's code, not heartbeat's user's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import stat
import subprocess
from collections.abc import Mapping

from heartbeat import deadline
from heartbeat.records import frozen

TIMEOUT_SECONDS = 10.0
CHECKOUT_SECONDS = 300.0  # a worktree's checkout (or removal) of a large repository
UNTRACKED_BYTES_READ = 1 << 20  # past this an untracked file's lines are not counted
# Programs a repository's config could make git run: none is.
SAFE = (
    *("-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null", "-c", "diff.external="),
    # A signature shown runs gpg.program; a submodule's own config names its own drivers.
    *("-c", "log.showSignature=false", "-c", "gpg.program=", "-c", "gpg.ssh.program="),
    *("-c", "gpg.x509.program=", "-c", "diff.ignoreSubmodules=all"),
    *("-c", "submodule.recurse=false", "-c", "status.submoduleSummary=false"),
    *("-c", "protocol.allow=never", "-c", "core.sshCommand=false"),
)
DIRTY_FILES_KEPT = 500  # a baseline remembers this many uncommitted files at most
HASHED_BYTES = 4 << 20  # past this a file is known by its size and time, not its bytes
HASHED_IN_ALL = 64 << 20  # and past this many bytes hashed for one baseline, every file


@frozen
class Head:
    """Where a repository stood when an agent started."""

    sha: str  # empty in a repository without commits
    branch: str


@frozen
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


def _run(
    folder: str,
    args: tuple[str, ...],
    settings: tuple[tuple[str, str], ...] = (),
    seconds: float = TIMEOUT_SECONDS,
) -> subprocess.CompletedProcess[str] | None:
    """One git call, None when it failed to run or ran out of time: the check's time
    bound cuts its timeout, and git and anything it started are ended together."""
    # A partial clone would fetch a missing object from its promisor remote, running the
    # upload-pack or ssh command the repository's config names: never.
    env = dict(os.environ, GIT_NO_LAZY_FETCH="1", GIT_TERMINAL_PROMPT="0")
    if settings:  # as variables, which git takes whole (a `-c` splits at the first `=`)
        env["GIT_CONFIG_COUNT"] = str(len(settings))
        for index, (key, value) in enumerate(settings):
            env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    seconds = deadline.timeout(seconds)
    if seconds <= 0:
        return None
    argv = ["git", "--no-optional-locks", *SAFE, "-C", folder, *args]
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,
        )
    except (OSError, ValueError):
        return None
    try:
        out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        # A child that left the group may still hold the pipes: do not wait on them.
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()
        return None
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


_switched_off: dict[str, tuple[tuple[str, str], ...]] = {}


def _drivers_off(folder: str) -> tuple[tuple[str, str], ...]:
    """Settings that empty every filter and diff driver the repository's config names (a
    `clean` filter runs while git compares the working tree): asked of the config once
    per folder, and reading a config runs nothing."""
    if folder not in _switched_off:
        found = _run(folder, ("config", "-z", "--name-only", "--get-regexp", r"^(filter|diff)\."))
        settings: list[tuple[str, str]] = []
        for key in (found.stdout if found and found.returncode == 0 else "").split("\0"):
            section, _, rest = key.partition(".")
            driver = rest.rpartition(".")[0]
            if driver:
                names = (
                    ("clean", "smudge", "process")
                    if section == "filter"
                    else ("textconv", "command")
                )
                settings += [(f"{section}.{driver}.{name}", "") for name in names]
        _switched_off[folder] = tuple(settings)
    return _switched_off[folder]


def _git(
    folder: str, *args: str, seconds: float = TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[str] | None:
    return _run(folder, args, _drivers_off(folder), seconds)


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


def _scope(folder: str, ignore: str | None) -> list[str]:
    scope = ["--", "."]
    if ignore and os.path.isabs(ignore) and ignore.startswith(os.path.realpath(folder) + os.sep):
        scope.append(f":(exclude,literal){os.path.relpath(ignore, os.path.realpath(folder))}")
    elif ignore:
        scope.append(f":(exclude,literal){os.path.relpath(ignore, folder)}")
    return scope


def _uncommitted(folder: str, scope: list[str]) -> tuple[list[tuple[str, int, int]], list[str]]:
    """The folder's changed tracked files (path, lines added, removed) and its untracked
    files, paths relative to the folder."""
    has_head = _git(folder, "rev-parse", "-q", "--verify", "HEAD")
    base = ["HEAD"] if has_head and has_head.returncode == 0 else ["--cached"]
    numstat = _git(
        folder,
        "diff",
        "--numstat",
        "-z",
        "--no-renames",
        "--relative",
        "--ignore-submodules=all",
        "--no-ext-diff",
        "--no-textconv",
        *base,
        *scope,
    )
    tracked = []
    for record in (numstat.stdout if numstat else "").split("\0"):
        plus, _, rest = record.partition("\t")
        minus, _, name = rest.partition("\t")
        if name:
            added = int(plus) if plus.isdigit() else 0
            tracked.append((name, added, int(minus) if minus.isdigit() else 0))
    untracked = _git(folder, "ls-files", "--others", "--exclude-standard", "-z", *scope)
    return tracked, [name for name in (untracked.stdout if untracked else "").split("\0") if name]


def changes(
    folder: str,
    since: str,
    ignore: str | None = None,
    already: Mapping[str, str] | None = None,
) -> Changes:
    """Commits since `since`, and uncommitted work (untracked files included), in this
    folder only (another project in the same repository is not this agent's work).

    `ignore` (a path) is left out: ticking the PRD's boxes is not the work itself.
    `already`: the uncommitted files as they were at the start (`dirty_files`): one that
    is still just so is not this run's work.
    """
    scope = _scope(folder, ignore)
    # A repository that had no commits at the start (or none at all): every commit is new.
    counted = _git(folder, "rev-list", "--count", f"{since}..HEAD" if since else "HEAD", *scope)
    ok = counted is not None and counted.returncode == 0 and counted.stdout.strip().isdigit()
    commits = int(counted.stdout.strip()) if ok and counted else 0
    files = added = removed = 0
    tracked, untracked = _uncommitted(folder, scope)
    untouched = already or {}

    def as_it_was(name: str) -> bool:
        return name in untouched and fingerprint(os.path.join(folder, name)) == untouched[name]

    for name, plus, minus in tracked:
        if not as_it_was(name):
            files, added, removed = files + 1, added + plus, removed + minus
    for name in untracked:
        if not as_it_was(name):
            files, added = files + 1, added + _count_lines(os.path.join(folder, name))
    return Changes(commits, files, added, removed)


def dirty_files(folder: str, before: float | None = None) -> dict[str, str]:
    """The folder's uncommitted files with their fingerprints: work that was there
    before a run, not to be credited to it. `before` (epoch seconds): only the files
    last changed before then (a run heartbeat first sees running has been changing the
    others)."""
    tracked, untracked = _uncommitted(folder, ["--", "."])
    found: dict[str, str] = {}
    hashed = 0
    for name in sorted([name for name, _, _ in tracked] + untracked)[:DIRTY_FILES_KEPT]:
        path = os.path.join(folder, name)
        if before is not None and _changed_since(path, before):
            continue
        found[name] = fingerprint(path, by_content=hashed < HASHED_IN_ALL)
        hashed += _size(path)
    return found


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _changed_since(path: str, moment: float) -> bool:
    try:
        return os.lstat(path).st_mtime >= moment
    except OSError:
        return False  # deleted: when is not known, so not credited


def fingerprint(path: str, by_content: bool = True) -> str:
    """What a file holds, in a few bytes: a hash of its content (of its size and time
    past HASHED_BYTES, or when not `by_content`), `link:` and its target, or `-` when it
    is not there."""
    try:
        found = os.lstat(path)
        if stat.S_ISLNK(found.st_mode):
            return "link:" + os.readlink(path)
        if not stat.S_ISREG(found.st_mode):
            return f"mode:{found.st_mode:o}"
        if found.st_size > HASHED_BYTES or not by_content:
            return f"size:{found.st_size}:{found.st_mtime_ns}"
        digest = hashlib.sha256()
        # O_NONBLOCK: a FIFO swapped in after the lstat never blocks the check.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        return digest.hexdigest()[:20]
    except OSError:
        return "-"


def commit_before(folder: str, moment: float) -> str | None:
    """The last commit made before `moment` (epoch seconds): "" when there is none, None
    when the folder is not in a repository."""
    if head(folder) is None:
        return None
    result = _git(folder, "rev-list", "-1", f"--before={int(moment)}", "HEAD")
    return result.stdout.strip() if result and result.returncode == 0 else ""


def _count_lines(path: str) -> int:
    """An untracked file's lines: a regular file only, never through a link or blocking
    (a FIFO an agent left there would hang the check)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return 0
        data = os.read(fd, UNTRACKED_BYTES_READ)
    except OSError:
        return 0
    finally:
        os.close(fd)
    return 0 if b"\0" in data else data.count(b"\n")


def last_commit_time(folder: str) -> int | None:
    """When HEAD was committed (seconds since the epoch), or None."""
    result = _git(folder, "log", "--no-show-signature", "-1", "--format=%ct")
    text = result.stdout.strip() if result and result.returncode == 0 else ""
    return int(text) if text.isdigit() else None


def log_oneline(folder: str, count: int = 3) -> list[str]:
    result = _git(folder, "log", "--no-show-signature", "--oneline", f"-{count}")
    return result.stdout.splitlines() if result and result.returncode == 0 else []


def diff_stat(folder: str) -> list[str]:
    result = _git(folder, "diff", "--stat", "--ignore-submodules=all", "--no-ext-diff", "HEAD")
    return result.stdout.splitlines() if result and result.returncode == 0 else []


# --- work trees: the folder a checkout occupies, and the worktrees heartbeat makes ------


def toplevel(folder: str) -> str | None:
    """The root of the work tree that holds `folder`, resolved (links followed), or None
    outside a repository: two folders in one work tree share their checkout."""
    result = _git(folder, "rev-parse", "--show-toplevel")
    text = result.stdout.strip() if result and result.returncode == 0 else ""
    return os.path.realpath(text) if text else None


def common_dir(folder: str) -> str | None:
    """The repository's own git folder (`.git` of its main work tree, whichever of its
    worktrees `folder` is in), resolved, or None."""
    result = _git(folder, "rev-parse", "--path-format=absolute", "--git-common-dir")
    text = result.stdout.strip() if result and result.returncode == 0 else ""
    return os.path.realpath(text) if text else None


def branch_name(folder: str, branch: str) -> str | None:
    """The branch name as git takes it (`git check-ref-format --branch`), or None when git
    refuses it: never one that reads as an option."""
    if not branch or branch.startswith("-"):
        return None
    result = _git(folder, "check-ref-format", "--branch", branch)
    text = result.stdout.strip() if result and result.returncode == 0 else ""
    return text or None


def has_branch(folder: str, branch: str) -> bool:
    result = _git(folder, "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}")
    return result is not None and result.returncode == 0


def add_worktree(folder: str, path: str, branch: str, new: bool) -> str | None:
    """`git worktree add` at `path`: on a new branch from HEAD, else on the branch that
    exists. None when done, else what git said."""
    args = ("-b", branch, "--", path) if new else ("--", path, branch)
    result = _git(folder, "worktree", "add", "--quiet", *args, seconds=CHECKOUT_SECONDS)
    if result is None:
        return "git did not answer in time"
    return None if result.returncode == 0 else _said(result)


def remove_worktree(folder: str, path: str) -> str | None:
    """`git worktree remove` (never forced: git itself refuses a worktree with changes or
    untracked files). None when done, else what git said."""
    result = _git(folder, "worktree", "remove", "--", path, seconds=CHECKOUT_SECONDS)
    if result is None:
        return "git did not answer in time"
    return None if result.returncode == 0 else _said(result)


def delete_branch(folder: str, branch: str) -> bool:
    """`git branch -d`: only a branch whose commits are all merged (one just made)."""
    result = _git(folder, "branch", "-d", "--", branch)
    return result is not None and result.returncode == 0


def uncommitted(folder: str) -> list[str] | None:
    """The work tree's changed and untracked files (ignored ones aside), as
    `git status --porcelain` lists them; None when git cannot say."""
    result = _git(
        folder,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        # A submodule's own config names its own drivers: not looked into (and git
        # itself refuses to remove a worktree that holds submodules).
        "--ignore-submodules=all",
    )
    if result is None or result.returncode != 0:
        return None
    return [record[3:] for record in result.stdout.split("\0") if len(record) > 3]


def _said(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ").removeprefix("error: ") if lines else "git failed"
