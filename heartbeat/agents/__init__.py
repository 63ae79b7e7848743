"""What heartbeat knows about particular coding agents, behind one small interface.

The check and the verbs name no agent: they ask this package why a run stopped
(`stop_reason`) and what a restart runs (`restart_command`). Each agent family has its
own module here (`codex`, `claude`, `ralph`; `generic` for anything else). A new family
is one new module, listed in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from heartbeat import lazy
from heartbeat.agents import claude, codex, generic, ralph
from heartbeat.agents.command import invocation
from heartbeat.model import AUTH_EXPIRED, Command, Entry, Reason

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
        """The end of what the agent recorded itself about its last run, if recent."""
        ...


FAMILIES: tuple[Family, ...] = (codex, ralph, claude)
# The agents' programs, which a scheduler's bare PATH must find.
PROGRAMS = tuple(family.PROGRAM for family in FAMILIES)


@dataclass(frozen=True)
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


def stop_reason(
    command: Command,
    last_lines: Sequence[str],
    env: Mapping[str, str],
    now: datetime,
    patterns: Sequence[Pattern] = (),
) -> Reason | None:
    """Why a run stopped: its last words first, then what its agent recorded itself (and
    the agents it shares a provider with: `ralphy --codex` runs Codex)."""
    found = reasons.classify(last_lines, now, patterns)
    agent = recognise(command)
    for family in FAMILIES:
        if found is not None:
            break
        same_provider = agent.provider is not None and agent.provider == family.PROVIDER
        if agent.family == family.NAME or same_provider:
            found = reasons.classify(family.last_words(env, now), now, patterns)
    return found


def restart_command(entry: Entry) -> Command:
    """What a restart of the entry runs."""
    return generic.restart_command(entry)


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
