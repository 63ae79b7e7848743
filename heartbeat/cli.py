"""The command line: the only module that prints, reads the clock or exits."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

from heartbeat import config as config_module
from heartbeat import core, lazy, notebook
from heartbeat.errors import HeartbeatError, UsageError
from heartbeat.model import RestartMode

if TYPE_CHECKING:
    from heartbeat import verbs
else:  # a check, the verb cron runs every minute, does without
    verbs = lazy.module("heartbeat.verbs")

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_NEEDS_PERSON, EXIT_USAGE = 0, 1, 2


def now() -> datetime:
    """The clock, read once per command. HEARTBEAT_NOW (ISO time) exists for tests."""
    fixed = os.environ.get("HEARTBEAT_NOW")
    if not fixed:
        return datetime.now()
    try:
        return datetime.fromisoformat(fixed)
    except ValueError:
        raise UsageError(f"HEARTBEAT_NOW is not an ISO time: {fixed!r}") from None


def load_config(notes: str | None, socket: str | None) -> config_module.Config:
    return config_module.load(os.environ, notes=notes, socket=socket)


def one_line_errors(func: F) -> F:
    """Turn heartbeat's errors into one line on stderr and an exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UsageError as error:
            click.echo(f"heartbeat: {error}", err=True)
            sys.exit(EXIT_USAGE)
        except HeartbeatError as error:
            click.echo(f"heartbeat: {error}", err=True)
            sys.exit(EXIT_NEEDS_PERSON)
        except BrokenPipeError:  # the reader (`| head`) has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_OK)
        except OSError as error:  # a file heartbeat had to use, and could not
            where = f"{error.filename}: " if error.filename else ""
            click.echo(f"heartbeat: {where}{error.strerror or error}", err=True)
            sys.exit(EXIT_NEEDS_PERSON)

    return wrapper  # type: ignore[return-value]


notes_option = click.option(
    "--notes", metavar="DIR", help="Notes folder [$HEARTBEAT_NOTES, else ./memory]."
)
socket_option = click.option(
    "--socket", metavar="PATH", help="tmux socket [$HEARTBEAT_SOCKET, else ~/.tmux/sock]."
)


restart_option = click.option(
    "--restart",
    type=click.Choice([mode.value for mode in RestartMode]),
    default=RestartMode.ON_FAILURE.value,
    show_default=True,
    help="When a check restarts it.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="heartbeat")
def cli() -> None:
    """Keep long-running coding agents alive in tmux, from your daily notes.

    Each launch is logged in memory/YYYY-MM-DD.md under "Active Long-Running
    Processes"; `heartbeat check`, run every minute by cron, restarts the dead.
    """


@cli.command()
@notes_option
@socket_option
@click.option("--quiet", is_flag=True, help="Print only what needs a person (for cron).")
@click.option("--only", metavar="NAME", help="Check this entry alone (the completion hook).")
@click.option("--hook", is_flag=True, hidden=True, help="Run by tmux when a session closed.")
@one_line_errors
def check(notes: str | None, socket: str | None, quiet: bool, only: str | None, hook: bool) -> None:
    """Restart dead sessions and write status changes to the notes.

    Silent when nothing changed. Exit 1 when something needs a person.

    Example: heartbeat check --quiet
    """
    if only:
        # Run as the completion hook, inside the agent's pane: leave the pane's session,
        # so that restarting that very session does not hang this check up.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            os.setsid()
    outcome = core.check(load_config(notes, socket), now(), only, hook)
    if outcome.skipped:
        return
    for change in outcome.changes:
        if change.needs_person or not quiet:
            click.echo(change.line())
    for problem in outcome.problems:
        click.echo(problem, err=True)
    sys.exit(EXIT_NEEDS_PERSON if outcome.needs_person else EXIT_OK)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.option("--dir", "folder", required=True, metavar="DIR", help="Folder the agent runs in.")
@notes_option
@socket_option
@click.option("--codex", metavar="TASK", help="Run `codex exec --full-auto TASK`.")
@click.option("--ralph", metavar="PRD", help="Run `ralphy --codex --prd PRD`.")
@click.option("--parallel", is_flag=True, help="With --ralph: `ralphy --codex --parallel`.")
@restart_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@one_line_errors
def launch(
    name: str,
    folder: str,
    notes: str | None,
    socket: str | None,
    codex: str | None,
    ralph: str | None,
    parallel: bool,
    restart: str,
    command: tuple[str, ...],
) -> None:
    """Start COMMAND in a tmux session NAME and log it in today's note.

    One COMMAND argument is a shell command (as tmux takes it); several are run
    as they are.

    Example: heartbeat launch api-tests --dir ~/src/api -- codex exec --full-auto 'Add tests'
    """
    argv = list(command)
    shortcuts = [flag for flag, value in (("--codex", codex), ("--ralph", ralph)) if value]
    if len(shortcuts) + bool(argv) > 1:
        raise UsageError("give one of --codex, --ralph or a COMMAND after --")
    if parallel and not ralph:
        raise UsageError("--parallel goes with --ralph")
    if codex:
        argv = ["codex", "exec", "--full-auto", codex]
    elif ralph:
        argv = ["ralphy", "--codex", *(["--parallel"] if parallel else []), "--prd", ralph]
    config = load_config(notes, socket)
    path = verbs.launch(config, now(), name, folder, argv, RestartMode(restart))
    click.echo(f"{name}: running on {config.socket}, logged in {notebook.label_of(path)}")


@cli.command(name="log", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.option("--dir", "folder", required=True, metavar="DIR", help="Folder the agent runs in.")
@notes_option
@socket_option
@restart_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@one_line_errors
def log_command(
    name: str,
    folder: str,
    notes: str | None,
    socket: str | None,
    restart: str,
    command: tuple[str, ...],
) -> None:
    """Log a session you started by hand, and approve its command, in one step.

    COMMAND is what a restart runs, in DIR, through heartbeat's wrapper.

    Example: heartbeat log api-tests --dir ~/src/api -- codex exec --full-auto 'Add tests'
    """
    config = load_config(notes, socket)
    path = verbs.log(config, now(), name, folder, list(command), RestartMode(restart))
    click.echo(f"{name}: logged in {notebook.label_of(path)}; its command is allowed")


@cli.command()
@click.argument("name")
@notes_option
@socket_option
@one_line_errors
def allow(name: str, notes: str | None, socket: str | None) -> None:
    """Approve the command of NAME's entry, so that checks may run it.

    A command heartbeat did not launch itself (written by hand, or edited) is not run
    until it is allowed. The approval covers this exact command, dir and socket.

    Example: heartbeat allow api-tests
    """
    entry = verbs.allow(load_config(notes, socket), now(), name)
    command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
    click.echo(f"{entry.name}: allowed\n  command: {command}\n  dir: {entry.dir}")
    click.echo(f"  socket: {entry.socket}\n  note: {entry.location}")


@cli.command()
@notes_option
@socket_option
@click.option("--json", "as_json", is_flag=True, help='Print {"entries": [...]}.')
@one_line_errors
def status(notes: str | None, socket: str | None, as_json: bool) -> None:
    """Show every watched entry and its live state; changes nothing.

    Example: heartbeat status --json
    """
    from heartbeat import admin  # each verb imports what only it needs: checks start fast

    current = now()
    config = load_config(notes, socket)
    rows, problems = verbs.status(config, current)
    header = admin.watcher_header(config, current)
    if as_json:
        report = {"heartbeat": header, "entries": [row.as_json() for row in rows]}
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo("\n".join([*header, "", _table(rows, current)]))
    for problem in problems:
        click.echo(problem, err=True)
    sys.exit(EXIT_NEEDS_PERSON if problems else EXIT_OK)


def _table(rows: list[verbs.Row], current: datetime) -> str:
    if not rows:
        return "no watched entries"
    header = ("NAME", "STATE", "AGE", "PRD", "VERDICT", "LAST STATUS")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.name,
                row.state,
                _age(row.since, current),
                row.prd or "-",
                row.verdict or "-",
                row.last_status or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:5])) + "  " + line[5]
        for line in lines
    )


def _age(since: str | None, current: datetime) -> str:
    if not since:
        return "-"
    try:
        seconds = int((current - datetime.fromisoformat(since)).total_seconds())
    except ValueError:
        return "-"
    if seconds < 3600:
        return f"{max(seconds, 0) // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


@cli.command()
@click.argument("name")
@click.option(
    "-n", "lines", default=20, show_default=True, type=click.IntRange(min=1), help="How many lines."
)
@notes_option
@socket_option
@one_line_errors
def tail(name: str, lines: int, notes: str | None, socket: str | None) -> None:
    """Print the last lines of NAME's pane.

    Example: heartbeat tail api-tests -n 50
    """
    for line in verbs.tail(load_config(notes, socket), now(), name, lines):
        click.echo(line)


@cli.command()
@click.argument("name")
@notes_option
@socket_option
@one_line_errors
def kill(name: str, notes: str | None, socket: str | None) -> None:
    """Close NAME's entry in the notes, then kill its session.

    Example: heartbeat kill api-tests
    """
    entry = verbs.kill(load_config(notes, socket), now(), name)
    click.echo(f"{entry.name}: killed, entry closed in {entry.where}")


@cli.command()
@click.argument("name")
@notes_option
@socket_option
@one_line_errors
def reset(name: str, notes: str | None, socket: str | None) -> None:
    """Forget NAME's failed starts, so that checks restart it again after giving up.

    Example: heartbeat reset api-tests
    """
    entry = verbs.reset(load_config(notes, socket), now(), name)
    click.echo(f"{entry.name}: reset; the next check restarts it if it is down")


@cli.command(name="verify")
@click.argument("name")
@notes_option
@socket_option
@one_line_errors
def verify_command(name: str, notes: str | None, socket: str | None) -> None:
    """Show whether NAME's work is done: git log, diff, the pane's end, PRD, verdict.

    Checks git, not checkboxes: agents tick PRD boxes without doing the work. Works on
    running, finished and closed entries.

    Example: heartbeat verify api-tests
    """
    found = verbs.verify_entry(load_config(notes, socket), now(), name)
    entry, report = found.entry, found.report
    click.echo(f"{entry.name} ({found.state}) in {entry.dir}")
    if found.baseline is not None and found.baseline.head:
        click.echo(
            f"started at {found.baseline.head[:10]} on {found.baseline.started:%Y-%m-%d %H:%M}"
        )
    sections = [
        ("git log --oneline -3", found.log),
        ("git diff --stat", found.diff),
        ("pane (last 20 lines)", found.pane),
    ]
    for title, lines in sections:
        click.echo(f"\n$ {title}" if title.startswith("git") else f"\n{title}:")
        click.echo("\n".join(lines) if lines else "(nothing)")
    click.echo()
    if report.prd is not None:
        click.echo(f"{report.prd.describe()} tasks ticked")
    if report.changes is not None:
        click.echo(f"since start: {report.changes.describe()}")
    click.echo(f"verdict: {report.verdict}" + (f" ({report.hint})" if report.hint else ""))


@cli.group()
def prd() -> None:
    """PRD files: the task checklists Ralph loops work through."""


@prd.command(name="new")
@click.argument("path", default=".", required=False)
@one_line_errors
def prd_new(path: str) -> None:
    """Write a PRD skeleton with a `## Tasks` checklist (PATH: a file, or a folder).

    Example: heartbeat prd new ~/src/api/PRD.md
    """
    written = verbs.new_prd(path)
    click.echo(f"wrote {written}: fill in the tasks, then launch it with --ralph {written.name}")


@cli.command()
@click.option("--cron", "kind", flag_value="cron", help="A crontab line (default but on macOS).")
@click.option("--launchd", "kind", flag_value="launchd", help="A launchd job (macOS default).")
@click.option("--systemd", "kind", flag_value="systemd", help="A systemd user timer.")
@click.option("--every", metavar="N", help="How often: 1m (the default), 5m, 1h.")
@click.option("--schedule", "expression", metavar="CRON", help="A cron schedule (cron only).")
@click.option("--print", "print_only", is_flag=True, help="Show it; install nothing.")
@notes_option
@socket_option
@one_line_errors
def install(
    kind: str | None,
    every: str | None,
    expression: str | None,
    print_only: bool,
    notes: str | None,
    socket: str | None,
) -> None:
    """Run `heartbeat check --quiet` on a schedule: cron, launchd or systemd.

    Installing twice changes nothing; a new schedule replaces the old one.

    Example: heartbeat install --every 1m
    """
    from heartbeat import admin, schedule

    config = load_config(notes, socket)
    result = admin.install(config, kind or schedule.default_kind(), every, expression, print_only)
    if print_only:
        click.echo(result.text.rstrip("\n"))
    elif result.changed:
        click.echo(f"installed ({result.kind}): {result.where}")
    else:
        click.echo(f"already installed ({result.kind}): nothing changed")


@cli.command()
@notes_option
@socket_option
@one_line_errors
def uninstall(notes: str | None, socket: str | None) -> None:
    """Remove exactly what `heartbeat install` put in place.

    Example: heartbeat uninstall
    """
    from heartbeat import admin

    click.echo(f"removed {admin.uninstall(load_config(notes, socket))}")


@cli.command()
@notes_option
@socket_option
@one_line_errors
def doctor(notes: str | None, socket: str | None) -> None:
    """Check everything heartbeat needs; each wrong thing comes with its fix.

    Example: heartbeat doctor
    """
    from heartbeat import admin

    findings = admin.doctor(load_config(notes, socket), now())
    for finding in findings:
        mark = "ok  " if finding.ok else "FIX "
        click.echo(f"{mark}{finding.what}" + (f": {finding.fix}" if finding.fix else ""))
    sys.exit(EXIT_OK if admin.doctor_ok(findings) else EXIT_NEEDS_PERSON)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.exit(130)
