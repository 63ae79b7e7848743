"""Who watches the watcher: `status`'s first lines, and the doctor's findings."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from heartbeat import agents, state, trust
from heartbeat.config import Config
from heartbeat.errors import TmuxError
from heartbeat.install import schedule
from heartbeat.install.setup import load_installed
from heartbeat.model import iso_local
from heartbeat.notes.notebook import label_of


@dataclass(frozen=True)
class Watcher:
    """What `status` says of heartbeat itself, as data (`--json` gives it as it is)."""

    last_check: datetime | None
    scheduler: str | None  # cron, launchd or systemd; None: no schedule installed
    schedule: str | None  # its cron expression or interval
    next_due: datetime | None  # the next check the schedule runs
    late: bool  # a schedule is installed, but the last check is older than two periods
    notes: str  # the notes folder this command read
    socket: str  # the configured socket

    def as_json(self) -> dict[str, Any]:
        return {
            "last_check": iso_local(self.last_check),
            "scheduler_installed": self.scheduler is not None,
            "scheduler": self.scheduler,
            "schedule": self.schedule,
            "next_check": iso_local(self.next_due),
            "running": self.scheduler is not None and not self.late,
            "notes": self.notes,
            "socket": self.socket,
        }


def watcher(config: Config, now: datetime) -> Watcher:
    installed = load_installed(config)
    last = state.last_check(config.state_dir)
    notes, socket = str(config.notes_dir), str(config.socket)
    if installed is None:
        return Watcher(last, None, None, None, False, notes, socket)
    due = schedule.next_due(installed.schedule, now)
    late = last is None or schedule.is_late(installed.schedule, last, now)
    return Watcher(last, installed.kind, installed.schedule, due, late, notes, socket)


def watcher_header(config: Config, now: datetime) -> list[str]:
    """`status`'s first lines: the last check, the next one, and a warning when late."""
    found = watcher(config, now)
    ago = _ago(now - found.last_check) if found.last_check else "never"
    if found.scheduler is None or found.next_due is None:
        return [f"last check: {ago}; no schedule installed (heartbeat install)"]
    lines = [
        f"last check: {ago}; next due {found.next_due:%H:%M} ({found.scheduler}: {found.schedule})"
    ]
    if found.late:
        lines.append(f"heartbeat is not running: last check {ago}, schedule {found.schedule}")
    return lines


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    fix: str = ""


def doctor(config: Config, now: datetime) -> list[Finding]:
    """Everything heartbeat needs, each found right or wrong, with the fix."""
    found: list[Finding] = []
    found.append(_tmux(config))
    found.append(_socket_folder(config))
    found.append(_notes(config))
    installed = load_installed(config)
    last = state.last_check(config.state_dir)
    if installed is None:
        found.append(Finding(False, "no schedule installed", "heartbeat install"))
    else:
        late = last is None or schedule.is_late(installed.schedule, last, now)
        when = _ago(now - last) if last else "never"
        found.append(
            Finding(
                not late,
                f"{installed.kind} runs heartbeat ({installed.schedule}); last check {when}",
                "" if not late else f"check the {installed.kind} job, or heartbeat install again",
            )
        )
        for program in ("tmux", *agents.PROGRAMS):
            where = shutil.which(program, path=installed.path)
            if program == "tmux" or shutil.which(program, path=config.path):
                found.append(
                    Finding(
                        where is not None,
                        f"the scheduled PATH finds {program}" + (f" ({where})" if where else ""),
                        "" if where else "heartbeat install again from a shell that finds it",
                    )
                )
    notify_found = bool(config.notify) and shutil.which(config.notify[0]) is not None
    found.append(
        Finding(
            notify_found,
            f"notify command: {config.notify[0] if config.notify else 'none'}",
            "" if notify_found else "set HEARTBEAT_NOTIFY, or notify in the config file",
        )
    )
    for agent, expired, renew in agents.login_expired(config.env, now):
        found.append(
            Finding(
                not expired,
                f"{agent} login" + (" has expired" if expired else " looks fine"),
                renew if expired else "",
            )
        )
    saved = state.load(config.state_dir)
    found.append(
        Finding(
            saved.warning is None,
            "state file readable" if saved.warning is None else saved.warning,
            "" if saved.warning is None else "it is rebuilt by the next check",
        )
    )
    return found


def _tmux(config: Config) -> Finding:
    if config.tmux is None:
        return Finding(False, "tmux not found", "apt install tmux (or brew install tmux)")
    from heartbeat.tmux import server

    try:
        version = server.version(config.tmux)
    except TmuxError as error:
        return Finding(False, str(error), "reinstall tmux")
    return Finding(True, f"tmux {version} ({config.tmux})")


def _socket_folder(config: Config) -> Finding:
    folder = Path(config.socket).parent
    try:
        mode = stat.S_IMODE(os.stat(folder).st_mode)
    except OSError:
        return Finding(True, f"socket folder {folder} will be created (mode 0700)")
    if mode & 0o077:
        return Finding(False, f"socket folder {folder} is mode {mode:04o}", f"chmod 700 {folder}")
    return Finding(True, f"socket folder {folder} is private")


def _notes(config: Config) -> Finding:
    folder = config.notes_dir
    label = label_of(folder)
    if not folder.is_dir():
        return Finding(False, f"notes folder {label} not found", f"mkdir -m 700 {label}")
    refused = trust.unsafe(folder, label)
    if refused:
        return Finding(False, refused.split(": ", 1)[1], "")
    return Finding(True, f"notes folder {label} is yours and not writable by others")


def doctor_ok(findings: list[Finding]) -> bool:
    return all(finding.ok for finding in findings)
