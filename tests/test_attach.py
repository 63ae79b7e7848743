"""`heartbeat attach NAME`: a person's terminal shows the entry's session, on its socket.

Run for real: the person's terminal is a pane of another tmux server (or a client of the
agents' own server), and what it shows is read back with capture-pane. tmux sets `$TMUX`
in every pane to `socket_path,server_pid,session_id` (tmux's environ.c,
`environ_for_session`: `environ_set(env, "TMUX", 0, "%s,%ld,%d", socket_path, ...)`), and
refuses an attach while it is set: "sessions should be nested with care, unset $TMUX to
force" (tmux's cmd-attach-session.c).
"""

from __future__ import annotations

from pathlib import Path

import libtmux
import pytest
from conftest import Sandbox
from test_watch import STARTS, heartbeat_argv, reporting

from heartbeat.tmux import server

MARK = "agent at work 42"


def start_agent(box: Sandbox, name: str = "api") -> None:
    """An agent that prints a line a person would recognise, then works on."""
    result = box.run("launch", name, "--dir", str(box.root), "--", f"echo {MARK}; sleep 600")
    assert result.returncode == 0, result.stderr
    box.wait(lambda: MARK in box.pane_text(name))


def other_server(box: Sandbox) -> libtmux.Server:
    """The tmux server of the person's own terminal: another socket (in the sandbox's
    socket folder, so that the sandbox ends it too)."""
    return libtmux.Server(socket_path=str(Path(box.socket).parent / "desk"))


def shown(tmux: libtmux.Server, session: str) -> str:
    return "\n".join(tmux.cmd("capture-pane", "-p", "-t", f"={session}:").stdout)


def clients(tmux: libtmux.Server) -> list[str]:
    """The session each client of the server shows."""
    return [line for line in tmux.cmd("list-clients", "-F", "#{client_session}").stdout if line]


def test_from_another_tmux_servers_pane_it_attaches_there(sandbox: Sandbox) -> None:
    start_agent(sandbox)
    desk = other_server(sandbox)
    attach = heartbeat_argv(sandbox, "attach", "api")

    # The person's pane: tmux sets $TMUX in it, naming the other server.
    desk.cmd("new-session", "-d", "-s", "person", "-x", "120", "-y", "30", *attach)

    sandbox.wait(lambda: MARK in shown(desk, "person"), STARTS)
    # A client of the agents' server, inside the person's pane: $TMUX was left out for it
    # (tmux refuses to nest a client while $TMUX names another server).
    assert clients(sandbox.server) == ["api"]


@pytest.mark.timeout(120)  # three processes to start, on a loaded machine
def test_inside_a_client_of_the_same_server_it_switches_that_client(sandbox: Sandbox) -> None:
    start_agent(sandbox)
    sandbox.server.cmd("new-session", "-d", "-s", "home", "sleep", "600")
    desk = other_server(sandbox)
    # The person's terminal is a client of the agents' server, showing session `home`.
    client = ["env", "-u", "TMUX", "tmux", "-S", sandbox.socket, "attach-session", "-t", "=home"]
    desk.cmd("new-session", "-d", "-s", "person", "-x", "120", "-y", "30", *client)
    sandbox.wait(lambda: clients(sandbox.server) == ["home"], STARTS)

    # In `home`'s pane, the person runs heartbeat attach.
    attach = reporting(heartbeat_argv(sandbox, "attach", "api"), "attach")
    sandbox.server.cmd("respawn-pane", "-k", "-t", "=home:", *attach)

    sandbox.wait(lambda: clients(sandbox.server) == ["api"], STARTS)  # switched: still one client
    sandbox.wait(lambda: MARK in shown(desk, "person"), STARTS)
    sandbox.wait(lambda: "attach exited: 0" in shown(sandbox.server, "home"), STARTS)


def test_no_entry_or_no_session_is_one_line(sandbox: Sandbox) -> None:
    start_agent(sandbox)

    unknown = sandbox.run("attach", "nope")
    sandbox.server.cmd("kill-session", "-t", "=api")
    gone = sandbox.run("attach", "api")

    assert unknown.returncode == 1
    assert unknown.stderr.startswith("heartbeat: no open entry named nope in ")
    assert (gone.returncode, gone.stderr) == (1, f"heartbeat: no session api on {sandbox.socket}\n")
    assert unknown.stderr.count("\n") == 1 and unknown.stdout == gone.stdout == ""


def test_another_machines_entry_is_attached_to_there(sandbox: Sandbox) -> None:
    sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- web: `codex exec work`\n  - dir: {sandbox.root}\n  - host: build-box\n"
    )

    refused = sandbox.run("attach", "web")

    assert (refused.returncode, refused.stderr) == (
        1,
        "heartbeat: web runs on build-box: attach to it there\n",
    )


def test_an_unapproved_entrys_socket_is_never_connected_to(sandbox: Sandbox) -> None:
    """A socket only an unapproved entry names could be anyone's server: attach refuses,
    with the approval that lifts it, before any tmux call reaches it."""
    desk = other_server(sandbox)
    desk.cmd("new-session", "-d", "-s", "web", "sleep", "600")
    sandbox.write_note(
        "## Active Long-Running Processes\n\n"
        f"- web: `codex exec work`\n  - dir: {sandbox.root}\n  - socket: {desk.socket_path}\n"
    )
    log = sandbox.root / "tmux-args"
    counting = sandbox.bin / "logging-tmux"
    counting.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec tmux "$@"\n')
    counting.chmod(0o755)
    env = dict(sandbox.env, HEARTBEAT_TMUX=str(counting))

    refused = sandbox.run("attach", "web", env=env)

    assert refused.returncode == 1
    assert refused.stderr.endswith(
        f"web: on socket {desk.socket_path}, which heartbeat watches only once it is "
        "approved: heartbeat allow web\n"
    )
    assert not log.exists() or str(desk.socket_path) not in log.read_text()


@pytest.mark.parametrize(
    ("tmux_variable", "inside"),
    [
        (None, False),  # no tmux around: a plain terminal
        ("{socket},4242,0", True),  # a pane of the same server
        ("{other},4242,0", False),  # a pane of another server
        ("{socket}-gone,4242,0", False),  # a server that is no more
    ],
)
def test_which_server_a_pane_belongs_to(
    sandbox: Sandbox, tmux_variable: str | None, inside: bool
) -> None:
    start_agent(sandbox)
    desk = other_server(sandbox)
    desk.cmd("new-session", "-d", "-s", "x", "sleep", "600")
    env = (
        {}
        if tmux_variable is None
        else {"TMUX": tmux_variable.format(socket=sandbox.socket, other=desk.socket_path)}
    )

    assert server.inside(sandbox.socket, env) is inside
