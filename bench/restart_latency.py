"""How long from `tmux kill-session` to the agent running again (median over N kills).

With instant restarts, tmux's session-closed hook runs a check at once. Without them,
cron is the only restarter: a kill waits for the next minute's tick, 30 s on average and
up to 60 s, which is printed beside the measured figure (arithmetic, not a wait).
Each kill hits a different agent, since an agent killed again and again is a crash loop,
which the restart policy slows down on purpose.

Usage: python bench/restart_latency.py [--kills 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAND_IN = "#!/bin/sh\nexec sleep 600\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hbb", dir="/tmp"))
    try:
        latencies = measure(root, args.kills)
    finally:
        subprocess.run(["tmux", "-S", str(root / "sock"), "kill-server"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    median = statistics.median(latencies)
    print(f"kill-session -> running again, {len(latencies)} kills (tmux hook):")
    print(
        f"  median {median * 1000:.0f} ms, min {min(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    print("cron only (a check every minute): median 30 s, at most 60 s")


def measure(root: Path, kills: int) -> list[float]:
    (root / "memory").mkdir(mode=0o700)
    (root / "bin").mkdir()
    agent = root / "bin" / "agent"
    agent.write_text(STAND_IN)
    agent.chmod(0o755)
    (root / "config.toml").write_text("restart_spacing_seconds = 0\n")
    env = dict(
        os.environ,
        HOME=str(root),
        PATH=f"{root / 'bin'}:{os.environ['PATH']}",
        HEARTBEAT_NOTES=str(root / "memory"),
        HEARTBEAT_STATE_DIR=str(root / "state"),
        HEARTBEAT_SOCKET=str(root / "sock"),
        HEARTBEAT_CONFIG=str(root / "config.toml"),
    )
    env.pop("TMUX", None)
    heartbeat = [sys.executable, "-m", "heartbeat"]
    names = [f"agent{i}" for i in range(kills)]
    for name in [*names, "keeper"]:  # the keeper keeps the server up between kills
        subprocess.run(
            [*heartbeat, "launch", name, "--dir", str(root), "--", "agent"],
            env=env,
            check=True,
            capture_output=True,
        )
    tmux = ["tmux", "-S", str(root / "sock")]
    latencies = []
    for name in names:
        pid = pane_pid(tmux, name)
        start = time.monotonic()
        subprocess.run([*tmux, "kill-session", "-t", f"={name}"], check=True)
        while True:  # poll until a new pane runs the agent
            now_pid = pane_pid(tmux, name)
            if now_pid is not None and now_pid != pid:
                break
            if time.monotonic() - start > 30:
                log = (root / "state" / "heartbeat.log").read_text()[-2000:]
                raise SystemExit(f"{name} did not come back within 30 s; the log ends:\n{log}")
            time.sleep(0.005)
        latencies.append(time.monotonic() - start)
        time.sleep(1.2)  # let the hook's check finish before the next kill
    return latencies


def pane_pid(tmux: list[str], name: str) -> str | None:
    out = subprocess.run(
        [*tmux, "list-panes", "-t", f"={name}:", "-F", "#{pane_pid}"],
        capture_output=True,
        text=True,
    )
    return (out.stdout.strip() or None) if out.returncode == 0 else None


if __name__ == "__main__":
    main()
