"""`heartbeat status --watch`: a live view on a real terminal (a tmux pane), one snapshot
anywhere else."""

from __future__ import annotations

import re
import sys
from datetime import datetime

import pytest
from conftest import Sandbox
from test_launch_and_check import launch

# A process started in a pane imports heartbeat first, which on a loaded machine takes
# seconds: the ceiling of a poll for what it shows (each ends as soon as the pane shows it).
STARTS = 30.0


def heartbeat_argv(box: Sandbox, *args: str) -> list[str]:
    """heartbeat as a person runs it in a terminal of theirs, with the sandbox's settings."""
    settings = [f"{key}={value}" for key, value in box.env.items()]
    return ["env", *settings, sys.executable, "-m", "heartbeat", *args]


def reporting(argv: list[str], what: str) -> list[str]:
    """`argv` run by a shell that says how it ended, then keeps the pane readable. The
    shell's own trap lets Ctrl-C reach the program alone (a shell with no trap for it
    would end with it)."""
    script = f'trap true INT; "$@"; echo "{what} exited: $?"; exec sleep 600'
    return ["sh", "-c", script, "sh", *argv]


def pane_says(box: Sandbox, session: str, field: str) -> str:
    return "\n".join(box.server.cmd("display-message", "-p", "-t", f"={session}:", field).stdout)


ESCAPES = re.compile(r"\x1b\[([0-9;]*)m")  # colours and weights (SGR)


def styled_line(box: Sandbox, session: str, name: str) -> str:
    """The pane's line for entry `name`, with the escape sequences of its colours."""
    text = box.server.cmd("capture-pane", "-p", "-e", "-t", f"={session}:").stdout
    return next((line for line in text if re.match(rf"\s*{name}\s", ESCAPES.sub("", line))), "")


def test_without_a_terminal_it_prints_one_snapshot(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")

    plain = sandbox.run("status")
    watched = sandbox.run("status", "--watch", "--interval", "0.5")  # stdout is a pipe

    assert plain.returncode == watched.returncode == 0, watched.stderr
    assert watched.stdout == plain.stdout
    assert re.search(r"^api\s+running\b", watched.stdout, re.MULTILINE)
    assert "\x1b" not in watched.stdout  # no terminal drawing into a file or a pipe
    for wrong, said in [
        (("--watch", "--json"), "give one of them"),
        (("--interval", "1"), "--interval goes with --watch"),
        (("--watch", "--interval", "0"), "must be from 0.1 to 3600 seconds"),
        (("--watch", "--interval", "nan"), "must be from 0.1 to 3600 seconds"),
    ]:
        refused = sandbox.run("status", *wrong)
        assert (refused.returncode, refused.stdout) == (2, ""), wrong
        assert said in refused.stderr.splitlines()[-1], refused.stderr


@pytest.mark.timeout(120)  # three processes to start, on a loaded machine
def test_the_live_view_follows_the_sessions_and_ctrl_c_leaves_it(sandbox: Sandbox) -> None:
    launch(sandbox, "api", "codex", "exec", "work")
    view = heartbeat_argv(sandbox, "status", "--watch", "--interval", "0.5")
    sandbox.server.cmd(
        "new-session", "-d", "-s", "view", "-x", "150", "-y", "30", *reporting(view, "view")
    )

    def shows(pattern: str) -> bool:
        return re.search(pattern, sandbox.pane_text("view"), re.MULTILINE) is not None

    sandbox.wait(lambda: shows(r"^\s*api\s+running\b"), STARTS)
    assert pane_says(sandbox, "view", "#{alternate_on}") == "1"  # drawn on its own screen
    running = styled_line(sandbox, "view", "api")
    # The view's own session is on a watched socket and in no note: unlisted, highlighted.
    assert shows(r"^\s*view\s+unlisted\b")
    assert "\x1b[" in styled_line(sandbox, "view", "view")

    sandbox.server.cmd("kill-session", "-t", "=api")

    sandbox.wait(lambda: shows(r"^\s*api\s+dead\b"), STARTS)
    dead = styled_line(sandbox, "view", "api")
    # Highlighted once a person is needed (bold, red); plain while it ran.
    codes = {code for sgr in ESCAPES.findall(dead.split("api")[0]) for code in sgr.split(";")}
    assert {"1", "31"} <= codes, repr(dead)
    assert not ESCAPES.search(running), repr(running)

    sandbox.server.cmd("send-keys", "-t", "=view:", "C-c")

    sandbox.wait(lambda: "view exited:" in sandbox.pane_text("view"), STARTS)
    text = sandbox.pane_text("view")
    assert "view exited: 0" in text, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    # The terminal is given back as it was: the normal screen, the cursor shown.
    assert pane_says(sandbox, "view", "#{alternate_on} #{cursor_flag}") == "0 1"
    assert "running" not in text  # the view was drawn on the alternate screen alone


def test_notes_text_is_shown_as_written_and_what_needs_a_person_first() -> None:
    """A status line is the person's (or an agent's) text: rich's markup and emoji codes
    in it are not interpreted, and a control character cannot drive the terminal."""
    from rich.console import Console

    from heartbeat.cli.watch import Look, render
    from heartbeat.verbs.status import Row

    said = "fix [bold red]this[/] :smile: [/] \x1b[2J now"
    fine = Row("api", "running", "sock", "dir", "cmd", "", None, None)
    row = Row("web", "dead", "sock", "dir", "cmd", "", None, said)
    console = Console(width=120, force_terminal=True, color_system="standard")
    seen = Look(datetime(2026, 11, 24, 10), [], [fine, row], ["a [/] problem"])
    with console.capture() as captured:
        console.print(render(seen, 2))

    text = ESCAPES.sub("", captured.get())
    assert "fix [bold red]this[/] :smile: [/] ?[2J now" in text
    assert "a [/] problem" in text
    assert "2 entries, 1 needs a person" in text
    assert text.index("web") < text.index("api")  # what needs a person comes first
