"""Properties over arbitrary notes (hypothesis): a check only ever adds lines and ticks."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from conftest import NOW
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_notes_belong_to_the_person import only_insertions_and_ticks

from heartbeat import config
from heartbeat.check import run as core

LINES = st.sampled_from(
    [
        "## Active Long-Running Processes",
        "### Active long-running processes:",
        "## Other",
        "- [ ] **api** — `codex exec work`",
        "- [x] **done** — `true`",
        "- web: `ralphy --codex`",
        "- ~~old~~: `x`",
        '- `tmux -S /tmp/hb-prop/sock new -d -s sk "cd /tmp && codex"`',
        "  - dir: /tmp",
        "  - dir: relative",
        "  - restart: sometimes",
        "  - 2026-11-24 09:00 — dead · not a git repo, restarted",
        "  - 2026-11-24 09:00 — closed: finished (exit 0)",
        "```",
        "- a.b: `touch pwned`",
        "Prose with ünïcode and trailing spaces   ",
        "<details>",
        "</details>",
        "",
        "---",
        "title: [broken",
    ]
)
ROWS = st.one_of(
    st.lists(LINES, max_size=14),  # anything at all
    st.lists(LINES, max_size=14).map(lambda rows: ["## Active Long-Running Processes", *rows]),
)
NOTES = st.tuples(
    ROWS,
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)


def render(note: tuple[list[str], str, bool]) -> str:
    rows, newline, final_newline = note
    return newline.join(rows) + (newline if final_newline else "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NOTES, NOTES)
def test_a_check_on_any_notes_only_adds_lines_and_ticks_boxes(
    older: tuple[list[str], str, bool], newer: tuple[list[str], str, bool]
) -> None:
    texts = [render(older), render(newer)]
    root = Path(tempfile.mkdtemp(prefix="hbp"))
    try:
        notes_dir, state_dir = root / "memory", root / "state"
        notes_dir.mkdir(mode=0o700)
        yesterday = notes_dir / "2026-11-23.md"
        today = notes_dir / "2026-11-24.md"
        yesterday.write_bytes(texts[0].encode())
        today.write_bytes(texts[1].encode())
        env = {
            "HOME": str(root),
            "PATH": "/usr/bin:/bin",
            "HEARTBEAT_NOTES": str(notes_dir),
            "HEARTBEAT_STATE_DIR": str(state_dir),
            "HEARTBEAT_SOCKET": str(root / "sock"),
            "HEARTBEAT_CONFIG": str(root / "config.toml"),
        }
        (root / "config.toml").write_text("")
        # No command is allowed, so nothing runs: only the notes can change.
        core.check(config.load(env), datetime.fromisoformat(NOW))

        for text, path in zip(texts, (yesterday, today), strict=True):
            after = path.read_bytes().decode()
            assert only_insertions_and_ticks(text, after)
            event("changed" if after != text else "unchanged")
    finally:
        shutil.rmtree(root, ignore_errors=True)
