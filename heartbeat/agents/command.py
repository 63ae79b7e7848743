"""Finding the agent in a command line: the simple command that runs a program, past a
`cd DIR &&`, `NAME=value` assignments, `env` and its options, and `exec` or `nohup`."""

from __future__ import annotations

import os
import re

from heartbeat.errors import ShellSyntaxError
from heartbeat.model import Command
from heartbeat.shell import Operator, tokens

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
