"""Every conversation with tmux, through libtmux; the only module that imports it.

A `Tmux` names one socket, so every call names it explicitly: `$TMUX` (set when
heartbeat itself runs inside tmux) never decides where a session goes. Sessions are
addressed as `=NAME`, since tmux otherwise matches name prefixes. Every call has a
timeout: a stopped tmux server must not hang a check.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from heartbeat.errors import RefusedError, TmuxError
from heartbeat.model import Command, Pane, Snapshot
from heartbeat.records import frozen
from heartbeat.tmux import procs

EXIT_OPTION = "@heartbeat_exit"
_FIELDS = (
    "#{session_name}",
    "#{pane_id}",
    "#{window_index}",
    "#{pane_index}",
    "#{pane_pid}",
    "#{pane_dead}",
    "#{pane_dead_status}",
    "#{" + EXIT_OPTION + "}",
    "#{window_activity}",
    "#{session_created}",
    "#{pid}",
    "#{pane_current_command}",
)
_FORMAT = "|".join(_FIELDS)
# Without the pane's current command, which tmux finds by reading /proc for every pane
# (a quarter of the list call's time): only the skill's own lines need it.
_FORMAT_WITHOUT_COMMAND = "|".join(_FIELDS[:-1]) + "|"
# The session name comes first and the command last: the fields between are numbers,
# so a `|` in either free-text field cannot shift them.
_ROW = re.compile(
    r"(?P<session>.*?)\|(?P<pane_id>%\d+)\|(?P<window>\d+)\|(?P<pane>\d+)\|(?P<pid>\d*)\|"
    r"(?P<dead>[01]?)\|(?P<dead_status>-?\d*)\|(?P<exit>-?\d*)\|(?P<activity>\d*)\|"
    r"(?P<created>\d*)\|(?P<server>\d*)\|(?P<command>.*)"
)
# What tmux says when no server answers (`no current target`: one shutting down after
# its last session ended).
_NO_SERVER = (
    "no server running",
    "error connecting to",
    "server exited unexpectedly",
    "no current target",
)


def _no_separator(word: str) -> str:
    """A word as tmux must be given it: one that ends in `;` would end tmux's command
    there (tmux takes a trailing `;` as a separator), so that `;` is escaped."""
    return word[:-1] + "\\;" if word.endswith(";") else word


@frozen(eq=False)
class Tmux:
    """One tmux socket, as heartbeat talks to it."""

    socket: str
    binary: str | None = None
    timeout: float = 10.0
    deadline: float | None = None  # time.monotonic() by which the whole run must end

    def _run(self, *args: str, path: str | None = None) -> tuple[int, list[str], list[str]]:
        """Run one tmux command through libtmux, giving up after `timeout` seconds."""
        return self._begin(*args, path=path).wait()

    def _begin(self, *args: str, path: str | None = None) -> Call:
        """Start one tmux command through libtmux, in a thread of its own; its `wait`
        gives up `timeout` seconds after it started."""
        timeout = self.timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                raise TmuxError(f"no time left for tmux on {self.socket} in this check")
        # A $TMUX inherited from a surrounding session must not leak into what we start.
        os.environ.pop("TMUX", None)
        os.environ.pop("TMUX_PANE", None)
        runner = _libtmux_runner()
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                with _client_path(path):
                    outcome["proc"] = runner.tmux_cmd(
                        f"-S{self.socket}", *args, tmux_bin=self.binary
                    )
            except Exception as error:  # handed to the caller's thread
                outcome["error"] = error
            finally:
                _answering.end()

        worker = threading.Thread(target=call, daemon=True)
        _answering.begin()
        try:
            worker.start()
        except RuntimeError as error:  # no thread to be had
            _answering.end()
            raise TmuxError(f"tmux on {self.socket}: cannot be asked ({error})") from None
        return Call(self.socket, args[0], timeout, worker, outcome)

    def snapshot(self, commands: bool = True) -> Snapshot:
        """Every session on the socket with its first pane, from one `list-panes -a` call;
        with each pane's current command only when `commands` is asked for."""
        return self.ask_snapshot(commands).answer()

    def ask_snapshot(self, commands: bool = True) -> Asked:
        """`snapshot`, started: tmux answers while the caller does other work, and
        `answer()` waits for it (and raises what `snapshot` would)."""
        try:
            refused = socket_problem(self.socket)
            if refused:
                raise TmuxError(refused)
            form = _FORMAT if commands else _FORMAT_WITHOUT_COMMAND
            return Asked(self.socket, self._begin("list-panes", "-a", "-F", form))
        except TmuxError as error:
            return Asked(self.socket, error)

    def start(
        self,
        name: str,
        folder: str,
        command: Command,
        environment: Mapping[str, str],
        hook: str | None = None,
        pipe: str | None = None,
    ) -> tuple[int | None, str | None, int | None]:
        """Start a detached session; returns the pane's process id, its pane id, and the
        server's process id.

        tmux itself refuses a name that exists, which is the last-moment check that two
        heartbeats never start one session twice. A command given as text is run by
        tmux's shell, as the skill's line does; an argv is run directly. `pipe`: the
        shell command the pane's output is fed to (its run log), attached in the same
        tmux call, so that not even an agent's first line is missed.
        """
        prepare_socket(self.socket)
        refused = socket_problem(self.socket)
        if refused:
            raise TmuxError(refused)
        # tmux expands formats in -c (`#(cmd)` would run cmd): a folder's `#` is doubled.
        args = ["new-session", "-d", "-P", "-F", "#{pane_pid} #{pane_id} #{pid}", "-s", name]
        args += ["-c", folder.replace("#", "##")]
        for key, value in environment.items():
            args += ["-e", f"{key}={value}"]
        args.append("--")
        args += [command] if isinstance(command, str) else list(command)
        args = [_no_separator(word) for word in args]
        if pipe is not None:
            # pipe-pane expands formats in its command too: a `#` is doubled.
            command_text = _no_separator(pipe.replace("#", "##"))
            args += [";", "pipe-pane", "-o", "-t", f"={name}:", command_text]
        if hook is not None:
            # In the same tmux call: when any session on this server closes, a check
            # runs at once (cron stays the backstop for a dead server and reboots).
            # run-shell hands its text to a shell: the path is quoted for it first.
            script = (
                shlex.quote(hook)
                .replace("#", "##")
                .replace("\\", "\\\\")
                .replace('"', '\\"')
                .replace("$", "\\$")
            )
            args += [";", "set-hook", "-g", "session-closed", f'run-shell -b "{script}"']
        code, out, err = self._run(*args, path=environment.get("PATH"))
        if code != 0 and not (out and out[0].count(" ") == 2):  # started, unpiped: it runs
            message = " ".join(err) or f"exit {code}"
            if "duplicate session" in message:
                raise RefusedError(f"session {name} already exists on {self.socket}")
            raise TmuxError(f"tmux could not start {name} on {self.socket}: {message}")
        pid, pane_id, server = [*(out[0] if out else "").split(" ", 2), "", "", ""][:3]
        number = int(pid) if pid.isdigit() else None
        return number, pane_id or None, int(server) if server.isdigit() else None

    def unhook(self, script: str) -> bool:
        """Remove the server's session-closed hook when it is heartbeat's (it runs
        `script`); True when one was removed. Another program's hook is left alone."""
        if socket_problem(self.socket) or not os.path.exists(self.socket):
            return False
        code, out, _ = self._run("show-hooks", "-g", "session-closed")
        if code != 0 or not any(script in line for line in out):
            return False
        code, _, _ = self._run("set-hook", "-gu", "session-closed")
        return code == 0

    def has_session(self, name: str) -> bool:
        code, _, _ = self._run("has-session", "-t", f"={name}")
        return code == 0

    def capture(self, name: str, lines: int) -> list[str]:
        """The last `lines` lines of the session's pane (blank lines at the end dropped)."""
        code, out, err = self._run("capture-pane", "-p", "-J", "-t", f"={name}:", "-S", f"-{lines}")
        if code != 0:
            raise TmuxError(f"cannot read the pane of {name} on {self.socket}: {' '.join(err)}")
        while out and not out[-1].strip():
            out.pop()
        return out[-lines:]

    def kill(self, name: str) -> bool:
        """Kill the session; False when it was not there."""
        code, _, err = self._run("kill-session", "-t", f"={name}")
        if code != 0 and not (_no_server(err) or any("can't find" in e for e in err)):
            raise TmuxError(f"cannot kill {name} on {self.socket}: {' '.join(err)}")
        return code == 0

    def recreate_socket(self, server_pid: int) -> bool:
        """Ask a running server whose socket file was deleted to make it again.

        Starting a new server instead would run every job twice. tmux recreates its
        socket on SIGUSR1. True when the socket is back.
        """
        if not _is_tmux_server(server_pid):
            return False
        try:
            os.kill(server_pid, signal.SIGUSR1)
        except OSError:
            return False
        deadline = time.monotonic() + min(self.timeout, 2.0)
        while time.monotonic() < deadline:
            if os.path.exists(self.socket):
                return True
            time.sleep(0.02)
        return False


def attach(
    socket: str, name: str, binary: str | None, switch: bool, env: Mapping[str, str]
) -> None:
    """Become the tmux client that shows session NAME on `socket`: never returns.

    The one tmux call not made through libtmux, whose runner captures the client's
    output, where an attached client needs the terminal itself. `switch`: the terminal
    is already a client of this server (inside one of its panes), which tmux switches
    to the session, finding the client from `$TMUX`; otherwise a new client attaches,
    with `$TMUX` left out (tmux refuses to nest a client inside another server's pane,
    and a client cannot switch servers).
    """
    verb = "switch-client" if switch else "attach-session"
    argv = [binary or "tmux", "-S", socket, verb, "-t", f"={name}"]
    environment = dict(env)
    if not switch:
        environment.pop("TMUX", None)
        environment.pop("TMUX_PANE", None)
    os.execvpe(argv[0], argv, environment)


def inside(socket: str, env: Mapping[str, str]) -> bool:
    """Whether this process runs in a pane of the server on `socket`: `$TMUX` is that
    server's socket path, its process id and the session's index, as tmux sets it."""
    named = env.get("TMUX", "").rsplit(",", 2)[0]
    if not named:
        return False
    try:
        return os.path.samefile(named, socket)
    except OSError:  # either is gone: not the same live server
        return False


def socket_problem(socket: str) -> str | None:
    """Why heartbeat must not ask tmux about this socket path, or None. tmux says "no
    server running" for a regular file or a folder there too: taken as a dead server,
    heartbeat would start a second one and take the first one's agents for leftovers."""
    folder = os.path.dirname(socket) or "."
    try:
        holder = os.lstat(folder)
    except FileNotFoundError:
        holder = None  # made, private, when a session is started there
    except OSError as error:
        return f"tmux socket {socket}: its folder cannot be looked at ({error.strerror})"
    if holder is not None and (
        not stat.S_ISDIR(holder.st_mode) or holder.st_uid != os.getuid() or holder.st_mode & 0o022
    ):
        # As tmux demands of its own folder: another user could put a socket, or the
        # lock tmux waits on, there before heartbeat's tmux connects.
        return (
            f"tmux socket {socket}: its folder {folder} must be yours and writable by you "
            f"alone (chmod 700 {folder}): its entries are left alone"
        )
    try:
        found = os.lstat(socket)
    except FileNotFoundError:
        return None  # no server: one may be started
    except OSError as error:
        why = error.strerror
        return f"tmux socket {socket}: cannot be looked at ({why}): its entries are left alone"
    if stat.S_ISLNK(found.st_mode):
        return (
            f"tmux socket {socket}: is a symbolic link: its entries are left alone; "
            "name the socket itself"
        )
    if not stat.S_ISSOCK(found.st_mode):
        kind = "folder" if stat.S_ISDIR(found.st_mode) else "file that is not a socket"
        return (
            f"tmux socket {socket}: is a {kind}: its entries are left alone until it is moved away"
        )
    if found.st_uid != os.getuid():
        return f"tmux socket {socket}: belongs to another user: its entries are left alone"
    return None


def prepare_socket(socket: str) -> None:
    """Create the socket's folder, private to the user, when it is missing."""
    folder = Path(socket).parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)


def _no_server(stderr: Sequence[str]) -> bool:
    return any(marker in line for line in stderr for marker in _NO_SERVER)


_client_path_lock = threading.Lock()


class _Answering:
    """While tmux answers in a thread, the caller's thread may be busy (reading the notes
    while the list call runs): the thread that reads tmux's output must then get Python
    at once, not after the 5 ms Python lets a busy thread run, or tmux's client waits on
    a full pipe, several times in a long answer."""

    SWITCH_SECONDS = 0.0002

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending = 0
        self.usual = sys.getswitchinterval()

    def begin(self) -> None:
        with self.lock:
            if self.pending == 0:
                self.usual = sys.getswitchinterval()
                sys.setswitchinterval(self.SWITCH_SECONDS)
            self.pending += 1

    def end(self) -> None:
        with self.lock:
            self.pending -= 1
            if self.pending == 0:
                sys.setswitchinterval(self.usual)


_answering = _Answering()


class Call:
    """A tmux command under way in its own thread."""

    def __init__(
        self,
        socket: str,
        command: str,
        timeout: float,
        worker: threading.Thread,
        outcome: dict[str, Any],
    ) -> None:
        self.socket, self.command, self.timeout = socket, command, timeout
        self.worker, self.outcome = worker, outcome
        self.ends_by = time.monotonic() + timeout

    def wait(self) -> tuple[int, list[str], list[str]]:
        """Its exit code and output lines, once it ends; TmuxError when it does not end
        within its time (its client is killed) or could not run."""
        self.worker.join(max(0.0, self.ends_by - time.monotonic()))
        if self.worker.is_alive():
            _kill_hung_clients(self.socket)
            self.worker.join(2)
            raise TmuxError(
                f"tmux on {self.socket} did not answer within {self.timeout:.3g}s ({self.command})"
            )
        runner = _libtmux_runner()
        error = self.outcome.get("error")
        if isinstance(error, runner.exc.TmuxCommandNotFound):
            raise TmuxError("tmux not found: install it (apt install tmux)")
        if isinstance(error, Exception):
            raise TmuxError(f"tmux on {self.socket}: {error}")
        proc = self.outcome["proc"]
        return int(proc.returncode), list(proc.stdout), list(proc.stderr)


class Asked:
    """A list call under way (or refused before it began), answered by `answer()`."""

    def __init__(self, socket: str, call: Call | TmuxError) -> None:
        self.socket, self.call = socket, call

    def answer(self) -> Snapshot:
        if isinstance(self.call, TmuxError):
            raise self.call
        code, out, err = self.call.wait()
        if code != 0:
            if _no_server(err):
                return Snapshot(self.socket, False, {})
            raise TmuxError(f"tmux on {self.socket}: {' '.join(err) or f'exit {code}'}")
        return _snapshot_of(self.socket, out)


def _snapshot_of(socket: str, out: list[str]) -> Snapshot:
    """The sessions in a list call's lines, each with its first pane."""
    first: dict[str, tuple[tuple[int, int], Pane]] = {}
    server_pid: int | None = None
    for line in out:
        row = _ROW.fullmatch(line)
        if row is None:
            continue
        server_pid = int(row["server"]) if row["server"] else server_pid
        order = (int(row["window"]), int(row["pane"]))
        pane = Pane(
            session=row["session"],
            pane_id=row["pane_id"],
            pid=int(row["pid"]) if row["pid"] else None,
            current_command=row["command"],
            exit_option=int(row["exit"]) if row["exit"] else None,
            dead_status=(
                int(row["dead_status"]) if row["dead"] == "1" and row["dead_status"] else None
            ),
            activity=int(row["activity"] or 0),
            created=int(row["created"] or 0),
        )
        known = first.get(pane.session)
        if known is None or order < known[0]:
            first[pane.session] = (order, pane)
    panes = {name: pane for name, (_, pane) in first.items()}
    return Snapshot(socket, True, panes, server_pid)


@contextlib.contextmanager
def _client_path(path: str | None) -> Iterator[None]:
    """Run the tmux client with PATH set: tmux gives a new session its client's PATH,
    whatever `-e PATH=` says."""
    if path is None:
        yield
        return
    with _client_path_lock:
        saved = os.environ.get("PATH")
        os.environ["PATH"] = path
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("PATH", None)
            else:
                os.environ["PATH"] = saved


def _kill_hung_clients(socket: str) -> None:
    """A tmux client waiting on a stopped server never returns: end it (only the
    clients of that socket: those of others may be answering at the same time)."""
    for pid in procs.children_named("tmux", f"-S{socket}"):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _is_tmux_server(pid: int) -> bool:
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        listing = subprocess.run(
            ["ps", "-p", str(pid), "-o", "comm="], capture_output=True, text=True, check=False
        )
        name = os.path.basename(listing.stdout.strip())
    return name.startswith("tmux")


@cache
def _libtmux_runner() -> ModuleType:
    """`libtmux.common`, where libtmux runs tmux commands (`tmux_cmd`, which its
    `Server.cmd` calls), with `libtmux.exc` loaded as its attribute `exc`.

    `import libtmux` first builds libtmux's whole object model (Server, Session, Window,
    Pane, Client): about 50 ms, twice the time Python takes to start, on every check,
    for classes heartbeat does not use. So when libtmux is not imported yet, its package
    is registered lazily (PEP 562): its `__init__` runs the first time anything else
    asks the package for a name, such as `from libtmux import Server`.
    """
    if "libtmux" not in sys.modules:
        spec = importlib.util.find_spec("libtmux")
        if spec is None or spec.loader is None:
            raise TmuxError("libtmux is not installed: reinstall heartbeat")
        package = importlib.util.module_from_spec(spec)
        loader = spec.loader

        def load_in_full(name: str) -> Any:
            if importlib.util.find_spec(f"libtmux.{name}") is not None:
                return importlib.import_module(f"libtmux.{name}")  # a submodule: just it
            package.__dict__.pop("__getattr__", None)
            loader.exec_module(package)
            return getattr(package, name)

        package.__dict__["__getattr__"] = load_in_full
        sys.modules["libtmux"] = package
        # What libtmux's `__init__` does first: its log stays out of stderr.
        logging.getLogger("libtmux").addHandler(logging.NullHandler())
    return importlib.import_module("libtmux.common")


def version(binary: str) -> str:
    """tmux's version, through libtmux."""
    try:
        return str(_libtmux_runner().get_version_str(tmux_bin=binary))
    except Exception as error:  # libtmux raises several kinds here
        raise TmuxError(f"tmux at {binary} does not answer: {error}") from None
