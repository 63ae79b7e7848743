"""What the stand-in `claude` and `codex` scripts share: behaving as their task says (the
task is the prompt of the run's first turn).

  exit:N        exits with N at once
  commit:MSG    changes a file, commits it with MSG, exits 0
  tick          ticks every box of PRD.md without committing anything, exits 0
  say:FILE:N    prints FILE (a realistic pane capture), exits with N
  show:FILE     prints FILE, then waits at its prompt until killed (an interactive agent
                showing an error, as Claude Code does at an expired login)
  crash-once    exits 3 the first time; a resumed run of it goes on working
  anything else runs, silent, until killed
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def behave(task: str, resumed: bool) -> None:
    if task.startswith("exit:"):
        sys.exit(int(task.removeprefix("exit:")))
    if task.startswith("commit:"):
        with open("work.txt", "a") as handle:
            handle.write(f"work {os.getpid()}\n")
        done = subprocess.run(["git", "add", "work.txt"]).returncode == 0 and (
            subprocess.run(["git", "commit", "-q", "-m", task.removeprefix("commit:")]).returncode
            == 0
        )
        sys.exit(0 if done else 1)
    if task == "tick":
        text = Path("PRD.md").read_text()
        Path("PRD.md").write_text(text.replace("- [ ]", "- [x]"))
        sys.exit(0)
    if task.startswith("say:"):
        file, _, code = task.removeprefix("say:").rpartition(":")
        sys.stdout.write(Path(file).read_text())
        sys.stdout.flush()
        sys.exit(int(code))
    if task.startswith("show:"):
        sys.stdout.write(Path(task.removeprefix("show:")).read_text())
        sys.stdout.flush()
        os.execvp("sleep", ["sleep", "600"])
    if task == "crash-once" and not resumed:
        print("Error: the agent crashed")
        sys.exit(3)
    sys.stdout.flush()
    os.execvp("sleep", ["sleep", "600"])
