"""What one `heartbeat check` costs, beside the floor (starting Python, one tmux list).

Builds a private tmux socket with N live sessions and D days of realistic notes (front
matter, prose, other sections, about 17 entries a day, most closed with status history;
the N running ones listed in today's note), then times `heartbeat check` as a whole
process: cold (the first run after a line was added at the end of today's note, below
its entries' section), cold in the section (a line added within that section, which is
then read again) and warm (nothing changed), the median of --runs runs each, each run
beside a run of the floor (so the ratio to the floor compares runs made in the same
moments of a busy machine). It also counts tmux processes per check (tmux is pointed to
a counting wrapper), the peak memory of a cold check, and the bytes added to the notes
over 100 checks with no state change.

The running entries are written in one of the note's forms (`--forms`): `launched` (what
`heartbeat launch` writes), `hand` (`NAME: `COMMAND`` with `dir:` and `socket:`), `skill`
(the skill's own tmux line in a fenced block) or `mix` (the three in turn), each approved
as `heartbeat allow` would approve it.

Usage: python bench/check.py [--sessions 50 500 2000] [--days 30 ...] [--forms launched ...]
       [--runs 10] [--json]
(a row for each form, number of sessions and of days; warm and cold times are the median
of the runs, with the lowest and highest beside them)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from heartbeat.notes.cache import SETTLE_NS

ENTRIES_A_DAY = 17
FORMS = ("launched", "hand", "skill", "mix")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[50, 500, 2000])
    parser.add_argument("--days", type=int, nargs="+", default=[30])
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=list(FORMS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [
        measure(form, n, d, args.runs)
        for form in args.forms
        for d in args.days
        for n in args.sessions
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    header = (
        "form",
        "sessions",
        "days",
        "floor ms",
        "warm ms",
        "range",
        "x floor",
        "cold ms",
        "range",
        "x floor",
        "section ms",
        "range",
        "x floor",
        "tmux/check",
        "peak MiB",
        "written/100",
    )
    print("  ".join(f"{h:>10}" for h in header))
    for r in results:
        row = (
            r["form"],
            r["sessions"],
            r["days"],
            r["floor_ms"],
            r["warm_ms"],
            f"{r['warm_min_ms']:.0f}-{r['warm_max_ms']:.0f}",
            r["warm_ratio"],
            r["cold_ms"],
            f"{r['cold_min_ms']:.0f}-{r['cold_max_ms']:.0f}",
            r["cold_ratio"],
            r["section_ms"],
            f"{r['section_min_ms']:.0f}-{r['section_max_ms']:.0f}",
            r["section_ratio"],
            r["tmux_per_check"],
            r["peak_mib"],
            r["bytes_written"],
        )
        print("  ".join(f"{v:>10}" for v in row))


def measure(form: str, sessions: int, days: int, runs: int) -> dict[str, float | int | str]:
    root = Path(tempfile.mkdtemp(prefix="hbc", dir="/tmp"))
    socket = root / "s"
    try:
        env = environment(root, socket)
        start_sessions(socket, sessions)
        write_notes(root / "memory", form, sessions, days, str(root), str(socket))
        approve_all(env)
        check = [sys.executable, "-m", "heartbeat", "check", "--quiet"]
        subprocess.run(check, env=env, capture_output=True)  # first sighting: status lines
        # A note written moments ago is parsed again rather than cached (its stamp could
        # still move within the clock's tick); checks run a minute apart, so let it settle.
        time.sleep(SETTLE_NS / 1e9 + 0.1)
        subprocess.run(check, env=env, capture_output=True)
        # Each run of the check beside a run of the floor, in turn: a busy moment of the
        # machine then weighs on both, not on one side of the ratio.
        floor_warm, warm = timed_in_turn(
            lambda: floor_run(socket),
            lambda: subprocess.run(check, env=env, capture_output=True),
            runs,
        )
        today = root / "memory" / f"{date.today().isoformat()}.md"

        def cold() -> None:
            with today.open("a") as note:  # a person adds a line to today's note
                note.write("- another meeting note\n")
            subprocess.run(check, env=env, capture_output=True)

        floor_cold, cold_times = timed_in_turn(lambda: floor_run(socket), cold, runs)

        def cold_in_section() -> None:
            # A line in the entries' own section (as when a person logs an entry by
            # hand), written in place as an editor saves: that section is read again.
            text = today.read_text()
            today.write_text(
                text.replace("\n## Meetings", "\nA line about the work.\n\n## Meetings")
            )
            subprocess.run(check, env=env, capture_output=True)

        floor_section, section_times = timed_in_turn(
            lambda: floor_run(socket), cold_in_section, runs
        )
        floor = floor_warm + floor_cold + floor_section
        counter = root / "tmux-calls"
        counter.write_text("")
        subprocess.run(
            check, env=env | {"HEARTBEAT_TMUX": str(root / "counting-tmux")}, capture_output=True
        )
        tmux_calls = len(counter.read_text().splitlines())
        with today.open("a") as note:  # the peak of a cold check, the larger
            note.write("- one more meeting note\n")
        peak = peak_mib(check, env)
        subprocess.run(check, env=env, capture_output=True)
        time.sleep(SETTLE_NS / 1e9 + 0.1)
        subprocess.run(check, env=env, capture_output=True)
        before = snapshot(root / "memory", root / "state")
        for _ in range(100):
            subprocess.run(check, env=env, capture_output=True)
        written = bytes_written(before, snapshot(root / "memory", root / "state"))
        return {
            "form": form,
            "sessions": sessions,
            "days": days,
            "floor_ms": round(statistics.median(floor), 1),
            "warm_ms": round(statistics.median(warm), 1),
            "warm_min_ms": round(min(warm), 1),
            "warm_max_ms": round(max(warm), 1),
            "warm_ratio": round(statistics.median(warm) / statistics.median(floor_warm), 1),
            "cold_ms": round(statistics.median(cold_times), 1),
            "cold_min_ms": round(min(cold_times), 1),
            "cold_max_ms": round(max(cold_times), 1),
            "cold_ratio": round(statistics.median(cold_times) / statistics.median(floor_cold), 1),
            "section_ms": round(statistics.median(section_times), 1),
            "section_min_ms": round(min(section_times), 1),
            "section_max_ms": round(max(section_times), 1),
            "section_ratio": round(
                statistics.median(section_times) / statistics.median(floor_section), 1
            ),
            "tmux_per_check": tmux_calls,
            "peak_mib": round(peak, 1),
            "bytes_written": written,
        }
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def approve_all(env: dict[str, str]) -> None:
    """Approve every entry, as `heartbeat allow NAME` would for each (in one process:
    thousands of `allow` runs would take minutes)."""
    program = (
        "from datetime import datetime\n"
        "from heartbeat import config, trust\n"
        "from heartbeat.notes.notebook import Notebook\n"
        "import os\nsettings = config.load(os.environ)\n"
        "book = Notebook(settings, datetime.now().date())\n"
        "book.read_all()\n"
        "allowed = trust.AllowList.load(settings.state_dir)\n"
        "for loaded in book.loaded:\n"
        "    for entry in loaded.note.entries:\n"
        "        allowed.allow(entry, 'bench')\n"
        "allowed.save()\n"
    )
    subprocess.run([sys.executable, "-c", program], env=env, check=True)


def snapshot(*folders: Path) -> dict[Path, tuple[int, int]]:
    return {
        path: (path.stat().st_size, path.stat().st_mtime_ns)
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file()
    }


def bytes_written(before: dict[Path, tuple[int, int]], after: dict[Path, tuple[int, int]]) -> int:
    """The size of every file that appeared or changed (a rewrite counts whole)."""
    return sum(size for path, (size, mtime) in after.items() if before.get(path) != (size, mtime))


def environment(root: Path, socket: Path) -> dict[str, str]:
    (root / "memory").mkdir(mode=0o700)
    (root / "config.toml").write_text("instant_restarts = false\ncompletion_check = false\n")
    tmux = shutil.which("tmux") or "tmux"
    (root / "counting-tmux").write_text(
        f'#!/bin/sh\necho x >> {root / "tmux-calls"}\nexec {tmux} "$@"\n'
    )
    (root / "counting-tmux").chmod(0o755)
    env = dict(
        os.environ,
        HOME=str(root),
        HEARTBEAT_NOTES=str(root / "memory"),
        HEARTBEAT_STATE_DIR=str(root / "state"),
        HEARTBEAT_SOCKET=str(socket),
        HEARTBEAT_CONFIG=str(root / "config.toml"),
    )
    env.pop("TMUX", None)
    # As installed: Python keeps compiled modules (the first check writes them).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def start_sessions(socket: Path, count: int) -> None:
    """N sessions in a few tmux calls (a command list per call), each running an agent
    that works without a sound: `sleep` under the name `codex`. Under its own name, every
    pane would sit in the skill's tail command (`sleep 999999`) and look like an agent
    that has ended, which a check reads once to find its `EXITED:` line: 2,000 of them
    take more than one check's time bound, and a warm run would pay for the rest."""
    agent = socket.parent / "agents" / "codex"
    agent.parent.mkdir(exist_ok=True)
    agent.symlink_to(shutil.which("sleep") or "/bin/sleep")
    for first in range(0, count, 100):
        command = ["tmux", "-S", str(socket)]
        for index in range(first, min(first + 100, count)):
            command += ["new-session", "-d", "-s", f"agent{index}", f"{agent} 86400", ";"]
        subprocess.run(command[:-1], check=True)


def write_notes(
    folder: Path, form: str, sessions: int, days: int, workdir: str, socket: str
) -> None:
    today = date.today()
    for back in range(days, -1, -1):
        day = today - timedelta(days=back)
        rows = [
            f"---\ndate: {day}\ntags: [daily]\n---\n\n# {day:%A %d %B}\n",
            "Worked on the API and reviewed two PRs. Notes on the design below.\n",
            "## Active Long-Running Processes\n",
        ]
        for index in range(ENTRIES_A_DAY):
            rows.append(
                f"- [x] **old{back}-{index}** — `codex exec --full-auto 'task {index}'`\n"
                f"  - dir: `{workdir}`\n  - socket: `{socket}`\n  - started: {day} 09:{index:02d}\n"
                f"  - {day} 10:{index:02d} — dead · no changes, restarted\n"
                f"  - {day} 11:{index:02d} — finished (exit 0) · 2 commits · verified\n"
            )
        if back == 0:
            for index in range(sessions):
                rows.append(running_entry(form, index, str(day), workdir, socket))
        rows.append("\n## Meetings\n\n1. Standup.\n2. Planning: next sprint.\n")
        (folder / f"{day}.md").write_text("\n".join(rows))


def running_entry(form: str, index: int, day: str, workdir: str, socket: str) -> str:
    """Entry `agentN`, whose session runs `sleep 86400`, in the given form."""
    if form == "mix":
        form = FORMS[index % 3]
    name = f"agent{index}"
    if form == "launched":
        return (
            f"- [ ] **{name}** — `sleep 86400`\n  - dir: `{workdir}`\n"
            f"  - socket: `{socket}`\n  - started: {day} 08:00\n"
        )
    if form == "hand":
        return f"- {name}: `sleep 86400`\n  - dir: {workdir}\n  - socket: {socket}\n"
    return (
        f'- {name}:\n  ```sh\n  tmux -S {socket} new -d -s {name} "cd {workdir} && \\\n'
        "    sleep 86400; EXIT_CODE=\\$?; echo 'EXITED:' \\$EXIT_CODE; \\\n"
        f"    openclaw system event --text '{name} finished (exit \\$EXIT_CODE)' --mode now; \\\n"
        '    sleep 999999"\n  ```\n'
    )


def floor_run(socket: Path) -> None:
    subprocess.run([sys.executable, "-c", "pass"])
    subprocess.run(["tmux", "-S", str(socket), "list-panes", "-a"], capture_output=True)


def timed_in_turn(
    floor: Callable[[], object], run: Callable[[], object], count: int
) -> tuple[list[float], list[float]]:
    """The times of `count` runs of each, taken in turn (floor, run, floor, run...)."""
    floors: list[float] = []
    runs: list[float] = []
    for _ in range(count):
        floors += timed_ms(floor, 1)
        runs += timed_ms(run, 1)
    return floors, runs


def timed_ms(run: Callable[[], object], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return times


def peak_mib(check: list[str], env: dict[str, str]) -> float:
    """The peak resident memory of one check, from its own rusage."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *check], env=env, capture_output=True, text=True
    )
    kib = int(out.stdout.strip() or 0)
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


if __name__ == "__main__":
    main()
