"""The verbs' handlers: each parses nothing, calls one function with plain values, and
prints what it returns. A handler's docstring is its `--help`, with an example."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shlex
import signal
import sys
from typing import TYPE_CHECKING

from heartbeat import lazy, state
from heartbeat.cli.registry import (
    COMMAND_AFTER_DASHES,
    DIR,
    EXIT_NEEDS_PERSON,
    EXIT_OK,
    NAME,
    NOTES,
    RESTART,
    SOCKET,
    arg,
    at_least_one,
    echo,
    exit_at_once,
    load_config,
    now,
    seconds,
    verb,
)
from heartbeat.errors import UsageError
from heartbeat.model import RestartMode, ResumeMode

if TYPE_CHECKING:
    from heartbeat import agents
    from heartbeat.check import run as checking
    from heartbeat.cli import show
    from heartbeat.cli import watch as watching
    from heartbeat.config import Config
    from heartbeat.notes import notebook
    from heartbeat.verbs import entries
    from heartbeat.verbs import launch as launching
    from heartbeat.verbs import logs as run_logs
    from heartbeat.verbs import status as statuses
else:  # a check, the verb cron runs every minute, does without the other verbs
    agents = lazy.module("heartbeat.agents")
    show = lazy.module("heartbeat.cli.show")
    watching = lazy.module("heartbeat.cli.watch")
    checking = lazy.module("heartbeat.check.run")
    notebook = lazy.module("heartbeat.notes.notebook")
    entries = lazy.module("heartbeat.verbs.entries")
    launching = lazy.module("heartbeat.verbs.launch")
    run_logs = lazy.module("heartbeat.verbs.logs")
    statuses = lazy.module("heartbeat.verbs.status")


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
    # A check is short, and reference counting frees its garbage: even every 50,000
    # allocations, a warm check of 2,000 entries collected a dozen times, each walk over
    # the parsed notes and the state, for 8-11 ms in all.
    gc.disable()
    config = load_config(args)
    outcome = checking.check(config, now(), args.only, args.hook)
    if outcome.skipped:
        if not args.quiet and sys.stdout.isatty():  # a person ran it: say why nothing
            echo(another_check(config))
        return
    shown = [c.line() for c in outcome.changes if c.needs_person or not args.quiet]
    for line in show.at_most([*shown, *outcome.unwatched], LINES_SHOWN, "changes"):
        echo(line)
    for problem in show.at_most(outcome.problems, LINES_SHOWN, "problems"):
        echo(problem, err=True)
    # Not for the hooks' checks, whose output nobody reads: the one telling is a person's.
    mismatch = None if args.only or args.hook else notes_mismatch(config)
    exit_at_once(EXIT_NEEDS_PERSON if outcome.needs_person or mismatch else EXIT_OK)


def notes_mismatch(config: Config) -> str | None:
    """Say, once for each pair, that the notes folder in use is not the scheduled one."""
    warning = state.notes_warning(config.state_dir, config.notes_dir)
    if warning:
        echo(warning, err=True)
    return warning


LINES_SHOWN = 50  # of each kind: past this a check prints a summary line instead


def another_check(config: Config) -> str:
    """`another check is running (pid 4242), started 3 s ago`, as far as is known."""
    from heartbeat import files
    from heartbeat.tmux import procs

    holder = files.lock_holder(config.state_dir)
    if holder is None:
        return "another check is running; this one did nothing"
    age = procs.age_of(holder)
    started = f", started {age:.0f} s ago" if age is not None else ""
    return f"another check is running (pid {holder}){started}; this one did nothing"


@verb(
    NAME,
    DIR,
    NOTES,
    SOCKET,
    arg("--codex", metavar="TASK", help="run `codex exec --full-auto TASK`"),
    arg(
        "--claude",
        metavar="TASK",
        help="run `claude -p TASK --session-id ID --permission-mode acceptEdits [-- OPTION ...]`",
    ),
    arg("--ralph", metavar="PRD", help="run `ralphy --codex --prd PRD`"),
    arg("--parallel", action="store_true", help="with --ralph: `ralphy --codex --parallel`"),
    RESTART,
    arg(
        "--resume",
        choices=[mode.value for mode in ResumeMode],
        default=ResumeMode.AUTO.value,
        help="whether a restart continues the agent's conversation (default: %(default)s)",
    ),
    arg(
        "--worktree",
        metavar="BRANCH",
        help="run it in a git worktree of DIR's repository on BRANCH (made when missing)",
    ),
    COMMAND_AFTER_DASHES,
)
def launch(args: argparse.Namespace) -> None:
    """Start COMMAND in a tmux session NAME and log it in today's note.

    One COMMAND argument is a shell command (as tmux takes it); several are run
    as they are. With --claude, what follows -- is options for claude.

    Example: heartbeat launch api-tests --dir ~/src/api -- codex exec --full-auto 'Add tests'
    """
    argv = list(args.command)
    given = [flag for flag in ("codex", "claude", "ralph") if getattr(args, flag)]
    if len(given) > 1 or (argv and given and given != ["claude"]):
        raise UsageError("give one of --codex, --claude, --ralph or a COMMAND after --")
    if args.parallel and not args.ralph:
        raise UsageError("--parallel goes with --ralph")
    session = None
    if args.codex:
        argv = agents.codex.launch_argv(args.codex)
    elif args.claude:
        argv, session = agents.claude.launch_argv(args.claude, argv)
    elif args.ralph:
        argv = agents.ralph.launch_argv(args.ralph, args.parallel)
    config = load_config(args)
    restart, resume = RestartMode(args.restart), ResumeMode(args.resume)
    launched = launching.launch(
        config, now(), args.name, args.folder, argv, restart, resume, session, args.worktree
    )
    if launched.sharing:
        others = " and ".join(launched.sharing)
        verb = "runs" if len(launched.sharing) == 1 else "run"
        echo(
            f"heartbeat: warning: {others} {verb} in the same git work tree as {args.name}: "
            "two agents in one checkout undo each other's work (--worktree BRANCH gives "
            "each its own)",
            err=True,
        )
    if launched.worktree is not None:
        made = launched.worktree
        echo(f"{args.name}: in worktree {made.path} on branch {made.branch}")
    label = notebook.label_of(launched.note)
    echo(f"{args.name}: running on {config.socket}, logged in {label}")
    remember_notes_flag(config)
    notes_mismatch(config)


def remember_notes_flag(config: Config) -> None:
    """The first `--notes DIR` is written in the config file when it names no folder yet."""
    from heartbeat.errors import HeartbeatError
    from heartbeat.install import notes

    try:
        written = notes.remember_flag(config)
    except (HeartbeatError, OSError) as error:  # the launch is done: say so, and go on
        echo(f"notes folder not recorded: {error}", err=True)
        return
    if written is not None:
        echo(f"notes folder {config.notes_dir} recorded in {written} (heartbeat init changes it)")


@verb(NAME, DIR, NOTES, SOCKET, RESTART, COMMAND_AFTER_DASHES, aliases=("log",))
def adopt(args: argparse.Namespace) -> None:
    """Adopt a session you started by hand: log it, and approve its command, in one step.

    COMMAND is what a restart runs, in DIR, through heartbeat's wrapper. (`heartbeat log`,
    its old name, still works.)

    Example: heartbeat adopt api-tests --dir ~/src/api -- codex exec --full-auto 'Add tests'
    """
    config = load_config(args)
    restart = RestartMode(args.restart)
    path = launching.log(config, now(), args.name, args.folder, list(args.command), restart)
    echo(f"{args.name}: logged in {notebook.label_of(path)}; its command is allowed")
    notes_mismatch(config)


@verb(NAME, NOTES, SOCKET)
def allow(args: argparse.Namespace) -> None:
    """Approve the command of NAME's entry, so that checks may run it.

    A command heartbeat did not launch itself (written by hand, or edited) is not run
    until it is allowed. The approval covers exactly what it shows: the command, dir,
    socket, every environment value its tmux line sets, and its restart modes.

    Example: heartbeat allow api-tests
    """
    entry = entries.allow(load_config(args), now(), args.name)
    command = entry.command if isinstance(entry.command, str) else shlex.join(entry.command)
    echo(f"{entry.name}: allowed\n  command: {command}\n  dir: {entry.dir}")
    echo(f"  socket: {entry.socket}")
    for name, value in entry.environment:
        echo(f"  env: {name}={shlex.quote(value)}")
    modes = f"restart: {entry.restart_mode} · on-stall: {entry.stall_mode}"
    echo(f"  {modes} · resume: {entry.resume_mode}\n  note: {entry.location}")


WATCH_INTERVAL = 2.0  # seconds between redraws of `status --watch`, as watch(1) takes


@verb(
    NOTES,
    SOCKET,
    arg("--json", action="store_true", help='print {"heartbeat": {...}, "entries": [...]}'),
    arg("--all", action="store_true", help="also the finished and closed entries"),
    arg("--watch", action="store_true", help="a live view, redrawn until Ctrl-C"),
    arg(
        "--interval",
        type=seconds,
        metavar="SECONDS",
        help=f"how often --watch redraws (default: {WATCH_INTERVAL:g})",
    ),
)
def status(args: argparse.Namespace) -> None:
    """Show every watched entry and its live state; changes nothing.

    Columns: name, state, age (in that state; a live run: since it started), restarts
    today, PRD progress, the last run's verdict, what to do and the last status line.
    --json gives the same, and heartbeat's own state, as data (README: status --json).
    Exit 1 when an entry needs a person (approval, an answer, a reset) or a note has a
    problem.
    --watch redraws it every --interval seconds, what needs a person highlighted,
    until Ctrl-C; when the output is not a terminal it prints the table once.

    Example: heartbeat status --json
    """
    from heartbeat.install import doctor  # each verb imports what only it needs

    if args.watch and args.json:
        raise UsageError("--watch draws the table; --json is for programs: give one of them")
    if args.interval is not None and not args.watch:
        raise UsageError("--interval goes with --watch")
    current = now()
    config = load_config(args)
    if args.watch and sys.stdout.isatty():
        watching.watch(config, args.interval or WATCH_INTERVAL)
        return
    rows, problems = statuses.status(config, current, everything=args.all)
    if args.json:
        watcher = doctor.watcher(config, current)
        report = {
            "heartbeat": {**watcher.as_json(), "problems": problems},
            "entries": [row.as_json() for row in rows],
        }
        echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        header = doctor.watcher_header(config, current)
        echo("\n".join([*header, "", show.table(rows, current)]))
    for problem in problems:
        echo(problem, err=True)
    notes_mismatch(config)
    needed = problems or any(row.needs_person for row in rows)
    sys.exit(EXIT_NEEDS_PERSON if needed else EXIT_OK)


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


@verb(
    NAME,
    arg("-n", dest="lines", type=at_least_one, default=50, help="how many lines (default: 50)"),
    arg("-f", "--follow", action="store_true", help="then print new lines as they come"),
    arg("--previous", action="store_true", help="the run before the newest (the one that died)"),
    arg(
        "--run",
        dest="index",
        type=at_least_one,
        metavar="K",
        help="the K-th newest run (1: the newest)",
    ),
    arg("--list", dest="listing", action="store_true", help="list the runs kept, numbered"),
    NOTES,
    SOCKET,
)
def logs(args: argparse.Namespace) -> None:
    """Print the last lines NAME's run wrote, from its run log (kept after the pane is gone).

    Each run heartbeat starts (a launch, every restart) has its own log in the state
    folder. The newest run by default; --previous or --run 2 for the one before; --list
    numbers them. -f follows the newest run into the runs after it until Ctrl-C.
    `heartbeat tail` reads the live pane instead.

    Example: heartbeat logs api-tests --previous -n 100
    """
    config = load_config(args)
    if args.previous and args.index is not None:
        raise UsageError("--previous is --run 2: give one of them")
    run = 2 if args.previous else (args.index or 1)
    if args.listing:
        socket, found = run_logs.runs(config, now(), args.name)
        if not found:
            echo(f"{args.name}: no run log on {socket}")
        for one in found:
            size = f"{one.size / 1024:.1f} KiB"
            echo(f"{one.index:>3}  {one.started:%Y-%m-%d %H:%M:%S}  {size:>10}  {one.path}")
        return
    if not args.follow:
        for line in run_logs.show(config, now(), args.name, args.lines, run):
            echo(line)
        return
    # Ctrl-C ends a follow, even when what started it ignored or blocked SIGINT (both
    # are inherited: a follow started by `cmd &` in a script would never end).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    with contextlib.suppress(KeyboardInterrupt):  # no traceback
        for line in run_logs.follow(config, now(), args.name, args.lines, run):
            echo(line)


@verb(NAME, NOTES, SOCKET, name="attach")
def attach_command(args: argparse.Namespace) -> None:
    """Show NAME's session on this terminal, on the entry's own socket.

    Inside a tmux client of that socket it switches the client to the session; from
    anywhere else (another tmux server's pane too) it attaches a new client. Detach
    as usual with tmux's prefix key, then d.

    Example: heartbeat attach api-tests
    """
    from heartbeat.verbs import attach  # each verb imports what only it needs

    # As it was given: heartbeat's own tmux calls leave $TMUX out of its environment.
    env = dict(os.environ)
    config = load_config(args)
    found = attach.target(config, now(), args.name, env)
    sys.stdout.flush()
    attach.attach(config, found, env)


@verb(NAME, NOTES, SOCKET)
def kill(args: argparse.Namespace) -> None:
    """Close NAME's entry in the notes, then stop its session and what outlives it.

    Example: heartbeat kill api-tests
    """
    killed = entries.kill(load_config(args), now(), args.name)
    entry = killed.entry
    if killed.tail is not None:  # a finished entry's session, in its tail
        word = "finished" if killed.tail == 0 else "failed"
        echo(f"{entry.name}: removed its {word} session (exit {killed.tail}); its entry was closed")
        return
    echo(f"{entry.name}: killed, entry closed in {entry.where}")
    if killed.leftovers:
        how = "some could not be stopped" if killed.stuck else "stopped"
        echo(f"{entry.name}: {killed.leftovers} of its processes outlived the session: {how}")
    if killed.stuck:
        sys.exit(EXIT_NEEDS_PERSON)


@verb(
    NOTES,
    SOCKET,
    arg("--dry-run", action="store_true", help="say what would be removed; remove nothing"),
)
def clean(args: argparse.Namespace) -> None:
    """Remove what finished runs left: their sessions, and the worktrees made for them.

    A session no open entry names whose agent has ended (it sits in its `sleep` tail,
    holding its name) is removed; so is a worktree `launch --worktree` made for an entry
    that is done, unless it holds uncommitted work: those are listed (exit 1). Only on
    the sockets of approved entries; never a worktree heartbeat did not make.

    Example: heartbeat clean --dry-run
    """
    from heartbeat.verbs import clean as cleaning

    config = load_config(args)
    done = cleaning.clean(config, now(), args.dry_run)
    would = "would remove" if args.dry_run else "removed"
    for tail in done.tails:
        said = cleaning.tail_removed(tail).replace("removed", would, 1)
        where = f" on {tail.socket}" if tail.socket != config.socket else ""
        echo(f"{tail.name}: {said}{where}")
    for swept in done.worktrees:
        made = swept.made
        if swept.gone:
            echo(f"{made.name}: worktree {made.path} is gone already; forgotten")
        elif swept.removed:
            echo(f"{made.name}: {would} worktree {made.path} (branch {made.branch} kept)")
        elif swept.dirty:
            shown = ", ".join(swept.dirty[:3]) + (", ..." if len(swept.dirty) > 3 else "")
            count = f"{len(swept.dirty)} file{'s' if len(swept.dirty) != 1 else ''}"
            echo(
                f"{made.name}: worktree {made.path} holds uncommitted work ({count}: "
                f"{shown}): left for you (git -C {shlex.quote(made.path)} status)",
                err=True,
            )
        else:
            echo(f"{made.name}: worktree {made.path} left: {swept.problem}", err=True)
    for problem in done.problems:
        echo(problem, err=True)
    if not done.tails and not done.worktrees:
        echo("nothing to clean")
    sys.exit(EXIT_NEEDS_PERSON if done.needs_person or done.problems else EXIT_OK)


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
    running, finished and closed entries. Exit 0 only when the verdict is `verified`.

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
        (f"{found.pane_from} (last 20 lines)", found.pane),
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
    sys.exit(EXIT_OK if found.verified else EXIT_NEEDS_PERSON)


@verb(arg("path", nargs="?", default=".", metavar="PATH"), name="prd new")
def prd_new(args: argparse.Namespace) -> None:
    """Write a PRD skeleton with a `## Tasks` checklist (PATH: a file, or a folder).

    Example: heartbeat prd new ~/src/api/PRD.md
    """
    written = entries.new_prd(args.path)
    echo(f"wrote {written}: fill in the tasks, then launch it with --ralph {written.name}")


@verb(
    arg(
        "--notes",
        metavar="DIR",
        help="the notes folder [what heartbeat resolves now: $HEARTBEAT_NOTES, the config, "
        "else the OpenClaw workspace's memory/]",
    )
)
def init(args: argparse.Namespace) -> None:
    """Write the notes folder in the config file, where every command and the schedule find it.

    Without --notes, the folder heartbeat resolves now is written. Running it again
    changes nothing; the config file's comments and other settings stay as they are.

    Example: heartbeat init --notes ~/memory
    """
    from heartbeat.install import notes

    chosen = notes.init(load_config(args))
    if chosen.created:
        echo(f"created {chosen.folder}")
    if chosen.changed:
        echo(f'wrote notes = "{chosen.folder}" in {chosen.file}')
    else:
        echo(f'{chosen.file} already has notes = "{chosen.folder}": nothing changed')
    if chosen.overridden:
        echo(
            f"HEARTBEAT_NOTES={chosen.overridden} is set, and comes first: unset it to use "
            f"{chosen.folder}",
            err=True,
        )
    if chosen.scheduled:
        echo(
            f"the schedule checks {chosen.scheduled}: run heartbeat install again to check "
            f"{chosen.folder}",
            err=True,
        )


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
        echo(f"it checks the notes in {config.notes_dir}")
    else:
        echo(f"already installed ({result.kind}): nothing changed")


@verb(
    NOTES,
    SOCKET,
    arg("--purge", action="store_true", help="remove the state folder too"),
    # The scheduler flags install takes, accepted here too: what is removed is what was
    # recorded as installed, whichever is named.
    arg("--cron", action="store_true", help=argparse.SUPPRESS),
    arg("--launchd", action="store_true", help=argparse.SUPPRESS),
    arg("--systemd", action="store_true", help=argparse.SUPPRESS),
)
def uninstall(args: argparse.Namespace) -> None:
    """Remove what `heartbeat install` and launches put in place that would still act.

    The scheduler's entry, and the tmux hook on every socket heartbeat set it on; checks
    that hooks or running sessions start then exit at once, until `heartbeat install`.
    --purge removes the state folder too.

    Example: heartbeat uninstall
    """
    from heartbeat.install import setup

    for what in setup.uninstall(load_config(args), args.purge):
        echo(f"removed {what}")


@verb(NOTES, SOCKET)
def doctor(args: argparse.Namespace) -> None:
    """Check everything heartbeat needs; each wrong thing comes with its fix.

    Example: heartbeat doctor
    """
    from heartbeat.install import doctor as checkup  # (this handler is `doctor`)

    current, config = now(), load_config(args)
    # The notes read as a check reads them, and the entries judged as `status` does.
    rows, problems = statuses.status(config, current)
    findings = checkup.doctor(config, current, problems, statuses.needing_a_person(rows))
    for finding in findings:
        mark = "ok  " if finding.ok else "FIX "
        echo(f"{mark}{finding.what}" + (f": {finding.fix}" if finding.fix else ""))
    sys.exit(EXIT_OK if checkup.doctor_ok(findings) else EXIT_NEEDS_PERSON)
