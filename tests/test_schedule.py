"""Installing the schedule (cron for real; launchd and systemd rendered), the watcher, doctor."""

from __future__ import annotations

import plistlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Sandbox
from test_restart_policy import at

from heartbeat.errors import ScheduleError
from heartbeat.install import schedule

OTHER_LINES = "# the person's own jobs\nMAILTO=ada\n0 3 * * * /usr/bin/backup --quiet   \n"


@pytest.mark.parametrize(
    ("every", "expression", "expected"),
    [
        (None, None, "* * * * *"),
        ("5m", None, "*/5 * * * *"),
        ("1h", None, "0 * * * *"),
        (None, "15 9 * * 1-5", "15 9 * * 1-5"),
    ],
)
def test_schedules(every: str | None, expression: str | None, expected: str) -> None:
    assert schedule.schedule_from(every, expression) == expected


@pytest.mark.parametrize(
    ("every", "expression"),
    [("5s", None), (None, "61 * * * *"), (None, "* * *"), ("1m", "* * * * *")],
)
def test_bad_schedules_are_one_clear_error(every: str | None, expression: str | None) -> None:
    with pytest.raises(ScheduleError):
        schedule.schedule_from(every, expression)


def test_launchd_and_systemd_take_intervals_only() -> None:
    assert schedule.interval_minutes("*/5 * * * *") == 5
    assert schedule.interval_minutes("0 */2 * * *") == 120
    with pytest.raises(ScheduleError, match="intervals"):
        schedule.interval_minutes("15 9 * * 1-5")


@pytest.fixture
def crontab() -> Iterator[str]:
    """The real crontab command, with the user's crontab put back afterwards."""
    binary = shutil.which("crontab")
    if binary is None:
        pytest.skip("no crontab command (Debian's cron package)")
    saved = subprocess.run([binary, "-l"], capture_output=True, text=True)
    subprocess.run([binary, "-"], input=OTHER_LINES, text=True, check=True)
    try:
        yield binary
    finally:
        if saved.returncode == 0:
            subprocess.run([binary, "-"], input=saved.stdout, text=True, check=True)
        else:
            subprocess.run([binary, "-r"], capture_output=True)


def crontab_text(binary: str) -> str:
    return subprocess.run([binary, "-l"], capture_output=True, text=True, check=True).stdout


def test_cron_install_is_idempotent_replaces_and_uninstalls_exactly(
    sandbox: Sandbox, crontab: str
) -> None:
    printed = sandbox.run("install", "--cron", "--print")
    assert printed.returncode == 0
    assert crontab_text(crontab) == OTHER_LINES  # --print installs nothing

    first = sandbox.run("install", "--cron")
    twice = sandbox.run("install", "--cron")
    installed = crontab_text(crontab)

    assert first.stdout == f"installed (cron): crontab\nit checks the notes in {sandbox.notes}\n"
    assert twice.stdout == "already installed (cron): nothing changed\n"
    assert installed.startswith(OTHER_LINES)
    job = installed[len(OTHER_LINES) :].splitlines()
    assert job[0] == schedule.MARKER
    assert job[1].startswith("* * * * * PATH=")
    assert f"{sys.executable} -m heartbeat check --quiet" in job[1]
    assert f"HEARTBEAT_NOTES={sandbox.notes}" in job[1]
    path = job[1].split("PATH=", 1)[1].split()[0]
    assert shutil.which("tmux", path=path)  # a PATH that finds tmux under cron
    assert printed.stdout.rstrip("\n") == "\n".join(job)

    sandbox.run("install", "--cron", "--every", "5m")
    replaced = crontab_text(crontab)
    assert replaced.count(schedule.MARKER) == 1
    assert "\n*/5 * * * * PATH=" in replaced

    removed = sandbox.run("uninstall")
    assert removed.returncode == 0
    assert crontab_text(crontab) == OTHER_LINES


def test_the_installed_cron_line_runs_a_check(sandbox: Sandbox, crontab: str) -> None:
    sandbox.run("install", "--cron")
    line = crontab_text(crontab).splitlines()[-1]
    command = line.split(None, 5)[5]
    # Run it as cron would: /bin/sh, a bare environment.
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        env={"HOME": str(sandbox.home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert (sandbox.state / "last-check").exists()


def as_cron_runs(command: str) -> str:
    """What cron hands the shell: the text up to the first unescaped `%` (the rest is
    the job's input), with `\\%` turned back into `%` (cron(5))."""
    head = re.split(r"(?<!\\)%", command, maxsplit=1)[0]
    return head.replace("\\%", "%")


def test_a_cron_line_with_a_percent_in_a_path_runs_a_check(sandbox: Sandbox, crontab: str) -> None:
    odd = sandbox.root / "state 100% 'x'"
    sandbox.env["HEARTBEAT_STATE_DIR"] = str(odd)
    assert sandbox.run("install", "--cron").returncode == 0
    command = crontab_text(crontab).splitlines()[-1].split(None, 5)[5]

    result = subprocess.run(
        ["/bin/sh", "-c", as_cron_runs(command)],
        env={"HOME": str(sandbox.home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert (odd / "last-check").exists()


def test_systemd_units_quote_values_with_spaces_and_percents(sandbox: Sandbox) -> None:
    sandbox.env["HEARTBEAT_STATE_DIR"] = str(sandbox.root / 'my "state" 5%')
    assert sandbox.run("install", "--systemd", "--every", "5m").returncode == 0
    service = (
        sandbox.home / ".config" / "systemd" / "user" / "heartbeat-check.service"
    ).read_text()

    expected = f'Environment="HEARTBEAT_STATE_DIR={sandbox.root}/my \\"state\\" 5%%"'
    assert expected in service.splitlines()


def test_the_launchd_job_is_a_plist_with_absolute_paths(sandbox: Sandbox) -> None:
    result = sandbox.run("install", "--launchd", "--every", "2m", "--print")
    assert result.returncode == 0, result.stderr
    body = result.stdout.split("\n", 1)[1]  # after the "# PATH" line
    job = plistlib.loads(body.encode())
    assert job["ProgramArguments"] == [sys.executable, "-m", "heartbeat", "check", "--quiet"]
    assert job["StartInterval"] == 120
    assert job["WorkingDirectory"] == str(sandbox.home)  # launchd starts jobs in /
    assert job["EnvironmentVariables"]["HEARTBEAT_NOTES"] == str(sandbox.notes)
    assert "/opt/homebrew/bin" in job["EnvironmentVariables"]["PATH"]
    refused = sandbox.run("install", "--launchd", "--schedule", "15 9 * * 1-5")
    assert refused.returncode == 1 and "intervals" in refused.stderr


def test_the_systemd_units_keep_the_agents_alive(sandbox: Sandbox) -> None:
    result = sandbox.run("install", "--systemd", "--every", "5m")
    assert result.returncode == 0, result.stderr
    folder = sandbox.home / ".config" / "systemd" / "user"
    service = (folder / "heartbeat-check.service").read_text()
    timer = (folder / "heartbeat-check.timer").read_text()
    assert "KillMode=process" in service
    assert f'ExecStart="{sys.executable}" -m heartbeat check --quiet' in service
    assert "OnUnitActiveSec=5 min" in timer
    analyze = shutil.which("systemd-analyze")
    if analyze:
        verified = subprocess.run(
            [analyze, "verify", "--user", str(folder / "heartbeat-check.timer")],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(sandbox.home)},
        )
        assert "heartbeat-check" not in verified.stderr or verified.returncode == 0, verified.stderr
    assert sandbox.run("uninstall").returncode == 0
    assert not list(folder.iterdir())


def test_status_says_when_heartbeat_is_not_running(sandbox: Sandbox, crontab: str) -> None:
    sandbox.run("install", "--cron")
    sandbox.check()  # at 10:00

    fresh = sandbox.run("status", env=at(sandbox, 1)).stdout.splitlines()
    late = sandbox.run("status", env=at(sandbox, 47)).stdout.splitlines()

    assert fresh[0] == "last check: 1 min ago; next due 10:02 (cron: * * * * *)"
    assert late[1] == "heartbeat is not running: last check 47 min ago, schedule * * * * *"


def test_doctor_names_what_is_wrong_and_the_fix(sandbox: Sandbox, crontab: str) -> None:
    before = sandbox.run("doctor")
    assert before.returncode == 1
    assert "FIX no schedule installed: heartbeat install" in before.stdout
    assert any(line.startswith("ok  tmux ") for line in before.stdout.splitlines())

    sandbox.run("install", "--cron")
    sandbox.check()
    after = sandbox.run("doctor")

    # (Whether cron itself runs has its tests in test_doctor.py.)
    assert "no schedule installed" not in after.stdout, after.stdout
    assert "ok  the scheduled PATH finds tmux" in after.stdout


def test_each_check_pings_the_dead_mans_switch(sandbox: Sandbox) -> None:
    import http.server
    import threading

    seen: list[tuple[str, str, bytes]] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def handle_one(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen.append((method, self.path, self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:
            self.handle_one("GET")

        def do_POST(self) -> None:
            self.handle_one("POST")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/ping/abc"
        Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(f'ping_url = "{url}"\n')
        assert sandbox.check().returncode == 0
        sandbox.write_note("## Active Long-Running Processes\n\n- x: `codex`\n")  # needs approval
        assert sandbox.check().returncode == 1
        Path(sandbox.env["HEARTBEAT_CONFIG"]).write_text(
            'ping_url = "http://127.0.0.1:9/nothing"\n'
        )
        assert sandbox.check().returncode == 1  # an unreachable switch never breaks a check
    finally:
        server.shutdown()
    assert seen[0] == ("GET", "/ping/abc", b"")
    method, path, body = seen[1]
    assert (method, path) == ("POST", "/ping/abc/fail")
    assert b"x: new command, not run: heartbeat allow x" in body
    assert (
        "ping http://127.0.0.1:9/nothing/fail failed"
        in (sandbox.state / "heartbeat.log").read_text()
    )
