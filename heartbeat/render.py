"""Renders the files under templates/ and cron/ into text; writing them happens elsewhere."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from functools import cache
from importlib import resources
from string import Template


@cache
def template(package: str, name: str) -> str:
    return resources.files("heartbeat").joinpath(package, name).read_text(encoding="utf-8")


def wrapper_script() -> str:
    """The shell program that runs an agent (see templates/wrapper.sh)."""
    return template("templates", "wrapper.sh")


def prd(title: str) -> str:
    """A PRD skeleton with a `## Tasks` checklist, as loops that work through a PRD read it."""
    return Template(template("templates", "PRD.md")).substitute(title=title)


def hook_script(python: str, notes: str, state: str, socket: str, config: str, path: str) -> str:
    """The script a tmux hook runs (templates/hook.sh), every value shell-quoted."""
    values = {"python": python, "notes": notes, "state": state, "socket": socket}
    values |= {"config": config, "path": path}
    quoted = {key: shlex.quote(value) for key, value in values.items()}
    return Template(template("templates", "hook.sh")).substitute(quoted)


def note(day: str) -> str:
    return Template(template("templates", "note.md")).substitute(date=day)


def code_span(text: str) -> str:
    """`text` as a markdown code span that survives any backticks inside it."""
    ticks = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _longest_backtick_run(text: str) -> int:
    best = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        best = max(best, run)
    return best


def entry(
    name: str,
    command: str,
    folder: str,
    socket: str,
    started: str,
    host: str,
    extra: Sequence[str] = (),
) -> str:
    """The lines `heartbeat launch` adds to the daily note (without a final newline)."""
    text = Template(template("templates", "entry.md")).substitute(
        name=name,
        command=code_span(command),
        dir=folder,
        socket=socket,
        started=started,
        host=host,
    )
    return "\n".join([text.rstrip("\n"), *(f"  - {line}" for line in extra)])
