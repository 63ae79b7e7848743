"""One Config: flag, else HEARTBEAT_* environment, else defaults."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from heartbeat.errors import UsageError

DEFAULT_SOCKET = "~/.tmux/sock"
DEFAULT_NOTES = "memory"
CARRY_DAYS = 7
# sockaddr_un holds 104 bytes on macOS and 108 on Linux, the terminating NUL included.
MAX_SOCKET_BYTES = 103
# Where tmux and the agents usually live when cron's PATH (/usr/bin:/bin) does not say.
EXTRA_BIN_DIRS = ("/opt/homebrew/bin", "/usr/local/bin")
OPENCLAW_NOTIFY = ("system", "event", "--text", "{text}", "--mode", "now")


@dataclass(frozen=True)
class Config:
    notes_dir: Path
    socket: str
    state_dir: Path
    tmux: str | None
    notify: tuple[str, ...]  # argv; the word {text} stands for the message; empty: none
    env: Mapping[str, str]
    carry_days: int = CARRY_DAYS

    @property
    def path(self) -> str:
        return self.env.get("PATH") or os.defpath


def load(env: Mapping[str, str], notes: str | None = None, socket: str | None = None) -> Config:
    home = env.get("HOME") or os.path.expanduser("~")
    notes_dir = Path(os.path.expanduser(notes or env.get("HEARTBEAT_NOTES") or DEFAULT_NOTES))
    socket_path = resolve_socket(socket or env.get("HEARTBEAT_SOCKET") or DEFAULT_SOCKET, home)
    return Config(
        notes_dir=notes_dir.absolute(),
        socket=socket_path,
        state_dir=state_dir(env, home),
        tmux=find_tmux(env),
        notify=notify_command(env),
        env=env,
    )


def resolve_socket(socket: str, home: str) -> str:
    if socket == "~" or socket.startswith("~/"):
        socket = home + socket[1:]
    if not os.path.isabs(socket):
        socket = os.path.abspath(socket)
    if len(os.fsencode(socket)) > MAX_SOCKET_BYTES:
        raise UsageError(
            f"socket path is {len(os.fsencode(socket))} bytes, longer than tmux accepts "
            f"({MAX_SOCKET_BYTES}): {socket}"
        )
    return os.path.normpath(socket)


def state_dir(env: Mapping[str, str], home: str) -> Path:
    explicit = env.get("HEARTBEAT_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser().absolute()
    from platformdirs.unix import Unix  # XDG rules on every system, as documented

    xdg = env.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "heartbeat"
    return Path(Unix("heartbeat").user_state_dir.replace(os.path.expanduser("~"), home, 1))


def find_tmux(env: Mapping[str, str]) -> str | None:
    explicit = env.get("HEARTBEAT_TMUX")
    if explicit:
        return explicit
    search = os.pathsep.join([env.get("PATH") or os.defpath, *EXTRA_BIN_DIRS])
    return shutil.which("tmux", path=search)


def notify_command(env: Mapping[str, str]) -> tuple[str, ...]:
    configured = env.get("HEARTBEAT_NOTIFY")
    if configured is not None:
        try:
            return tuple(shlex.split(configured))
        except ValueError as error:
            raise UsageError(f"HEARTBEAT_NOTIFY cannot be read: {error}") from None
    openclaw = shutil.which("openclaw", path=env.get("PATH") or os.defpath)
    return (openclaw, *OPENCLAW_NOTIFY) if openclaw else ()
