"""Telling a person: which events to tell (each once, and not a flood), and the notify
command that tells them, run with the text as one argument."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from heartbeat.records import frozen

TEXT = "{text}"
WINDOW = timedelta(hours=1)  # the rolling window the rate counts in
TOLD_KEPT = 1000  # event identities remembered: far more than a carry window's events


@frozen
class Notice:
    """One event a person may be told of."""

    mark: str  # the entry's mark (state.entry_mark): whose rate it counts against
    name: str  # the entry's name, a checked word: all a digest says of it
    identity: str  # entry mark, run and event kind: told once, whatever the notes say
    event: str
    text: str


def admit(
    notices: Sequence[Notice],
    told: list[str],
    sent: dict[str, list[str]],
    folded: dict[str, dict[str, Any]],
    now: datetime,
    per_hour: int,
) -> list[str]:
    """The texts to send now, and the state's memory of them brought up to date (in place).

    An event whose identity was told before is dropped: a second check looking at the
    same stop (a concurrent one, or one after an editor's stale save put back an entry
    heartbeat had closed) tells nothing. Past `per_hour` notifications about one entry in
    the last hour, its events are folded into one digest, sent by the first check whose
    hour has room again; events that come while a digest waits join it.
    """
    for mark in list(sent):
        sent[mark] = [t for t in sent[mark] if now - datetime.fromisoformat(t) < WINDOW]
        if not sent[mark]:
            del sent[mark]
    texts: list[str] = []

    def send(mark: str, text: str) -> None:
        texts.append(text)
        sent.setdefault(mark, []).append(now.isoformat())

    for mark in list(folded):
        if len(sent.get(mark, ())) < per_hour:
            send(mark, digest(folded.pop(mark)))
    seen = set(told)
    for notice in notices:
        if notice.identity in seen:
            continue
        seen.add(notice.identity)
        told.append(notice.identity)
        if notice.mark in folded or len(sent.get(notice.mark, ())) >= per_hour:
            waiting = folded.setdefault(notice.mark, {"name": notice.name, "events": []})
            waiting["name"] = notice.name
            waiting["events"].append(notice.event)
        else:
            send(notice.mark, notice.text)
    del told[:-TOLD_KEPT]
    return texts


def digest(folded: dict[str, Any]) -> str:
    """`api: 15 more events in the last hour: 12 restarted, 3 failed`: the entry's name
    and the events' kinds only, so no entry's own text (an unapproved one's) is in it."""
    events: list[str] = folded["events"]
    kinds = ", ".join(f"{count} {kind}" for kind, count in Counter(events).items())
    return f"{folded['name']}: {len(events)} more events in the last hour: {kinds}"


def argv_for(command: Sequence[str], text: str) -> list[str]:
    """The notify command with `{text}` replaced, or the text added as the last word."""
    if TEXT in command:
        return [text if word == TEXT else word for word in command]
    return [*command, text]


def ping(url: str, failed: bool, body: str, timeout: float) -> str | None:
    """Tell a dead-man's switch that a check ran: `URL`, or `URL/fail` with a short
    body when something needs a person. An error message when it did not work."""
    import urllib.request

    target = url.rstrip("/") + ("/fail" if failed else "")
    data = body.encode()[:10_000] if failed else None
    try:
        with urllib.request.urlopen(target, data=data, timeout=timeout) as answer:
            answer.read(1024)
    except (OSError, ValueError) as error:
        return f"ping {target} failed: {error}"
    return None


def send(command: Sequence[str], text: str, timeout: float) -> str | None:
    """Run the notify command; an error message when it failed or hung, else None.

    Never raises: a broken notifier must not stop a check. It runs in a process group
    of its own, with no pipes, so that a child it leaves behind holds up nothing: on
    time, the whole group is ended.
    """
    if not command:
        return None
    try:
        process = subprocess.Popen(
            argv_for(command, text),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as error:
        return f"notify command {command[0]} cannot run: {error.strerror}"
    try:
        code = process.wait(timeout=max(timeout, 0.01))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return f"notify command {command[0]} did not finish within {timeout:g}s"
    if code != 0:
        return f"notify command {command[0]} failed (exit {code})"
    return None
