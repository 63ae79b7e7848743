"""Notes synced between machines: each check manages its own host's entries."""

from __future__ import annotations

import json

from conftest import Sandbox

SECTION = "## Active Long-Running Processes\n\n"


def test_entries_of_another_host_are_listed_as_remote_and_never_restarted(sandbox: Sandbox) -> None:
    sandbox.env["HEARTBEAT_HOST"] = "laptop"
    sandbox.write_note(
        SECTION
        + f"- there: `codex exec there`\n  - dir: {sandbox.root}\n  - host: desktop\n"
        + f"- here: `codex exec here`\n  - dir: {sandbox.root}\n  - host: laptop\n"
    )
    sandbox.allow("there", "here")

    result = sandbox.check()

    assert result.stdout == "here: new -> dead (restarted)\n"
    sandbox.wait(lambda: sandbox.calls() == [f"{sandbox.root}|exec here"])
    rows = json.loads(sandbox.run("status", "--json").stdout)["entries"]
    assert {row["name"]: row["state"] for row in rows} == {"there": "remote", "here": "running"}


def test_a_hand_written_entry_is_adopted_by_the_first_host_that_sees_it(sandbox: Sandbox) -> None:
    sandbox.env["HEARTBEAT_HOST"] = "laptop"
    sandbox.write_note(SECTION + f"- mine: `codex exec x`\n  - dir: {sandbox.root}\n")
    sandbox.allow("mine")
    sandbox.check()
    assert f"  - dir: {sandbox.root}\n  - host: laptop\n" in sandbox.note().read_text()

    other = dict(sandbox.env, HEARTBEAT_HOST="desktop")
    assert sandbox.check(env=other).stdout == ""  # now the laptop's: the desktop leaves it
    assert len(sandbox.calls()) == 1


def test_launch_records_the_host_and_a_carried_entry_keeps_it(sandbox: Sandbox) -> None:
    sandbox.env["HEARTBEAT_HOST"] = "desktop"
    sandbox.write_note(
        SECTION
        + f"- [ ] **old** — `codex exec old`\n  - dir: `{sandbox.root}`\n  - host: desktop\n",
        day="2026-11-23",
    )
    sandbox.allow("old")
    launched = sandbox.run("launch", "api", "--dir", str(sandbox.root), "--", "codex", "exec", "x")
    assert launched.returncode == 0
    sandbox.check()
    text = sandbox.note().read_text()
    assert "**api**" in text and text.count("  - host: desktop\n") == 2


def test_a_host_a_person_changed_is_not_written_over(sandbox: Sandbox) -> None:
    sandbox.env["HEARTBEAT_HOST"] = "laptop"
    sandbox.write_note(SECTION + f"- mine: `codex exec x`\n  - dir: {sandbox.root}\n")
    sandbox.allow("mine")
    sandbox.check()
    moved = sandbox.note().read_text().replace("  - host: laptop\n", "  - host: server\n")
    sandbox.write_note(moved)

    sandbox.check(env=dict(sandbox.env, HEARTBEAT_NOW="2026-11-24T10:05:00"))

    text = sandbox.note().read_text()
    assert "  - host: server\n" in text and "host: laptop" not in text
