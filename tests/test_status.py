"""`heartbeat status`: its states, its columns, and `--json`'s schema."""

from __future__ import annotations

import json
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW, Sandbox
from test_launch_and_check import launch

from heartbeat.agents import approval_prompt
from heartbeat.model import Entry, Observation, Pane, Record, Span, State
from heartbeat.verbs import status as statuses

CAPTURES = Path(__file__).parent / "captures"
SECTION = "## Active Long-Running Processes\n\n"


def at(box: Sandbox, minutes: float) -> dict[str, str]:
    moment = datetime.fromisoformat(NOW) + timedelta(minutes=minutes)
    return dict(box.env, HEARTBEAT_NOW=moment.isoformat())


def status_json(box: Sandbox, *flags: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = box.run("status", "--json", *flags, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def rows_by_name(box: Sandbox, *flags: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return {row["name"]: row for row in status_json(box, *flags, env=env)["entries"]}


def tmux(box: Sandbox, *args: str) -> None:
    subprocess.run(["tmux", "-S", box.socket, *args], env=box.env, check=True)


# --- --json's schema ---------------------------------------------------------------------

ENTRY_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "state": (str,),
    "since": (str, type(None)),
    "next_restart": (str, type(None)),
    "reason": (str, type(None)),
    "verdict": (str, type(None)),
    "session_id": (str, type(None)),
    "restarts_today": (int,),
    "socket": (str,),
    "note": (dict, type(None)),
    "last_status": (str, type(None)),
    "needs_person": (bool,),
    "dir": (str,),
    "command": (str,),
    "prd": (str, type(None)),
    "until": (str, type(None)),
}
HEARTBEAT_KEYS: dict[str, tuple[type, ...]] = {
    "last_check": (str, type(None)),
    "scheduler_installed": (bool,),
    "scheduler": (str, type(None)),
    "schedule": (str, type(None)),
    "next_check": (str, type(None)),
    "running": (bool,),
    "notes": (str,),
    "socket": (str,),
    "problems": (list,),
}
TIMES = ("since", "next_restart", "until")
STATES = {state.value for state in State}


def assert_schema(report: dict[str, Any]) -> None:
    """The README's schema, checked by hand: every key, its type, times in ISO 8601
    with an offset, states from the documented list."""
    assert set(report) == {"heartbeat", "entries"}
    about = report["heartbeat"]
    assert set(about) == set(HEARTBEAT_KEYS)
    for key, types in HEARTBEAT_KEYS.items():
        assert isinstance(about[key], types), (key, about[key])
    assert all(isinstance(problem, str) for problem in about["problems"])
    for key in ("last_check", "next_check"):
        if about[key] is not None:
            assert datetime.fromisoformat(about[key]).tzinfo is not None, about[key]
    for row in report["entries"]:
        assert set(row) == set(ENTRY_KEYS), row
        for key, types in ENTRY_KEYS.items():
            assert isinstance(row[key], types), (key, row[key])
            assert not (types == (int,) and isinstance(row[key], bool)), key
        assert row["state"] in STATES
        for key in TIMES:
            if row[key] is not None:
                assert datetime.fromisoformat(row[key]).tzinfo is not None, (key, row[key])
        if row["note"] is not None:
            assert set(row["note"]) == {"path", "line"}
            assert isinstance(row["note"]["path"], str) and isinstance(row["note"]["line"], int)


def test_status_json_follows_its_schema_for_every_kind_of_row(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    launch(sandbox, "loop", "codex", "exec", "exit:1")
    sandbox.wait(lambda: "EXITED: 1" in sandbox.pane_text("loop"))
    sandbox.check()  # restarted at once; its next end waits for the backoff
    sandbox.wait(lambda: len(sandbox.calls()) == 3)
    sandbox.wait(lambda: sandbox.pane_text("loop").count("EXITED: 1") >= 1)
    assert "restart after" in sandbox.check(env=at(sandbox, 0.5)).stdout
    note = sandbox.note()
    note.write_text(note.read_text() + f"- hand: `codex exec other`\n  - dir: {sandbox.root}\n")
    tmux(sandbox, "new-session", "-d", "-s", "stray", "sleep", "300")

    report = status_json(sandbox, env=at(sandbox, 0.6))

    assert_schema(report)
    rows = {row["name"]: row for row in report["entries"]}
    assert {name: row["state"] for name, row in rows.items()} == {
        "api": "running",
        "loop": "failed",
        "hand": "needs approval",
        "stray": "unlisted",
    }
    assert rows["api"]["note"] == {"path": str(note), "line": rows["api"]["note"]["line"]}
    assert (
        note.read_text().splitlines()[rows["api"]["note"]["line"] - 1].startswith("- [ ] **api**")
    )
    loop = rows["loop"]
    assert loop["restarts_today"] == 1
    # Its second failed end, at 10:00:30, backs off a minute.
    assert loop["next_restart"] == datetime(2026, 11, 24, 10, 1, 30).astimezone().isoformat()
    assert loop["reason"] == "restart after 10:01"
    assert loop["last_status"].endswith("— failed (exit 1) · not a git repo, restart after 10:01")
    about = report["heartbeat"]
    assert about["scheduler_installed"] is False and about["running"] is False
    assert about["last_check"] is not None
    assert about["notes"] == str(sandbox.notes) and about["socket"] == sandbox.socket


def test_times_carry_the_local_offset(sandbox: Sandbox) -> None:
    sandbox.env["TZ"] = "Asia/Kolkata"  # +05:30: an offset that is not whole hours
    launch(sandbox, "api", "codex", "exec", "work")

    row = rows_by_name(sandbox)["api"]

    assert row["since"] is not None and row["since"].endswith("+05:30")


# --- the states --------------------------------------------------------------------------


def test_an_unapproved_entry_needs_approval_never_dead(sandbox: Sandbox) -> None:
    sandbox.write_note(
        SECTION
        + f"- gone: `codex exec work`\n  - dir: {sandbox.root}\n"
        + f"- up: `codex exec work`\n  - dir: {sandbox.root}\n"
    )
    tmux(sandbox, "new-session", "-d", "-s", "up", "sleep", "300")  # started by hand
    before = rows_by_name(sandbox)
    assert sandbox.check().returncode == 1  # the check asks for approval of `gone`

    after = rows_by_name(sandbox)

    for rows in (before, after):
        assert {name: row["state"] for name, row in rows.items()} == {
            "gone": "needs approval",
            "up": "needs approval",
        }
        assert rows["gone"]["reason"] == "new command: heartbeat allow gone"
        assert rows["gone"]["needs_person"] is True
    table = sandbox.run("status")
    assert table.returncode == 1  # a person is needed
    assert "needs approval" in table.stdout and "heartbeat allow gone" in table.stdout


def test_an_agent_at_its_approval_prompt_is_waiting_for_input(sandbox: Sandbox) -> None:
    launch(sandbox, "chat", "claude", "ask-permission")  # interactive: no -p
    launch(sandbox, "tui", "codex", "ask-approval")  # the TUI, not `codex exec`
    sandbox.wait(lambda: "❯ 1. Yes" in sandbox.pane_text("chat"))
    sandbox.wait(lambda: "Press enter to confirm" in sandbox.pane_text("tui"))
    note_before = sandbox.note().read_bytes()
    quiet = sandbox.check("--quiet")  # reads no pane of a running agent: silent

    rows = rows_by_name(sandbox)

    assert (quiet.returncode, quiet.stdout) == (0, "")
    assert sandbox.note().read_bytes() == note_before
    assert (rows["chat"]["state"], rows["chat"]["reason"]) == (
        "waiting for input",
        "Do you want to proceed?",
    )
    assert (rows["tui"]["state"], rows["tui"]["reason"]) == (
        "waiting for input",
        "Would you like to run the following command?",
    )
    assert rows["chat"]["needs_person"] and rows["tui"]["needs_person"]

    # Answered: the prompt is gone, and so is the state.
    for name in ("chat", "tui"):
        sandbox.server.cmd("send-keys", "-t", f"={name}:", "1", "Enter")
    sandbox.wait(lambda: "PASS src/test_7.js" in sandbox.pane_text("chat"))
    sandbox.wait(lambda: "tests/test_7.py" in sandbox.pane_text("tui"))
    answered = rows_by_name(sandbox)
    assert (answered["chat"]["state"], answered["tui"]["state"]) == ("running", "running")


# Panes as the agents draw them. Claude Code: anthropics/claude-code#29925 and #64638
# ("Do you want to proceed?" / "> 1. Yes", the cursor U+276F), #9147 ("Do you want to make this edit to
# create_plan.md?"). Codex: codex-rs/tui/src/bottom_pane/approval_overlay.rs (the title,
# "Yes, proceed", "No, and tell Codex what to do differently", the footer).
@pytest.mark.parametrize(
    ("command", "capture", "question"),
    [
        ("claude", "claude-permission-prompt.txt", "Do you want to proceed?"),
        ("claude", "claude-edit-prompt.txt", "Do you want to make this edit to create_plan.md?"),
        ("codex", "codex-approval-overlay.txt", "Would you like to run the following command?"),
        (
            "codex --model o3",
            "codex-edits-overlay.txt",
            "Would you like to make the following edits?",
        ),
    ],
)
def test_each_agent_recognises_its_own_approval_prompt(
    command: str, capture: str, question: str
) -> None:
    screen = (CAPTURES / capture).read_text().splitlines()

    assert approval_prompt(command, screen) == question
    # Another agent's prompt is not its own; a headless run never asks; a prompt the
    # agent's later output pushed up is over.
    other = "codex" if command.startswith("claude") else "claude"
    assert approval_prompt(other, screen) is None
    headless = "claude -p task" if command.startswith("claude") else "codex exec task"
    assert approval_prompt(headless, screen) is None
    assert approval_prompt(command, [*screen, *(f"output {n}" for n in range(8))]) is None


def test_a_limit_menu_is_no_approval_prompt() -> None:
    """Claude Code's `/rate-limit-options` menu is numbered too (waiting, not asking)."""
    screen = (CAPTURES / "claude-limit-resets.txt").read_text().splitlines()
    menu = ["What do you want to do?", "❯ 1. Stop and wait for limit to reset", "  2. Upgrade"]

    assert approval_prompt("claude", [*screen, *menu]) is None


def test_a_carried_over_entry_shows_its_last_real_status(sandbox: Sandbox) -> None:
    sandbox.write_note(
        SECTION
        + f"- [ ] **api** — `codex exec work`\n  - dir: `{sandbox.root}`\n"
        + "  - 2026-11-23 09:00 — dead · not a git repo, restarted\n"
        + "  - 2026-11-23 09:30 — running again\n",
        day="2026-11-23",
    )
    sandbox.allow("api")
    tmux(sandbox, "new-session", "-d", "-s", "api", "sleep", "300")
    assert sandbox.check().stdout == ""  # rolled over; running, so nothing to say
    assert "carried over from 2026-11-23.md" in sandbox.note().read_text()

    row = rows_by_name(sandbox)["api"]

    assert row["last_status"] == "2026-11-23 09:30 — running again"
    assert row["note"]["path"] == str(sandbox.note())


def test_a_new_run_of_a_name_shows_none_of_an_earlier_runs_status(sandbox: Sandbox) -> None:
    sandbox.write_note(
        SECTION
        + f"- [x] **api** — `codex exec work`\n  - dir: `{sandbox.root}`\n"
        + "  - 2026-11-23 09:00 — finished (exit 0)\n",
        day="2026-11-23",
    )
    launch(sandbox, "api", "codex", "exec", "work")  # a new entry, not a carried copy

    assert rows_by_name(sandbox)["api"]["last_status"] is None


def test_restarts_are_counted_per_local_day(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    for minutes in (1, 30):
        sandbox.server.cmd("kill-session", "-t", "=api")
        restarted = sandbox.check(env=at(sandbox, minutes))
        # The change line as the states say it: never `dead -> dead`.
        assert restarted.stdout == "api: running -> dead (restarted)\n"
        sandbox.wait(lambda: sandbox.alive("api"))

    today = rows_by_name(sandbox, env=at(sandbox, 31))["api"]
    tomorrow = rows_by_name(sandbox, env=at(sandbox, 24 * 60))["api"]

    assert (today["restarts_today"], tomorrow["restarts_today"]) == (2, 0)
    table = sandbox.run("status", env=at(sandbox, 31)).stdout.splitlines()
    assert next(line for line in table if line.startswith("api ")).split()[3] == "2"


def test_record_counts_restarts_of_one_day() -> None:
    monday, tuesday = date(2026, 11, 23), date(2026, 11, 24)
    record = Record().restarted(monday).restarted(monday)

    assert (record.restarts_on(monday), record.restarts_on(tuesday)) == (2, 0)
    assert record.restarted(tuesday).restarts_on(tuesday) == 1


def test_all_adds_the_finished_and_closed_entries(sandbox: Sandbox) -> None:
    launch(sandbox, "done", "codex", "exec", "exit:0")
    launch(sandbox, "api", "codex", "exec", "work")
    sandbox.wait(lambda: "EXITED: 0" in sandbox.pane_text("done"))
    sandbox.check()  # closes `done`
    note = sandbox.note()
    note.write_text(note.read_text().replace("- [ ] **api**", "- [x] **api**"))  # by hand

    default = rows_by_name(sandbox)
    everything = rows_by_name(sandbox, "--all")

    # A finished run's session sits in its tail until `clean`: shown as such either way;
    # an entry closed by hand while its agent runs is shown with --all alone.
    assert {name: row["state"] for name, row in default.items()} == {"done": "tail"}
    assert {name: row["state"] for name, row in everything.items()} == {
        "done": "tail",
        "api": "closed",
    }
    assert everything["done"]["verdict"] is not None
    sandbox.run("clean")
    assert {name: row["state"] for name, row in rows_by_name(sandbox, "--all").items()} == {
        "done": "finished",
        "api": "closed",
    }


# --- the rows, from facts: what a live view rebuilds ------------------------------------


def entry(name: str = "api", command: str = "claude") -> Entry:
    return Entry(
        name, "/s", "/w", command, True, "m.md", date(2026, 11, 24), Span(0, 0, 3, "  ", "-")
    )


def pane(name: str = "api") -> Pane:
    created = int(datetime.fromisoformat(NOW).timestamp()) - 600
    return Pane(name, "%1", 42, "claude", None, None, created, created)


def test_rows_are_built_from_facts_alone() -> None:
    now = datetime.fromisoformat(NOW)
    prompt = ("Do you want to proceed?", "❯ 1. Yes", "  2. No")
    up = Observation(present=True)
    seen = statuses.Seen(
        looks=[
            statuses.Look(entry("a"), Path("/n/x.md"), Record(), True, statuses.SILENT),
            statuses.Look(entry("b"), Path("/n/x.md"), Record(), False, statuses.ANSWERED),
            statuses.Look(
                entry("c"),
                Path("/n/x.md"),
                Record(),
                True,
                statuses.ANSWERED,
                pane=pane("c"),
                observed=up,
                screen=prompt,
            ),
        ],
        strays=[("/s", pane("d"))],
    )

    rows = statuses.rows(seen, now)

    assert [(row.name, row.state) for row in rows] == [
        ("a", "unknown"),
        ("b", "needs approval"),
        ("c", "waiting for input"),
        ("d", "unlisted"),
    ]
    assert rows[2].since == now - timedelta(minutes=10)
    assert statuses.rows(seen, now) == rows  # nothing in it looks again
