"""The command line: the only code that prints, reads the clock or exits.

Built on argparse, as honcho's is: cron starts `heartbeat check` every minute, and a
richer command-line library would cost each of those checks more than a tenth of its
time just to import (bench/check.py measures it). Only the verb asked for is built.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from heartbeat import __version__
from heartbeat.cli import commands  # noqa: F401  (its handlers register the verbs)
from heartbeat.cli.registry import (
    COMMAND_AFTER_DASHES,
    EXIT_NEEDS_PERSON,
    EXIT_OK,
    EXIT_USAGE,
    GROUPS,
    VERBS,
    Handler,
    Verb,
    echo,
)
from heartbeat.errors import HeartbeatError, UsageError

__all__ = ["VERBS", "main"]

ABOUT = """Keep long-running coding agents alive in tmux, from your daily notes.

Each launch is logged in memory/YYYY-MM-DD.md under "Active Long-Running Processes";
`heartbeat check`, run every minute by cron, restarts the dead."""


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
        if verb.hidden:  # an old name: it works, but the list of commands leaves it out
            listed = verbs_of[tuple(group)]._choices_actions
            listed[:] = [action for action in listed if action.dest != last]
        for flags, options in verb.arguments:
            sub.add_argument(*flags, **options)
        sub.set_defaults(run=verb.run, words=verb.words)
        own[verb.words] = sub
    return parser, own


# A command lives for a fraction of a second and makes few reference cycles: collecting
# at the default pace (every 700 allocations) costs a quiet check a twentieth of its time,
# to free next to nothing. Still collected, so a long `status --watch` stays small.
ALLOCATIONS_PER_COLLECTION = 50_000


def main(argv: Sequence[str] | None = None) -> NoReturn:
    gc.set_threshold(ALLOCATIONS_PER_COLLECTION)
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
