"""Every conversation with tmux, through libtmux; the only module that imports it.

Every call names its socket explicitly, so `$TMUX` (set when heartbeat itself runs
inside tmux) never decides where a session goes, and sessions are addressed as
`=NAME`, since tmux otherwise matches name prefixes.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import libtmux
from libtmux import exc as libtmux_exc

from heartbeat.errors import RefusedError, TmuxError
from heartbeat.model import Command, Pane, Snapshot

EXIT_OPTION = "@heartbeat_exit"
_FIELDS = (
    "#{session_name}",
    "#{pane_id}",
    "#{window_index}",
    "#{pane_index}",
    "#{pane_pid}",
    "#{pane_dead}",
    "#{pane_dead_status}",
    "#{" + EXIT_OPTION + "}",
    "#{window_activity}",
    "#{session_created}",
    "#{pane_current_command}",
)
_FORMAT = "|".join(_FIELDS)
# The session name comes first and the command last: the fields between are numbers,
# so a `|` in either free-text field cannot shift them.
_ROW = re.compile(
    r"(?P<session>.*?)\|(?P<pane_id>%\d+)\|(?P<window>\d+)\|(?P<pane>\d+)\|(?P<pid>\d*)\|"
    r"(?P<dead>[01]?)\|(?P<dead_status>-?\d*)\|(?P<exit>-?\d*)\|(?P<activity>\d*)\|"
    r"(?P<created>\d*)\|(?P<command>.*)"
)
_NO_SERVER = ("no server running", "error connecting to", "server exited unexpectedly")


def _server(socket: str, tmux_bin: str | None) -> libtmux.Server:
    # A $TMUX inherited from a surrounding session must not leak into what we start.
    os.environ.pop("TMUX", None)
    os.environ.pop("TMUX_PANE", None)
    return libtmux.Server(socket_path=socket, tmux_bin=tmux_bin)


def _run(server: libtmux.Server, *args: str) -> tuple[int, list[str], list[str]]:
    try:
        proc = server.cmd(*args)
    except libtmux_exc.TmuxCommandNotFound:
        raise TmuxError("tmux not found: install it (apt install tmux)") from None
    return proc.returncode, proc.stdout, proc.stderr


def _no_server(stderr: Sequence[str]) -> bool:
    return any(marker in line for line in stderr for marker in _NO_SERVER)


def snapshot(socket: str, tmux_bin: str | None) -> Snapshot:
    """Every session on `socket` with its first pane, from one `list-panes -a` call."""
    server = _server(socket, tmux_bin)
    code, out, err = _run(server, "list-panes", "-a", "-F", _FORMAT)
    if code != 0:
        if _no_server(err):
            return Snapshot(socket, False, {})
        raise TmuxError(f"tmux on {socket}: {' '.join(err) or f'exit {code}'}")
    first: dict[str, tuple[tuple[int, int], Pane]] = {}
    for line in out:
        row = _ROW.fullmatch(line)
        if row is None:
            continue
        order = (int(row["window"]), int(row["pane"]))
        pane = Pane(
            session=row["session"],
            pane_id=row["pane_id"],
            pid=int(row["pid"]) if row["pid"] else None,
            current_command=row["command"],
            exit_option=int(row["exit"]) if row["exit"] else None,
            dead_status=(
                int(row["dead_status"]) if row["dead"] == "1" and row["dead_status"] else None
            ),
            activity=int(row["activity"] or 0),
            created=int(row["created"] or 0),
        )
        known = first.get(pane.session)
        if known is None or order < known[0]:
            first[pane.session] = (order, pane)
    return Snapshot(socket, True, {name: pane for name, (_, pane) in first.items()})


def prepare_socket(socket: str) -> None:
    """Create the socket's folder, private to the user, when it is missing."""
    folder = Path(socket).parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)


def start(
    socket: str,
    tmux_bin: str | None,
    name: str,
    folder: str,
    command: Command,
    environment: Mapping[str, str],
) -> tuple[int | None, str | None]:
    """Start a detached session; returns the pane's process id and pane id.

    tmux itself refuses a name that exists, which is the last-moment check that two
    heartbeats never start one session twice. A command given as text is run by
    tmux's shell, as the skill's line does; an argv is run directly.
    """
    prepare_socket(socket)
    server = _server(socket, tmux_bin)
    # tmux expands formats in -c (`#(cmd)` would run cmd): a folder's `#` is doubled.
    start_dir = folder.replace("#", "##")
    args = ["new-session", "-d", "-P", "-F", "#{pane_pid} #{pane_id}", "-s", name]
    args += ["-c", start_dir]
    for key, value in environment.items():
        args += ["-e", f"{key}={value}"]
    args.append("--")
    args += [command] if isinstance(command, str) else list(command)
    with _client_path(environment.get("PATH")):
        code, out, err = _run(server, *args)
    if code != 0:
        message = " ".join(err) or f"exit {code}"
        if "duplicate session" in message:
            raise RefusedError(f"session {name} already exists on {socket}")
        raise TmuxError(f"tmux could not start {name} on {socket}: {message}")
    pid, _, pane_id = (out[0] if out else "").partition(" ")
    return (int(pid) if pid.isdigit() else None), pane_id or None


@contextlib.contextmanager
def _client_path(path: str | None) -> Iterator[None]:
    """Run the tmux client with PATH set: tmux gives a new session its client's PATH,
    whatever `-e PATH=` says."""
    saved = os.environ.get("PATH")
    if path is not None:
        os.environ["PATH"] = path
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved


def has_session(socket: str, tmux_bin: str | None, name: str) -> bool:
    code, _, _ = _run(_server(socket, tmux_bin), "has-session", "-t", f"={name}")
    return code == 0


def capture(socket: str, tmux_bin: str | None, name: str, lines: int) -> list[str]:
    """The last `lines` lines of the session's pane (blank lines at the end dropped)."""
    code, out, err = _run(
        _server(socket, tmux_bin), "capture-pane", "-p", "-J", "-t", f"={name}:", "-S", f"-{lines}"
    )
    if code != 0:
        raise TmuxError(f"cannot read the pane of {name} on {socket}: {' '.join(err)}")
    while out and not out[-1].strip():
        out.pop()
    return out[-lines:]


def kill(socket: str, tmux_bin: str | None, name: str) -> bool:
    """Kill the session; False when it was not there."""
    code, _, err = _run(_server(socket, tmux_bin), "kill-session", "-t", f"={name}")
    if code != 0 and not (_no_server(err) or any("can't find" in e for e in err)):
        raise TmuxError(f"cannot kill {name} on {socket}: {' '.join(err)}")
    return code == 0
