"""What heartbeat knows about particular coding agents, behind one small interface.

The check and the verbs name no agent: they ask this package why a run stopped
(`stop_reason`) and what a restart runs (`restart_command`). Each agent family has its
own module here (`codex`, `claude`, `ralph`; `generic` for anything else). A new family
is one new module, listed in `FAMILIES`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from heartbeat import lazy
from heartbeat.agents import claude, codex, generic, ralph
from heartbeat.agents.command import invocation, is_session_id, resumable_words
from heartbeat.model import AUTH_EXPIRED, RATE_LIMITED, Command, Entry, Reason
from heartbeat.records import frozen

if TYPE_CHECKING:
    from heartbeat.agents import reasons
    from heartbeat.config import Pattern
else:  # only a run that stopped is read for why
    reasons = lazy.module("heartbeat.agents.reasons")


class Family(Protocol):
    """What every agent module offers (a module satisfies it by its top-level names)."""

    NAME: str
    PROGRAM: str  # the program a scheduler's PATH must find
    PROVIDER: str | None  # whose quota and login it uses, when that is always the same
    PROGRAMS: frozenset[str]  # the programs a command line runs it by

    def recognises(self, command: Command) -> bool:
        """Whether a command runs this agent."""
        ...

    def provider(self, words: list[str]) -> str | None:
        """Whose quota and login the invocation (its words from the program on) uses."""
        ...

    def last_words(self, env: Mapping[str, str], now: datetime) -> list[str]:
        """The end of the agent's own log, which all its runs share, when recent."""
        ...

    def run_records(self, env: Mapping[str, str], folder: str, session: str | None) -> list[str]:
        """What the run's own records (its transcript) say of how it ended."""
        ...

    def waits_for_reset(self, words: list[str]) -> bool:
        """Whether the invocation, stopped at a limit, waits in its pane for the reset
        rather than ending (an interactive session does; a headless run ends)."""
        ...

    def last_activity(
        self, env: Mapping[str, str], folder: str, session: str | None
    ) -> float | None:
        """When the run last wrote to its own records (epoch seconds), for an agent that
        prints little to its pane while it works; a stat, never a read."""
        ...

    def asks_in_pane(self, words: list[str]) -> bool:
        """Whether the invocation may stop in its pane to ask a person's approval."""
        ...

    def approval_prompt(self, screen: list[str]) -> str | None:
        """The question of the approval prompt the pane's screen ends with, if any."""
        ...


# What to do about an agent that read files and left at once: the loop keeps it working.
NO_OP_HINT = f"the agent read and left: run it as a Ralph loop ({ralph.LAUNCH_FLAG} PRD.md)"

FAMILIES: tuple[Family, ...] = (codex, ralph, claude)
# The agents' programs, which a scheduler's bare PATH must find.
PROGRAMS = tuple(family.PROGRAM for family in FAMILIES)


@frozen
class Agent:
    """The agent a command runs: its family, and whose quota and login it uses."""

    family: str  # the module's name: codex, claude, ralph, generic
    provider: str | None  # None: not known (a generic command, an engine of several)
    words: tuple[str, ...] = ()  # the invocation, from the program on


def recognise(command: Command) -> Agent:
    """The agent a command line runs, found past `cd DIR &&`, `NAME=value`, `env`."""
    for family in FAMILIES:
        words = invocation(command, family.PROGRAMS)
        if words is not None:
            return Agent(family.NAME, family.provider(words), tuple(words))
    return Agent("generic", None)


def limit_group(entry: Entry) -> str:
    """What a rate limit on this entry slows: the restarts of its provider's entries, or
    of this entry alone when its provider is not known."""
    provider = recognise(entry.command).provider
    return f"provider:{provider}" if provider else f"entry:{entry.socket}\t{entry.name}"


class Sessions(Protocol):
    """What an agent that keeps its conversations offers, so that a restart continues one."""

    PROGRAMS: frozenset[str]

    def session_in(self, words: list[str]) -> str | None:
        """The session the command names itself."""
        ...

    def find_session(
        self, env: Mapping[str, str], folder: str, started: float, earlier: frozenset[str]
    ) -> str | None:
        """The session a run started in `folder` at `started` (epoch seconds) created;
        never one of the `earlier` runs' sessions."""
        ...

    def resume_argv(self, words: list[str], session: str, prompt: str) -> list[str] | None:
        """The invocation that continues `session` with `prompt`, from the original's words."""
        ...

    def resume_refused(self, lines: list[str]) -> str | None:
        """Why a resume did not take, when the run's last words say."""
        ...

    def belongs(self, env: Mapping[str, str], folder: str, session: str) -> bool:
        """Whether the session is one a run in `folder` had."""
        ...


SESSIONS: dict[str, Sessions] = {"codex": codex, "claude": claude}
# Variables that say where an agent keeps its sessions and login: kept from the launch,
# since cron's environment has none of them.
HOME_VARIABLES = ("CODEX_HOME", "CLAUDE_CONFIG_DIR")


def keeps_sessions(command: Command) -> bool:
    return recognise(command).family in SESSIONS


def session_of(
    entry: Entry,
    env: Mapping[str, str],
    started: float | None,
    known: str | None,
    written_counts: bool = True,
    earlier: frozenset[str] = frozenset(),
) -> str | None:
    """The conversation of the entry's last run: the id its command names itself, the one
    heartbeat knows for the run (`known`: pinned, found or resumed), the one the run
    heartbeat started created (looked for by folder and start time), else the note's
    `session:` line (the last one wins: a hand-written entry's), when that conversation
    is the entry's folder's and `written_counts` (heartbeat has not started this entry:
    after that the line is its own record of an earlier command's run)."""
    agent = recognise(entry.command)
    sessions = SESSIONS.get(agent.family)
    if sessions is None:
        return None
    found = sessions.session_in(list(agent.words)) or known
    if found is None and started:
        found = sessions.find_session(env, entry.dir, started, earlier)
    written = entry.options.get("session", "")
    if (
        found is None
        and written_counts
        and is_session_id(written)
        and sessions.belongs(env, entry.dir, written)
    ):
        found = written  # a hand-written line, taken only for this folder's conversation
    return found


def resume_command(entry: Entry, session: str, prompt: str) -> tuple[str, ...] | None:
    """The argv that continues the entry's conversation, built from its (approved)
    command's words, the id and the prompt; None when the command cannot be resumed."""
    agent = recognise(entry.command)
    sessions = SESSIONS.get(agent.family)
    if sessions is None or not is_session_id(session):
        return None
    found = resumable_words(entry.command, entry.dir, sessions.PROGRAMS)
    if found is None:
        return None
    prefix, words = found
    resumed = sessions.resume_argv(words, session, prompt)
    return (*prefix, *resumed) if resumed else None


def resume_refused(command: Command, lines: list[str]) -> str | None:
    sessions = SESSIONS.get(recognise(command).family)
    return sessions.resume_refused(lines) if sessions else None


def pin(argv: list[str]) -> tuple[list[str], str | None]:
    """A launch's argv with a session id of heartbeat's choosing, for an agent that
    takes one (Claude Code's headless runs); the id, or None."""
    words = invocation(tuple(argv), claude.PROGRAMS)
    if words is None or len(words) != len(argv):
        return argv, None
    pinned = claude.pinned(words)
    return (pinned[0], pinned[1]) if pinned else (argv, None)


# Whose login each provider's agents share, by the agent that keeps it.
LOGINS = {codex.PROVIDER: codex, claude.PROVIDER: claude}


def credential_file(provider: str, env: Mapping[str, str]) -> str | None:
    """Where the provider's agents keep their login, as `env` says."""
    keeper = LOGINS.get(provider)
    return keeper.credential(env) if keeper is not None else None


def credential_stamp(path: str) -> tuple[int, int, int] | None:
    """A login file as the file system describes it (inode, size, mtime), never its
    content: a changed stamp is a renewed login. None: there is none."""
    try:
        found = os.stat(path, follow_symlinks=False)
    except (OSError, ValueError):  # ValueError: a NUL in a path from a damaged state file
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def stop_reason(
    command: Command,
    last_lines: Sequence[str],
    env: Mapping[str, str],
    now: datetime,
    patterns: Sequence[Pattern] = (),
    folder: str = "",
    session: str | None = None,
) -> Reason | None:
    """Why a run stopped: its agent's records of that run first, then its last words in
    the pane, then the log its agent (or one it shares a provider with: `ralphy --codex`
    runs Codex) keeps for all runs."""
    agent = recognise(command)
    mine = [f for f in FAMILIES if agent.family == f.NAME]
    shared = [f for f in FAMILIES if agent.provider is not None and agent.provider == f.PROVIDER]
    for family in mine:  # read only while nothing said why
        found = reasons.classify(family.run_records(env, folder, session), now, patterns)
        if found is not None:
            return found
    found = reasons.classify(last_lines, now, patterns)
    for family in dict.fromkeys([*mine, *shared]):
        if found is not None:
            break
        found = reasons.classify(family.last_words(env, now), now, patterns)
    return found


def waiting_until(
    command: Command, last_lines: Sequence[str], now: datetime, patterns: Sequence[Pattern] = ()
) -> datetime | None:
    """When the limit a live agent's pane says it waits at resets, for an agent that
    waits by itself (None: it does not, or its pane says no such thing)."""
    agent = recognise(command)
    family = next((f for f in FAMILIES if agent.family == f.NAME), None)
    if family is None or not family.waits_for_reset(list(agent.words)):
        return None
    # The limit's words and its menu are the screen's last: once the agent goes on,
    # its output pushes them up.
    screen = [line for line in last_lines if line.strip()][-WAITING_SCREEN_LINES:]
    found = reasons.classify(screen, now, patterns)
    if found is None or found.kind != RATE_LIMITED or found.retry_at is None:
        return None
    return found.retry_at


WAITING_SCREEN_LINES = 12


def waits_for_reset(command: Command) -> bool:
    agent = recognise(command)
    family = next((f for f in FAMILIES if agent.family == f.NAME), None)
    return family is not None and family.waits_for_reset(list(agent.words))


def asks_in_pane(command: Command) -> bool:
    """Whether the agent may wait at an approval prompt in its pane (worth reading)."""
    agent = recognise(command)
    family = next((f for f in FAMILIES if agent.family == f.NAME), None)
    return family is not None and family.asks_in_pane(list(agent.words))


def approval_prompt(command: Command, screen: Sequence[str]) -> str | None:
    """The question of the approval prompt a live agent waits at, as its pane shows it
    (None: it shows none). Read from a capture `status` takes, never in a check."""
    agent = recognise(command)
    family = next((f for f in FAMILIES if agent.family == f.NAME), None)
    if family is None or not family.asks_in_pane(list(agent.words)):
        return None
    return family.approval_prompt(list(screen))


def last_activity(
    command: Command, env: Mapping[str, str], folder: str, session: str | None
) -> float | None:
    """When the agent last showed it was working outside its pane (None: not known)."""
    agent = recognise(command)
    for family in FAMILIES:
        if agent.family == family.NAME:
            return family.last_activity(env, folder, session)
    return None


def restart_command(entry: Entry) -> tuple[Command, str | None]:
    """What a restart afresh of the entry runs, and the session it pins: its logged
    command, with a new session id when that command pins one (Claude Code refuses to
    start a conversation that exists already)."""
    found = resumable_words(entry.command, entry.dir, claude.PROGRAMS)
    if found is not None:
        prefix, words = found
        repinned = claude.repinned(words)
        if repinned is not None:
            return (*prefix, *repinned[0]), repinned[1]
    return generic.restart_command(entry), None


def prd_named(command: Command) -> str | None:
    """The PRD file a command says it works from, as written in it."""
    return ralph.prd_flag(command)


def login_expired(env: Mapping[str, str], now: datetime) -> list[tuple[str, bool, str]]:
    """For the doctor: each agent whose own records speak of its login, whether that
    login has expired, and the command that renews it."""
    found = []
    lines = codex.last_words(env, now)
    if lines:
        reason = reasons.classify(lines, now)
        expired = reason is not None and reason.kind == AUTH_EXPIRED
        found.append(("Codex", expired, "codex auth login"))
    return found
