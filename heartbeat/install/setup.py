"""Putting heartbeat's schedule in place (cron, launchd, systemd), and taking it away."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from heartbeat import files, state
from heartbeat.config import Config
from heartbeat.errors import HeartbeatError
from heartbeat.install import schedule
from heartbeat.install.schedule import Installed
from heartbeat.records import asdict, frozen

INSTALLED_FILE = state.INSTALLED_FILE


def load_installed(config: Config) -> Installed | None:
    try:
        raw = json.loads(files.read_private(config.state_dir / INSTALLED_FILE).decode())
        return Installed(
            raw["kind"],
            raw["schedule"],
            raw["path"],
            tuple(raw.get("files", ())),
            str(raw.get("notes", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_installed(config: Config, installed: Installed | None) -> None:
    path = config.state_dir / INSTALLED_FILE
    if installed is None:
        path.unlink(missing_ok=True)
    else:
        files.write_private(path, json.dumps(asdict(installed), indent=1) + "\n")
        (config.state_dir / UNINSTALLED_MARK).unlink(missing_ok=True)  # installed again
    state.forget_notes_warning(config.state_dir)  # the folder it checks may be another now


@frozen
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
        _save_installed(config, Installed(kind, cron_expression, plan.path, (), plan.notes))
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
    units = tuple(map(str, written))
    _save_installed(config, Installed(kind, cron_expression, plan.path, units, plan.notes))
    return InstallResult(kind, text, changed, ", ".join(map(str, written)))


UNINSTALLED_MARK = "uninstalled"  # in the state folder: hooks' checks exit at once


def uninstall(config: Config, purge: bool = False) -> list[str]:
    """Remove everything `install` and launches put in place that would still act: the
    scheduler's entry, and the tmux hook on every socket heartbeat set it on; leave a
    mark that makes the checks hooks and running sessions start exit at once (`install`
    lifts it); with `purge`, the state folder too. Says what it removed."""
    removed = []
    installed = load_installed(config)
    if installed is not None:
        removed.append(_remove_schedule(config, installed))
        _save_installed(config, None)
    removed += _remove_hooks(config)
    if purge:
        shutil.rmtree(config.state_dir, ignore_errors=True)
        removed.append(f"the state folder {config.state_dir}")
    else:
        files.write_private(config.state_dir / UNINSTALLED_MARK, "")
    if not removed:
        raise HeartbeatError("nothing is installed (heartbeat install puts it in place)")
    return removed


def _remove_hooks(config: Config) -> list[str]:
    from heartbeat.tmux.server import Tmux

    script = str(config.state_dir / state.HOOK_SCRIPT)
    sockets = {config.socket, *state.load(config.state_dir).servers}
    timeout = config.settings.tmux_timeout_seconds
    return [
        f"the tmux hook on {socket}"
        for socket in sorted(sockets)
        if Tmux(socket, config.tmux, timeout).unhook(script)
    ]


def _remove_schedule(config: Config, installed: Installed) -> str:
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
    return what
