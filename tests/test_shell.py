"""Reading shell text as a POSIX shell does, checked against /bin/sh itself."""

from __future__ import annotations

import subprocess
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heartbeat import shell
from heartbeat.errors import ShellSyntaxError
from heartbeat.notes import tmuxline

ENV = {"HOME": "/home/ada", "USER": "ada"}


def sh_words(text: str) -> list[str]:
    """The words /bin/sh makes of `text` (with HOME and USER set as in ENV)."""
    out = subprocess.run(
        ["/bin/sh", "-c", f"printf '%s\\0' {text}"],
        env={"HOME": ENV["HOME"], "USER": ENV["USER"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    ).stdout.decode()
    return out.split("\0")[:-1]


class WordsCase(NamedTuple):
    test_id: str
    text: str


WORDS_CASES = [
    WordsCase("escaped dollar in double quotes", '"PATH=/opt/homebrew/bin:\\$PATH codex"'),
    WordsCase("escaped quote and backslash", '"a \\"b\\" c\\\\d \\x"'),
    WordsCase("single quotes keep everything", "'a \\$b \"c\"'"),
    WordsCase("backslash-newline continues", 'one \\\n  two "three \\\nfour"'),
    WordsCase("tilde at word start", "~/x a~/y '~/z' ~"),
    WordsCase("home and user", '$HOME/x "${USER}" \\$HOME'),
    WordsCase("lone dollar", '"cost: $" $'),
    WordsCase("adjacent quoting", "a'b'\"c\"d\\ e"),
]


@pytest.mark.parametrize("case", WORDS_CASES, ids=[c.test_id for c in WORDS_CASES])
def test_words_match_what_sh_makes(case: WordsCase) -> None:
    assert shell.words(case.text, ENV) == sh_words(case.text)


# Pieces of shell text, so that a newline only ever comes as a continuation (and a `#`
# within a word, where it is a character: at a word's start it would begin a comment).
PIECES = ["a", "bc", " ", "\t", "\\$", "${HOME}", "${USER}", "'", '"', "~", "/", ":", "a#"]
PIECES += ["\\\n", "\\\\", "\\a", "\r", "\u00e9"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_any_text_sh_accepts_splits_the_same(text: str) -> None:
    text = "w " + text  # printf always gets one word
    probe = subprocess.run(["/bin/sh", "-n", "-c", f"printf '%s\\0' {text}"], capture_output=True)
    try:
        ours = shell.words(text, ENV)
    except ShellSyntaxError:
        assert probe.returncode != 0  # refuse only what sh refuses
        return
    assert probe.returncode == 0
    assert ours == sh_words(text)


def test_unknown_variables_are_refused_not_guessed() -> None:
    with pytest.raises(ShellSyntaxError, match=r"\$PROJECT"):
        shell.words("cd $PROJECT", ENV)
    with pytest.raises(ShellSyntaxError, match="unterminated"):
        shell.words('"open', ENV)


class LaunchCase(NamedTuple):
    test_id: str
    line: str
    name: str
    socket: str | None
    start_dir: str | None
    command: str | tuple[str, ...]


SKILL = (
    'tmux -S ~/.tmux/sock new -d -s api "cd ~/src/api && \\\n'
    "  PATH=/opt/homebrew/bin:\\$PATH codex exec --full-auto 'Add tests'; \\\n"
    "  EXIT_CODE=\\$?; echo 'EXITED:' \\$EXIT_CODE; \\\n"
    "  openclaw system event --text 'api finished (exit \\$EXIT_CODE) in ~/src/api' --mode now; \\\n"
    '  sleep 999999"'
)

LAUNCH_CASES = [
    LaunchCase(
        "the skill's multi-line codex line",
        SKILL,
        "api",
        "/home/ada/.tmux/sock",
        "/home/ada/src/api",
        "cd ~/src/api &&   PATH=/opt/homebrew/bin:$PATH codex exec --full-auto 'Add tests';"
        "   EXIT_CODE=$?; echo 'EXITED:' $EXIT_CODE;"
        "   openclaw system event --text 'api finished (exit $EXIT_CODE) in ~/src/api' --mode now;"
        "   sleep 999999",
    ),
    LaunchCase(
        "-c start dir and argv command",
        "tmux new-session -d -s web -c /srv/web -- ralphy --codex --prd PRD.md",
        "web",
        None,
        "/srv/web",
        ("ralphy", "--codex", "--prd", "PRD.md"),
    ),
    LaunchCase(
        "bundled flags and -L socket name",
        "tmux -L agents new -ds x 'codex exec hi'",
        "x",
        "/tmp/tmux-{uid}/agents",
        None,
        "codex exec hi",
    ),
]


@pytest.mark.parametrize("case", LAUNCH_CASES, ids=[c.test_id for c in LAUNCH_CASES])
def test_parse_tmux_launch(case: LaunchCase) -> None:
    import os

    launch = tmuxline.parse_tmux_launch(case.line, ENV)
    socket = case.socket.format(uid=os.getuid()) if case.socket else None
    assert (launch.name, launch.socket, launch.start_dir, launch.command) == (
        case.name,
        socket,
        case.start_dir,
        case.command,
    )


def test_the_inner_command_keeps_what_the_outer_shell_passed_on() -> None:
    launch = tmuxline.parse_tmux_launch(SKILL, ENV)
    assert isinstance(launch.command, str)
    # What tmux hands its shell is what /bin/sh would have handed tmux.
    assert [launch.command] == sh_words(SKILL.split(" api ", 1)[1])


@pytest.mark.parametrize(
    "line",
    ["echo hi", "tmux new -d 'no name'", "tmux new -s x", "tmux kill-server", "tmux new -s x a; b"],
)
def test_lines_that_are_not_launches_are_refused(line: str) -> None:
    with pytest.raises(ShellSyntaxError):
        tmuxline.parse_tmux_launch(line, ENV)
