"""The verbs as argparse will know them: each handler registers itself with `verb`, and
the arguments several verbs share are defined once here."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

from heartbeat import config as config_module
from heartbeat.errors import UsageError
from heartbeat.model import RestartMode
from heartbeat.records import frozen

EXIT_OK, EXIT_NEEDS_PERSON, EXIT_USAGE = 0, 1, 2


def now() -> datetime:
    """The clock, read once per command. HEARTBEAT_NOW (ISO time) exists for tests."""
    fixed = os.environ.get("HEARTBEAT_NOW")
    if not fixed:
        return datetime.now()
    try:
        moment = datetime.fromisoformat(fixed)
    except ValueError:
        raise UsageError(f"HEARTBEAT_NOW is not an ISO time: {fixed!r}") from None
    # heartbeat keeps local times: one with a zone is that moment here.
    try:
        moment = moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment
        moment.timestamp()  # a year 1 or 9999 that a file time cannot hold
    except (OverflowError, OSError, ValueError):
        raise UsageError(f"HEARTBEAT_NOW is out of range: {fixed!r}") from None
    return moment


def load_config(args: argparse.Namespace) -> config_module.Config:
    """The configuration, once its state folder is known to be the user's alone (every
    verb reads or writes there)."""
    from heartbeat import trust

    notes, socket = getattr(args, "notes", None), getattr(args, "socket", None)
    config = config_module.load(os.environ, notes=notes, socket=socket)
    trust.require_state_folder(config.state_dir, config.env.get("HOME"))
    return config


def echo(text: str = "", err: bool = False) -> None:
    """One line out, flushed at once: a reader that leaves early (`| head`) is seen here."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def exit_at_once(code: int) -> NoReturn:
    """Exit without tearing the interpreter down, for the check cron runs every minute:
    freeing every module and object it loaded costs it a twentieth of its time. What it
    wrote is closed by now (files are written whole, then renamed); only the standard
    streams are buffered, so they are flushed first. No exit handler runs."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone, a stream closed
            stream.flush()
    os._exit(code)


Argument = tuple[tuple[str, ...], dict[str, Any]]
Handler = Callable[[argparse.Namespace], None]


def arg(*flags: str, **options: Any) -> Argument:
    return flags, options


@frozen(eq=False, repr=False)
class Verb:
    words: tuple[str, ...]  # `("prd", "new")` for `heartbeat prd new`
    run: Handler
    arguments: tuple[Argument, ...]
    hidden: bool = False  # an old name that still works, left out of the help

    @property
    def help(self) -> str:
        # inspect.cleandoc's result, without importing inspect into every run.
        first, _, rest = (self.run.__doc__ or "").strip().partition("\n")
        return f"{first}\n{textwrap.dedent(rest)}".strip()


VERBS: list[Verb] = []  # in the order `heartbeat --help` lists them
GROUPS = {"prd": "PRD files: the task checklists Ralph loops work through."}


def verb(
    *arguments: Argument, name: str | None = None, aliases: tuple[str, ...] = ()
) -> Callable[[Handler], Handler]:
    def register(run: Handler) -> Handler:
        VERBS.append(Verb(tuple((name or run.__name__).split()), run, arguments))
        VERBS.extend(Verb((alias,), run, arguments, hidden=True) for alias in aliases)
        return run

    return register


def at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600:  # nan too
        raise argparse.ArgumentTypeError(f"must be from 0.1 to 3600 seconds, not {text}")
    return value


NOTES = arg(
    "--notes",
    metavar="DIR",
    help="notes folder [$HEARTBEAT_NOTES, the config, else the OpenClaw workspace's memory/]",
)
SOCKET = arg("--socket", metavar="PATH", help="tmux socket [$HEARTBEAT_SOCKET, else ~/.tmux/sock]")
NAME = arg("name", metavar="NAME", help="the entry's session name")
DIR = arg("--dir", dest="folder", required=True, metavar="DIR", help="folder the agent runs in")
RESTART = arg(
    "--restart",
    choices=[mode.value for mode in RestartMode],
    default=RestartMode.ON_FAILURE.value,
    help="when a check restarts it (default: %(default)s)",
)
# Filled from what follows `--` on the command line, not by argparse, which cannot take
# an agent's own options (`--full-auto`) as values.
COMMAND_AFTER_DASHES = arg(
    "command", nargs="*", metavar="-- COMMAND", help="the agent's command, after --"
)
