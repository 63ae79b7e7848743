"""The skill's own launch line, `tmux -S SOCKET new -d -s NAME "COMMAND"`, as a note
holds it: which session, socket, folder, command and environment it asks for."""

from __future__ import annotations

import os
from collections.abc import Mapping

from heartbeat.errors import ShellSyntaxError
from heartbeat.records import frozen
from heartbeat.shell import leading_cd, words


@frozen
class TmuxLaunch:
    """What a `tmux new-session` line asks for."""

    name: str
    socket: str | None
    start_dir: str | None
    command: str | tuple[str, ...]
    environment: tuple[tuple[str, str], ...] = ()


def default_socket_dir(env: Mapping[str, str] | None = None) -> str:
    """Where tmux puts sockets named by -L (and the `default` one)."""
    env = os.environ if env is None else env
    return os.path.join(env.get("TMUX_TMPDIR") or "/tmp", f"tmux-{os.getuid()}")


_GLOBAL_FLAGS_WITH_VALUE = {"-S", "-L", "-f", "-c", "-T"}
_NEW_FLAGS_WITH_VALUE = {"-s", "-c", "-n", "-e", "-x", "-y", "-F", "-t", "-f"}
_NEW_COMMANDS = {"new", "new-session", "new-sess", "new-se", "new-s", "new-ses", "new-sessi"}


def parse_tmux_launch(text: str, env: Mapping[str, str] | None = None) -> TmuxLaunch:
    """Read a `tmux [-S SOCKET] new -d -s NAME [-c DIR] "COMMAND"` line.

    The start folder is `-c DIR`, else the `cd DIR` that opens the command.
    """
    env = os.environ if env is None else env
    argv = words(text, env)
    if not argv or os.path.basename(argv[0]) != "tmux":
        raise ShellSyntaxError("a launch line must start with `tmux`")
    i = 1
    socket: str | None = None
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        flag, value, i = _flag(argv, i, _GLOBAL_FLAGS_WITH_VALUE)
        if flag == "-S":
            socket = value
        elif flag == "-L":
            socket = os.path.join(default_socket_dir(env), value or "default")
    if i >= len(argv) or argv[i] not in _NEW_COMMANDS:
        found = argv[i] if i < len(argv) else "nothing"
        raise ShellSyntaxError(f"expected `tmux new -s NAME ...`, found `{found}`")
    i += 1
    name: str | None = None
    start_dir: str | None = None
    environment: list[tuple[str, str]] = []
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--":
            i += 1
            break
        flag, value, i = _flag(argv, i, _NEW_FLAGS_WITH_VALUE)
        if flag == "-s":
            name = value
        elif flag == "-c":
            start_dir = value
        elif flag == "-e" and value is not None:
            key, _, val = value.partition("=")
            environment.append((key, val))
    if not name:
        raise ShellSyntaxError("the tmux line has no session name (`-s NAME`)")
    rest = argv[i:]
    if not rest:
        raise ShellSyntaxError("the tmux line has no command")
    command: str | tuple[str, ...] = rest[0] if len(rest) == 1 else tuple(rest)
    if start_dir is None and isinstance(command, str):
        start_dir = leading_cd(command, env)
    return TmuxLaunch(name, socket, start_dir, command, tuple(environment))


def _flag(argv: list[str], i: int, with_value: set[str]) -> tuple[str, str | None, int]:
    """One option at argv[i], which may be bundled (`-ds NAME`, `-sNAME`)."""
    arg = argv[i]
    # Bundled boolean flags such as -dP: the last letter may take a value.
    letters = arg[1:]
    for pos, letter in enumerate(letters):
        flag = "-" + letter
        if flag in with_value:
            attached = letters[pos + 1 :]
            if attached:
                return flag, attached, i + 1
            if i + 1 >= len(argv):
                raise ShellSyntaxError(f"`{flag}` needs a value")
            return flag, argv[i + 1], i + 2
    return arg, None, i + 1
