"""Shared fixtures: a private HOME, notes folder, state folder and tmux socket per test."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import libtmux
import pytest
from libtmux.test.retry import retry_until

from heartbeat import files

STAND_INS = Path(__file__).parent / "bin"
TODAY = "2026-11-24"
NOW = f"{TODAY}T10:00:00"
CRON_PATH = "/usr/bin:/bin"
SETTINGS = "restart_spacing_seconds = 0\ncompletion_check = false\ninstant_restarts = false\n"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests run in parallel workers, but there is one crontab per user: every test
    that edits it, or whose heartbeat reads it, runs in the same worker."""
    for item in items:
        if "crontab" in getattr(item, "fixturenames", ()) or item.get_closest_marker(
            "user_crontab"
        ):
            item.add_marker(pytest.mark.xdist_group("user-crontab"))


@pytest.fixture(autouse=True)
def _one_crontab_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """Other test runs on this machine (another checkout's suite) share the crontab too:
    a lock in the temporary folder keeps their crontab tests from interleaving."""
    item = request.node
    if "crontab" not in item.fixturenames and not item.get_closest_marker("user_crontab"):
        yield
        return
    lock = Path(tempfile.gettempdir()) / f"heartbeat-tests-crontab-{os.getuid()}.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


@dataclass
class Sandbox:
    root: Path
    home: Path
    notes: Path
    state: Path
    bin: Path
    socket: str
    env: dict[str, str]

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run heartbeat as its own process, as cron or a person would."""
        return subprocess.run(
            [sys.executable, "-m", "heartbeat", *args],
            env=self.env if env is None else env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def check(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run("check", *args, env=env)

    def allow(self, *names: str) -> None:
        """Approve hand-written entries, as their author would with `heartbeat allow`."""
        for name in names:
            result = self.run("allow", name)
            assert result.returncode == 0, result.stderr

    def cron_env(self) -> dict[str, str]:
        """cron's environment: a bare PATH and no shell profile."""
        keep = (
            "HOME",
            "HEARTBEAT_CONFIG",
            "HEARTBEAT_NOTES",
            "HEARTBEAT_STATE_DIR",
            "HEARTBEAT_SOCKET",
            "HEARTBEAT_NOW",
        )
        env = {key: self.env[key] for key in keep if key in self.env}
        env["PATH"] = CRON_PATH
        env["LANG"] = "C"
        return env

    def note(self, day: str = TODAY) -> Path:
        return self.notes / f"{day}.md"

    def write_note(self, text: str, day: str = TODAY) -> Path:
        path = self.note(day)
        path.write_text(text, encoding="utf-8")
        return path

    @property
    def server(self) -> libtmux.Server:
        return libtmux.Server(socket_path=self.socket)

    def alive(self, name: str) -> bool:
        return self.server.has_session(name)

    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def notifications(self) -> list[list[str]]:
        log = self.root / "notify.log"
        if not log.exists():
            return []
        chunks = log.read_text().split("--- openclaw\n")[1:]
        return [chunk.splitlines() for chunk in chunks]

    def lock_is_free(self) -> bool:
        """Whether no heartbeat run holds the state folder's lock."""
        with files.locked(self.state, wait=False) as acquired:
            return acquired

    def lock_is_awaited(self) -> bool:
        """Whether a process waits for the state folder's lock (Linux's /proc/locks lists
        waiters with `->`, and each lock's device:major:inode)."""
        inode = str(os.stat(self.state / "lock").st_ino)
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            ids = [field for field in fields if field.count(":") == 2]
            if "->" in fields and ids and ids[0].rsplit(":", 1)[1] == inode:
                return True
        return False

    def wait(self, condition: Callable[[], bool], seconds: float = 10) -> None:
        retry_until(condition, seconds, interval=0.05)

    def pane_text(self, name: str) -> str:
        return "\n".join(self.server.cmd("capture-pane", "-p", "-t", f"={name}:").stdout)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    # tmux sockets must stay short (about 104 bytes), and pytest's folders can be long.
    socket_dir = Path(tempfile.mkdtemp(prefix="hb", dir="/tmp"))
    home = tmp_path / "home"
    notes = tmp_path / "memory"
    state = tmp_path / "state"
    bin_dir = tmp_path / "bin"
    for folder in (home, notes):
        folder.mkdir(mode=0o700)
    shutil.copytree(STAND_INS, bin_dir)
    socket = str(socket_dir / "sock")
    settings = tmp_path / "config.toml"
    # No pause between restarts in one check, no completion hook and no tmux hook: tests
    # drive the checks themselves (each feature has tests of its own).
    settings.write_text(SETTINGS)
    env = {
        "HEARTBEAT_CONFIG": str(settings),
        "HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HEARTBEAT_NOTES": str(notes),
        "HEARTBEAT_STATE_DIR": str(state),
        "HEARTBEAT_SOCKET": socket,
        "HEARTBEAT_NOW": NOW,
        "LANG": "C.UTF-8",
    }
    box = Sandbox(tmp_path, home, notes, state, bin_dir, socket, env)
    yield box
    for sock in socket_dir.iterdir():
        # Unhooked first: a session-closed hook would start a check that restarts the
        # sessions on a new server, outliving the test.
        unhook_and_kill = ["set-hook", "-gu", "session-closed", ";", "kill-server"]
        subprocess.run(["tmux", "-S", str(sock), *unhook_and_kill], capture_output=True)
    shutil.rmtree(socket_dir, ignore_errors=True)
