"""`heartbeat attach NAME`: the terminal shows the entry's session, on its own socket."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from heartbeat.check.observe import needs_approval, watched_sockets
from heartbeat.check.start import tmux_at
from heartbeat.config import Config
from heartbeat.errors import RefusedError
from heartbeat.notes.notebook import Notebook
from heartbeat.records import frozen
from heartbeat.tmux import server
from heartbeat.trust import AllowList
from heartbeat.verbs.entries import find_entry


@frozen
class Target:
    """Where a person's terminal goes, and how."""

    name: str
    socket: str
    switch: bool  # the terminal is a client of that server already: switch it


def target(config: Config, now: datetime, name: str, env: Mapping[str, str]) -> Target:
    """NAME's session, once it is known that heartbeat may connect to its socket and that
    the session is there."""
    book = Notebook(config, now.date())
    book.read_all()
    _, entry = find_entry(book, name)
    if entry.options.get("host", config.host) != config.host:
        raise RefusedError(f"{name} runs on {entry.options['host']}: attach to it there")
    allowed = None if config.settings.trust_owned_notes else AllowList.load(config.state_dir)
    if entry.socket not in watched_sockets(config, [entry], allowed):
        # The same rule as a check's: a socket only an unapproved entry names is never
        # connected to (a server there could be anyone's program).
        raise RefusedError(needs_approval(entry))
    refused = server.socket_problem(entry.socket)
    if refused:
        raise RefusedError(refused)
    switch = server.inside(entry.socket, env)
    if not tmux_at(config, entry.socket).has_session(entry.name):
        raise RefusedError(f"no session {entry.name} on {entry.socket}")
    return Target(entry.name, entry.socket, switch)


def attach(config: Config, found: Target, env: Mapping[str, str]) -> None:
    """Hand the terminal to tmux: never returns."""
    server.attach(found.socket, found.name, config.tmux, found.switch, env)
