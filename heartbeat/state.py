"""The machine-owned state: what each entry was last seen as, runs, printed problems.

It lives in the state folder, never beside the notes (notes folders are synced between
machines); the note is only its readable mirror.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from heartbeat import files
from heartbeat.model import Hold, Record, State
from heartbeat.records import field, fields, mutable

VERSION = 1


@mutable(eq=False)
class StateFile:
    records: dict[str, Record] = field(default_factory=dict)
    printed: list[str] = field(default_factory=list)  # problems already printed once
    servers: dict[str, int] = field(default_factory=dict)  # tmux server pid by socket
    # Status lines a failed write could not add, by note path, for the next check.
    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Status lines the last checks wrote (newest last), by note path, so that one a stale
    # save dropped is written again.
    written: list[dict[str, list[dict[str, Any]]]] = field(default_factory=list)
    holds: dict[str, Hold] = field(default_factory=dict)  # expired logins, by provider
    notices: list[str] = field(default_factory=list)  # notifications no check had time for
    warning: str | None = None
    saved: dict[str, Any] | None = field(default=None, repr=False)  # as read or last written
    # The records as read or last written whose JSON there is as `save` writes it: one
    # still in `records` (unchanged, as in most checks) is written as it was.
    kept: dict[str, Record] = field(default_factory=dict, repr=False)
    # Notifications: the events told (entry mark, run, kind), newest last, so that no check
    # tells one twice, whatever the notes say; when each entry's were sent in the last
    # hour; and the events folded into a digest past the rate, by entry mark.
    told: list[str] = field(default_factory=list)
    sent: dict[str, list[str]] = field(default_factory=dict)
    folded: dict[str, dict[str, Any]] = field(default_factory=dict)

    @staticmethod
    def key(socket: str, name: str) -> str:
        return f"{socket}\t{name}"

    def record(self, socket: str, name: str) -> Record:
        """The record of an entry (an empty one when there is none yet)."""
        return self.records.get(self.key(socket, name), Record())


LAST_CHECK_FILE = "last-check"
HOOK_SCRIPT = "hook.sh"  # what tmux's session-closed hook runs


def state_path(state_dir: Path) -> Path:
    return state_dir / "state.json"


def exit_file(state_dir: Path, run: str) -> Path:
    return state_dir / "runs" / f"{run}.exit"


def load(state_dir: Path) -> StateFile:
    """The state; a missing one is empty, a corrupt one is rebuilt with a warning."""
    path = state_path(state_dir)
    try:
        raw = json.loads(files.read_private(path).decode("utf-8"))
        records: dict[str, Record] = {}
        kept: dict[str, Record] = {}
        for key, value in raw["records"].items():
            records[key], as_written = _record_from_json(value)
            if as_written:
                kept[key] = records[key]
        for item in [*raw.get("pending", {}).values(), *raw.get("written", [])]:
            _check_edits(item)
        return StateFile(
            records,
            list(raw.get("printed", [])),
            {str(k): int(v) for k, v in raw.get("servers", {}).items()},
            dict(raw.get("pending", {})),
            list(raw.get("written", [])),
            {str(k): _hold_from_json(v) for k, v in raw.get("holds", {}).items()},
            _notices(raw.get("notices", [])),
            saved=raw,
            kept=kept,
            told=_notices(raw.get("told", [])),
            sent=_sent(raw.get("sent", {})),
            folded=_folded(raw.get("folded", {})),
        )
    except FileNotFoundError:
        return StateFile()
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        OverflowError,
        RecursionError,
    ) as error:
        return StateFile(
            warning=f"{path}: state file unreadable ({type(error).__name__}); "
            "rebuilding it from tmux and the notes"
        )


def _record_from_json(value: dict[str, Any]) -> tuple[Record, bool]:
    """A record as the file has it: each field it names read (and checked) by that field's
    reader, the rest defaulted, unknown keys dropped; and whether `save` would write it
    just so (no unknown key, none at its default). ValueError or TypeError when a field
    is not what heartbeat writes.

    Filled in without running the record's `__init__`, which takes each of its fields
    as a keyword and checks nothing: every check reads every record.
    """
    values = dict(_DEFAULTS)
    as_written = True
    for key, item in value.items():
        read = _READERS.get(key)
        if read is None:
            as_written = False
            continue
        values[key] = read(item)
        as_written = as_written and values[key] != _DEFAULTS[key]
    record = object.__new__(Record)
    record.__dict__.update(values)
    return record, as_written


def _integer(item: Any) -> int:
    if type(item) is not int:  # not a bool either
        raise TypeError("a record's number is not one")
    return item


def _text(item: Any) -> str:
    if type(item) is not str:
        raise TypeError("a record's text is not one")
    return item


def _flag(item: Any) -> bool:
    if type(item) is not bool:
        raise TypeError("a record's flag is not one")
    return item


def _time(item: Any) -> str:
    text = _text(item)
    if datetime.fromisoformat(text).tzinfo is not None:
        raise ValueError("a time with a zone: heartbeat writes local times")
    return text


def _day(item: Any) -> str:
    text = _text(item)
    date.fromisoformat(text)
    return text


def _epoch(item: Any) -> int | float:
    if type(item) not in (int, float):
        raise TypeError("a record's time is not a number")
    moment: int | float = item
    datetime.fromtimestamp(moment)  # OverflowError, ValueError: out of range
    return moment  # as it was read: written back the same, a quiet check writes nothing


def _state(item: Any) -> State | None:
    return State(item) if item else None


def _texts(item: Any) -> tuple[str, ...]:
    return tuple(_text(text) for text in item)


def _times(item: Any) -> tuple[str, ...]:
    return tuple(_time(when) for when in item)


def _pairs(item: Any) -> tuple[tuple[str, str], ...]:
    return tuple((_text(key), _text(value)) for key, value in item)


def _or_none(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda item: None if item is None else read(item)


# How each field of a record is read from the file (`save` leaves out those at their
# defaults, so a record is read from the few fields it has).
_READERS: dict[str, Callable[[Any], Any]] = {
    "state": _state,
    "exit_code": _or_none(_integer),
    "run": _or_none(_text),
    "path": _or_none(_text),
    "pid": _or_none(_integer),
    "pane_id": _or_none(_text),
    "activity": _or_none(_integer),
    "since": _or_none(_text),
    "last_start": _or_none(_time),
    "failures": _times,
    "not_before": _or_none(_time),
    "forgiven": _flag,
    "digest": _or_none(_text),
    "baseline_at": _or_none(_time),
    "baseline_head": _or_none(_text),
    "baseline_prd": _or_none(_texts),
    "verdict": _or_none(_text),
    "seen_activity": _or_none(_integer),
    "quiet_since": _or_none(_time),
    "commit_asked": _or_none(_time),
    "told": _texts,
    "session": _or_none(_text),
    "resumed": _flag,
    "stale_session": _or_none(_text),
    "resume_failed": _or_none(_text),
    "started_at": _or_none(_epoch),
    "homes": _pairs,
    "baseline_dirty": _pairs,
    "baseline_from": _or_none(_time),
    "log": _or_none(_text),
    "note": _or_none(_text),
    "left_notes": _flag,
    "restarts_day": _or_none(_day),
    "restarts_that_day": _integer,
}
# Every field of a record has a plain default (no factory), so a copy of these is one.
_DEFAULTS: dict[str, Any] = {item.name: item.default for item in fields(Record)}


def _hold_from_json(raw: dict[str, Any]) -> Hold:
    """A hold as the file has it; ValueError, KeyError or TypeError when it is not one."""
    datetime.fromisoformat(raw["since"])
    stamp = None
    if raw["stamp"] is not None:
        inode, size, mtime = (int(number) for number in raw["stamp"])
        stamp = (inode, size, mtime)
    return Hold(str(raw["path"]), stamp, str(raw["since"]), str(raw["hint"]))


def _hold_json(hold: Hold) -> dict[str, Any]:
    return {
        "path": hold.path,
        "stamp": list(hold.stamp) if hold.stamp else None,
        "since": hold.since,
        "hint": hold.hint,
    }


def _notices(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(text, str) for text in raw):
        raise ValueError("the waiting notifications are malformed")
    return list(raw)


def _sent(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        raise ValueError("the notification times are malformed")
    for times in raw.values():
        for when in _notices(times):
            if datetime.fromisoformat(when).tzinfo is not None:  # heartbeat writes local times
                raise ValueError("the notification times are malformed")
    return {str(mark): list(times) for mark, times in raw.items()}


def _folded(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        raise ValueError("the folded notifications are malformed")
    for item in raw.values():
        if not isinstance(item.get("name"), str):
            raise ValueError("the folded notifications are malformed")
        _notices(item["events"])
    return {
        str(mark): {"name": item["name"], "events": list(item["events"])}
        for mark, item in raw.items()
    }


def _check_edits(item: Any) -> None:
    """Raise ValueError unless `item` is a list of edits, or a map of paths to them."""
    lists = item.values() if isinstance(item, dict) else [item]
    for edits in lists:
        for edit in edits:
            key = edit["key"]
            if not (isinstance(key, list) and len(key) == 2 and isinstance(edit["text"], str)):
                raise ValueError("a status line to write is malformed")
            if not all(isinstance(part, str) for part in key):
                raise ValueError("a status line to write is malformed")
            if not isinstance(edit["stamp"], str) or not isinstance(edit["close"], bool):
                raise ValueError("a status line to write is malformed")


def save(state_dir: Path, state: StateFile) -> None:
    """Write the state, unless it is what was read: a quiet check writes nothing."""
    written = (state.saved or {}).get("records", {})
    raw = {
        "version": VERSION,
        "records": {
            key: written[key] if state.kept.get(key) is record else _record_json(record)
            for key, record in sorted(state.records.items())
        },
        "printed": state.printed,
        "servers": state.servers,
        "pending": state.pending,
        "written": state.written,
    }
    if state.holds:  # only then: a state file from before holds stays as it was
        raw["holds"] = {provider: _hold_json(h) for provider, h in sorted(state.holds.items())}
    if state.notices:
        raw["notices"] = list(state.notices)
    # Only when there are any: a state file from before them stays as it was.
    if state.told:
        raw["told"] = list(state.told)
    if state.sent:
        raw["sent"] = {mark: list(times) for mark, times in sorted(state.sent.items())}
    if state.folded:
        raw["folded"] = {mark: dict(item) for mark, item in sorted(state.folded.items())}
    if raw == state.saved:
        return
    # Compact: json's C encoder serves only that form, and is fast at thousands of records.
    text = json.dumps(raw, separators=(",", ":"))
    files.write_private(state_path(state_dir), text + "\n")
    state.saved = json.loads(text)  # a copy: `raw` shares its lists with the records
    state.kept = dict(state.records)


def _record_json(record: Record) -> dict[str, Any]:
    """The fields not at their defaults, as JSON writes them (a record of a running
    agent has a third of them): a quiet check compares what it would write with what
    it read, and writes nothing when they are equal."""
    raw = {key: item for key, item in vars(record).items() if item != _DEFAULTS[key]}
    if "state" in raw:
        raw["state"] = raw["state"].value
    for key in _LISTS:
        if key in raw:
            raw[key] = [list(item) if isinstance(item, tuple) else item for item in raw[key]]
    return raw


# The fields JSON keeps as lists (of texts, or of pairs as lists).
_LISTS = ("failures", "told", "homes", "baseline_dirty", "baseline_prd")


def read_exit(state_dir: Path, run: str | None) -> int | None:
    """The exit code the wrapper recorded for a run, if it ended."""
    if not run:
        return None
    try:
        return int(files.read_private(exit_file(state_dir, run)).decode().strip())
    except (OSError, ValueError):
        return None


def log(state_dir: Path, stamp: str, line: str) -> None:
    """Append to the log file: cron hides what a job prints."""
    log_lines(state_dir, stamp, [line])


def log_lines(state_dir: Path, stamp: str, lines: list[str]) -> None:
    """Append lines to the log file in one write."""
    if not lines:
        return
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(state_dir / "heartbeat.log", flags, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write("".join(f"{stamp} {line}\n" for line in lines))
    except OSError:
        pass  # the log is a convenience; the check goes on without it


def new_run_id(stamp: str, socket: str, name: str) -> str:
    """A run's id, which names its exit file: the entry's mark first, so that the exit
    of its last run is found even when the state file was lost (`last_exit`)."""
    when = stamp.replace(":", "").replace(" ", "T").replace("-", "")
    return f"{entry_mark(socket, name)}-{when}-{os.urandom(4).hex()}"


def entry_mark(socket: str, name: str) -> str:
    import hashlib

    return hashlib.sha256(f"{socket}\t{name}".encode()).hexdigest()[:12]


def last_exit(state_dir: Path, socket: str, name: str, since: str | None) -> int | None:
    """The exit code of the entry's newest run that began at `since` (its note's
    `started:` stamp) or later: what a rebuilt state file no longer says. None when
    there is none."""
    if not since:
        return None
    mark = entry_mark(socket, name)
    after = since.replace(":", "").replace(" ", "T").replace("-", "")
    try:
        names = sorted(
            name for name in os.listdir(state_dir / "runs") if name.startswith(mark + "-")
        )
    except OSError:
        return None
    for found in reversed(names):
        run = found.removesuffix(".exit")
        if found.endswith(".exit") and run.split("-")[1] >= after:
            return read_exit(state_dir, run)
    return None


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


# --- the notes folder the schedule checks ----------------------------------------------

INSTALLED_FILE = "installed.json"  # what `heartbeat install` put in place (install/setup.py)
NOTES_WARNED_FILE = "notes-warned"  # the pair of folders last warned about


def scheduled_notes(state_dir: Path) -> str | None:
    """The notes folder the installed schedule checks; None when nothing is installed
    (or it was installed before the folder was recorded)."""
    try:
        raw = json.loads(files.read_private(state_dir / INSTALLED_FILE).decode("utf-8"))
    except (OSError, ValueError):
        return None
    notes = raw.get("notes") if isinstance(raw, dict) else None
    return notes if isinstance(notes, str) and notes else None


def notes_warning(state_dir: Path, used: Path) -> str | None:
    """The line that says the notes folder in use is not the one the schedule checks:
    given once for each pair of folders (remembered in the state folder), None when they
    are the same or nothing is installed. What a check for the other folder restarts,
    the scheduled check never sees, and the other way round."""
    scheduled = scheduled_notes(state_dir)
    if scheduled is None or scheduled == str(used) or _same_folder(scheduled, used):
        return None
    pair = f"{used}\t{scheduled}\n"
    said = state_dir / NOTES_WARNED_FILE
    try:
        if files.read_private(said).decode("utf-8", "replace") == pair:
            return None
    except OSError:
        pass
    with contextlib.suppress(OSError):  # unwritable: said again next time, not never
        files.write_private(said, pair)
    return (
        f"notes folder {used} is not the one the schedule checks ({scheduled}): see heartbeat init"
    )


def forget_notes_warning(state_dir: Path) -> None:
    """A new choice (`heartbeat init`, `heartbeat install`): a mismatch is news again."""
    (state_dir / NOTES_WARNED_FILE).unlink(missing_ok=True)


def _same_folder(scheduled: str, used: Path) -> bool:
    try:
        return os.path.samefile(scheduled, used)
    except OSError:
        return False
