"""The machine-owned state: what each entry was last seen as, runs, printed problems.

It lives in the state folder, never beside the notes (notes folders are synced between
machines); the note is only its readable mirror.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from heartbeat import files
from heartbeat.model import HELD, Baseline, State

VERSION = 1


@dataclass(frozen=True)
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

    def for_command(self, digest: str) -> Record:
        """The record as it stands for the command with this digest: a new or edited
        command starts with a clean slate (no failures, no baseline, not held)."""
        if self.digest == digest:
            return self
        held = self.state in HELD
        state = None if held else self.state
        return replace(self, failures=(), digest=digest, baseline_at=None, state=state, told=())

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
            **_baseline_fields(run.baseline),
        )

    @property
    def baseline(self) -> Baseline | None:
        """How the folder stood when the run started, to verify its work against."""
        if self.baseline_at is None:
            return None
        ticked = frozenset(self.baseline_prd) if self.baseline_prd is not None else None
        return Baseline(self.baseline_head, ticked, datetime.fromisoformat(self.baseline_at))

    def with_baseline(self, baseline: Baseline) -> Record:
        return replace(self, **_baseline_fields(baseline))

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
    }


@dataclass(frozen=True)
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


@dataclass
class StateFile:
    records: dict[str, Record] = field(default_factory=dict)
    printed: list[str] = field(default_factory=list)  # problems already printed once
    servers: dict[str, int] = field(default_factory=dict)  # tmux server pid by socket
    # Status lines a failed write could not add, by note path, for the next check.
    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Status lines the last checks wrote (newest last), by note path, so that one a stale
    # save dropped is written again.
    written: list[dict[str, list[dict[str, Any]]]] = field(default_factory=list)
    warning: str | None = None
    saved: dict[str, Any] | None = field(default=None, repr=False)  # as read or last written

    @staticmethod
    def key(socket: str, name: str) -> str:
        return f"{socket}\t{name}"

    def record(self, socket: str, name: str) -> Record:
        """The record of an entry (an empty one when there is none yet)."""
        return self.records.get(self.key(socket, name), Record())


LAST_CHECK_FILE = "last-check"


def state_path(state_dir: Path) -> Path:
    return state_dir / "state.json"


def exit_file(state_dir: Path, run: str) -> Path:
    return state_dir / "runs" / f"{run}.exit"


def load(state_dir: Path) -> StateFile:
    """The state; a missing one is empty, a corrupt one is rebuilt with a warning."""
    path = state_path(state_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {item.name for item in fields(Record)}
        records = {key: _record_from_json(value, known) for key, value in raw["records"].items()}
        for record in records.values():
            _check_times(record)
        for item in [*raw.get("pending", {}).values(), *raw.get("written", [])]:
            _check_edits(item)
        return StateFile(
            records,
            list(raw.get("printed", [])),
            {str(k): int(v) for k, v in raw.get("servers", {}).items()},
            dict(raw.get("pending", {})),
            list(raw.get("written", [])),
            saved=raw,
        )
    except FileNotFoundError:
        return StateFile()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return StateFile(
            warning=f"{path}: state file unreadable ({type(error).__name__}); "
            "rebuilding it from tmux and the notes"
        )


def _record_from_json(value: dict[str, Any], known: set[str]) -> Record:
    fields_read = {k: v for k, v in value.items() if k in known}
    fields_read["state"] = State(value["state"]) if value.get("state") else None
    fields_read["failures"] = tuple(fields_read.get("failures", ()))
    fields_read["told"] = tuple(fields_read.get("told", ()))
    fields_read["homes"] = tuple(tuple(pair) for pair in fields_read.get("homes", ()))
    if fields_read.get("baseline_prd") is not None:
        fields_read["baseline_prd"] = tuple(fields_read["baseline_prd"])
    return Record(**fields_read)


def _check_times(record: Record) -> None:
    """Raise ValueError when a time in the record cannot be read."""
    times = (record.not_before, record.last_start, record.baseline_at, record.commit_asked)
    for when in (*record.failures, *times):
        if when is not None:
            datetime.fromisoformat(when)


def _check_edits(item: Any) -> None:
    """Raise ValueError unless `item` is a list of edits, or a map of paths to them."""
    lists = item.values() if isinstance(item, dict) else [item]
    for edits in lists:
        for edit in edits:
            key = edit["key"]
            if not (isinstance(key, list) and len(key) == 2 and isinstance(edit["text"], str)):
                raise ValueError("a status line to write is malformed")
            if not isinstance(edit["stamp"], str):
                raise ValueError("a status line to write is malformed")


def save(state_dir: Path, state: StateFile) -> None:
    """Write the state, unless it is what was read: a quiet check writes nothing."""
    raw = {
        "version": VERSION,
        "records": {key: _record_json(record) for key, record in sorted(state.records.items())},
        "printed": state.printed,
        "servers": state.servers,
        "pending": state.pending,
        "written": state.written,
    }
    if raw == state.saved:
        return
    # Compact: json's C encoder serves only that form, and is fast at thousands of records.
    text = json.dumps(raw, separators=(",", ":"))
    files.write_private(state_path(state_dir), text + "\n")
    state.saved = json.loads(text)  # a copy: `raw` shares its lists with the records


def _record_json(record: Record) -> dict[str, Any]:
    raw = dict(vars(record))  # a flat record: no deep copy needed, unlike asdict()
    raw["state"] = record.state.value if record.state is not None else None
    # Lists, as JSON reads them back: a quiet check compares what it would write with
    # what it read, and writes nothing when they are equal.
    raw["failures"] = list(record.failures)
    raw["told"] = list(record.told)
    raw["homes"] = [list(pair) for pair in record.homes]
    if record.baseline_prd is not None:
        raw["baseline_prd"] = list(record.baseline_prd)
    return raw


def read_exit(state_dir: Path, run: str | None) -> int | None:
    """The exit code the wrapper recorded for a run, if it ended."""
    if not run:
        return None
    try:
        return int(exit_file(state_dir, run).read_text().strip())
    except (OSError, ValueError):
        return None


def log(state_dir: Path, stamp: str, line: str) -> None:
    """Append to the log file: cron hides what a job prints."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(state_dir / "heartbeat.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {line}\n")
    except OSError:
        pass  # the log is a convenience; the check goes on without it


def new_run_id(stamp: str) -> str:
    return f"{stamp.replace(':', '').replace(' ', 'T').replace('-', '')}-{os.urandom(4).hex()}"


def record_check(state_dir: Path, now: datetime) -> None:
    """Remember when a check ran, for `status` and `doctor`: as a file's time, so that a
    quiet check writes no data."""
    path = state_dir / LAST_CHECK_FILE
    if not path.exists():
        files.write_private(path, "")
    os.utime(path, (now.timestamp(), now.timestamp()))


def last_check(state_dir: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp((state_dir / LAST_CHECK_FILE).stat().st_mtime)
    except OSError:
        return None
