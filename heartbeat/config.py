"""One Config: flag, else HEARTBEAT_* environment, else the config file, else defaults.

The config file lives outside the notes folder (`$HEARTBEAT_CONFIG`, else
`$XDG_CONFIG_HOME/heartbeat/config.toml`, else `~/.config/heartbeat/config.toml`): a
note must never be able to change what heartbeat trusts.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from heartbeat import files, trust
from heartbeat.errors import ConfigError, NoteError, UsageError
from heartbeat.model import AUTH_EXPIRED, RATE_LIMITED, TRANSIENT
from heartbeat.records import frozen

DEFAULT_SOCKET = "~/.tmux/sock"
# sockaddr_un holds 104 bytes on macOS and 108 on Linux, the terminating NUL included.
MAX_SOCKET_BYTES = 103
# Where tmux and the agents usually live when cron's PATH (/usr/bin:/bin) does not say.
EXTRA_BIN_DIRS = ("/opt/homebrew/bin", "/usr/local/bin")
OPENCLAW_NOTIFY = ("system", "event", "--text", "{text}", "--mode", "now")
EVENTS = (
    "restarted",
    "gave-up",
    "finished",
    "failed",
    "stalled",
    "auth-expired",
    "rate-limited",
    "needs-approval",
)


CONTINUE_PROMPT = (
    "Your previous run was interrupted before it finished. Continue the original task from"
    " where it stopped: check what is already done (git status, git log, the files) first."
)


@frozen(eq=False)
class Settings:
    """What the config file may set, with the defaults."""

    carry_days: int = 7
    max_restarts_per_check: int = 3
    restart_spacing_seconds: float = 3.0  # between restarts in one check, plus jitter
    check_timeout_seconds: float = 30.0  # a whole check, even when tmux hangs
    tmux_timeout_seconds: float = 10.0  # one tmux call
    notify_timeout_seconds: float = 10.0
    trust_owned_notes: bool = False  # run hand-written commands without `heartbeat allow`
    stall_after_minutes: float = 30.0  # no output and no new commit this long: stalled
    rate_limit_wait_seconds: float = 60.0  # the least wait after a rate limit's stop
    # What a resumed agent is told: its conversation holds the original task.
    continue_prompt: str = CONTINUE_PROMPT
    notify_events: tuple[str, ...] = EVENTS  # which events a person is told about
    completion_check: bool = True  # the wrapper checks its entry the moment the agent ends
    instant_restarts: bool = True  # a tmux hook checks the moment a session closes
    ping_url: str = ""  # pinged after each check (healthchecks.io style); empty: none
    log_keep_ansi: bool = False  # run logs keep the terminal's colour codes
    log_max_bytes: int = 4 << 20  # a run log past this moves to `.1` (one kept)
    # Past this many notifications about one entry in a rolling hour, further events are
    # folded into one digest, sent when the hour allows (a looping agent must not flood).
    notify_per_entry_per_hour: int = 5
    worktrees: str = ""  # where `launch --worktree` makes worktrees; empty: worktrees_dir's


@frozen(eq=False)
class Config:
    notes_dir: Path
    socket: str
    state_dir: Path
    tmux: str | None
    notify: tuple[str, ...]  # argv; the word {text} stands for the message; empty: none
    env: Mapping[str, str]
    settings: Settings = Settings()
    config_file: Path | None = None
    patterns: tuple[Pattern, ...] = ()  # the config file's own stop reasons
    host: str = ""  # this machine's name in the notes' `host:` sub-items
    # Where the notes folder came from: NOTES_FROM_FLAG, NOTES_FROM_ENV, the config
    # file's path, or NOTES_FROM_OPENCLAW.
    notes_from: str = ""
    notes_configured: Path | None = None  # the config file's own `notes`, when it has one

    @property
    def path(self) -> str:
        return self.env.get("PATH") or os.defpath

    @property
    def carry_days(self) -> int:
        return self.settings.carry_days


def load(env: Mapping[str, str], notes: str | None = None, socket: str | None = None) -> Config:
    home = env.get("HOME") or os.path.expanduser("~")
    file = config_path(env, home)
    values = read_config_file(file, required=bool(env.get("HEARTBEAT_CONFIG")))
    configured = values.pop("notes", None)
    notes_value, notes_from = notes_folder(env, home, file, notes, configured)
    socket_value = socket or env.get("HEARTBEAT_SOCKET") or values.pop("socket", None)
    notify_value = values.pop("notify", None)
    patterns: tuple[Pattern, ...] = ()
    if "pattern" in values:
        patterns = compile_patterns(values.pop("pattern"), str(file))
    values.pop("socket", None)
    try:
        settings = Settings(**values)
    except TypeError as error:
        unknown = str(error).split("argument ")[-1]
        raise ConfigError(f"{file}: unknown setting {unknown}") from None
    return Config(
        notes_dir=notes_path(notes_value, home),
        socket=resolve_socket(str(socket_value or DEFAULT_SOCKET), home),
        state_dir=state_dir(env, home),
        tmux=find_tmux(env),
        notify=notify_command(env, notify_value, file),
        env=env,
        settings=settings,
        config_file=file if file.exists() else None,
        patterns=patterns,
        host=env.get("HEARTBEAT_HOST") or os.uname().nodename.split(".")[0],
        notes_from=notes_from,
        notes_configured=notes_path(configured, home) if configured else None,
    )


NOTES_FROM_FLAG = "--notes"
NOTES_FROM_ENV = "HEARTBEAT_NOTES"
NOTES_FROM_OPENCLAW = "the OpenClaw workspace"


def notes_folder(
    env: Mapping[str, str], home: str, file: Path, flag: str | None, configured: str | None
) -> tuple[str, str]:
    """The notes folder and where it came from: the flag, HEARTBEAT_NOTES, the config
    file, the OpenClaw workspace's memory/; else a ConfigError saying how to choose
    (never a `memory/` in whatever folder heartbeat runs from)."""
    if flag:
        return flag, NOTES_FROM_FLAG
    if env.get("HEARTBEAT_NOTES"):
        return env["HEARTBEAT_NOTES"], NOTES_FROM_ENV
    if configured:
        return configured, str(file)
    workspace = openclaw_memory(env, home)
    if workspace:
        return workspace, NOTES_FROM_OPENCLAW
    raise ConfigError(
        "no notes folder: pass --notes DIR, set HEARTBEAT_NOTES, or run heartbeat init "
        f'--notes DIR (it writes notes = "DIR" in {file}; the OpenClaw workspace\'s '
        "memory/ is used when it exists)"
    )


def notes_path(value: str, home: str) -> Path:
    return Path(expand_home(value, home)).absolute()


def openclaw_memory(env: Mapping[str, str], home: str) -> str | None:
    """The OpenClaw workspace's `memory/` folder, when it exists: where the skill
    heartbeat automates keeps its daily notes. The workspace is OPENCLAW_WORKSPACE_DIR,
    else `agents.defaults.workspace` in ~/.openclaw/openclaw.json (JSON5), else
    ~/.openclaw/workspace (`workspace-<profile>` for an OPENCLAW_PROFILE other than
    `default`), as OpenClaw's documentation (concepts/agent-workspace) says."""
    state = Path(expand_home(env.get("OPENCLAW_STATE_DIR") or "~/.openclaw", home))
    workspace = env.get("OPENCLAW_WORKSPACE_DIR") or _configured_workspace(state / "openclaw.json")
    if not workspace:
        profile = env.get("OPENCLAW_PROFILE", "default")
        workspace = str(state / ("workspace" if profile == "default" else f"workspace-{profile}"))
    memory = Path(expand_home(workspace, home)) / "memory"
    return str(memory) if memory.is_dir() else None


def _configured_workspace(file: Path) -> str | None:
    """`agents.defaults.workspace` from OpenClaw's config, read only when it is a
    regular file of this user's (it is another program's file); None when it says none."""
    try:
        data = files.read_private(file)
    except OSError:
        return None
    import json5  # here: only a machine with OpenClaw's config needs it

    try:
        loaded: Any = json5.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError, TypeError):
        return None
    for key in ("agents", "defaults", "workspace"):
        loaded = loaded.get(key) if isinstance(loaded, dict) else None
    return loaded if isinstance(loaded, str) and loaded else None


def config_path(env: Mapping[str, str], home: str) -> Path:
    explicit = env.get("HEARTBEAT_CONFIG")
    if explicit:
        return Path(expand_home(explicit, home))
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path(home) / ".config"
    return base / "heartbeat" / "config.toml"


# Settings that must be at least this (a negative timeout or a zero storm guard would
# quietly stop heartbeat from doing its job).
MINIMUM = {
    "carry_days": 0,
    "max_restarts_per_check": 1,
    "restart_spacing_seconds": 0,
    "check_timeout_seconds": 1,
    "tmux_timeout_seconds": 0.1,
    "notify_timeout_seconds": 0.1,
    "stall_after_minutes": 1,
    "rate_limit_wait_seconds": 1,
    "log_max_bytes": 1024,
    "notify_per_entry_per_hour": 1,
}


def read_config_file(file: Path, required: bool = False) -> dict[str, Any]:
    try:
        # Without blocking, and only a regular file: a FIFO there would hang every check.
        # And only the user's alone: its notify command and its trust_owned_notes decide
        # what runs.
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{file}: not a regular file")
            refused = trust.unsafe_info(info, str(file), acl=False)
            if refused:
                raise ConfigError(f"{refused} (it decides what runs)")
            values = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{file}: config file not found") from None
        return {}
    except OSError as error:
        raise ConfigError(f"{file}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not valid UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: {error}") from None
    types = {name: type(value) for name, value in vars(Settings()).items()}
    types |= {"notes": str, "socket": str}
    for key, value in values.items():
        expected = types.get(key)
        if isinstance(value, bool) and expected is not bool and expected is not None:
            raise ConfigError(f"{file}: {key} must be {expected.__name__}, not {value!r}")
        if key in MINIMUM and isinstance(value, int | float) and value < MINIMUM[key]:
            raise ConfigError(f"{file}: {key} must be at least {MINIMUM[key]}, not {value!r}")
        if expected is str and isinstance(value, str) and not value.strip():
            raise ConfigError(f"{file}: {key} must not be empty")
        if expected is float and isinstance(value, int):
            values[key] = float(value)
        elif expected is tuple and isinstance(value, list):
            unknown = set(value) - set(EVENTS)
            if unknown:
                raise ConfigError(f"{file}: {key}: unknown events {sorted(unknown)}")
            values[key] = tuple(value)
        elif expected is not None and not isinstance(value, expected):
            kind = "a list" if expected is tuple else expected.__name__
            raise ConfigError(f"{file}: {key} must be {kind}, not {value!r}")
    return values


MAX_CONFIG_BYTES = 1 << 20  # a config file is a few lines; past this it is not one


def write_notes(file: Path, folder: Path) -> bool:
    """Write `notes = "FOLDER"` in the config file, keeping every comment and other key
    as they are (tomlkit edits the document, not its text); True when the file changed.

    Refused as reading is refused (a FIFO, a file another user could write, bad TOML).
    Written as notes are: atomically, with the file's mode, never over a save made
    meanwhile (files.rewrite). A config file that is a link (a dotfiles checkout) is
    written where it points, and stays a link."""
    read_config_file(file)
    target = Path(os.path.realpath(file))
    value = str(folder)
    import tomlkit  # here: only choosing the notes folder edits the config

    if not os.path.lexists(target):
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = tomlkit.document()
        document["notes"] = value
        if files.create_exclusively(target, tomlkit.dumps(document)):
            return True
    changed = False

    def build(text: str) -> str:
        nonlocal changed
        try:
            document = tomlkit.parse(text)
        except tomlkit.exceptions.TOMLKitError as error:
            raise ConfigError(f"{file}: {error}") from None
        changed = document.get("notes") != value
        if changed:
            document["notes"] = value
        return tomlkit.dumps(document) if changed else text

    try:
        files.rewrite(target, str(file), MAX_CONFIG_BYTES, build, files.Patience())
    except NoteError as error:  # busy, kept changing, or too big: nothing was written
        busy = error.message == files.BUSY
        reason = "another program is writing it: try again" if busy else error.message
        raise ConfigError(f"{file}: not written: {reason}") from None
    return changed


def expand_home(path: str, home: str) -> str:
    """`~` and `~/...` as the shell expands them; other paths as they are."""
    if path == "~" or path.startswith("~/"):
        return home + path[1:]
    return path


def resolve_socket(socket: str, home: str) -> str:
    socket = expand_home(socket, home)
    if not os.path.isabs(socket):
        socket = os.path.abspath(socket)
    if len(os.fsencode(socket)) > MAX_SOCKET_BYTES:
        raise UsageError(
            f"socket path is {len(os.fsencode(socket))} bytes, longer than tmux accepts "
            f"({MAX_SOCKET_BYTES}): {socket}"
        )
    return os.path.normpath(socket)


def state_dir(env: Mapping[str, str], home: str) -> Path:
    explicit = env.get("HEARTBEAT_STATE_DIR")
    if explicit:
        return Path(expand_home(explicit, home)).absolute()
    xdg = env.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "heartbeat"
    from platformdirs.unix import Unix  # XDG's rules on every system, as documented

    return Path(Unix("heartbeat").user_state_dir.replace(os.path.expanduser("~"), home, 1))


def worktrees_dir(config: Config) -> Path:
    """Where `launch --worktree` makes its worktrees: `worktrees` in the config, else
    heartbeat/worktrees in the user's data folder (platformdirs: $XDG_DATA_HOME or
    ~/.local/share on Linux, ~/Library/Application Support on macOS)."""
    home = config.env.get("HOME") or os.path.expanduser("~")
    if config.settings.worktrees:
        return Path(expand_home(config.settings.worktrees, home)).absolute()
    xdg = config.env.get("XDG_DATA_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "heartbeat" / "worktrees"
    import platformdirs  # here: only a launch with --worktree and clean need it

    data = platformdirs.user_data_dir("heartbeat", appauthor=False)
    return Path(data.replace(os.path.expanduser("~"), home, 1)) / "worktrees"


def find_tmux(env: Mapping[str, str]) -> str | None:
    explicit = env.get("HEARTBEAT_TMUX")
    if explicit:
        return explicit
    search = os.pathsep.join([env.get("PATH") or os.defpath, *EXTRA_BIN_DIRS])
    return shutil.which("tmux", path=search)


def notify_command(env: Mapping[str, str], configured: Any, file: Path) -> tuple[str, ...]:
    """The notify argv: $HEARTBEAT_NOTIFY, else the config file, else openclaw if found."""
    from_env = env.get("HEARTBEAT_NOTIFY")
    if from_env is not None:
        try:
            return tuple(shlex.split(from_env))
        except ValueError as error:
            raise UsageError(f"HEARTBEAT_NOTIFY cannot be read: {error}") from None
    if isinstance(configured, list) and all(isinstance(word, str) for word in configured):
        return tuple(configured)
    if configured is not None:
        raise ConfigError(
            f'{file}: notify must be a list of words, like ["notify-send", "{{text}}"]'
        )
    openclaw = shutil.which("openclaw", path=env.get("PATH") or os.defpath)
    return (openclaw, *OPENCLAW_NOTIFY) if openclaw else ()


# --- the user's own stop reasons --------------------------------------------------------

KNOWN_REASONS = (AUTH_EXPIRED, RATE_LIMITED, TRANSIENT)


@frozen
class Pattern:
    reason: str
    regex: re.Pattern[str]
    hint: str


def compile_patterns(raw: Iterable[Mapping[str, Any]], where: str) -> tuple[Pattern, ...]:
    patterns = []
    for index, item in enumerate(raw, start=1):
        reason, regex = item.get("reason"), item.get("regex")
        if reason not in KNOWN_REASONS or not isinstance(regex, str):
            raise ConfigError(
                f"{where}: pattern {index} needs reason ({' or '.join(KNOWN_REASONS)}) and regex"
            )
        try:
            compiled = re.compile(regex, re.IGNORECASE)
        except re.error as error:
            raise ConfigError(f"{where}: pattern {index}: {error}") from None
        patterns.append(Pattern(reason, compiled, str(item.get("hint", ""))))
    return tuple(patterns)
