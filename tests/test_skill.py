"""Every command block of SKILL.md runs, in order, against stand-in agents."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import Sandbox

SKILL = Path(__file__).parent.parent / "SKILL.md"


def blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", SKILL.read_text(), re.DOTALL)


def test_the_skill_has_blocks_for_each_kind_of_agent() -> None:
    text = "\n".join(blocks())
    for needle in ("--codex", "--claude", "--ralph", "heartbeat status", "heartbeat verify"):
        assert needle in text


def test_every_block_of_the_skill_runs(sandbox: Sandbox) -> None:
    for project in ("api", "web", "docs"):
        folder = sandbox.home / "src" / project
        folder.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(folder)], check=True)
        who = ["-c", "user.name=Ada", "-c", "user.email=ada@example.org"]
        # A worktree starts from a commit (the skill launches one in api).
        commit = ["git", "-C", str(folder), *who, "commit", "-q", "--allow-empty", "-m", "start"]
        subprocess.run(commit, check=True)
    env = dict(sandbox.env)
    del env["HEARTBEAT_SOCKET"]  # the skill uses the default, stable ~/.tmux/sock
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `heartbeat` itself
    try:
        for block in blocks():
            result = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", block],
                env=env,
                cwd=sandbox.root,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        expected = (
            "exec --full-auto Add input validation tests for /orders",
            "-p Fix the flaky login test --session-id",
            "--codex --prd PRD.md",
        )
        # Each agent records its start as it comes up, a moment after its launch.
        sandbox.wait(lambda: all(call in "\n".join(sandbox.calls()) for call in expected))
        assert re.search(
            r"\|-p Fix the flaky login test --session-id [0-9a-f-]{36} --permission-mode",
            "\n".join(sandbox.calls()),
        )
    finally:
        subprocess.run(
            ["tmux", "-S", str(sandbox.home / ".tmux" / "sock"), "kill-server"], capture_output=True
        )
