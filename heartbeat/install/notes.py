"""Choosing the notes folder once: `heartbeat init`, or the first `launch --notes`, writes
it in the config file, where every later command and run finds it."""

from __future__ import annotations

import os
from pathlib import Path

from heartbeat import config as configuration
from heartbeat import state, trust
from heartbeat.config import Config
from heartbeat.errors import RefusedError
from heartbeat.records import frozen


@frozen
class Chosen:
    """What `heartbeat init` did."""

    folder: Path
    file: Path  # the config file it is written in
    changed: bool  # False: the config file already said so
    created: bool = False  # the folder did not exist, and was made
    overridden: str | None = None  # HEARTBEAT_NOTES names another folder, and comes first
    scheduled: str | None = None  # the installed schedule checks another folder


def init(config: Config) -> Chosen:
    """Write the notes folder `config` resolved into the config file (idempotent)."""
    folder = config.notes_dir
    created = _ensure_folder(folder, config.env.get("HOME"))
    file = config_file_of(config)
    changed = configuration.write_notes(file, folder)
    state.forget_notes_warning(config.state_dir)  # a choice made: a mismatch is news again
    home = config.env.get("HOME") or os.path.expanduser("~")
    from_env = config.env.get("HEARTBEAT_NOTES")
    overridden = (
        from_env if from_env and configuration.notes_path(from_env, home) != folder else None
    )
    scheduled = state.scheduled_notes(config.state_dir)
    if scheduled is not None and Path(scheduled) == folder:
        scheduled = None
    return Chosen(folder, file, changed, created, overridden, scheduled)


def remember_flag(config: Config) -> Path | None:
    """After a launch with `--notes DIR`: the folder written in the config file when the
    file names none yet, so that later commands (and `install`) find the notes without
    the flag. The config file written, or None when nothing was."""
    if config.notes_from != configuration.NOTES_FROM_FLAG or config.notes_configured is not None:
        return None
    file = config_file_of(config)
    configuration.write_notes(file, config.notes_dir)
    return file


def config_file_of(config: Config) -> Path:
    home = config.env.get("HOME") or os.path.expanduser("~")
    return config.config_file or configuration.config_path(config.env, home)


def _ensure_folder(folder: Path, home: str | None) -> bool:
    """The notes folder, made (one level, as a launch makes it) when missing; refused
    when it is one heartbeat must not use. True when it was made."""
    created = False
    if not folder.exists() and not folder.is_symlink():
        if not folder.parent.is_dir():
            raise RefusedError(f"{folder.parent}: not found (the notes folder goes in it)")
        folder.mkdir(mode=0o700)
        created = True
    if not folder.is_dir():
        raise RefusedError(f"{folder}: not a folder")
    refused = trust.unsafe(folder, str(folder)) or trust.strict_parents(
        folder, f"notes folder {folder}", home
    )
    if refused:
        raise RefusedError(refused)
    return created
