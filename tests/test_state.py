"""The state file keeps its format across the records' move to frozen dataclasses, and
an earlier one gains a new field without losing any."""

from __future__ import annotations

import json
import os
from pathlib import Path

from heartbeat import records, state
from heartbeat.model import State

# Written by `state.save` of the layout before records were frozen (every field set).
EARLIER = (
    '{"version":1,"records":{"/tmp/sock\\tapi":{"state":"failed","exit_code":3,'
    '"run":"20261124T1000-0a1b2c3d","path":"/usr/bin:/bin","pid":4242,"pane_id":"%7",'
    '"activity":1700000000,"since":"2026-11-24 10:00","last_start":"2026-11-24T09:00:00",'
    '"failures":["2026-11-24T10:00:00"],"not_before":"2026-11-24T11:00:00","forgiven":false,'
    '"digest":"' + "ab" * 32 + '","baseline_at":"2026-11-24T09:00:00","baseline_head":"c0ffee",'
    '"baseline_prd":["Add tests","Write docs"],"verdict":"no changes",'
    '"seen_activity":1700000000,"quiet_since":"2026-11-24T09:30:00","commit_asked":null}},'
    '"printed":["memory/2026-11-24.md: a problem"],"servers":{"/tmp/sock":999},'
    '"pending":{},"written":[]}\n'
)


def test_an_earlier_state_file_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(EARLIER)
    saved = state.load(tmp_path)

    assert saved.warning is None
    record = saved.records[state.StateFile.key("/tmp/sock", "api")]
    assert (record.state, record.exit_code, record.pid) == (State.FAILED, 3, 4242)
    assert record.failures == ("2026-11-24T10:00:00",)
    assert record.baseline is not None
    assert record.baseline.prd_ticked == frozenset({"Add tests", "Write docs"})
    assert saved.servers == {"/tmp/sock": 999}


def test_an_earlier_state_file_is_written_once_in_short_then_stays_unwritten(
    tmp_path: Path,
) -> None:
    """A record is written without the fields at their defaults (new fields among them),
    once; then a quiet check writes nothing, and a change writes just that field."""
    path = tmp_path / "state.json"
    path.write_text(EARLIER)
    state.save(tmp_path, state.load(tmp_path))  # the first check after the upgrade
    expected = json.loads(EARLIER)
    key = state.StateFile.key("/tmp/sock", "api")
    del expected["records"][key]["forgiven"], expected["records"][key]["commit_asked"]
    assert path.read_text() == json.dumps(expected, separators=(",", ":")) + "\n"
    assert state.load(tmp_path).records == state.load(tmp_path).records

    before = os.stat(path)
    saved = state.load(tmp_path)
    state.save(tmp_path, saved)  # what a quiet check does
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    saved.records[key] = records.replace(saved.records[key], exit_code=2, session="s1")
    state.save(tmp_path, saved)
    expected["records"][key]["exit_code"] = 2
    expected["records"][key]["session"] = "s1"
    assert path.read_text() == json.dumps(expected, separators=(",", ":")) + "\n"
    assert state.load(tmp_path).records[key] == saved.records[key]


def test_every_field_of_a_record_is_read_back_as_written(tmp_path: Path) -> None:
    """Each field set away from its default survives a save and a load."""
    full = records.replace(
        state.load(tmp_path / "none").record("/s", "x"),
        **{
            "state": State.RUNNING,
            "exit_code": 0,
            "run": "r",
            "path": "/bin",
            "pid": 7,
            "pane_id": "%1",
            "activity": 5,
            "since": "2026-11-24 10:00",
            "last_start": "2026-11-24T10:00:00",
            "failures": ("2026-11-24T10:00:00",),
            "not_before": "2026-11-24T11:00:00",
            "forgiven": True,
            "digest": "d",
            "baseline_at": "2026-11-24T09:00:00",
            "baseline_head": "c0ffee",
            "baseline_prd": ("Add tests",),
            "verdict": "verified",
            "seen_activity": 6,
            "quiet_since": "2026-11-24T09:30:00",
            "commit_asked": "2026-11-24T09:40:00",
            "told": ("m:run:kind",),
            "session": "s",
            "resumed": True,
            "stale_session": "t",
            "resume_failed": "why",
            "started_at": 1700000000.5,
            "homes": (("CODEX_HOME", "/h"),),
            "baseline_dirty": (("a.py", "f1"),),
            "baseline_from": "2026-11-24T08:00:00",
            "log": "l.log",
            "note": "n.md",
            "left_notes": True,
            "restarts_day": "2026-11-24",
            "restarts_that_day": 2,
        },
    )
    defaults = state.load(tmp_path / "none").record("/s", "x")
    assert all(
        getattr(full, item.name) != getattr(defaults, item.name) for item in records.fields(full)
    ), "every field is set"
    saved = state.StateFile({"/s\tx": full})
    state.save(tmp_path, saved)

    assert state.load(tmp_path).records == {"/s\tx": full}


def test_times_with_a_zone_rebuild_the_state(tmp_path: Path) -> None:
    raw = json.loads(EARLIER)
    raw["records"]["/tmp/sock\tapi"]["not_before"] = "2026-11-24T09:00:00+00:00"
    (tmp_path / "state.json").write_text(json.dumps(raw))

    saved = state.load(tmp_path)

    assert saved.records == {}
    assert saved.warning is not None and "rebuilding it from tmux and the notes" in saved.warning


def test_a_notification_time_with_a_zone_rebuilds_the_state(tmp_path: Path) -> None:
    """The rate of notifications counts from naive local times: a zoned one, written by
    hand, would make every later check fail on its arithmetic."""
    raw = json.loads(EARLIER)
    raw["folded"] = {"m": {"name": "x", "events": ["restarted"]}}
    raw["sent"] = {"m": ["2026-11-24T09:00:00+05:00"]}
    (tmp_path / "state.json").write_text(json.dumps(raw))

    saved = state.load(tmp_path)

    assert saved.sent == {} and saved.records == {}
    assert saved.warning is not None and "rebuilding it from tmux and the notes" in saved.warning


def test_a_record_with_a_key_heartbeat_does_not_know_is_written_without_it(
    tmp_path: Path,
) -> None:
    """Unchanged records are written as they were read, but only those already as `save`
    writes them: one with an unknown key (or a field at its default) is written anew."""
    raw = json.loads(EARLIER)
    key = state.StateFile.key("/tmp/sock", "api")
    raw["records"][key] = {"state": "running", "pid": 7, "from_the_future": 1}
    raw["records"]["/tmp/sock\tweb"] = {"state": "running", "pid": 8}
    (tmp_path / "state.json").write_text(json.dumps(raw, separators=(",", ":")) + "\n")

    state.save(tmp_path, state.load(tmp_path))

    records = json.loads((tmp_path / "state.json").read_text())["records"]
    assert records == {
        key: {"state": "running", "pid": 7},
        "/tmp/sock\tweb": raw["records"]["/tmp/sock\tweb"],
    }
