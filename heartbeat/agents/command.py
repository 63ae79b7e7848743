"""Finding the agent in a command line: the simple command that runs a program, past a
`cd DIR &&`, `NAME=value` assignments, `env` and its options, and `exec` or `nohup`."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence

from heartbeat.errors import ShellSyntaxError
from heartbeat.model import Command
from heartbeat.shell import UNKNOWN, Operator, tokens

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Wrappers that run the rest of their words as the command.
_PREFIXES = frozenset({"exec", "nohup", "command", "time", "nice", "caffeinate"})
# `env`'s options that take a value (`-u NAME`, `-C DIR`, `-S STRING`).
_ENV_WITH_VALUE = frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"})


def simple_commands(command: Command) -> list[list[str]]:
    """The simple commands of a command line, as words; an argv is one of them. Shell
    text that cannot be read (an unknown expansion stays a marker) gives what it can."""
    if isinstance(command, tuple):
        return [list(command)]
    try:
        found = tokens(command, strict=False)
    except ShellSyntaxError:
        return []
    commands: list[list[str]] = [[]]
    for token in found:
        if isinstance(token, Operator):
            commands.append([])
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def program_words(words: list[str]) -> list[str]:
    """The words from the program on: assignments, `env` and its options and wrappers
    such as `exec` or `nohup` skipped."""
    i = 0
    while i < len(words):
        word = words[i]
        if _ASSIGNMENT.match(word) or os.path.basename(word) in _PREFIXES:
            i += 1
        elif os.path.basename(word) == "env":
            i += 1
            while i < len(words) and (words[i].startswith("-") or _ASSIGNMENT.match(words[i])):
                i += 2 if words[i] in _ENV_WITH_VALUE else 1
        else:
            return words[i:]
    return []


def invocation(command: Command, programs: frozenset[str]) -> list[str] | None:
    """The words of the first simple command whose program is one of `programs`
    (compared by base name), from the program on."""
    for words in simple_commands(command):
        rest = program_words(words)
        if rest and os.path.basename(rest[0]) in programs:
            return rest
    return None


# A session id in the agents' own strict form: a UUID, lower or upper case.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_session_id(text: str) -> bool:
    return _UUID.fullmatch(text) is not None


def split_options(
    words: list[str],
    with_value: frozenset[str],
    start: int = 1,
    variadic: frozenset[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    """An invocation's options (each with its values) and its positional words, from
    words[start:]. `--flag=value` is one word; an option in `variadic` takes every word
    up to the next option (as commander does); everything after `--` is positional."""
    options: list[str] = []
    positional: list[str] = []
    i = start
    while i < len(words):
        word = words[i]
        if word == "--":
            positional += words[i + 1 :]
            break
        if word in variadic:
            options.append(word)
            i += 1
            while i < len(words) and not words[i].startswith("-"):
                options.append(words[i])
                i += 1
            continue
        if word.startswith("-") and word != "-":
            takes_value = word in with_value and "=" not in word
            options += words[i : i + 2] if takes_value else [word]
            i += 2 if takes_value else 1
        else:
            positional.append(word)
            i += 1
    return options, positional


def resumable_words(
    command: Command, folder: str, programs: frozenset[str]
) -> tuple[list[str], list[str]] | None:
    """The agent's invocation as words (what runs it first, such as `env NAME=value`, and
    its own words from the program on), when the command is that invocation alone (after
    a `cd` to the entry's own folder at most): a resume is built from these words as an
    argv, never from shell text. None when the command does more, or holds an expansion
    only the launching shell could know."""
    commands = simple_commands(command)
    if commands and commands[0][:1] == ["cd"] and len(commands[0]) == 2:
        if os.path.normpath(commands[0][1]) != os.path.normpath(folder):
            return None
        commands = commands[1:]
    if len(commands) != 1:
        return None
    words = commands[0]
    rest = program_words(words)
    if not rest or os.path.basename(rest[0]) not in programs:
        return None
    if any(UNKNOWN in word for word in words):
        return None
    prefix = words[: len(words) - len(rest)]
    # `NAME=value codex ...` as an argv: env runs it with the same variables.
    if prefix and _ASSIGNMENT.match(prefix[0]):
        prefix = ["env", *prefix]
    return prefix, rest


def read_tail(path: str, limit: int) -> bytes:
    """The last `limit` bytes of an agent's own file, read without following a link and
    only when it is a regular file of this user's (b"" for anything else)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return b""
        os.lseek(fd, max(0, info.st_size - limit), os.SEEK_SET)
        return os.read(fd, limit)
    except OSError:
        return b""
    finally:
        os.close(fd)


def dialog_question(
    screen: Sequence[str], questions: Sequence[str], first_choice: re.Pattern[str]
) -> str | None:
    """The question of the choice dialog a screen ends with: its first choice among the
    last lines (a dialog sits at the bottom until it is answered, and is then cleared),
    one of `questions` a little above it. None: the screen ends otherwise."""
    lines = [line for line in screen if line.strip()][-DIALOG_LINES:]
    for index in range(len(lines) - 1, max(len(lines) - CHOICES_AT_THE_END, 0) - 1, -1):
        if first_choice.match(lines[index]):
            for above in reversed(lines[:index]):
                found = next((q for q in questions if q in above), None)
                if found is not None:
                    return above.strip(BORDER)
            return None
    return None


BORDER = " \t\u2502"  # spaces, and the box a dialog may be drawn in (U+2502)
DIALOG_LINES = 40  # a dialog's question, its details (a command, a diff summary), its choices
CHOICES_AT_THE_END = 6  # the first choice's place from the bottom: more choices, a footer
