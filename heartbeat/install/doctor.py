"""Who watches the watcher: `status`'s first lines, and the doctor's findings."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import stat
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from heartbeat import agents, state
from heartbeat.config import Config
from heartbeat.errors import TmuxError
from heartbeat.install import schedule
from heartbeat.install.setup import load_installed
from heartbeat.model import iso_local, when
from heartbeat.notes.notebook import label_of
from heartbeat.records import frozen


@frozen
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
    due = when(found.next_due, now)
    lines = [f"last check: {ago}; next due {due} ({found.scheduler}: {found.schedule})"]
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


@frozen
class Finding:
    ok: bool
    what: str
    fix: str = ""


def doctor(
    config: Config, now: datetime, problems: list[str], needing: list[tuple[str, str]]
) -> list[Finding]:
    """Everything heartbeat needs, each found right or wrong, with the fix.

    `problems`: what reading the notes as a check does (the same code, `status`'s)
    found wrong; `needing`: the entries that need a person as `status` judges them,
    each with the command that helps."""
    found: list[Finding] = []
    found.append(_tmux(config))
    found.append(_socket_folder(config))
    found += _notes(config, problems)
    installed = load_installed(config)
    if installed is None:
        found.append(Finding(False, "no schedule installed", "heartbeat install"))
    else:
        found.append(scheduler_running(config, installed))
        last = state.last_check(config.state_dir)
        late = last is not None and schedule.is_late(installed.schedule, last, now)
        ago = _ago(now - last) if last else "never"
        log = config.state_dir / "heartbeat.log"
        found.append(Finding(not late, f"last check {ago}", f"see {log}" if late else ""))
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
    found += [Finding(False, what, fix) for what, fix in needing]
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


HELPER_SECONDS = 5.0  # a hung launchctl, systemctl or crontab gives one line, not a hung doctor
CRON_DAEMONS = ("cron", "crond")  # Debian's and cronie's daemons; busybox's calls itself crond


def scheduler_running(config: Config, installed: schedule.Installed) -> Finding:
    """Whether the scheduler will really run heartbeat: what the scheduler itself says,
    not whether a check ran lately (a check run by hand proves nothing about cron)."""
    uid = os.getuid()
    if installed.kind == "launchd":
        target = f"gui/{uid}/{schedule.LABEL}"
        answer = ask(["launchctl", "print", target])
        if isinstance(answer, str):
            return Finding(False, answer, "")
        if answer.returncode != 0:
            plist = installed.files[0] if installed.files else f"{schedule.LABEL}.plist"
            return Finding(
                False, f"launchd has not loaded {target}", f"launchctl bootstrap gui/{uid} {plist}"
            )
        return Finding(True, f"launchd has {target} loaded ({installed.schedule})")
    if installed.kind == "systemd":
        timer = f"{schedule.UNIT}.timer"
        answer = ask(["systemctl", "--user", "is-active", timer])
        if isinstance(answer, str):
            return Finding(False, answer, "")
        said = answer.stdout.strip() or answer.stderr.strip() or f"exit {answer.returncode}"
        if said != "active":
            return Finding(
                False,
                f"systemd's {timer} is not active ({said})",
                f"systemctl --user enable --now {timer}",
            )
        return Finding(True, f"systemd's {timer} is active ({installed.schedule})")
    return _cron(config, installed)


def _cron(config: Config, installed: schedule.Installed) -> Finding:
    answer = ask([config.env.get("HEARTBEAT_CRONTAB", "crontab"), "-l"])
    if isinstance(answer, str):
        return Finding(False, answer, "")
    if answer.returncode != 0 or not has_marked_line(answer.stdout):
        return Finding(False, "heartbeat's line is not in your crontab", "heartbeat install")
    if sys.platform == "darwin":  # macOS's launchd starts cron when a crontab exists
        return Finding(True, f"heartbeat's line is in your crontab ({installed.schedule})")
    daemon = cron_daemon()
    if daemon is None:
        return Finding(
            False,
            "cron is not running: no cron daemon, so heartbeat's crontab line never runs",
            "start it (sudo systemctl enable --now cron, or sudo service cron start)",
        )
    return Finding(
        True, f"cron is running (process {daemon}) with heartbeat's line ({installed.schedule})"
    )


def has_marked_line(crontab: str) -> bool:
    """Whether the crontab holds heartbeat's marker followed by its job line."""
    lines = crontab.splitlines()
    return any(
        line == schedule.MARKER and following.strip() and not following.lstrip().startswith("#")
        for line, following in itertools.pairwise(lines)
    )


def cron_daemon(proc: Path = Path("/proc")) -> int | None:
    """The process id of a running cron daemon, as /proc names processes; None when
    there is none (or no /proc to ask)."""
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            comm = (proc / pid / "comm").read_text().strip()
            argv0 = (proc / pid / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if comm in CRON_DAEMONS or os.path.basename(argv0.decode(errors="replace")) in CRON_DAEMONS:
            return int(pid)
    return None


def ask(argv: list[str], seconds: float = HELPER_SECONDS) -> subprocess.CompletedProcess[str] | str:
    """Run a helper within `seconds`: its answer, or one line saying why there is none.
    In a process group of its own, ended whole on time, so that nothing it started keeps
    the doctor waiting."""
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as error:
        return f"{argv[0]} cannot run: {error.strerror}"
    try:
        out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return f"{' '.join(argv[:2])} did not answer within {seconds:g} s"
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


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


def _notes(config: Config, problems: list[str]) -> list[Finding]:
    """What reading the notes as a check does found wrong (a note others may write,
    a link, a line it cannot read), each with its fix; or that all is well."""
    folder = config.notes_dir
    label = label_of(folder)
    if not folder.is_dir():
        return [Finding(False, f"notes folder {label} not found", f"mkdir -m 700 {label}")]
    if not problems:
        return [Finding(True, f"notes folder {label}: every note is yours and read")]
    return [Finding(False, *_fix_of(problem)) for problem in problems]


def _fix_of(problem: str) -> tuple[str, str]:
    """`FILE: what is wrong: the fix` as a finding's text and fix, where it says one."""
    what, _, fix = problem.rpartition(": ")
    if fix.split(" ", 1)[0] in ("chmod", "chown", "setfacl", "heartbeat", "mkdir", "use"):
        return what, fix
    return problem, ""


def doctor_ok(findings: list[Finding]) -> bool:
    return all(finding.ok for finding in findings)
