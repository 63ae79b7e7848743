"""The family of errors heartbeat raises; each message is ready for a person to read."""

from __future__ import annotations


class HeartbeatError(Exception):
    """Base of every error heartbeat reports as one line."""


class UsageError(HeartbeatError):
    """The command line asked for something impossible (exit code 2)."""


class RefusedError(HeartbeatError):
    """A request that heartbeat will not carry out, with the reason (exit code 1)."""


class NoteError(HeartbeatError):
    """A note, or an entry in it, that cannot be read: carries FILE:LINE."""

    def __init__(self, where: str, line: int, message: str) -> None:
        self.where = where
        self.line = line
        self.message = message
        super().__init__(f"{where}:{line}: {message}")

    def __reduce__(self) -> tuple[type[NoteError], tuple[str, int, str]]:
        return (NoteError, (self.where, self.line, self.message))  # kept in the parse cache


class ShellSyntaxError(HeartbeatError):
    """Shell text that heartbeat cannot read the way a POSIX shell would."""


class TmuxError(HeartbeatError):
    """tmux is missing, or answered with an error."""


class StateError(HeartbeatError):
    """The state folder cannot be used."""


class ConfigError(HeartbeatError):
    """The config file cannot be used."""


class ScheduleError(HeartbeatError):
    """A schedule that cannot be used, or a scheduler that failed."""
