"""Reads shell text the way a POSIX shell does: words, operators, a leading `cd DIR &&`.

`shlex` is not enough here: inside double quotes a POSIX shell removes the backslash
before `$`, backquote, `"`, `\\` and newline, and shlex keeps it; a restarted agent
would then see a literal `\\$PATH`. Only reading is done here, never running: the
words come back as values, and expansions that only the launching shell could know
are refused rather than guessed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from heartbeat.errors import ShellSyntaxError
from heartbeat.records import frozen

OPERATOR_CHARS = ";&|()<>"
# Stands for an expansion whose value is not known here (in non-strict reading).
UNKNOWN = "\x00"
# Variables whose value heartbeat knows exactly as the launching shell did.
KNOWN_VARIABLES = ("HOME", "USER", "LOGNAME")
# Runs of characters that mean only themselves, taken at once: a note of 2,000 skill-form
# entries has over half a million (a `#` starts a comment only at a word's start).
_PLAIN_RUN = re.compile(r"[^\\'\"$`\s#;&|()<>]+")
_PLAIN_IN_DOUBLE_QUOTES = re.compile(r'[^"\\$`]+')
_BRACED_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@frozen
class Operator:
    """A control operator such as `;` or `&&` (a newline counts as `;`)."""

    text: str


Token = str | Operator


class _Reader:
    """One pass over shell text, building words as the shell would."""

    def __init__(self, text: str, env: Mapping[str, str], strict: bool = True) -> None:
        self.text = text
        self.env = env
        self.strict = strict
        self.out: list[Token] = []
        self._reset()

    def _reset(self) -> None:
        self.chars: list[str] = []
        self.started = False
        # The word's unquoted opening, which is what tilde expansion looks at.
        self.unquoted_prefix = 0
        self.quoted = False

    def add(self, chars: str, quoted: bool) -> None:
        self.started = True
        if quoted:
            self.quoted = True
        elif not self.quoted:
            self.unquoted_prefix = len(self.chars) + len(chars)
        self.chars.extend(chars)

    def finish(self) -> None:
        if self.started:
            self.out.append(self._expand_tilde("".join(self.chars)))
        self._reset()

    def _expand_tilde(self, word: str) -> str:
        # Only a tilde-prefix of unquoted literal characters ending at an unquoted
        # slash (or at the end of the word) is expanded; `~user` is left alone.
        slash = word.find("/")
        bare = word == "~" and self.unquoted_prefix == 1 and not self.quoted
        if bare or (word.startswith("~/") and self.unquoted_prefix > 1):
            home = self.env.get("HOME") or os.path.expanduser("~")
            return home + ("" if slash < 0 else word[slash:])
        return word

    def read(self) -> list[Token]:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            c = text[i]
            if c == "\\":
                if i + 1 < n and text[i + 1] == "\n":
                    i += 2  # line continuation
                    continue
                if i + 1 >= n:
                    raise ShellSyntaxError("line ends with a lone backslash")
                self.add(text[i + 1], quoted=True)
                i += 2
            elif c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated single quote")
                self.add(text[i + 1 : end], quoted=True)
                i = end + 1
            elif c == '"':
                i = self._double_quoted(i + 1)
            elif c == "$":
                value, i = self._expansion(i)
                self.add(value, quoted=True)
            elif c == "`":
                raise ShellSyntaxError("command substitution with backquotes is not supported")
            elif c in " \t":
                self.finish()
                i += 1
            elif c == "\n":
                self.finish()
                self.out.append(Operator(";"))
                i += 1
            elif c == "#" and not self.started:
                end = text.find("\n", i)
                i = n if end < 0 else end
            elif c in OPERATOR_CHARS:
                self.finish()
                two = text[i : i + 2]
                op = two if two in ("&&", "||", ";;", ">>", "<<") else c
                self.out.append(Operator(op))
                i += len(op)
            else:
                run = _PLAIN_RUN.match(text, i)
                end = run.end() if run else i + 1
                self.add(text[i:end], quoted=False)
                i = end
        self.finish()
        return self.out

    def _double_quoted(self, i: int) -> int:
        text, n = self.text, len(self.text)
        self.add("", quoted=True)
        while i < n:
            c = text[i]
            if c == '"':
                return i + 1
            if c == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                if text[i + 1] != "\n":  # backslash-newline vanishes
                    self.add(text[i + 1], quoted=True)
                i += 2
            elif c == "$":
                value, i = self._expansion(i)
                self.add(value, quoted=True)
            elif c == "`":
                raise ShellSyntaxError("command substitution with backquotes is not supported")
            else:
                run = _PLAIN_IN_DOUBLE_QUOTES.match(text, i)
                end = run.end() if run else i + 1
                self.add(text[i:end], quoted=True)
                i = end
        raise ShellSyntaxError("unterminated double quote")

    def _expansion(self, i: int) -> tuple[str, int]:
        after = self.text[i + 1 : i + 2]
        braced = _BRACED_NAME.match(self.text, i + 1)
        plain = _NAME.match(self.text, i + 1)
        if braced:
            name, length = braced.group(1), braced.end() - i - 1
        elif plain:
            name, length = plain.group(0), plain.end() - i - 1
        elif after in ("", " ", "\t", "\n", '"'):
            return "$", i + 1  # a lone dollar is literal
        else:
            name, length = after, 1
        if name in KNOWN_VARIABLES and name in self.env:
            return self.env[name], i + 1 + length
        if not self.strict:
            return UNKNOWN, i + 1 + length
        raise ShellSyntaxError(
            f"`${name}` would be expanded by the launching shell; write `\\${name}`"
        )


def tokens(text: str, env: Mapping[str, str] | None = None, strict: bool = True) -> list[Token]:
    """Split `text` into words and operators as a POSIX shell would.

    `~`, `$HOME`, `$USER` and `$LOGNAME` are expanded from `env`; any other
    expansion raises ShellSyntaxError, since only the launching shell knew its value
    (or, when not `strict`, becomes the UNKNOWN marker).
    """
    return _Reader(text, os.environ if env is None else env, strict).read()


def words(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The words of a simple command; any operator in it is an error."""
    result: list[str] = []
    for token in tokens(text, env):
        if isinstance(token, Operator):
            if token.text == ";" and not result:
                continue
            raise ShellSyntaxError(f"unexpected `{token.text}` in a command heartbeat reads")
        result.append(token)
    return result


def leading_cd(command: str, env: Mapping[str, str] | None = None) -> str | None:
    """DIR when a shell command starts with `cd DIR &&` (or `;`), else None."""
    try:
        toks = tokens(command, env, strict=False)
    except ShellSyntaxError:
        return None
    match toks[:3]:
        case ["cd", str(folder), Operator(text="&&" | ";")] if UNKNOWN not in folder:
            return folder
    return None
