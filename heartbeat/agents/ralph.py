"""Ralph loops (`ralphy --codex --prd PRD.md`): an agent run again and again over a PRD's
checklist, continuing from the files and git each time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from heartbeat import shell
from heartbeat.errors import ShellSyntaxError
from heartbeat.model import Command

PROGRAM = "ralphy"


def recognises(command: Command) -> bool:
    return PROGRAM in str(command)


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
