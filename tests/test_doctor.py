"""`heartbeat doctor` tells the truth: the notes as a check reads them, whether the
scheduler really runs heartbeat, and what needs a person."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from conftest import Sandbox
from libtmux.test.retry import retry_until
from test_restart_policy import at
from test_schedule import crontab  # noqa: F401 - the fixture: the real crontab, put back

from heartbeat.install import doctor

pytestmark = pytest.mark.user_crontab  # doctor reads the user's crontab


def findings(box: Sandbox) -> list[str]:
    return box.run("doctor").stdout.splitlines()


@pytest.fixture
def cron_daemon() -> Iterator[int]:
    """A real cron daemon (Debian's `cron -f`), started for the test unless one runs."""
    binary = shutil.which("cron") or shutil.which("crond")
    if binary is None:
        pytest.skip("no cron daemon binary (Debian's cron package)")
    if os.getuid() != 0:
        pytest.skip("a cron daemon is started as root")
    running = doctor.cron_daemon()
    if running is not None:
        yield running
        return
    daemon = subprocess.Popen([binary, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        retry_until(lambda: doctor.cron_daemon() is not None, 10, interval=0.05)
        yield daemon.pid
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_without_a_cron_daemon_doctor_says_cron_is_not_running_after_a_hand_run_check(
    sandbox: Sandbox,
    crontab: str,  # noqa: F811
) -> None:
    if doctor.cron_daemon() is not None:
        pytest.skip("a cron daemon runs on this machine")
    assert sandbox.run("install", "--cron").returncode == 0
    assert sandbox.check().returncode == 0  # by hand: it proves nothing about cron

    result = sandbox.run("doctor")

    assert result.returncode == 1
    assert (
        "FIX cron is not running: no cron daemon, so heartbeat's crontab line never runs: "
        "start it (sudo systemctl enable --now cron, or sudo service cron start)"
    ) in result.stdout.splitlines()
    assert "ok  last check 0 s ago" in result.stdout.splitlines()


def test_with_a_cron_daemon_and_the_line_installed_doctor_says_cron_is_running(
    sandbox: Sandbox,
    crontab: str,  # noqa: F811
    cron_daemon: int,
) -> None:
    before = findings(sandbox)
    assert "FIX no schedule installed: heartbeat install" in before

    sandbox.run("install", "--cron")
    sandbox.check()
    result = sandbox.run("doctor")

    lines = result.stdout.splitlines()
    assert f"ok  cron is running (process {cron_daemon}) with heartbeat's line (* * * * *)" in lines
    assert not [line for line in lines if line.startswith("FIX")], lines
    assert result.returncode == 0

    sandbox.run("uninstall")
    assert "FIX no schedule installed: heartbeat install" in findings(sandbox)


def test_a_crontab_without_heartbeats_line_is_found(
    sandbox: Sandbox,
    crontab: str,  # noqa: F811
) -> None:
    sandbox.run("install", "--cron")
    subprocess.run([crontab, "-"], input="MAILTO=ada\n", text=True, check=True)  # edited away

    assert "FIX heartbeat's line is not in your crontab: heartbeat install" in findings(sandbox)


def test_a_note_a_check_refuses_is_reported_as_the_check_reports_it(sandbox: Sandbox) -> None:
    note = sandbox.write_note("## Active Long-Running Processes\n\n")
    note.chmod(0o666)

    refused = sandbox.check().stderr.splitlines()
    result = sandbox.run("doctor")

    said = "memory/2026-11-24.md: anyone can write it: chmod o-w memory/2026-11-24.md"
    assert said in refused
    assert f"FIX {said}" in result.stdout.splitlines()
    assert result.returncode == 1
    note.chmod(0o600)
    assert not any("2026-11-24.md" in line for line in findings(sandbox))


def test_doctor_lists_the_entries_that_need_a_person(sandbox: Sandbox) -> None:
    sandbox.write_note(
        f"## Active Long-Running Processes\n\n- api: `codex exec x`\n  - dir: {sandbox.root}\n"
    )
    subprocess.run(
        ["tmux", "-S", sandbox.socket, "new-session", "-d", "-s", "stray", "sleep", "300"],
        env=sandbox.env,
        check=True,
    )
    sandbox.allow("api")
    sandbox.check()
    sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- api: `codex exec x`\n  - dir: {sandbox.root}\n"
        f"- web: `codex exec y`\n  - dir: {sandbox.root}\n"
    )

    lines = findings(sandbox)

    assert "FIX web: needs approval: heartbeat allow web" in lines
    assert "FIX stray: unlisted: heartbeat adopt stray --dir DIR -- COMMAND" in lines
    assert not any(line.startswith("FIX api:") for line in lines), lines


def test_a_hung_helper_gives_one_line() -> None:
    """A launchctl or systemctl that never answers holds the doctor up for its bound
    alone, and says so in one line."""
    assert doctor.ask(["sleep", "60"], seconds=0.2) == "sleep 60 did not answer within 0.2 s"
    assert (
        doctor.ask(["no-such-helper-here"])
        == "no-such-helper-here cannot run: No such file or directory"
    )


def test_the_next_check_names_its_day_when_not_today(
    sandbox: Sandbox,
    crontab: str,  # noqa: F811
) -> None:
    sandbox.run("install", "--cron", "--every", "1h")
    sandbox.check(env=at(sandbox, 13 * 60 + 30))  # 23:30, a Tuesday

    header = sandbox.run("status", env=at(sandbox, 13 * 60 + 30 + 0.5)).stdout.splitlines()

    assert header[0] == "last check: 30 s ago; next due Wed 00:00 (cron: 0 * * * *)"
