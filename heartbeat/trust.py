"""Who may make heartbeat run a command: safe notes, and the allow list.

heartbeat runs commands it reads from notes that people, their agents and sync tools
write. Like ssh's StrictModes, a note or notes folder that someone else could change is
refused; like direnv's allow list, a command that heartbeat did not launch itself runs
only once `heartbeat allow NAME` has recorded its sha256 outside the notes folder.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
from functools import cache
from pathlib import Path

from heartbeat import files
from heartbeat.errors import RefusedError
from heartbeat.model import Entry
from heartbeat.records import field, mutable

ALLOW_FILE = "allowed.json"


def unsafe(path: Path, label: str) -> str | None:
    """Why `path` must not be trusted, with the fix, or None when it is safe."""
    try:
        info = os.lstat(path)
    except OSError:
        return None  # reading it will say what is wrong
    if stat.S_ISLNK(info.st_mode):
        return (
            f"{label}: is a symbolic link, which heartbeat does not follow; "
            f"use the real path: {os.path.realpath(path)}"
        )
    return unsafe_info(info, label, _has_acl(path))


def unsafe_open(fd: int, label: str) -> str | None:
    """`unsafe` for what an open descriptor holds: what is judged is what is read."""
    try:
        info = os.fstat(fd)
    except OSError as error:
        return f"{label}: cannot be looked at: {error.strerror}"
    try:
        acl = "system.posix_acl_access" in os.listxattr(fd)
    except (OSError, AttributeError):
        acl = False
    return unsafe_info(info, label, acl)


def unsafe_info(info: os.stat_result, label: str, acl: bool) -> str | None:
    """Why a file with this status must not be trusted: another's, or others may write."""
    if info.st_uid != os.getuid():
        owner = _user_name(info.st_uid)
        return f"{label}: owned by {owner}, not by you: chown {_user_name(os.getuid())} {label}"
    if acl:
        return (
            f"{label}: has an access control list that may let others write it: setfacl -b {label}"
        )
    if info.st_mode & stat.S_IWOTH:
        return f"{label}: anyone can write it: chmod o-w {label}"
    if info.st_mode & stat.S_IWGRP and _shared_group(info.st_gid):
        group = _group_name(info.st_gid)
        return f"{label}: other users in group {group} can write it: chmod g-w {label}"
    return None


def strict_parents(path: Path, label: str, home: str | None = None) -> str | None:
    """Why a folder's parents make it unsafe, as ssh's StrictModes would say: a parent up
    to the home folder (else up to `/`) that someone else owns (root aside) or could
    write, unless it is sticky (as /tmp is: nobody may then rename another's files)."""
    stop = Path(home).absolute() if home else None
    for parent in Path(os.path.abspath(path)).parents:
        try:
            info = os.stat(parent)
        except OSError:
            return f"{label}: cannot look at its parent {parent}"
        if info.st_uid not in (0, os.getuid()):
            owner = _user_name(info.st_uid)
            return f"{label}: its parent {parent} is owned by {owner}: move it, or chown {parent}"
        others = info.st_mode & stat.S_IWOTH or (
            info.st_mode & stat.S_IWGRP and _shared_group(info.st_gid)
        )
        if others and not info.st_mode & stat.S_ISVTX:
            return f"{label}: others can write its parent {parent}: chmod go-w {parent}"
        if parent == stop:
            break
    return None


def require_state_folder(path: Path, home: str | None = None) -> None:
    """Make the state folder (0700) when it is missing; raise RefusedError unless it,
    its parents and everything in it are the user's alone: its files decide what runs
    (the allow list, the hook script tmux runs when a session closes)."""
    label = str(path)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise RefusedError(f"cannot make the state folder {label}: {error.strerror}") from None
    refused = unsafe(path, f"state folder {label}") or strict_parents(
        path, f"state folder {label}", home
    )
    if refused is None:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            refused = f"state folder {label}: is not a folder"
        elif info.st_mode & 0o022:
            refused = f"state folder {label}: others may write in it: chmod 700 {label}"
    if refused is None:
        refused = _unsafe_inside(path)
    if refused:
        raise RefusedError(refused)


def _unsafe_inside(folder: Path) -> str | None:
    """Why a file in the state folder (or its runs folder) must not be used."""
    try:
        with os.scandir(folder) as found:
            names = [(entry.name, entry.is_symlink()) for entry in found]
    except OSError as error:
        return f"state folder {folder}: cannot be read: {error.strerror}"
    for name, is_link in names:
        inside = folder / name
        if is_link:
            return f"{inside}: is a symbolic link, which heartbeat does not follow: remove it"
        try:
            info = os.lstat(inside)
        except FileNotFoundError:
            continue  # gone meanwhile (a check's temp file)
        if info.st_uid != os.getuid():
            return f"{inside}: owned by {_user_name(info.st_uid)}, not by you: remove it"
        if info.st_mode & 0o022:
            return f"{inside}: others may write it: chmod go-w {inside}"
    return None


def _has_acl(path: Path) -> bool:
    """Whether a POSIX ACL beyond the mode bits is set (`ls -l` shows a `+`)."""
    try:
        return "system.posix_acl_access" in os.listxattr(path, follow_symlinks=False)
    except (OSError, AttributeError):
        return False  # no extended attributes here


@cache
def _shared_group(gid: int) -> bool:
    """Whether a group holds users other than this one (Ubuntu's private groups do not)."""
    me = _user_name(os.getuid())
    try:
        members = set(grp.getgrgid(gid).gr_mem)
    except KeyError:
        return True  # an unknown group: assume the worst
    members |= {user.pw_name for user in pwd.getpwall() if user.pw_gid == gid}
    return bool(members - {me})


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


@mutable(eq=False)
class AllowList:
    """Approved commands by digest, in a file only the user can read and write."""

    path: Path
    approved: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: Path) -> AllowList:
        path = state_dir / ALLOW_FILE
        try:
            raw = json.loads(files.read_private(path).decode("utf-8"))
            approved = {str(k): dict(v) for k, v in raw.items()}
        except FileNotFoundError:
            approved = {}
        except files.NotPrivate as error:
            raise RefusedError(
                f"{path}: {error.strerror}: heartbeat approves nothing from it; "
                f"remove it and approve again"
            ) from None
        except (OSError, ValueError, TypeError, AttributeError):
            approved = {}  # a lost allow list only means asking again
        return cls(path, approved)

    def allows(self, entry: Entry) -> bool:
        return entry.digest in self.approved

    def allow(self, entry: Entry, when: str) -> None:
        command = entry.command if isinstance(entry.command, str) else json.dumps(entry.command)
        self.approved[entry.digest] = {
            "name": entry.name,
            "command": command,
            "dir": entry.dir,
            "socket": entry.socket,
            "allowed": when,
        }

    def save(self) -> None:
        files.write_private(self.path, json.dumps(self.approved, indent=1, sort_keys=True) + "\n")
