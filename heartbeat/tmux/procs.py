"""Leftovers of a previous run: processes still in the process group a pane started.

tmux starts each pane in a new session, so the pane's first process leads a process
group. Agents' children that ignore SIGHUP outlive `kill-session`, and two agents
working in one repository corrupt it, so a restart first makes sure that group is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def _processes() -> list[tuple[int, str, list[str]]]:
    """(pid, command name, the stat fields after the name) for every process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.find("(") + 1 : stat.rfind(")")]
            found.append((int(entry.name), name, stat.rpartition(")")[2].split()))
    return found


def children_named(prefix: str, argument: str | None = None) -> list[int]:
    """This process's children whose command name starts with `prefix` (and, when
    given, whose command line holds `argument` as a word of its own)."""
    me = str(os.getpid())
    if Path("/proc").is_dir():
        found = [
            pid
            for pid, name, fields in _processes()
            if fields[1:2] == [me] and name.startswith(prefix)
        ]
        return [pid for pid in found if argument is None or argument in _arguments(pid)]
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,comm="], capture_output=True, text=True, check=False
    ).stdout
    rows = (line.split(None, 2) for line in listing.splitlines())
    return [
        int(r[0])
        for r in rows
        if len(r) == 3
        and r[1] == me
        and os.path.basename(r[2]).startswith(prefix)
        and (argument is None or f" {argument} " in f" {_command_line(int(r[0])).strip()} ")
    ]


def _arguments(pid: int) -> list[str]:
    """A process's command line, word by word, from /proc (none for one that is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _command_line(pid: int) -> str:
    """A process's command line as `ps` shows it (its words joined by spaces: a word is
    found with a space either side)."""
    return subprocess.run(  # -ww: whole, however wide the terminal says it is
        ["ps", "-ww", "-p", str(pid), "-o", "args="], capture_output=True, text=True, check=False
    ).stdout


def group_members(pgid: int, socket: str, pane_id: str) -> list[int]:
    """Processes in process group `pgid` that were started in that tmux pane.

    A process id is reused once its process is gone, so a member must also carry the
    pane's own environment (tmux gives every pane `TMUX_PANE` and `TMUX=socket,...`).
    This reads /proc; where there is none, nothing is reported.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    pane_marker = f"TMUX_PANE={pane_id}".encode()
    socket_marker = f"TMUX={socket},".encode()
    members: list[int] = []
    for pid, _, fields in _processes():
        # Fields after the command name: state ppid pgrp ...
        if len(fields) < 3 or fields[2] != str(pgid) or fields[0] == "Z":
            continue
        try:
            environ = (proc / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if pane_marker in environ and any(v.startswith(socket_marker) for v in environ):
            members.append(pid)
    return members


def gone_within(
    pgid: int,
    socket: str,
    pane_id: str,
    seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait up to `seconds` for the pane's processes to end by themselves."""
    waited = 0.0
    while group_members(pgid, socket, pane_id):
        if waited >= seconds:
            return False
        sleep(0.05)
        waited += 0.05
    return True


def stop(
    pgid: int,
    socket: str,
    pane_id: str,
    grace: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """SIGTERM the pane's leftovers, then SIGKILL what is left; True when all are gone.

    Only processes proven to come from that pane are signalled, one by one.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in group_members(pgid, socket, pane_id):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                return False
        waited = 0.0
        while waited < grace:
            if not group_members(pgid, socket, pane_id):
                return True
            sleep(0.05)
            waited += 0.05
    return not group_members(pgid, socket, pane_id)


def age_of(pid: int) -> float | None:
    """How long the process has run, in seconds (None: not known, or not Linux)."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22
    except (OSError, ValueError, IndexError):
        return None


def hung_check(pid: int, older_than: float) -> bool:
    """Whether the process is one of this user's heartbeat checks that has been running
    longer than `older_than` seconds: past its own time bound, so hung. Its command line
    must say so (`... heartbeat check ...`): no other process is ever ended."""
    proc = Path("/proc") / str(pid)
    try:
        if proc.stat().st_uid != os.getuid():
            return False
        words = (proc / "cmdline").read_bytes().split(b"\0")
        fields = (proc / "stat").read_text().rpartition(")")[2].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    names = [word.decode(errors="replace") for word in words if word]
    # `heartbeat check ...` or `python -m heartbeat check ...`: the verb right after.
    verbs = [
        names[index + 1]
        for index, word in enumerate(names[:-1])
        if word == "heartbeat" or word.endswith("/heartbeat")
    ]
    if "check" not in verbs:
        return False
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: since boot
    return uptime - started > older_than


def end(pid: int, grace: float = 2.0) -> bool:
    """End a process: SIGTERM, then SIGKILL after `grace` seconds. True once it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    # A zombie is gone for our purpose: it holds no lock.
    try:
        return "Z" not in (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2][:3]
    except OSError:
        return False
