"""Ralph loops (`ralphy --codex --prd PRD.md`, `ralph.sh --tool claude`): an agent run
again and again over a PRD's checklist, continuing from the files and git each time.

The loop runs another agent, whose quota and login it shares: ralphy's engine flags
(`--claude`, the default, `--sonnet`, `--codex`, ...) and ralph.sh's `--tool NAME` say
which.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from heartbeat import shell
from heartbeat.agents.command import invocation
from heartbeat.errors import ShellSyntaxError
from heartbeat.model import Command

NAME = "ralph"
PROGRAM = "ralphy"
LAUNCH_FLAG = "--ralph"  # heartbeat launch's shortcut for a loop
PROVIDER: str | None = None  # the engine's: see `provider`
PROGRAMS = frozenset({PROGRAM, "ralphy.sh", "ralph", "ralph.sh"})
# The engine flags of ralphy, each with the provider whose quota and login it uses
# (None: an engine that may run on several); `--tool NAME` of ralph.sh takes the names.
ENGINES: dict[str, str | None] = {
    "--claude": "anthropic",
    "--sonnet": "anthropic",
    "--codex": "openai",
    "--opencode": None,
    "--cursor": None,
    "--qwen": None,
    "--droid": None,
}
TOOLS = {"claude": "anthropic", "codex": "openai"}


def recognises(command: Command) -> bool:
    return invocation(command, PROGRAMS) is not None


def provider(words: list[str]) -> str | None:
    """The provider of the engine the loop runs: ralphy's default is Claude Code; a
    runner whose engine is not known here has none."""
    for index, word in enumerate(words[1:], start=1):
        if word in ENGINES:
            return ENGINES[word]
        if word == "--tool" and index + 1 < len(words):
            return TOOLS.get(words[index + 1])
        if word.startswith("--tool="):
            return TOOLS.get(word.removeprefix("--tool="))
    return ENGINES["--claude"] if words and words[0].startswith("ralphy") else None


def launch_argv(prd: str, parallel: bool = False) -> list[str]:
    """What `heartbeat launch --ralph PRD [--parallel]` runs."""
    return [PROGRAM, "--codex", *(["--parallel"] if parallel else []), "--prd", prd]


def prd_flag(command: Command) -> str | None:
    """The PRD a command names with `--prd FILE` (or `--prd=FILE`), as given."""
    words: list[str] = []
    try:
        if isinstance(command, tuple):
            words = list(command)
        else:
            words = [t for t in shell.tokens(command, strict=False) if isinstance(t, str)]
    except ShellSyntaxError:
        pass
    for index, word in enumerate(words):
        if word == "--prd" and index + 1 < len(words) and words[index + 1]:
            return words[index + 1]
        if word.startswith("--prd=") and word != "--prd=":
            return word.removeprefix("--prd=")
    return None


def last_words(env: Mapping[str, str], now: datetime) -> list[str]:
    """Nothing beyond the pane: a Ralph loop prints why it stopped in its pane."""
    return []


def run_records(env: Mapping[str, str], folder: str, session: str | None) -> list[str]:
    """Nothing: a loop's runs keep no record of their own; its pane and its log say
    why it stopped."""
    return []


def last_activity(env: Mapping[str, str], folder: str, session: str | None) -> float | None:
    """None: a loop prints as it works, so its pane says it."""
    return None


def waits_for_reset(words: list[str]) -> bool:
    """No: stopped at a limit, it ends, and says why."""
    return False


def asks_in_pane(words: list[str]) -> bool:
    """No: a loop runs its engine headless, which never asks."""
    return False


def approval_prompt(screen: list[str]) -> str | None:
    return None
