"""What a check costs, counted rather than timed: notes parsed, modules loaded, what tmux
is asked, files written. The times live in bench/check.py."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from conftest import TODAY, Sandbox
from hypothesis import given
from hypothesis import strategies as st
from libtmux.test.retry import retry_until
from test_launch_and_check import launch

from heartbeat import config
from heartbeat.notes import cache as notecache
from heartbeat.notes import notebook
from heartbeat.notes.notebook import Notebook, label_of
from heartbeat.notes.parse import Note

NOTE = """---
date: {day}
tags: [daily]
---

# {day}

Prose the person wrote.

## Active Long-Running Processes

- [x] **done** — `codex exec 'finished work'`
  - dir: `/tmp`
- [ ] **api** — `codex exec 'add tests'`
  - dir: `/tmp`
- [ ] this line is not an entry

## Meetings

1. Standup.
"""


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The notes parsed from now on, by label."""
    seen: list[str] = []
    real = notebook.parse

    def counting(text: str, where: str, *args: object, **kwargs: object) -> Note:
        seen.append(where)
        return real(text, where, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(notebook, "parse", counting)
    return seen


def read(box: Sandbox) -> Notebook:
    book = Notebook(config.load(box.env), date.fromisoformat(TODAY), keep_cache=True)
    book.read_all()
    return book


def test_notes_that_did_not_change_are_not_parsed_again(
    sandbox: Sandbox, parsed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notecache, "SETTLE_NS", 0)
    sandbox.write_note(NOTE.format(day=TODAY))
    sandbox.write_note(NOTE.format(day="2026-11-20"), day="2026-11-20")
    sandbox.write_note(NOTE.format(day="2026-10-01"), day="2026-10-01")  # outside the window

    first = read(sandbox)
    assert len(parsed) == 3
    second = read(sandbox)
    assert len(parsed) == 3  # all three from the cache, none read
    assert [loaded.text for loaded in second.loaded] == [None, None, None]
    assert [loaded.note.entries for loaded in second.loaded] == [
        loaded.note.entries for loaded in first.loaded
    ]
    assert second.problems == first.problems  # the unreadable line is still reported
    assert any("cannot read this entry" in problem for problem in second.problems)
    # Older than the window, a note keeps only its open entries: all that is used of it.
    assert [entry.name for entry in second.loaded[0].note.entries] == ["api"]


def test_a_box_ticked_with_the_size_and_mtime_kept_is_seen(
    sandbox: Sandbox, parsed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notecache, "SETTLE_NS", 0)
    path = sandbox.write_note(NOTE.format(day=TODAY))
    assert [entry.is_open for entry in read(sandbox).loaded[0].note.entries] == [False, True]
    before = os.stat(path)

    def tick_as_a_sync_tool_does() -> bool:
        """Same size, same mtime: only the ctime tells, once the clock has moved on."""
        path.write_text(NOTE.format(day=TODAY).replace("- [ ] **api**", "- [x] **api**"))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        return os.stat(path).st_ctime_ns != before.st_ctime_ns

    retry_until(tick_as_a_sync_tool_does, 5, interval=0.01)
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert [entry.is_open for entry in read(sandbox).loaded[0].note.entries] == [False, False]
    assert len(parsed) == 2


def test_a_note_written_a_moment_ago_is_read_again_but_parsed_once(
    sandbox: Sandbox, parsed: list[str]
) -> None:
    """Its stamp could still move within the file system's clock tick, so it is read
    again; its text is the one parsed, so the parse is reused: a burst of checks after
    an edit parses the note once."""
    sandbox.write_note(NOTE.format(day=TODAY))
    for _ in range(3):
        book = read(sandbox)
        assert book.loaded[0].text is not None  # read, not trusted by its stamp
    assert len(parsed) == 1
    assert [entry.name for entry in book.loaded[0].note.entries] == ["done", "api"]


def test_a_note_rewritten_within_the_clock_tick_is_parsed_again(
    sandbox: Sandbox, parsed: list[str]
) -> None:
    """A write that leaves inode, size, mtime and ctime as they were (within one tick of
    a coarse clock, as an in-place writer may) is still seen, by the text's hash."""
    path = sandbox.write_note(NOTE.format(day=TODAY))
    read(sandbox)
    before = os.stat(path)
    with path.open("r+") as note:  # in place, same size
        ticked = note.read().replace("- [ ] **api**", "- [x] **api**")
        note.seek(0)
        note.write(ticked)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    # The ctime moved (a coarse-clocked file system would not move it): make the cache
    # hold the new stamp with the old parse, as such a file system would have left it.
    kept = notecache.NoteCache.load(sandbox.state)
    (key, digest, settled_, note) = kept.found[str(path)]
    stamp = notecache.files.Stamp.of(path)
    assert stamp is not None and not settled_
    kept.used = {str(path): (notecache.key_of(stamp, *key[4:]), digest, False, note)}
    kept.save()

    assert [entry.is_open for entry in read(sandbox).loaded[0].note.entries] == [False, False]
    assert len(parsed) == 2


def test_a_settled_note_is_trusted_by_its_stamp_again(
    sandbox: Sandbox, parsed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read while fresh, then once more after it settled: from then on, not read."""
    sandbox.write_note(NOTE.format(day=TODAY))
    read(sandbox)
    monkeypatch.setattr(notecache, "SETTLE_NS", 0)
    assert read(sandbox).loaded[0].text is not None  # read, hashed, kept as settled
    assert read(sandbox).loaded[0].text is None  # known by its stamp
    assert len(parsed) == 1


@pytest.mark.parametrize("spoil", ["others can write it", "garbage"])
def test_a_cache_that_cannot_be_trusted_is_not_used(
    sandbox: Sandbox, parsed: list[str], monkeypatch: pytest.MonkeyPatch, spoil: str
) -> None:
    monkeypatch.setattr(notecache, "SETTLE_NS", 0)
    sandbox.write_note(NOTE.format(day=TODAY))
    read(sandbox)
    cache = sandbox.state / notecache.FILE_NAME
    if spoil == "garbage":
        cache.write_bytes(b"\x80\x05 not a pickle")
    else:
        cache.chmod(0o666)  # another user could have written code into it

    book = read(sandbox)

    assert len(parsed) == 2  # parsed again, not unpickled
    assert [entry.name for entry in book.loaded[0].note.entries] == ["done", "api"]
    assert cache.stat().st_mode & 0o777 == 0o600  # and replaced by one of our own
    read(sandbox)
    assert len(parsed) == 2


def settled(path: Path) -> None:
    """Wait (polling) until a note is old enough to be kept in the parse cache."""
    written = os.stat(path).st_ctime_ns
    retry_until(lambda: time.time_ns() - written > notecache.SETTLE_NS, 10, interval=0.05)


# A check ends with os._exit (no exit handlers run): what it loaded is told just before.
LOADED_AT_EXIT = """
import os, sys
from heartbeat import cli
def report_then_exit(code, exit=os._exit):
    executed = [name for name, module in sys.modules.items()
                if type(module).__name__ != "_LazyModule"]
    print(" ".join(sorted(executed)), file=sys.stderr)
    exit(code)
os._exit = report_then_exit
sys.argv = ["heartbeat", "check", "--quiet"]
cli.main()
"""


def test_a_quiet_check_loads_only_what_it_runs(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    settled(sandbox.note())
    sandbox.check()  # the first sighting, which parses and caches the note

    quiet = subprocess.run(
        [sys.executable, "-c", LOADED_AT_EXIT],
        env=sandbox.env,
        cwd=sandbox.root,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (quiet.returncode, quiet.stdout) == (0, "")
    loaded = set(quiet.stderr.split())
    assert {"heartbeat.check.run", "libtmux.common"} <= loaded
    for needless in (
        "markdown_it",  # no note changed: nothing to parse
        "yaml",
        "frontmatter",
        "libtmux.server",  # only libtmux's command runner is used
        "heartbeat.verbs.launch",  # the other verbs
        "heartbeat.verbs.entries",
        "heartbeat.verbs.status",
        "heartbeat.agents",  # nothing stopped
        "heartbeat.agents.reasons",
        "heartbeat.work.verify",
        "heartbeat.work.git",
        "heartbeat.logs",  # no run started or just stopped: no run log read or pruned
        "heartbeat.runlog",
        "heartbeat.verbs.logs",
        "heartbeat.install.setup",
        "heartbeat.install.schedule",
        "heartbeat.install.doctor",
        "heartbeat.cli.watch",  # status --watch, and the library that draws it
        "rich",
        "tempfile",  # nothing written
        "ctypes",
        "heartbeat.check.act",  # nothing to restart, no status line
        "heartbeat.notes.edit",
        "random",
    ):
        assert needless not in loaded, needless


def test_a_quiet_check_writes_no_file(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    settled(sandbox.note())
    sandbox.check()
    sandbox.check()
    written = {path.name: os.stat(path) for path in sandbox.state.iterdir() if path.is_file()}
    note = os.stat(sandbox.note())

    assert sandbox.check().returncode == 0

    after = {path.name: os.stat(path) for path in sandbox.state.iterdir() if path.is_file()}
    assert after.keys() == written.keys()
    for name, stat in after.items():
        # Replacing a file changes its inode; writing it, its size or mtime. The time of
        # the last check is kept as a file time alone.
        unchanged = (stat.st_ino, stat.st_size) == (written[name].st_ino, written[name].st_size)
        assert unchanged and (name == "last-check" or stat.st_mtime_ns == written[name].st_mtime_ns)
    assert os.stat(sandbox.note()).st_ctime_ns == note.st_ctime_ns


def test_only_a_check_keeps_the_parse_cache(sandbox: Sandbox) -> None:
    sandbox.write_note(NOTE.format(day="2026-11-20"), day="2026-11-20")
    settled(sandbox.note("2026-11-20"))
    status = sandbox.run("status")
    assert status.returncode == 1 and "cannot read this entry" in status.stderr
    assert not (sandbox.state / notecache.FILE_NAME).exists()  # `status` changes nothing
    sandbox.check()
    assert (sandbox.state / notecache.FILE_NAME).exists()


def logging_tmux(box: Sandbox, answered: bool = False) -> tuple[dict[str, str], Path]:
    """An environment whose tmux logs each call's arguments, a line a call (once tmux has
    answered it, when `answered`), and that log."""
    log = box.root / "tmux-args"
    logging = box.bin / "logging-tmux"
    call = 'tmux "$@"; code=$?\n' if answered else ""
    end = "exit $code" if answered else 'exec tmux "$@"'
    logging.write_text(f'#!/bin/sh\n{call}echo "$*" >> {log}\n{end}\n')
    logging.chmod(0o755)
    return dict(box.env, HEARTBEAT_TMUX=str(logging)), log


def list_calls(log: Path, socket: str = "") -> list[str]:
    """The list calls logged since the last look (of that socket, when given), each as
    `plain` or `commands`."""
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [
        "commands" if "pane_current_command" in line else "plain"
        for line in lines
        if "list-panes" in line and (not socket or line.split()[0] == f"-S{socket}")
    ]


def add_skill_line(box: Sandbox, name: str) -> None:
    box.server.new_session(name, window_command="sleep 600")
    with box.note().open("a") as note:
        note.write(f"- {name}: `tmux -S {box.socket} new -d -s {name} 'sleep 600'`\n")
    box.allow(name)  # else it is asked about: started by hand, it may need a restart


def test_the_list_call_asks_for_pane_commands_only_for_the_skills_lines(
    sandbox: Sandbox,
) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    env, log = logging_tmux(sandbox)

    assert sandbox.check(env=env).returncode == 0
    assert list_calls(log) == ["plain"]

    add_skill_line(sandbox, "docs")
    assert sandbox.check(env=env).returncode == 0
    assert list_calls(log)[-1] == "commands"


def test_the_configured_socket_is_asked_as_the_last_check_asked_it(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    env, log = logging_tmux(sandbox)
    for _ in range(2):
        assert sandbox.check(env=env).returncode == 0
        assert list_calls(log) == ["plain"]  # after the notes, then ahead of them

    # A skill line comes: asked ahead as before, then again for what the line needs.
    add_skill_line(sandbox, "docs")
    list_calls(log)
    assert sandbox.check(env=env).returncode == 0
    assert list_calls(log) == ["plain", "commands"]
    assert sandbox.check(env=env).returncode == 0
    assert list_calls(log) == ["commands"]  # the answer asked ahead is the one looked at

    # The completion hook's check of one entry asks for what that entry needs, and
    # leaves how the next check asks alone.
    assert sandbox.check("--only", "api", env=env).returncode == 0
    assert list_calls(log) == ["plain"]
    assert sandbox.check(env=env).returncode in (0, 1)
    assert list_calls(log)[0] == "commands"

    # The setting names another socket: nothing is asked ahead there, and how this
    # socket is asked is kept for the checks that name it.
    elsewhere = f"{sandbox.socket}-elsewhere"
    sandbox.check(env=dict(env, HEARTBEAT_SOCKET=elsewhere))
    assert list_calls(log, elsewhere) == []
    sandbox.check(env=env)
    assert list_calls(log) == ["commands"]

    # No entry is left on the configured socket: asked ahead once more, then not at all.
    sandbox.write_note("## Active Long-Running Processes\n\nNothing runs.\n")
    sandbox.check(env=env)
    assert list_calls(log)[:1] == ["commands"]
    sandbox.check(env=env)
    assert list_calls(log) == []


@pytest.mark.parametrize(
    "written",
    [b'{"elsewhere": ["commands"], "x": {}}', b"[" * 5000, b"\xff", b"plain\n/sock\n", b"[]"],
)
def test_an_ask_ahead_file_not_as_heartbeat_writes_it_is_written_anew(
    sandbox: Sandbox, written: bytes
) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    ahead = sandbox.state / "ask-ahead"
    ahead.write_bytes(written)
    ahead.chmod(0o600)
    env, log = logging_tmux(sandbox)

    result = sandbox.check(env=env)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert list_calls(log) == ["plain"]  # asked after the notes, as if no file were there
    assert json.loads(ahead.read_text())[sandbox.socket] == "plain"
    sandbox.check(env=env)
    assert list_calls(log) == ["plain"]


def test_the_configured_socket_is_asked_before_the_notes_are_read(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime

    from heartbeat.check import run as core

    launch(sandbox, "api", "codex", "exec", "work")
    env, log = logging_tmux(sandbox)
    sandbox.check(env=env)  # learns how the socket is asked
    list_calls(log)
    asked_first: list[bool] = []
    read_all = Notebook.read_all

    def reading(book: Notebook) -> None:
        asked_first.append(retry_until(lambda: log.exists(), 5, interval=0.01, raises=False))
        read_all(book)

    monkeypatch.setattr(Notebook, "read_all", reading)
    outcome = core.check(config.load(env), datetime.fromisoformat(sandbox.env["HEARTBEAT_NOW"]))

    assert asked_first == [True]
    assert (outcome.changes, outcome.problems) == ([], [])
    assert list_calls(log) == ["plain"]


def test_a_session_logged_after_tmux_was_asked_ahead_is_not_taken_for_dead(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skill's order: the session first, then its line in the note. Both can happen
    between tmux's answer asked ahead and the reading of the notes."""
    from datetime import datetime

    from heartbeat.check import run as core

    launch(sandbox, "api", "codex", "exec", "work")
    logged = sandbox.note().read_text()
    entry = f"- late: `codex exec late`\n  - dir: {sandbox.root}\n"
    sandbox.write_note(logged + entry)
    sandbox.allow("late")  # approved as the person would, then logged again below
    sandbox.write_note(logged)
    env, answered = logging_tmux(sandbox, answered=True)
    assert sandbox.check(env=env).returncode == 0  # learns how the socket is asked
    answered.unlink()
    read_all = Notebook.read_all

    def the_person_launches_meanwhile(book: Notebook) -> None:
        retry_until(answered.exists, 5, interval=0.01)  # tmux has answered, ahead
        sandbox.server.new_session("late", window_command="sleep 600")
        started.append(pane_pid())
        with sandbox.note().open("a") as note:
            note.write(entry)
        read_all(book)

    def pane_pid() -> str:
        return "".join(
            sandbox.server.cmd("display-message", "-p", "-t", "=late:", "#{pane_pid}").stdout
        )

    started: list[str] = []
    monkeypatch.setattr(Notebook, "read_all", the_person_launches_meanwhile)
    outcome = core.check(config.load(env), datetime.fromisoformat(sandbox.env["HEARTBEAT_NOW"]))

    assert outcome.problems == []
    assert [change.line() for change in outcome.changes if "restarted" in change.line()] == []
    assert started == [pane_pid()]  # the session the person started, left alone
    assert list_calls(answered) == ["plain", "plain"]  # asked again, after the notes


def test_a_session_stopped_and_its_entry_deleted_after_tmux_was_asked_ahead_is_not_reported(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer asked ahead is older than the notes: an entry gone from them is judged
    by tmux asked again, not by that answer."""
    from datetime import datetime

    from heartbeat.check import run as core

    launch(sandbox, "web", "codex", "exec", "web")
    without_api = sandbox.note().read_text()
    launch(sandbox, "api", "codex", "exec", "work")
    env, log = logging_tmux(sandbox, answered=True)
    assert sandbox.check(env=env).returncode == 0  # learns how the socket is asked
    list_calls(log)
    read_all = Notebook.read_all

    def the_person_stops_it_meanwhile(book: Notebook) -> None:
        retry_until(log.exists, 5, interval=0.01)  # tmux has answered, ahead
        sandbox.server.cmd("kill-session", "-t", "=api")
        sandbox.write_note(without_api)
        read_all(book)

    monkeypatch.setattr(Notebook, "read_all", the_person_stops_it_meanwhile)
    outcome = core.check(config.load(env), datetime.fromisoformat(sandbox.env["HEARTBEAT_NOW"]))

    assert (outcome.unwatched, outcome.problems) == ([], [])
    assert list_calls(log) == ["plain", "plain"]  # the gone entry asked about again


WHOLE_AFTERWARDS = """
import sys
from heartbeat.check import run
from heartbeat.tmux import server
server._libtmux_runner()
assert "libtmux.server" not in sys.modules  # libtmux's object model is not built ...
import libtmux
import heartbeat
print(libtmux.server.__name__, libtmux.Server.__name__, libtmux.common.tmux_cmd.__name__)
print(heartbeat.work.verify.__name__)  # a lazily loaded module is its package's attribute
"""


def test_libtmux_and_lazy_modules_stay_whole_for_other_code() -> None:
    """... yet code that imports libtmux in the same process gets all of it."""
    result = subprocess.run(
        [sys.executable, "-c", WHOLE_AFTERWARDS], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "libtmux.server Server tmux_cmd\nheartbeat.work.verify\n"


PARTS = st.lists(st.sampled_from(["a", "b", "..", ".", "memory", "2026-11-24.md"]), max_size=5)


@given(here=PARTS, path=PARTS, absolute=st.booleans())
def test_a_note_is_named_as_relpath_would_name_it(
    here: list[str], path: list[str], absolute: bool
) -> None:
    """Notes are named relative to the current folder without a `relpath` for each."""
    root = Path("/tmp/hb-labels")
    cwd = os.path.normpath(root.joinpath(*here))
    target = root.joinpath(*path) if absolute else Path(*path)
    with mock_cwd(cwd):
        relative = os.path.relpath(target)
        expected = str(target) if relative.startswith("..") else relative
        assert label_of(target) == expected


@contextlib.contextmanager
def mock_cwd(folder: str) -> Iterator[None]:
    """The current folder as `os.getcwd` reports it (the folder need not exist)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "getcwd", lambda: folder)
        yield


def test_a_note_is_named_even_from_a_deleted_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The completion hook runs in the agent's folder, which the agent may have deleted."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert label_of(tmp_path / "memory" / "2026-11-24.md") == f"{tmp_path}/memory/2026-11-24.md"


OPENED_BY_A_QUIET_CHECK = """
import sys
opened = []
def record(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        opened.append(args[0] if isinstance(args[0], str) else args[0].decode())
sys.addaudithook(record)
import os
def report_then_exit(code, exit=os._exit):
    print("\\n".join(opened), file=sys.stderr)
    exit(code)
os._exit = report_then_exit
from heartbeat import cli
sys.argv = ["heartbeat", "check", "--quiet"]
cli.main()
"""


def test_a_quiet_check_opens_no_agent_file_nor_log(sandbox: Sandbox) -> None:
    """Transcripts, rollout files, logins and logs are read for a run that just stopped,
    never by a check that finds everything as it was (every file opened is recorded by
    an audit hook, PEP 578)."""
    launch(sandbox, "api", "codex", "exec", "work")
    launch(sandbox, "docs", "claude", "-p", "write docs")
    home = sandbox.home
    # What the stand-ins wrote (a rollout, a transcript), and the agents' logins.
    agent_files = [p for p in (home / ".codex").rglob("*.jsonl")]
    agent_files += [p for p in (home / ".claude").rglob("*.jsonl")]
    assert agent_files, "the stand-ins write their session files"
    for login in (home / ".codex" / "auth.json", home / ".claude" / ".credentials.json"):
        login.parent.mkdir(parents=True, exist_ok=True)
        login.write_text("{}")
    settled(sandbox.note())
    sandbox.check()
    sandbox.check()  # the steady state: nothing changed since

    quiet = subprocess.run(
        [sys.executable, "-c", OPENED_BY_A_QUIET_CHECK],
        env=sandbox.env,
        cwd=sandbox.root,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert quiet.returncode == 0, quiet.stderr
    opened = {os.path.realpath(os.path.join(sandbox.root, p)) for p in quiet.stderr.split("\n")}
    assert not {p for p in opened if p.startswith(os.path.realpath(home))}
    state = os.path.realpath(sandbox.state)
    in_state = {os.path.basename(p) for p in opened if p.startswith(state + os.sep)}
    # The state, the parse cache, the approvals and the lock: no log of any run.
    # heartbeat's own small files only (installed.json: the notes folder the schedule
    # checks, which a check compares with its own; ask-ahead: how tmux is asked ahead).
    kept = {"state.json", "notes.cache", "allowed.json", "lock", "last-check", "installed.json"}
    kept.add("ask-ahead")
    assert in_state <= kept
    assert "state.json" in in_state  # the hook saw the files the check did open
