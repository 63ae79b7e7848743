"""OpenAI's Codex CLI (`codex exec ...`): how its command is recognised, how heartbeat
launches it, where it writes why it stopped, and how a crashed run is resumed.

Sources (openai/codex, codex-rs): a run's rollout file is
`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl` in local time
(core/src/rollout/recorder.rs), CODEX_HOME defaulting to ~/.codex (utils/home-dir); its
first line is `{"timestamp":..., "type":"session_meta", "payload":{"id":..., "cwd":...}}`
(protocol/src/protocol.rs). `codex exec [OPTIONS] resume SESSION_ID [PROMPT]` continues
one (exec/src/cli.rs); exec's options go before `resume`, which refuses `-C`, `-s`, `-p`
after it. An unknown id fails with "no rollout found for thread id <id>".
"""

from __future__ import annotations

import glob
import json
import os
import re
import stat
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from heartbeat.agents.command import (
    dialog_question,
    invocation,
    is_session_id,
    read_tail,
    split_options,
)
from heartbeat.model import Command

NAME = "codex"
PROGRAM = "codex"
PROGRAMS = frozenset({PROGRAM})
PROVIDER: str | None = "openai"  # Codex's quota and login are OpenAI's
# Codex's own log, where it says why it stopped (a login that failed to refresh, a
# usage limit) when the pane does not.
LOG = (".codex", "log", "codex-tui.log")
LOG_FRESH_SECONDS = 1800  # older lines are about another run
LOG_BYTES_READ = 16384


def recognises(command: Command) -> bool:
    return invocation(command, PROGRAMS) is not None


def provider(words: list[str]) -> str | None:
    return PROVIDER


def launch_argv(task: str) -> list[str]:
    """What `heartbeat launch --codex TASK` runs: the skill's own form."""
    return [PROGRAM, "exec", "--full-auto", task]


def last_words(env: Mapping[str, str], now: datetime, lines: int = 40) -> list[str]:
    """The end of Codex's own log (`$CODEX_HOME/log/codex-tui.log`), when it is recent:
    read without following a link, and only when it is a regular file of ours (a FIFO
    there would hang the check)."""
    path = os.path.join(home(env), *LOG[1:])
    try:
        if time.time() - os.stat(path, follow_symlinks=False).st_mtime > LOG_FRESH_SECONDS:
            return []
    except (OSError, ValueError):
        return []
    tail = read_tail(path, LOG_BYTES_READ)
    return tail.decode("utf-8", "replace").splitlines()[-lines:]


# exec's options that take a value (exec/src/cli.rs and the shared options).
WITH_VALUE = frozenset(
    {
        "-m",
        "--model",
        "-s",
        "--sandbox",
        "-p",
        "--profile",
        "-C",
        "--cd",
        "-c",
        "--config",
        "-i",
        "--image",
        "--add-dir",
        "--output-schema",
        "--color",
        "-o",
        "--output-last-message",
        "--local-provider",
    }
)
EXEC = frozenset({"exec", "e"})
_ROLLOUT = re.compile(r"rollout-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})-([0-9a-fA-F-]{36})\.jsonl")
# A rollout file is created as the run starts: within this of heartbeat's start.
NAMED_BEFORE = timedelta(seconds=1)  # a name's whole seconds, and a clock's jitter
ROLLOUT_WITHIN = timedelta(minutes=2)
FIRST_LINE_BYTES = 1 << 16


def home(env: Mapping[str, str]) -> str:
    user_home = env.get("HOME") or os.path.expanduser("~")
    return env.get("CODEX_HOME") or os.path.join(user_home, ".codex")


def find_session(
    env: Mapping[str, str], folder: str, started: float, earlier: frozenset[str]
) -> str | None:
    """The id of the session a `codex exec` run started in `folder` at `started` (epoch
    seconds) created: the rollout file named for a time just after the start (its name
    has whole seconds) whose `session_meta` names that folder, the nearest such; never
    merely the newest, and never one of the `earlier` runs' sessions (two runs in one
    folder can start within the same second)."""
    start = datetime.fromtimestamp(started)
    found: list[tuple[timedelta, str]] = []
    for path, named, session in _rollouts_near(home(env), start):
        if session in earlier or not (start - NAMED_BEFORE <= named <= start + ROLLOUT_WITHIN):
            continue
        meta = _session_meta(path)
        if meta is None or meta.get("id") != session:
            continue
        if _same_folder(str(meta.get("cwd", "")), folder):
            found.append((abs(named - start), session))
    return min(found)[1] if found else None


def _rollouts_near(codex_home: str, start: datetime) -> Iterator[tuple[str, datetime, str]]:
    for day in {start.date(), (start + ROLLOUT_WITHIN).date()}:
        folder = os.path.join(codex_home, "sessions", f"{day:%Y}", f"{day:%m}", f"{day:%d}")
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            match = _ROLLOUT.fullmatch(name)
            if not match or not is_session_id(match[2]):
                continue
            try:
                named = datetime.strptime(match[1], "%Y-%m-%dT%H-%M-%S")
            except ValueError:  # an hour 24, a month 13: not a file Codex wrote
                continue
            yield os.path.join(folder, name), named, match[2]


def _session_meta(path: str) -> dict[str, object] | None:
    """The payload of a rollout's first record, read without following a link; None for
    anything else (a truncated or foreign file is skipped, never an error)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return None
        head = os.read(fd, FIRST_LINE_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    first, newline, _ = head.partition(b"\n")
    if not newline and len(head) == FIRST_LINE_BYTES:
        return _meta_from_prefix(first)  # a record longer than is read: its start says
    try:
        record = json.loads(first)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("type") != "session_meta":
        return None
    payload = record.get("payload")
    return payload if isinstance(payload, dict) else None


# How Codex writes the record's start (RolloutLine, then SessionMeta's first fields), for a
# session_meta too long to read whole (its base instructions can run to tens of KiB).
_META_START = re.compile(
    rb'\{\s*"timestamp":\s*"[^"]*",\s*"type":\s*"session_meta",\s*"payload":\s*\{\s*'
    rb'"id":\s*"([0-9a-f-]{36})",\s*(?:"[a-z_]+":\s*(?:"[^"\\]*"|null),\s*)*?'
    rb'"cwd":\s*("(?:[^"\\]|\\.)*")'
)


def _same_folder(recorded: str, folder: str) -> bool:
    """Whether the folder a rollout names is this one: Codex records the working folder
    as the system gives it, its links resolved, and a note may name it through a link."""
    recorded = os.path.normpath(recorded)
    return recorded in (os.path.normpath(folder), os.path.realpath(folder))


def _meta_from_prefix(first: bytes) -> dict[str, object] | None:
    match = _META_START.match(first)
    if match is None:
        return None
    try:
        cwd = json.loads(match[2])
    except ValueError:
        return None
    return {"id": match[1].decode(), "cwd": cwd} if isinstance(cwd, str) else None


def belongs(env: Mapping[str, str], folder: str, session: str) -> bool:
    """Whether the session is one a run in `folder` created: its rollout file's
    `session_meta` names that folder (so a `session:` line cannot lend an entry another
    project's conversation)."""
    pattern = os.path.join(home(env), "sessions", "*", "*", "*", f"rollout-*-{session}.jsonl")
    for path in glob.glob(pattern) if is_session_id(session) else []:
        meta = _session_meta(path)
        if meta is not None and meta.get("id") == session:
            return _same_folder(str(meta.get("cwd", "")), folder)
    return False


def session_in(words: list[str]) -> str | None:
    """The session a command resumes itself (`codex exec resume ID`)."""
    _, positional = split_options(words, WITH_VALUE, start=2)
    if len(positional) >= 2 and positional[0] == "resume" and is_session_id(positional[1]):
        return positional[1]
    return None


def resume_argv(words: list[str], session: str, prompt: str) -> list[str] | None:
    """`codex exec [its options] resume ID PROMPT`, from the original `codex exec` run:
    the options go before `resume`, where every version takes them."""
    if len(words) < 2 or words[1] not in EXEC:
        return None
    options, positional = split_options(words, WITH_VALUE, start=2)
    if positional[:1] == ["resume"] or "--ephemeral" in options:
        return None  # resumes already, or keeps no session to resume
    return [words[0], words[1], *options, "resume", session, prompt]


def resume_refused(lines: list[str]) -> str | None:
    text = "\n".join(lines)
    if "no rollout found for thread id" in text or "No saved session found" in text:
        return "the conversation is missing"
    return None


def credential(env: Mapping[str, str]) -> str:
    """Codex's login (`$CODEX_HOME/auth.json`, login/src/auth/storage.rs): its stat is
    compared, never its secret read."""
    return os.path.join(home(env), "auth.json")


def run_records(env: Mapping[str, str], folder: str, session: str | None) -> list[str]:
    """Nothing: its rollout file keeps no error records (codex-rs
    rollout/policy.rs); its pane and its log say why it stopped."""
    return []


def last_activity(env: Mapping[str, str], folder: str, session: str | None) -> float | None:
    """None: Codex prints as it works, so its pane says it."""
    return None


def waits_for_reset(words: list[str]) -> bool:
    """No: stopped at a limit, it ends, and says why."""
    return False


def asks_in_pane(words: list[str]) -> bool:
    """The interactive TUI asks before it runs a command or edits outside what it may;
    `codex exec` never asks (exec/src/cli.rs: it runs without approvals)."""
    _, positional = split_options(words, WITH_VALUE)
    return not positional or positional[0] not in EXEC_WORDS


EXEC_WORDS = frozenset({"exec", "e"})  # `e` is exec's alias
# The TUI's approval overlay (codex-rs/tui/src/bottom_pane/approval_overlay.rs): the
# title "Would you like to run the following command?" (or "... make the following
# edits?"), the command, then the choices "Yes, proceed" (y), "No, and tell Codex what
# to do differently" (esc), and "Press enter to confirm or esc to cancel"; the
# selected choice is marked with U+203A.
APPROVAL_TITLES = (
    "Would you like to run the following command?",
    "Would you like to make the following edits?",
)
FIRST_CHOICE = re.compile(r"\s*(?:\u203a\s*)?1\.\s+Yes, proceed\b")


def approval_prompt(screen: list[str]) -> str | None:
    """The title of the approval overlay the pane ends with, if it ends with one."""
    return dialog_question(screen, APPROVAL_TITLES, FIRST_CHOICE)
