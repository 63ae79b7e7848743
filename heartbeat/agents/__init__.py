"""What heartbeat knows about particular coding agents, behind one small interface.

The check and the verbs name no agent: they ask this package why a run stopped
(`stop_reason`) and what a restart runs (`restart_command`). Each agent family has its
own module here (`codex`, `claude`, `ralph`; `generic` for anything else). A new family
is one new module, listed in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from heartbeat import lazy
from heartbeat.agents import claude, codex, generic, ralph
from heartbeat.model import AUTH_EXPIRED, Command, Entry, Reason

if TYPE_CHECKING:
    from heartbeat.agents import reasons
    from heartbeat.config import Pattern
else:  # only a run that stopped is read for why
    reasons = lazy.module("heartbeat.agents.reasons")


class Family(Protocol):
    """What every agent module offers (a module satisfies it by its top-level names)."""

    PROGRAM: str

    def recognises(self, command: Command) -> bool:
        """Whether a command runs this agent."""
        ...

    def last_words(self, env: Mapping[str, str], now: datetime) -> list[str]:
        """The end of what the agent recorded itself about its last run, if recent."""
        ...


FAMILIES: tuple[Family, ...] = (codex, ralph, claude)
# The agents' programs, which a scheduler's bare PATH must find.
PROGRAMS = tuple(family.PROGRAM for family in FAMILIES)


def stop_reason(
    command: Command,
    last_lines: Sequence[str],
    env: Mapping[str, str],
    now: datetime,
    patterns: Sequence[Pattern] = (),
) -> Reason | None:
    """Why a run stopped: its last words first, then what its agent recorded itself."""
    found = reasons.classify(last_lines, now, patterns)
    for family in FAMILIES:
        if found is not None:
            break
        if family.recognises(command):
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
