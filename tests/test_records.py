"""heartbeat's records behave as dataclasses do: `@frozen` as `@dataclass(frozen=True)`
but for the guard at run time (the type checker's: tests/test_architecture.py), and
`@mutable` as `@dataclass`. Each is made beside a real dataclass of the same shape and
held to it: construction, defaults and factories, `init=False` and `__post_init__`,
equality, hash, repr, `replace`, `fields`, `asdict`, pickling."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from typing import Any

import pytest
from conftest import Sandbox
from hypothesis import given
from hypothesis import strategies as st

from heartbeat import records
from heartbeat.records import field, frozen, mutable


@frozen
class Ours:
    name: str
    count: int = 0
    tags: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict, compare=False)
    secret: str = field(default="", repr=False)
    cached: int = field(default=0, hash=False)


@dataclasses.dataclass(frozen=True)
class Theirs:
    name: str
    count: int = 0
    tags: tuple[str, ...] = ()
    notes: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)
    secret: str = dataclasses.field(default="", repr=False)
    cached: int = dataclasses.field(default=0, hash=False)


@mutable
class OursChanging:
    name: str
    items: list[str] = field(default_factory=list)
    size: int = field(init=False, default=-1)
    shown: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.size = len(self.items)
        self.shown = f"{self.name}:{self.size}"


@dataclasses.dataclass
class TheirsChanging:
    name: str
    items: list[str] = dataclasses.field(default_factory=list)
    size: int = dataclasses.field(init=False, default=-1)
    shown: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.size = len(self.items)
        self.shown = f"{self.name}:{self.size}"


@frozen(eq=False)
class ByIdentity:
    name: str


@frozen
class Lone:
    name: str


@frozen
class Outer:
    inner: Ours
    many: tuple[Ours, ...] = ()
    by_name: dict[str, Lone] = field(default_factory=dict)


values = st.tuples(
    st.sampled_from(["a", "b"]),
    st.integers(0, 2),
    st.sampled_from([(), ("x",)]),
    st.sampled_from([{}, {"k": "v"}]),
    st.sampled_from(["", "s"]),
    st.integers(0, 1),
)
changes = st.dictionaries(
    st.sampled_from(["name", "count", "tags", "secret", "cached"]),
    st.sampled_from(["c", 5, ("y",), "t", 1]),
)


def shown(record: object) -> str:
    return repr(record).replace("Theirs", "Ours", 1)


@given(values, values)
def test_equal_hashed_and_shown_as_a_frozen_dataclass_is(
    one: tuple[Any, ...], other: tuple[Any, ...]
) -> None:
    ours, theirs = Ours(*one), Theirs(*one)
    ours_other, theirs_other = Ours(*other), Theirs(*other)

    assert (ours == ours_other) is (theirs == theirs_other)
    assert (ours != ours_other) is (theirs != theirs_other)
    if ours == ours_other:
        assert hash(ours) == hash(ours_other)
    assert hash(ours) == hash(Ours(*one))
    assert shown(ours) == shown(theirs)


@given(values, changes)
def test_replaced_as_a_dataclass_is(one: tuple[Any, ...], change: dict[str, Any]) -> None:
    ours = records.replace(Ours(*one), **change)
    theirs = dataclasses.replace(Theirs(*one), **change)
    assert shown(ours) == shown(theirs)
    assert ours.notes == theirs.notes
    assert records.asdict(ours) == dataclasses.asdict(theirs)


@given(values)
def test_made_by_keyword_and_defaulted_as_a_dataclass_is(one: tuple[Any, ...]) -> None:
    names = ["name", "count", "tags", "notes", "secret", "cached"]
    given_ = dict(zip(names, one, strict=True))
    assert shown(Ours(**given_)) == shown(Theirs(**given_))
    assert shown(Ours(one[0])) == shown(Theirs(one[0]))
    assert Ours(one[0]).notes is not Ours(one[0]).notes  # each its own factory's dict


def test_fields_are_a_dataclasses_fields() -> None:
    def described(items: Any) -> list[tuple[Any, ...]]:
        return [(f.name, f.init, f.repr, f.compare, f.hash) for f in items]

    assert described(records.fields(Ours)) == described(dataclasses.fields(Theirs))
    assert described(records.fields(OursChanging)) == described(dataclasses.fields(TheirsChanging))
    assert [f.default for f in records.fields(Ours)][1:3] == [0, ()]
    assert Ours.count == Theirs.count == 0  # a default stays a class attribute
    assert not hasattr(Ours, "notes") and not hasattr(Theirs, "notes")
    assert Ours.__match_args__ == Theirs.__match_args__


@given(st.sampled_from(["a", "b"]), st.lists(st.sampled_from(["x", "y"]), max_size=3))
def test_a_mutable_one_is_a_dataclass(name: str, items: list[str]) -> None:
    ours, theirs = OursChanging(name, list(items)), TheirsChanging(name, list(items))
    assert repr(ours).replace("Ours", "Theirs", 1) == repr(theirs)
    assert (ours.size, ours.shown) == (theirs.size, theirs.shown)
    assert ours == OursChanging(name, list(items)) and ours != OursChanging(name + "z")
    assert OursChanging.__hash__ is None and TheirsChanging.__hash__ is None
    ours.name = "changed"  # no guard: it is the mutable kind
    assert ours.name == "changed"
    again = records.replace(ours, items=["z"])
    assert (again.size, again.shown) == (1, "changed:1")  # made again: __post_init__ ran


def test_refused_as_dataclasses_refuses() -> None:
    with pytest.raises(ValueError, match="not replaceable"):
        records.replace(OursChanging("a"), size=3)
    with pytest.raises(ValueError, match="init=False"):
        dataclasses.replace(TheirsChanging("a"), size=3)
    with pytest.raises(TypeError):
        Ours()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Ours("a", unknown=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="follows default"):

        @frozen
        class Misordered:
            first: int = 0
            second: int  # type: ignore[misc]

    with pytest.raises(ValueError, match="mutable default"):

        @mutable
        class Shared:
            items: list[str] = []  # noqa: RUF012  # type: ignore[misc]

    with pytest.raises(TypeError):
        records.replace(Theirs("a"), count=1)


def test_nested_records_become_plain_data() -> None:
    outer = Outer(Ours("a"), (Ours("b", 1),), {"k": Lone("c")})
    assert records.asdict(outer) == {
        "inner": dataclasses.asdict(Theirs("a")),
        "many": (dataclasses.asdict(Theirs("b", 1)),),
        "by_name": {"k": {"name": "c"}},
    }


def test_pickled_and_back_unchanged() -> None:
    one = Ours("a", 2, ("x",), {"k": "v"}, "s", 1)
    assert pickle.loads(pickle.dumps(one)) == one
    changing = OursChanging("a", ["x"])
    back = pickle.loads(pickle.dumps(changing))
    assert (back, back.shown) == (changing, changing.shown)


def test_another_class_is_never_equal() -> None:
    assert Ours("a") != Theirs("a")
    assert Ours("a").__eq__(("a", 0, ())) is NotImplemented
    assert Lone("a") == Lone("a") and Lone("a") != Lone("b")
    assert len({Lone("a"), Lone("a"), Lone("b")}) == 2


def test_without_eq_a_record_is_itself_alone() -> None:
    one = ByIdentity("a")
    assert one == one and one != ByIdentity("a")
    assert len({one, ByIdentity("a")}) == 2
    assert repr(one) == "ByIdentity(name='a')"


def test_what_a_class_defines_itself_stays() -> None:
    @frozen
    class Own:
        name: str

        def __repr__(self) -> str:
            return "mine"

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return 7

    assert (repr(Own("a")), Own("a") == Own("b"), hash(Own("a"))) == ("mine", True, 7)


def test_a_quiet_check_never_imports_dataclasses(sandbox: Sandbox) -> None:
    """What these records are for: a check that finds nothing changed, start to end,
    without `dataclasses` (nor the `inspect` it imports). Parsing a changed note may
    import it: markdown-it's tokens are dataclasses."""
    sandbox.write_note(
        "## Active Long-Running Processes\n"
        f"- api: `codex exec --full-auto work`\n  - dir: {sandbox.root}\n"
    )
    sandbox.allow("api")
    assert sandbox.check().stdout == "api: new -> dead (restarted)\n"
    sandbox.check()  # reads the note its status line changed

    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "heartbeat", "check"],
        env=sandbox.env,
        cwd=sandbox.root,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert {"heartbeat.check.decide", "heartbeat.check.observe"} <= imported
    assert not imported & {"dataclasses", "inspect"}
