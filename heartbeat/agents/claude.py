"""Anthropic's Claude Code (`claude -p ...`): headless runs pinned to a session id that
heartbeat chooses, and resumed with `claude -p PROMPT --resume ID` after a crash.

Sources: Claude Code's CLI reference (`-p`, `-r/--resume`, `--session-id <uuid>` "must be a
valid UUID", `--permission-mode`); `--resume` of an unknown id prints "No conversation
found with session ID: <id>" and exits 1 (anthropics/claude-code#12730, #40609).
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from collections.abc import Mapping
from datetime import datetime

from heartbeat.agents.command import (
    dialog_question,
    invocation,
    is_session_id,
    read_tail,
    split_options,
)
from heartbeat.model import Command

NAME = "claude"
PROGRAM = "claude"
PROGRAMS = frozenset({PROGRAM})
PROVIDER: str | None = "anthropic"


def recognises(command: Command) -> bool:
    return invocation(command, PROGRAMS) is not None


def provider(words: list[str]) -> str | None:
    return PROVIDER


def last_words(env: Mapping[str, str], now: datetime) -> list[str]:
    """No log shared by all runs: the run's own transcript says it (`run_records`)."""
    return []


TRANSCRIPT_TAIL_BYTES = 1 << 16


def transcript(env: Mapping[str, str], folder: str, session: str) -> str | None:
    """The run's transcript: `projects/<folder, every character but letters and digits as
    ->/<session>.jsonl` under CLAUDE_CONFIG_DIR (else ~/.claude); None for a folder whose
    name the CLI shortens with a hash heartbeat cannot know. The folder is named as the
    CLI names it, with its links resolved (anthropics/claude-code#39594, #44456)."""
    name = re.sub(r"[^a-zA-Z0-9]", "-", os.path.realpath(folder))
    if len(name) > 200 or not is_session_id(session):
        return None
    user_home = env.get("HOME") or os.path.expanduser("~")
    config = env.get("CLAUDE_CONFIG_DIR") or os.path.join(user_home, ".claude")
    return os.path.join(config, "projects", name, f"{session}.jsonl")


def belongs(env: Mapping[str, str], folder: str, session: str) -> bool:
    """Whether the session is this folder's: its transcript is in the folder's project
    (so a `session:` line cannot lend an entry another project's conversation)."""
    path = transcript(env, folder, session)
    try:
        found = os.stat(path, follow_symlinks=False) if path else None
    except (OSError, ValueError):
        return False
    return found is not None and stat.S_ISREG(found.st_mode) and found.st_uid == os.getuid()


def waits_for_reset(words: list[str]) -> bool:
    """An interactive session stopped at a limit stays, its pane saying when the limit
    resets ("You've hit your limit · resets 10pm (America/New_York)", then the
    `/rate-limit-options` menu: "Stop and wait for limit to reset";
    anthropics/claude-code#20719, #40898); a headless run (`-p`) ends."""
    options, _ = split_options(words, WITH_VALUE)
    return not {option.partition("=")[0] for option in options} & PRINT_OPTIONS


def asks_in_pane(words: list[str]) -> bool:
    """An interactive session asks for permission in its pane and waits; a headless run
    (`-p`) is denied what it was not allowed, and goes on."""
    return waits_for_reset(words)


# Its permission dialog: a question, then numbered choices, the first of them "Yes"
# ("Do you want to proceed?" / "> 1. Yes" / "2. Yes, and always allow access to ..."
# in anthropics/claude-code#29925 and #64638; "Do you want to make this edit to
# create_plan.md?" / "> 1. Yes" in #9147), the cursor `>` being U+276F; it may sit on
# another choice.
PERMISSION_QUESTIONS = ("Do you want to proceed?", "Do you want to make this edit to")
FIRST_CHOICE = re.compile(r"[\s\u2502]*(?:\u276f\s*)?1\.\s+Yes\b")  # boxed, in some versions


def approval_prompt(screen: list[str]) -> str | None:
    """The question of the permission dialog the pane ends with, if it ends with one."""
    return dialog_question(screen, PERMISSION_QUESTIONS, FIRST_CHOICE)


def last_activity(env: Mapping[str, str], folder: str, session: str | None) -> float | None:
    """When the run's transcript last changed: a headless run prints nothing until it
    ends, but writes each turn there."""
    path = transcript(env, folder, session) if session else None
    try:
        found = os.stat(path, follow_symlinks=False) if path else None
    except (OSError, ValueError):
        return None
    if found is None or not stat.S_ISREG(found.st_mode) or found.st_uid != os.getuid():
        return None
    return found.st_mtime


def run_records(env: Mapping[str, str], folder: str, session: str | None) -> list[str]:
    """What the run's transcript says of its end, when its last assistant record is an
    API error (`isApiErrorMessage`): its text, HTTP status and error kind. An error the
    agent got past (an answer follows it) says nothing; an unreadable or truncated
    record is skipped."""
    path = transcript(env, folder, session) if session else None
    tail = read_tail(path, TRANSCRIPT_TAIL_BYTES) if path else b""
    for line in reversed(tail.splitlines()):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "user":
            return []  # a turn began after whatever came before: that run ended later
        if kind != "assistant" or not isinstance(record, dict):
            continue
        if record.get("isApiErrorMessage") is not True:
            return []
        return _error_lines(record)
    return []


def _error_lines(record: dict[str, object]) -> list[str]:
    lines = []
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            lines += str(part["text"]).splitlines()
    if isinstance(record.get("apiErrorStatus"), int):
        lines.append(f"API Error: {record['apiErrorStatus']}")
    if isinstance(record.get("error"), str):
        lines.append(f"error: {record['error']}")
    return lines


# Options that take a value, so that the prompt is told from them (the CLI reference).
WITH_VALUE = frozenset(
    {
        "--session-id",
        "--resume",
        "-r",
        "--permission-mode",
        "--model",
        "--fallback-model",
        "--allowedTools",
        "--allowed-tools",
        "--disallowedTools",
        "--disallowed-tools",
        "--output-format",
        "--input-format",
        "--add-dir",
        "--append-system-prompt",
        "--system-prompt",
        "--max-turns",
        "--mcp-config",
        "--settings",
        "--permission-prompt-tool",
        "--agents",
    }
)
# Options that take every word up to the next option (`--allowedTools Edit Bash`): the
# prompt goes before them.
VARIADIC = frozenset(
    {
        "--allowedTools",
        "--allowed-tools",
        "--disallowedTools",
        "--disallowed-tools",
        "--add-dir",
        "--mcp-config",
        "--betas",
    }
)
# What names a conversation: not carried into a resume, which names its own.
SESSION_OPTIONS = frozenset({"--session-id", "--resume", "-r", "--continue", "-c"})
PRINT_OPTIONS = frozenset({"-p", "--print"})


def launch_argv(task: str, extra: list[str]) -> tuple[list[str], str]:
    """What `heartbeat launch --claude TASK [-- OPTION ...]` runs, and the session id
    heartbeat chose for it."""
    session = str(uuid.uuid4())
    # The task right after -p: an option that takes several words cannot swallow it.
    argv = [PROGRAM, "-p", task, "--session-id", session, "--permission-mode", "acceptEdits"]
    return [*argv, *extra], session


def pinned(words: list[str]) -> tuple[list[str], str] | None:
    """A headless run given its own session id, when it names none (`--session-id`,
    `--resume`, `--continue`); None when it does, or is not headless."""
    options, _ = split_options(words, WITH_VALUE)
    names = {option.partition("=")[0] for option in options}
    if names & SESSION_OPTIONS or not names & PRINT_OPTIONS:
        return None
    session = str(uuid.uuid4())
    return [words[0], "--session-id", session, *words[1:]], session


def session_in(words: list[str]) -> str | None:
    """The session a command names itself (`--session-id ID` or `--resume ID`)."""
    options, _ = split_options(words, WITH_VALUE)
    for index, option in enumerate(options):
        name, _, value = option.partition("=")
        if name in ("--session-id", "--resume", "-r"):
            value = value or (options[index + 1] if index + 1 < len(options) else "")
            return value if is_session_id(value) else None
    return None


def resume_argv(words: list[str], session: str, prompt: str) -> list[str] | None:
    """`claude -p PROMPT --resume ID [its options]`, from the original invocation (the
    prompt first, so that an option taking several words keeps all of them)."""
    options, _ = split_options(words, WITH_VALUE - VARIADIC, variadic=VARIADIC)
    kept: list[str] = []
    skip = False
    for index, option in enumerate(options):
        if skip:
            skip = False
            continue
        name = option.partition("=")[0]
        with_value = name in WITH_VALUE and "=" not in option and index + 1 < len(options)
        if name in SESSION_OPTIONS or name in PRINT_OPTIONS:
            skip = with_value
            continue
        kept.append(option)
    return [words[0], "-p", prompt, "--resume", session, *kept]


def resume_refused(lines: list[str]) -> str | None:
    """Why a resume did not take, when its words say."""
    text = "\n".join(lines)
    if "No conversation found with session ID" in text:
        return "the conversation is missing"
    if "is already in use" in text:
        return "the conversation is in use by another run"
    return None


def find_session(
    env: Mapping[str, str], folder: str, started: float, earlier: frozenset[str]
) -> str | None:
    """None: a headless run's session is pinned when it starts, so never looked for."""
    return None


def repinned(words: list[str]) -> tuple[list[str], str] | None:
    """The invocation with the session it pins (`--session-id ID`) replaced by a new one:
    a fresh start of a pinned command, whose old conversation the CLI would refuse as
    "already in use". None when it pins none."""
    for index, word in enumerate(words[:-1]):
        if word == "--session-id" and is_session_id(words[index + 1]):
            session = str(uuid.uuid4())
            return [*words[: index + 1], session, *words[index + 2 :]], session
    return None


def credential(env: Mapping[str, str]) -> str:
    """Claude Code's login: `$CLAUDE_CONFIG_DIR/.credentials.json`, by default under
    ~/.claude (on macOS it may be in the Keychain instead)."""
    user_home = env.get("HOME") or os.path.expanduser("~")
    folder = env.get("CLAUDE_CONFIG_DIR") or os.path.join(user_home, ".claude")
    return os.path.join(folder, ".credentials.json")
