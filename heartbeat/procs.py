"""Leftovers of a previous run: processes still in the process group a pane started.

tmux starts each pane in a new session, so the pane's first process leads a process
group. Agents' children that ignore SIGHUP outlive `kill-session`, and two agents
working in one repository corrupt it, so a restart first makes sure that group is gone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def group_members(pgid: int) -> list[int]:
    """Processes in process group `pgid` (from /proc where there is one)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return [pgid] if _group_exists(pgid) else []
    members: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces): state ppid pgrp ...
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace: float = 3.0, sleep: Callable[[float], None] = time.sleep) -> bool:
    """SIGTERM the group, then SIGKILL what is left after `grace`; True when it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        waited = 0.0
        while waited < grace:
            if not group_members(pgid):
                return True
            sleep(0.05)
            waited += 0.05
    return not group_members(pgid)
