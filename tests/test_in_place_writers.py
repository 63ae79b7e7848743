"""Programs that save a note in place (open with truncate, then one or several writes)
lose nothing to heartbeat, and heartbeat loses none of its status lines to them."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import NOW, Sandbox

from heartbeat import config, files
from heartbeat.check import run as core
from heartbeat.errors import NoteError

# A person's editor or a sync tool saving in place: it reads the note, adds a line
# while the person types, then truncates the file and writes it back, in one write or
# in two a few milliseconds apart (split anywhere, mid-line too), the inode kept.
IN_PLACE_WRITER = """
import os, random, sys, time
path, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(seed)
for i in range(count):
    with open(path, "rb") as handle:
        data = handle.read()
    time.sleep(random.random() / 100)  # the person types
    data += f"- in-place line {i}\\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        if i % 2:
            cut = random.randrange(1, len(data))
            os.write(fd, data[:cut])
            time.sleep(0.005 + random.random() * 0.025)  # 5-30 ms between the chunks
            os.write(fd, data[cut:])
        else:
            os.write(fd, data)
    finally:
        os.close(fd)
    # Until the next save: often at once, now and then a pause that lets a check write.
    time.sleep(random.uniform(0.12, 0.2) if random.random() < 0.25 else random.random() / 25)
"""

SAVES = 200
MAX_CHECKS = 70  # 11 minutes apart from 10:00: all on the same day


@pytest.mark.timeout(120)  # a busy two-core machine
def test_in_place_saves_in_one_and_two_chunks_during_checks_lose_nothing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "sleep", "999")
    assert result.returncode == 0, result.stderr
    person_wrote = sandbox.note().read_text()
    settings = config.load(sandbox.env)
    writer = subprocess.Popen(
        [sys.executable, "-c", IN_PLACE_WRITER, str(sandbox.note()), str(SAVES), "7"]
    )
    reported: list[str] = []
    busy: list[str] = []  # reads and edits that found the note too busy to wait for
    real_read_still = files.read_still

    def counted(*args: Any, **kwargs: Any) -> tuple[bytes, files.Stamp]:
        try:
            return real_read_still(*args, **kwargs)
        except NoteError as error:
            busy.append(error.message)
            raise

    monkeypatch.setattr(files, "read_still", counted)
    start = datetime.fromisoformat(NOW)
    began = time.monotonic()
    tick = 0
    while writer.poll() is None and tick < MAX_CHECKS:
        tick += 1
        sandbox.server.cmd("kill-session", "-t", "=api")  # something to write every check
        moment = start + timedelta(minutes=11 * tick)  # each run lasted 10 minutes
        outcome = core.check(settings, moment)
        if any("(restarted)" in change.line() for change in outcome.changes):
            # Known by its time: its words depend on whether the agent had written its
            # session before the check (resumed, or failed to resume) or not.
            reported.append(f"  - {moment:%Y-%m-%d %H:%M} — ")
    assert writer.wait() == 0
    # The next check writes what a stale save dropped, or what could not wait for a
    # busy note.
    core.check(settings, start + timedelta(minutes=11 * (tick + 1)))
    took = time.monotonic() - began

    text = sandbox.note().read_text()
    theirs = re.findall(r"^- in-place line (\d+)$", text, re.MULTILINE)
    lost_bytes = [line for line in person_wrote.splitlines(keepends=True) if line not in text]
    missing = [line for line in reported if line not in text]
    print(
        f"{SAVES} saves, {tick} checks ({len(busy)} too busy to wait for), {len(reported)} restarts, {took:.1f} s"
    )
    assert lost_bytes == []
    assert theirs == [str(i) for i in range(SAVES)]  # every line, once, in order
    assert len(reported) >= 15  # enough lines written while the saves went on
    assert missing == []
    status_lines = re.findall(r"^  - 2026-11-24 \d\d:\d\d — ", text, re.MULTILINE)
    assert len(status_lines) == len(reported)  # none written twice
