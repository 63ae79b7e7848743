"""The command line: the only module that prints, reads the clock or exits.

Built on argparse, as honcho's is: cron starts `heartbeat check` every minute, and a
richer command-line library would cost each of those checks more than a tenth of its
time just to import (bench/check.py measures it). Only the verb asked for is built.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from heartbeat import __version__, lazy
from heartbeat import config as config_module
from heartbeat.errors import HeartbeatError, UsageError
from heartbeat.model import RestartMode

if TYPE_CHECKING:
    from heartbeat.check import run as checking
    from heartbeat.notes import notebook
    from heartbeat.verbs import entries
    from heartbeat.verbs import launch as launching
    from heartbeat.verbs import status as statuses
else:  # a check, the verb cron runs every minute, does without the other verbs
    checking = lazy.module("heartbeat.check.run")
    notebook = lazy.module("heartbeat.notes.notebook")
    entries = lazy.module("heartbeat.verbs.entries")
    launching = lazy.module("heartbeat.verbs.launch")
    statuses = lazy.module("heartbeat.verbs.status")

EXIT_OK, EXIT_NEEDS_PERSON, EXIT_USAGE = 0, 1, 2

ABOUT = """Keep long-running coding agents alive in tmux, from your daily notes.

Each launch is logged in memory/YYYY-MM-DD.md under "Active Long-Running Processes";
`heartbeat check`, run every minute by cron, restarts the dead."""


def now() -> datetime:
    """The clock, read once per command. HEARTBEAT_NOW (ISO time) exists for tests."""
    fixed = os.environ.get("HEARTBEAT_NOW")
    if not fixed:
        return datetime.now()
    try:
        return datetime.fromisoformat(fixed)
    except ValueError:
        raise UsageError(f"HEARTBEAT_NOW is not an ISO time: {fixed!r}") from None


def load_config(args: argparse.Namespace) -> config_module.Config:
    return config_module.load(os.environ, notes=args.notes, socket=args.socket)


def echo(text: str = "", err: bool = False) -> None:
    """One line out, flushed at once: a reader that leaves early (`| head`) is seen here."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


# --- the verbs, as argparse will know them --------------------------------------------

Argument = tuple[tuple[str, ...], dict[str, Any]]
Handler = Callable[[argparse.Namespace], None]


def arg(*flags: str, **options: Any) -> Argument:
    return flags, options


@dataclass(frozen=True)
class Verb:
    words: tuple[str, ...]  # `("prd", "new")` for `heartbeat prd new`
    run: Handler
    arguments: tuple[Argument, ...]

    @property
    def help(self) -> str:
        return inspect.cleandoc(self.run.__doc__ or "")


VERBS: list[Verb] = []  # in the order `heartbeat --help` lists them
GROUPS = {"prd": "PRD files: the task checklists Ralph loops work through."}


def verb(*arguments: Argument, name: str | None = None) -> Callable[[Handler], Handler]:
    def register(run: Handler) -> Handler:
        VERBS.append(Verb(tuple((name or run.__name__).split()), run, arguments))
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


NOTES = arg("--notes", metavar="DIR", help="notes folder [$HEARTBEAT_NOTES, else ./memory]")
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


@verb(
    NOTES,
    SOCKET,
    arg("--quiet", action="store_true", help="print only what needs a person (for cron)"),
    arg("--only", metavar="NAME", help="check this entry alone (the completion hook)"),
    arg("--hook", action="store_true", help=argparse.SUPPRESS),  # run by tmux's hook
)
def check(args: argparse.Namespace) -> None:
    """Restart dead sessions and write status changes to the notes.

    Silent when nothing changed. Exit 1 when something needs a person.

    Example: heartbeat check --quiet
    """
    if args.only:
        # Run as the completion hook, inside the agent's pane: leave the pane's session,
        # so that restarting that very session does not hang this check up.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            os.setsid()
    outcome = checking.check(load_config(args), now(), args.only, args.hook)
    if outcome.skipped:
        return
    for change in outcome.changes:
        if change.needs_person or not args.quiet:
            echo(change.line())
    for problem in outcome.problems:
        echo(problem, err=True)
    sys.exit(EXIT_NEEDS_PERSON if outcome.needs_person else EXIT_OK)


@verb(
    NAME,
    DIR,
    NOTES,
    SOCKET,
    arg("--codex", metavar="TASK", help="run `codex exec --full-auto TASK`"),
    arg("--ralph", metavar="PRD", help="run `ralphy --codex --prd PRD`"),
    arg("--parallel", action="store_true", help="with --ralph: `ralphy --codex --parallel`"),
    RESTART,
    COMMAND_AFTER_DASHES,
)
def launch(args: argparse.Namespace) -> None:
    """Start COMMAND in a tmux session NAME and log it in today's note.

    One COMMAND argument is a shell command (as tmux takes it); several are run
    as they are.

    Example: heartbeat launch api-tests --dir ~/src/api -- codex exec --full-auto 'Add tests'
    """
    argv = list(args.command)
    shortcuts = [
        flag for flag, value in (("--codex", args.codex), ("--ralph", args.ralph)) if value
    ]
    if len(shortcuts) + bool(argv) > 1:
        raise UsageError("give one of --codex, --ralph or a COMMAND after --")
    if args.parallel and not args.ralph:
        raise UsageError("--parallel goes with --ralph")
    if args.codex:
        argv = ["codex", "exec", "--full-auto", args.codex]
    elif args.ralph:
        argv = [
            "ralphy",
            "--codex",
            *(["--parallel"] if args.parallel else []),
            "--prd",
            args.ralph,
        ]
    config = load_config(args)
    path = launching.launch(config, now(), args.name, args.folder, argv, RestartMode(args.restart))
    echo(f"{args.name}: running on {config.socket}, logged in {notebook.label_of(path)}")


@verb(NAME, DIR, NOTES, SOCKET, RESTART, COMMAND_AFTER_DASHES)
def log(args: argparse.Namespace) -> None:
    """Log a session you started by hand, and approve its command, in one step.

    COMMAND is what a restart runs, in DIR, through heartbeat's wrapper.

    Example: heartbeat log api-tests --dir ~/src/api -- codex exec --full-auto 'Add tests'
    """
    config = load_config(args)
    restart = RestartMode(args.restart)
    path = launching.log(config, now(), args.name, args.folder, list(args.command), restart)
    echo(f"{args.name}: logged in {notebook.label_of(path)}; its command is allowed")


@verb(NAME, NOTES, SOCKET)
def allow(args: argparse.Namespace) -> None:
    """Approve the command of NAME's entry, so that checks may run it.

    A command heartbeat did not launch itself (written by hand, or edited) is not run
    until it is allowed. The approval covers this exact command, dir and socket.

    Example: heartbeat allow api-tests
    """
    entry = entries.allow(load_config(args), now(), args.name)
    command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
    echo(f"{entry.name}: allowed\n  command: {command}\n  dir: {entry.dir}")
    echo(f"  socket: {entry.socket}\n  note: {entry.location}")


@verb(
    NOTES,
    SOCKET,
    arg("--json", action="store_true", help='print {"heartbeat": [...], "entries": [...]}'),
)
def status(args: argparse.Namespace) -> None:
    """Show every watched entry and its live state; changes nothing.

    Example: heartbeat status --json
    """
    from heartbeat.install import doctor  # each verb imports what only it needs

    current = now()
    config = load_config(args)
    rows, problems = statuses.status(config, current)
    header = doctor.watcher_header(config, current)
    if args.json:
        report = {"heartbeat": header, "entries": [row.as_json() for row in rows]}
        echo(json.dumps(report, indent=2))
    else:
        echo("\n".join([*header, "", _table(rows, current)]))
    for problem in problems:
        echo(problem, err=True)
    sys.exit(EXIT_NEEDS_PERSON if problems else EXIT_OK)


def _table(rows: list[statuses.Row], current: datetime) -> str:
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


@verb(
    NAME,
    arg("-n", dest="lines", type=at_least_one, default=20, help="how many lines (default: 20)"),
    NOTES,
    SOCKET,
)
def tail(args: argparse.Namespace) -> None:
    """Print the last lines of NAME's pane.

    Example: heartbeat tail api-tests -n 50
    """
    for line in entries.tail(load_config(args), now(), args.name, args.lines):
        echo(line)


@verb(NAME, NOTES, SOCKET)
def kill(args: argparse.Namespace) -> None:
    """Close NAME's entry in the notes, then kill its session.

    Example: heartbeat kill api-tests
    """
    entry = entries.kill(load_config(args), now(), args.name)
    echo(f"{entry.name}: killed, entry closed in {entry.where}")


@verb(NAME, NOTES, SOCKET)
def reset(args: argparse.Namespace) -> None:
    """Forget NAME's failed starts, so that checks restart it again after giving up.

    Example: heartbeat reset api-tests
    """
    entry = entries.reset(load_config(args), now(), args.name)
    echo(f"{entry.name}: reset; the next check restarts it if it is down")


@verb(NAME, NOTES, SOCKET, name="verify")
def verify_command(args: argparse.Namespace) -> None:
    """Show whether NAME's work is done: git log, diff, the pane's end, PRD, verdict.

    Checks git, not checkboxes: agents tick PRD boxes without doing the work. Works on
    running, finished and closed entries.

    Example: heartbeat verify api-tests
    """
    found = entries.verify_entry(load_config(args), now(), args.name)
    entry, report = found.entry, found.report
    echo(f"{entry.name} ({found.state}) in {entry.dir}")
    if found.baseline is not None and found.baseline.head:
        echo(f"started at {found.baseline.head[:10]} on {found.baseline.started:%Y-%m-%d %H:%M}")
    sections = [
        ("git log --oneline -3", found.log),
        ("git diff --stat", found.diff),
        ("pane (last 20 lines)", found.pane),
    ]
    for title, lines in sections:
        echo(f"\n$ {title}" if title.startswith("git") else f"\n{title}:")
        echo("\n".join(lines) if lines else "(nothing)")
    echo()
    if report.prd is not None:
        echo(f"{report.prd.describe()} tasks ticked")
    if report.changes is not None:
        echo(f"since start: {report.changes.describe()}")
    echo(f"verdict: {report.verdict}" + (f" ({report.hint})" if report.hint else ""))


@verb(arg("path", nargs="?", default=".", metavar="PATH"), name="prd new")
def prd_new(args: argparse.Namespace) -> None:
    """Write a PRD skeleton with a `## Tasks` checklist (PATH: a file, or a folder).

    Example: heartbeat prd new ~/src/api/PRD.md
    """
    written = entries.new_prd(args.path)
    echo(f"wrote {written}: fill in the tasks, then launch it with --ralph {written.name}")


@verb(
    arg(
        "--cron",
        dest="kind",
        action="store_const",
        const="cron",
        help="a crontab line (the default but on macOS)",
    ),
    arg(
        "--launchd",
        dest="kind",
        action="store_const",
        const="launchd",
        help="a launchd job (the macOS default)",
    ),
    arg(
        "--systemd", dest="kind", action="store_const", const="systemd", help="a systemd user timer"
    ),
    arg("--every", metavar="N", help="how often: 1m (the default), 5m, 1h"),
    arg("--schedule", dest="expression", metavar="CRON", help="a cron schedule (cron only)"),
    arg("--print", dest="print_only", action="store_true", help="show it; install nothing"),
    NOTES,
    SOCKET,
)
def install(args: argparse.Namespace) -> None:
    """Run `heartbeat check --quiet` on a schedule: cron, launchd or systemd.

    Installing twice changes nothing; a new schedule replaces the old one.

    Example: heartbeat install --every 1m
    """
    from heartbeat.install import schedule, setup

    config = load_config(args)
    kind = args.kind or schedule.default_kind()
    result = setup.install(config, kind, args.every, args.expression, args.print_only)
    if args.print_only:
        echo(result.text.rstrip("\n"))
    elif result.changed:
        echo(f"installed ({result.kind}): {result.where}")
    else:
        echo(f"already installed ({result.kind}): nothing changed")


@verb(NOTES, SOCKET)
def uninstall(args: argparse.Namespace) -> None:
    """Remove exactly what `heartbeat install` put in place.

    Example: heartbeat uninstall
    """
    from heartbeat.install import setup

    echo(f"removed {setup.uninstall(load_config(args))}")


@verb(NOTES, SOCKET)
def doctor(args: argparse.Namespace) -> None:
    """Check everything heartbeat needs; each wrong thing comes with its fix.

    Example: heartbeat doctor
    """
    from heartbeat.install import doctor

    findings = doctor.doctor(load_config(args), now())
    for finding in findings:
        mark = "ok  " if finding.ok else "FIX "
        echo(f"{mark}{finding.what}" + (f": {finding.fix}" if finding.fix else ""))
    sys.exit(EXIT_OK if doctor.doctor_ok(findings) else EXIT_NEEDS_PERSON)


# --- parsing and running ---------------------------------------------------------------


def parser_for(
    asked: str | None = None,
) -> tuple[argparse.ArgumentParser, dict[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser, with only the verb `asked` for when it names one (the rest cost time
    every check pays), else with them all (for help, and for a mistyped verb); and each
    verb's own parser, by its words."""
    known = {words[0] for words in (verb.words for verb in VERBS)}
    chosen = [verb for verb in VERBS if asked not in known or verb.words[0] == asked]
    parser = argparse.ArgumentParser(
        prog="heartbeat", description=ABOUT, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"heartbeat {__version__}")
    verbs_of: dict[tuple[str, ...], Any] = {
        (): parser.add_subparsers(title="commands", metavar="COMMAND", dest="verb")
    }
    own: dict[tuple[str, ...], argparse.ArgumentParser] = {(): parser}
    for verb in chosen:
        *group, last = verb.words
        if tuple(group) not in verbs_of:
            parent = verbs_of[()].add_parser(
                group[0], help=GROUPS[group[0]], description=GROUPS[group[0]]
            )
            parent.set_defaults(words=tuple(group))
            own[tuple(group)] = parent
            verbs_of[tuple(group)] = parent.add_subparsers(
                title="commands", metavar="COMMAND", dest="sub"
            )
        sub = verbs_of[tuple(group)].add_parser(
            last,
            help=verb.help.splitlines()[0],
            description=verb.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for flags, options in verb.arguments:
            sub.add_argument(*flags, **options)
        sub.set_defaults(run=verb.run, words=verb.words)
        own[verb.words] = sub
    return parser, own


def main(argv: Sequence[str] | None = None) -> NoReturn:
    words = list(sys.argv[1:] if argv is None else argv)
    asked = next((word for word in words if not word.startswith("-")), None)
    if any(word in ("-h", "--help") for word in words[: words.index(asked) if asked else None]):
        asked = None  # `heartbeat -h check`: the help of them all
    # For a verb that runs an agent, what follows `--` is the agent's command, taken as
    # it is; for the others `--` means what it means to any command line.
    takes_command = any(COMMAND_AFTER_DASHES in verb.arguments for verb in _verbs_named(asked))
    command: list[str] = []
    if takes_command and "--" in words:
        dashes = words.index("--")
        words, command = words[:dashes], words[dashes + 1 :]
    parser, own = parser_for(asked)
    args, unknown = parser.parse_known_args(words)
    verb_parser = own[getattr(args, "words", ())]  # its usage line is the one to show
    run: Handler | None = getattr(args, "run", None)
    if run is None:  # `heartbeat` or `heartbeat prd` alone
        verb_parser.print_help(sys.stderr)
        sys.exit(EXIT_USAGE)
    stray = [*(args.command if takes_command else []), *unknown]
    if stray:
        hint = " (an agent's command goes after --)" if takes_command else ""
        verb_parser.error(f"unrecognized arguments: {' '.join(stray)}{hint}")
    if takes_command:
        args.command = command
    sys.exit(run_one_line_errors(run, args))


def _verbs_named(first: str | None) -> list[Verb]:
    return [verb for verb in VERBS if verb.words[0] == first]


def run_one_line_errors(run: Handler, args: argparse.Namespace) -> int:
    """Run a verb, turning heartbeat's errors into one line on stderr and an exit code."""
    try:
        run(args)
    except UsageError as error:
        echo(f"heartbeat: {error}", err=True)
        return EXIT_USAGE
    except HeartbeatError as error:
        echo(f"heartbeat: {error}", err=True)
        return EXIT_NEEDS_PERSON
    except BrokenPipeError:  # the reader (`| head`) has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as error:  # a file heartbeat had to use, and could not
        where = f"{error.filename}: " if error.filename else ""
        echo(f"heartbeat: {where}{error.strerror or error}", err=True)
        return EXIT_NEEDS_PERSON
    except KeyboardInterrupt:
        return 130
    return EXIT_OK
