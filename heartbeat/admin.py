"""Looking after heartbeat itself: installing its schedule, and the doctor."""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from heartbeat import files, reasons, schedule, state, trust
from heartbeat.config import Config
from heartbeat.errors import HeartbeatError, TmuxError
from heartbeat.notebook import label_of
from heartbeat.schedule import Installed

INSTALLED_FILE = "installed.json"


def load_installed(config: Config) -> Installed | None:
    try:
        raw = json.loads((config.state_dir / INSTALLED_FILE).read_text())
        return Installed(raw["kind"], raw["schedule"], raw["path"], tuple(raw.get("files", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_installed(config: Config, installed: Installed | None) -> None:
    path = config.state_dir / INSTALLED_FILE
    if installed is None:
        path.unlink(missing_ok=True)
    else:
        files.write_private(path, json.dumps(asdict(installed), indent=1) + "\n")


@dataclass(frozen=True)
class InstallResult:
    kind: str
    text: str  # what was (or would be) installed
    changed: bool
    where: str


def install(
    config: Config, kind: str, every: str | None, expression: str | None, print_only: bool
) -> InstallResult:
    """Install `heartbeat check --quiet` where the system schedules things."""
    cron_expression = schedule.schedule_from(every, expression)
    plan = schedule.plan_for(
        kind,
        cron_expression,
        config.env,
        str(config.notes_dir),
        config.socket,
        str(config.state_dir),
    )
    if kind == "cron":
        block = schedule.cron_block(plan)
        if print_only:
            return InstallResult(kind, block, False, "crontab")
        crontab = config.env.get("HEARTBEAT_CRONTAB", "crontab")
        existing = schedule.read_crontab(crontab)
        merged = schedule.merged_crontab(existing, block)
        changed = merged != existing
        if changed:
            schedule.write_crontab(crontab, merged)
        _save_installed(config, Installed(kind, cron_expression, plan.path))
        return InstallResult(kind, block, changed, "crontab")
    plan.minutes  # noqa: B018 - raises for a schedule launchd and systemd cannot take
    written = schedule.unit_files(plan)
    text = "\n".join(f"# {path}\n{data.decode()}" for path, data in written.items())
    if print_only:
        return InstallResult(kind, text, False, ", ".join(map(str, written)))
    changed = False
    for path, data in written.items():
        if not path.exists() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            files.write_private(path, data.decode())
            os.chmod(path, 0o644)
            changed = True
    _save_installed(config, Installed(kind, cron_expression, plan.path, tuple(map(str, written))))
    return InstallResult(kind, text, changed, ", ".join(map(str, written)))


def uninstall(config: Config) -> str:
    """Remove exactly what `install` put in place; says what that was."""
    installed = load_installed(config)
    if installed is None:
        raise HeartbeatError("nothing is installed (heartbeat install puts it in place)")
    if installed.kind == "cron":
        crontab = config.env.get("HEARTBEAT_CRONTAB", "crontab")
        existing = schedule.read_crontab(crontab)
        merged = schedule.merged_crontab(existing, None)
        if merged != existing:
            schedule.write_crontab(crontab, merged)
        what = "the crontab line"
    else:
        for name in installed.files:
            Path(name).unlink(missing_ok=True)
        what = ", ".join(installed.files)
    _save_installed(config, None)
    return what


# --- who watches the watcher --------------------------------------------------------------


def watcher_header(config: Config, now: datetime) -> list[str]:
    """`status`'s first lines: the last check, the next one, and a warning when late."""
    installed = load_installed(config)
    last = state.last_check(config.state_dir)
    lines = []
    ago = _ago(now - last) if last else "never"
    if installed is None:
        lines.append(f"last check: {ago}; no schedule installed (heartbeat install)")
        return lines
    due = schedule.next_due(installed.schedule, now)
    lines.append(
        f"last check: {ago}; next due {due:%H:%M} ({installed.kind}: {installed.schedule})"
    )
    if last is None or schedule.is_late(installed.schedule, last, now):
        lines.append(f"heartbeat is not running: last check {ago}, schedule {installed.schedule}")
    return lines


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"


# --- doctor ---------------------------------------------------------------------------------


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
        for program in ("tmux", *schedule.AGENTS):
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
    codex_lines = reasons.codex_log_tail(config.env, now)
    if codex_lines:
        reason = reasons.classify(codex_lines, now)
        expired = reason is not None and reason.kind == reasons.AUTH_EXPIRED
        found.append(
            Finding(
                not expired,
                "Codex login" + (" has expired" if expired else " looks fine"),
                "codex auth login" if expired else "",
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
    from heartbeat import tmux

    try:
        version = tmux.version(config.tmux)
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
