"""Running heartbeat on a schedule: cron, launchd and systemd units, and when it is due.

The units are rendered from cron/ as values; `install` writes them in one place. cron's
line carries a marker comment and is edited through `crontab -l` / `crontab -`, so every
other line of the user's crontab stays byte for byte.
"""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from string import Template

from heartbeat import agents
from heartbeat.errors import ScheduleError
from heartbeat.records import frozen
from heartbeat.render import template

MARKER = "# heartbeat: restart logged coding agents that died (installed by heartbeat install)"
LABEL = "dev.heartbeat.check"
UNIT = "heartbeat-check"
KINDS = ("cron", "launchd", "systemd")
_EVERY = re.compile(r"(\d+)\s*(m|min|h)")


@frozen
class Plan:
    """What to install: where heartbeat runs from, and how often."""

    kind: str
    schedule: str  # a cron expression (intervals are written as */N)
    python: str
    path: str
    notes: str
    socket: str
    state: str
    home: str

    @property
    def minutes(self) -> int:
        """The interval, for launchd and systemd, which take intervals only."""
        return interval_minutes(self.schedule)


def default_kind() -> str:
    return "launchd" if sys.platform == "darwin" else "cron"


def schedule_from(every: str | None, expression: str | None) -> str:
    """A validated cron expression from `--every 5m` or `--schedule '*/5 * * * *'`."""
    if every and expression:
        raise ScheduleError("give --every or --schedule, not both")
    if expression is None:
        match = _EVERY.fullmatch((every or "1m").strip())
        if not match or int(match[1]) < 1:
            raise ScheduleError(f"--every takes minutes or hours, like 1m, 5m or 1h: {every!r}")
        amount, unit = int(match[1]), match[2]
        if unit == "h":
            return "0 * * * *" if amount == 1 else f"0 */{amount} * * *"
        return "* * * * *" if amount == 1 else f"*/{amount} * * * *"
    from croniter import croniter  # imported here: only scheduling needs it

    if not croniter.is_valid(expression) or len(expression.split()) != 5:
        raise ScheduleError(
            f"not a cron schedule (five fields, like '*/5 * * * *'): {expression!r}"
        )
    return expression


def interval_minutes(schedule: str) -> int:
    """Minutes between runs of an interval schedule; others raise ScheduleError."""
    fields = schedule.split()
    if fields == ["*", "*", "*", "*", "*"]:
        return 1
    step = re.fullmatch(r"\*/(\d+)", fields[0]) if len(fields) == 5 else None
    if step and fields[1:] == ["*", "*", "*", "*"]:
        return int(step[1])
    hours = re.fullmatch(r"\*/(\d+)", fields[1]) if len(fields) == 5 else None
    if fields[0] == "0" and fields[2:] == ["*", "*", "*"]:
        if fields[1] == "*":
            return 60
        if hours:
            return 60 * int(hours[1])
    raise ScheduleError(
        f"launchd and systemd take intervals (every N minutes), not {schedule!r}: use --every"
    )


def plan_for(
    kind: str, schedule: str, env: Mapping[str, str], notes: str, socket: str, state: str
) -> Plan:
    if kind not in KINDS:
        raise ScheduleError(f"unknown scheduler {kind!r}: use one of {', '.join(KINDS)}")
    home = env.get("HOME") or os.path.expanduser("~")
    return Plan(kind, schedule, sys.executable, scheduled_path(env), notes, socket, state, home)


def scheduled_path(env: Mapping[str, str]) -> str:
    """A PATH that finds tmux and the agents under a scheduler's bare environment."""
    here = env.get("PATH") or os.defpath
    folders: list[str] = []
    for program in ("tmux", *agents.PROGRAMS):
        found = shutil.which(program, path=here)
        if found:
            folders.append(os.path.dirname(found))
    folders += ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin"]
    return ":".join(dict.fromkeys(folders))


# --- rendering ---------------------------------------------------------------------------


def cron_block(plan: Plan) -> str:
    """The marker comment and the crontab line (shell-quoted values)."""
    values = {"path": plan.path, "notes": plan.notes, "socket": plan.socket, "state": plan.state}
    # Quoted for the shell; and cron turns an unescaped `%` into a new line.
    quoted = {key: shlex.quote(value).replace("%", "\\%") for key, value in values.items()}
    quoted["heartbeat"] = shlex.quote(plan.python).replace("%", "\\%") + " -m heartbeat"
    return Template(template("cron", "crontab.txt")).substitute(schedule=plan.schedule, **quoted)


def _systemd_quoted(value: str) -> str:
    """A value for inside a unit's double quotes: `%` is a specifier to systemd unless
    doubled."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")


def merged_crontab(existing: str, block: str | None) -> str:
    """`existing` with heartbeat's block replaced (or added, or removed when None).

    Every other line stays as it was, byte for byte.
    """
    lines = existing.splitlines(keepends=True)
    kept: list[str] = []
    skip_next = False
    for line in lines:
        if skip_next:
            skip_next = False
            continue
        if line.rstrip("\n") == MARKER:
            skip_next = True  # the job line that follows the marker is ours too
            continue
        kept.append(line)
    text = "".join(kept)
    if block is None:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + block.rstrip("\n") + "\n"


def launchd_plist(plan: Plan) -> bytes:
    """The launchd job, written with plistlib: absolute paths and a WorkingDirectory,
    since launchd starts jobs in `/`."""
    job = plistlib.loads(template("cron", "launchd.plist").encode())
    values = {
        "$label": LABEL,
        "$python": plan.python,
        "$path": plan.path,
        "$notes": plan.notes,
        "$socket": plan.socket,
        "$state": plan.state,
        "$workdir": plan.home,
        "$log": os.path.join(plan.state, "launchd.log"),
    }

    def fill(value: object) -> object:
        if isinstance(value, str):
            return values.get(value, value)
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    filled = fill(job)
    assert isinstance(filled, dict)
    filled["StartInterval"] = plan.minutes * 60
    return plistlib.dumps(filled)


def systemd_units(plan: Plan) -> dict[str, str]:
    """The user service (KillMode=process keeps the agents) and its timer."""
    quoted = {
        "path": plan.path,
        "notes": plan.notes,
        "socket": plan.socket,
        "state": plan.state,
        "python": plan.python,
    }
    values = {key: _systemd_quoted(value) for key, value in quoted.items()}
    values["workdir"] = plan.home.replace("%", "%%")
    values["python"] = values["python"].replace("$", "$$")  # ExecStart expands `$NAME`
    values["minutes"] = str(plan.minutes)
    return {
        f"{UNIT}.service": Template(template("cron", f"{UNIT}.service")).substitute(values),
        f"{UNIT}.timer": Template(template("cron", f"{UNIT}.timer")).substitute(values),
    }


# --- installing ----------------------------------------------------------------------------


@frozen
class Installed:
    kind: str
    schedule: str
    path: str  # the PATH the scheduled check runs with
    files: tuple[str, ...] = ()
    notes: str = ""  # the notes folder it checks (its HEARTBEAT_NOTES)


def unit_files(plan: Plan) -> dict[Path, bytes]:
    """Where launchd's or systemd's files go, with their content."""
    home = Path(plan.home)
    if plan.kind == "launchd":
        return {home / "Library" / "LaunchAgents" / f"{LABEL}.plist": launchd_plist(plan)}
    if plan.kind == "systemd":
        folder = home / ".config" / "systemd" / "user"
        return {folder / name: text.encode() for name, text in systemd_units(plan).items()}
    return {}


def read_crontab(crontab: str) -> str:
    result = _run([crontab, "-l"])
    if result.returncode != 0:
        if "no crontab" in result.stderr:
            return ""
        raise ScheduleError(f"crontab -l failed: {result.stderr.strip()}")
    return result.stdout


def write_crontab(crontab: str, text: str) -> None:
    result = _run([crontab, "-"], stdin=text)
    if result.returncode != 0:
        raise ScheduleError(f"crontab - failed: {result.stderr.strip()}")


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise ScheduleError(f"{argv[0]} not found: install cron (apt install cron)") from None
    except subprocess.TimeoutExpired:
        raise ScheduleError(f"{argv[0]} did not finish") from None


# --- when is it due ------------------------------------------------------------------------


def next_due(schedule: str, after: datetime) -> datetime:
    from croniter import croniter

    due = croniter(schedule, after).get_next(datetime)
    assert isinstance(due, datetime)
    return due


def period(schedule: str, after: datetime) -> timedelta:
    first = next_due(schedule, after)
    return next_due(schedule, first) - first


def is_late(schedule: str, last_run: datetime, now: datetime) -> bool:
    """Whether the last run is older than two periods of the schedule."""
    return now - last_run > 2 * period(schedule, last_run)
