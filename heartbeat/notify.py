"""Telling a person: runs the configured notify command with the text as one argument."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

TEXT = "{text}"


def argv_for(command: Sequence[str], text: str) -> list[str]:
    """The notify command with `{text}` replaced, or the text added as the last word."""
    if TEXT in command:
        return [text if word == TEXT else word for word in command]
    return [*command, text]


def send(command: Sequence[str], text: str, timeout: float) -> str | None:
    """Run the notify command; an error message when it failed or hung, else None.

    Never raises: a broken notifier must not stop a check.
    """
    if not command:
        return None
    try:
        result = subprocess.run(
            argv_for(command, text),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"notify command {command[0]} did not finish within {timeout:g}s"
    except OSError as error:
        return f"notify command {command[0]} cannot run: {error.strerror}"
    if result.returncode != 0:
        return f"notify command {command[0]} failed (exit {result.returncode})"
    return None
