"""Starting an agent's session, which a check's restart and `heartbeat launch` share, and
the tmux hook script that makes restarts instant."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from heartbeat import files, lazy, state
from heartbeat.config import Config
from heartbeat.deadline import within
from heartbeat.errors import RefusedError
from heartbeat.model import Command, Started, stamp_of
from heartbeat.tmux.server import Tmux

if TYPE_CHECKING:
    from heartbeat import logs, render
    from heartbeat.work import verify
else:  # what only a start needs: loaded on first use
    logs = lazy.module("heartbeat.logs")
    render = lazy.module("heartbeat.render")
    verify = lazy.module("heartbeat.work.verify")

BASELINE_SECONDS = 3.0  # the most a start waits for git to say how the folder stands
HOOK_SCRIPT = state.HOOK_SCRIPT  # in the state folder: what tmux's session-closed hook runs
# Settings the completion hook's check must share with the check that started the run.
PASSED_TO_HOOK = ("HEARTBEAT_NOTIFY", "HEARTBEAT_TMUX", "HEARTBEAT_NOW")


def tmux_at(config: Config, socket: str, deadline: float | None = None) -> Tmux:
    return Tmux(socket, config.tmux, config.settings.tmux_timeout_seconds, deadline)


def start_session(
    config: Config,
    *,
    name: str,
    socket: str,
    folder: str,
    command: Command,
    wrapped: bool,
    path: str | None,
    environment: Iterable[tuple[str, str]] = (),
    homes: Iterable[tuple[str, str]] = (),
    now: datetime,
    deadline: float | None = None,
    session: str | None = None,
    resumed: bool = False,
) -> Started:
    """Start an entry's session; returns what its record keeps of the run.

    `wrapped`: heartbeat's wrapper runs the command (recording its exit, then the
    completion hook); otherwise it is the skill's own line, which has its own tail.
    An argv `command` of a wrapped entry (a resume, built word by word) is quoted for
    the wrapper's shell. `homes`: where the agent keeps its sessions and login, as the
    launch had them. `session`: the conversation the run has (`resumed`: continues).
    """
    stamp = stamp_of(now)
    # What this run's work is measured from; a hung git may not take the start's time.
    with within(time.monotonic() + BASELINE_SECONDS):
        baseline = verify.baseline(command, folder, now)
    if not os.path.isdir(folder):
        raise RefusedError(f"{name}: dir {folder} does not exist")
    env = {"PATH": path or config.path, **dict(homes)}
    run: str | None = None
    at = tmux_at(config, socket, deadline)
    log, pipe = _run_log(config, socket, name, now)
    argv: Command
    try:
        if wrapped:
            text = command if isinstance(command, str) else shlex.join(command)
            run = state.new_run_id(stamp, socket, name)
            argv, wrapper_env = _wrapped(config, name, socket, folder, text, run)
            env |= wrapper_env
        else:
            argv, env = command, env | dict(environment)
        # Taken before tmux runs the command: an agent names its files after its own
        # start, which a slow tmux client may return well after.
        started = time.time()
        pid, pane_id, server = at.start(name, folder, argv, env, hook_script(config), pipe)
    except BaseException:
        if log is not None:
            log.unlink(missing_ok=True)  # no run: no log of one
        raise
    logged = str(log) if log is not None else None
    return Started(run, pid, pane_id, stamp, baseline, started, session, resumed, server, logged)


def _run_log(
    config: Config, socket: str, name: str, now: datetime
) -> tuple[Path | None, str | None]:
    """The new run's log file and the command tmux pipes the pane to; the logs of runs
    older than the carry window go first. (None, None) when no log can be kept there:
    the run starts all the same, and heartbeat's log says why."""
    try:
        logs.prune(config.state_dir, now, config.carry_days)
        log = logs.new_log(config.state_dir, socket, name, now)
    except OSError as error:
        why = error.strerror or str(error)
        state.log(config.state_dir, stamp_of(now), f"{name}: no run log kept: {why}")
        return None, None
    keep, cap = config.settings.log_keep_ansi, config.settings.log_max_bytes
    return log, logs.pipe_command(log, keep, cap)


def _wrapped(
    config: Config, name: str, socket: str, folder: str, command: str, run: str
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The wrapper's argv and environment: every value is an argument or a variable,
    never text pasted into a shell."""
    exit_path = state.exit_file(config.state_dir, run)
    exit_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {
        "HEARTBEAT_NAME": name,
        "HEARTBEAT_DIR": folder,
        "HEARTBEAT_PANE_SOCKET": socket,
        "HEARTBEAT_TMUX": config.tmux or "tmux",
        "HEARTBEAT_EXIT_FILE": str(exit_path),
    }
    hook: list[str] = []
    if config.settings.completion_check:
        hook = [sys.executable, "-m", "heartbeat", "check", "--only", name, "--quiet"]
        # The hook's check must see what this one sees, whatever the pane's env.
        env |= {
            "HEARTBEAT_NOTES": str(config.notes_dir),
            "HEARTBEAT_STATE_DIR": str(config.state_dir),
            "HEARTBEAT_SOCKET": config.socket,
        }
        if config.config_file is not None:
            env["HEARTBEAT_CONFIG"] = str(config.config_file)
        env |= {key: config.env[key] for key in PASSED_TO_HOOK if key in config.env}
    argv = ("/bin/sh", "-c", render.wrapper_script(), "heartbeat", command, *hook)
    return argv, env


def hook_script(config: Config) -> str | None:
    """The script tmux runs when a session closes (instant restarts), written once."""
    if not config.settings.instant_restarts:
        return None
    path = config.state_dir / HOOK_SCRIPT
    text = render.hook_script(
        sys.executable,
        str(config.notes_dir),
        str(config.state_dir),
        config.socket,
        str(config.config_file or ""),
        config.path,
    )
    try:
        current = files.read_private(path).decode("utf-8", "replace")
    except OSError:
        current = None
    if current != text:
        files.write_private(path, text)
        os.chmod(path, 0o700)
    return str(path)
