"""The layout stays true: which rooms may import which, who talks to tmux, who prints.

Read from the source with `ast`, so an import inside a function, under TYPE_CHECKING or
through `lazy.module("...")` counts like any other.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import heartbeat
from heartbeat.model import Record
from heartbeat.records import replace

PACKAGE = Path(heartbeat.__file__).parent

# Shared ground: every room may use it; it uses no room.
GROUND = {
    "errors",
    "records",
    "lazy",
    "model",
    "shell",
    "files",
    "config",
    "state",
    "trust",
    "render",
    "deadline",
    "logs",
    "runlog",
}
# What each room may import besides the ground (the direction of the arrows in the
# README's diagram).
MAY_IMPORT = {
    "notes": set(),
    "tmux": set(),
    "agents": set(),
    "work": {"agents"},
    "check": {"notes", "tmux", "agents", "work"},
    "verbs": {"notes", "tmux", "agents", "work", "check"},
    "install": {"notes", "tmux", "agents", "work"},
    "cli": {"notes", "tmux", "agents", "work", "check", "verbs", "install"},
    "__main__": {"cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every module the source names for import, by absolute name."""
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    return frozenset(_imported(tree))


def _imported(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            yield f"<relative import {'.' * node.level}{node.module or ''}>"
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            # `from heartbeat import files` names the module heartbeat.files.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            # lazy.module("heartbeat.x"), importlib.import_module(...), find_spec(...)
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("module", "import_module", "find_spec"):
                yield node.args[0].value


def ours(names: frozenset[str]) -> set[str]:
    """The heartbeat modules among imported names (a name may be a class: skipped)."""
    return {name for name in names if name in modules()}


def parents(module: str) -> set[str]:
    """The packages an import of `module` runs first (their `__init__`)."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        for name in (ours(imports_of(module)) | (parents(module) & set(modules()))) - seen:
            seen.add(name)
            todo.append(name)
    return seen


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_are_absolute(module: str) -> None:
    """So that every rule below sees them by name."""
    assert not [name for name in imports_of(module) if name.startswith("<relative")]


def test_the_reader_sees_every_kind_of_import() -> None:
    source = """
from heartbeat import files
import heartbeat.state
def later():
    from heartbeat.tmux.server import Tmux
notify = lazy.module("heartbeat.check.notify")
"""
    found = ours(frozenset(_imported(ast.parse(source))))
    expected = {"heartbeat", "heartbeat.files", "heartbeat.state", "heartbeat.tmux.server"}
    assert found == expected | {"heartbeat.check.notify"}
    assert {"heartbeat.check.decide", "heartbeat.tmux.server", "heartbeat.cli"} <= set(modules())


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_inwards(module: str) -> None:
    """Ground imports no room; each room only the rooms its arrows allow."""
    here = room(module)
    if not here:
        return  # the package's own __init__
    # "": the package itself, which holds only its version.
    allowed = {"", *GROUND} if here in GROUND else {"", *GROUND, *MAY_IMPORT[here], here}
    wrong = {name for name in ours(imports_of(module)) if room(name) not in allowed}
    assert not wrong, f"{module} imports {sorted(wrong)}"


@pytest.mark.parametrize("module", sorted(modules()))
def test_only_the_tmux_room_imports_libtmux(module: str) -> None:
    names = imports_of(module)
    uses_libtmux = any(name == "libtmux" or name.startswith("libtmux.") for name in names)
    assert not uses_libtmux or room(module) == "tmux", module


@pytest.mark.parametrize(
    "module",
    [name for name in sorted(modules()) if room(name) == "notes"]
    + ["heartbeat.check.decide", "heartbeat.check.facts"],
)
def test_notes_and_decisions_never_reach_tmux(module: str) -> None:
    """Not even through another module: parsing and deciding run without tmux."""
    found = {name for name in reachable(module) | {module} if room(name) == "tmux"}
    assert not found, f"{module} reaches {sorted(found)}"
    libtmux = {name for name in reachable(module) | {module} if "libtmux" in imports_of(name)}
    assert not libtmux, f"{module} reaches libtmux through {sorted(libtmux)}"


def test_decide_is_pure() -> None:
    """decide reads no file, runs nothing and reads no clock: only records come in."""
    allowed = (
        "__future__",
        "collections.abc",
        "datetime",
        "typing",
        "heartbeat.check.facts",
        "heartbeat.records",
        "heartbeat.model",
    )
    names = imports_of("heartbeat.check.decide")
    stray = {n for n in names if not any(n == a or n.startswith(f"{a}.") for a in allowed)}
    assert not stray, sorted(stray)
    tree = ast.parse(modules()["heartbeat.check.decide"].read_text())
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not used & {"open", "print", "exec", "eval", "__import__"}
    assert not attributes & {"now", "today", "utcnow", "monotonic", "sleep", "read_text"}


SPEAKING_CALLS = {"print", "exit", "quit", "input", "SystemExit"}
SPEAKERS = {("sys", "stdout"), ("sys", "stderr"), ("sys", "exit"), ("os", "_exit")}


def _speaks(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("sys", "os"):
            taken = {alias.name for alias in node.names}
            yield from taken & {"stdout", "stderr", "exit", "_exit"}
        match node:
            case ast.Call(func=ast.Name(id=name)) if name in SPEAKING_CALLS:
                yield name
            case ast.Raise(
                exc=ast.Name(id="SystemExit") | ast.Call(func=ast.Name(id="SystemExit"))
            ):
                yield "raise SystemExit"
            case ast.Attribute(value=ast.Name(id=owner), attr=attr) if (owner, attr) in SPEAKERS:
                yield f"{owner}.{attr}"


@pytest.mark.parametrize("module", sorted(modules()))
def test_only_the_command_line_prints_or_exits(module: str) -> None:
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    spoken = set(_speaks(tree))
    assert not spoken or room(module) in ("cli", "__main__"), f"{module}: {sorted(spoken)}"


CHANGES_A_RECORD = """
from heartbeat.check.facts import Plan
from heartbeat.model import Entry, Record
from heartbeat.records import replace
def change(record: Record, entry: Entry, plan: Plan) -> Record:
    record.state = None
    entry.name = "other"
    plan.record = record
    return replace(record, exit_code=3)
"""


def test_the_checks_records_are_changed_in_one_place(tmp_path: Path) -> None:
    """A record is frozen to the type checker: decide returns the next one, act stores
    it. `mypy --strict` refuses every assignment to a field, and takes `replace`."""
    mypy = pytest.importorskip("mypy.api")
    (tmp_path / "change.py").write_text(CHANGES_A_RECORD)
    out, _, code = mypy.run(
        ["--strict", "--no-incremental", "--follow-imports=silent", str(tmp_path / "change.py")]
    )
    refused = re.findall(
        r'change.py:(\d+): error: Property "(\w+)" defined in "(\w+)" is read-only', out
    )
    assert refused == [("6", "state", "Record"), ("7", "name", "Entry"), ("8", "record", "Plan")], (
        out
    )
    assert code == 1 and out.count("error:") == 3, out  # `replace` passes
    # And as a frozen dataclass: equal and hashed by its fields, as a frozen one is.
    assert Record(exit_code=3) == Record(exit_code=3)
    assert len({Record(exit_code=3), Record(exit_code=3), Record()}) == 2
    assert replace(Record(), exit_code=3).exit_code == 3


AGENT_NAME = re.compile(r"\b(codex|claude|ralphy?)\b", re.IGNORECASE)


def test_no_module_outside_agents_names_an_agent() -> None:
    """What heartbeat knows of a particular agent lives in its module under agents/: no
    other module names one in its text, or imports an agent's module."""
    named = []
    for module, path in modules().items():
        if room(module) in ("agents", "cli"):
            continue  # cli: the launch shortcuts' flags and their help
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and AGENT_NAME.search(text):
                named.append(f"{module}: {text[:60]!r}")
        families = {name for name in imports_of(module) if name.startswith("heartbeat.agents.")}
        named += [f"{module} imports {name}" for name in families - {"heartbeat.agents.reasons"}]
    assert not named, named
