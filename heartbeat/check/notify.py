"""Telling a person: runs the configured notify command with the text as one argument."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

TEXT = "{text}"


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
