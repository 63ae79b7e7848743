"""`@frozen` records behave as `@dataclass(frozen=True)` ones do, but for the guard at run
time (the type checker's: tests/test_architecture.py): equal, hashed and shown alike."""

from __future__ import annotations

import dataclasses
from dataclasses import field

from hypothesis import given
from hypothesis import strategies as st

from heartbeat.frozen import frozen


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
    notes: dict[str, str] = field(default_factory=dict, compare=False)
    secret: str = field(default="", repr=False)
    cached: int = field(default=0, hash=False)


@frozen(eq=False)
class ByIdentity:
    name: str


@frozen
class Lone:
    name: str


values = st.tuples(
    st.sampled_from(["a", "b"]),
    st.integers(0, 2),
    st.sampled_from([(), ("x",)]),
    st.sampled_from([{}, {"k": "v"}]),
    st.sampled_from(["", "s"]),
    st.integers(0, 1),
)


@given(values, values)
def test_equal_hashed_and_shown_as_a_frozen_dataclass_is(one: tuple, other: tuple) -> None:  # type: ignore[type-arg]
    ours, theirs = Ours(*one), Theirs(*one)
    ours_other, theirs_other = Ours(*other), Theirs(*other)

    assert (ours == ours_other) is (theirs == theirs_other)
    assert (ours != ours_other) is (theirs != theirs_other)
    if ours == ours_other:
        assert hash(ours) == hash(ours_other)
    assert hash(ours) == hash(Ours(*one))
    assert repr(ours) == repr(theirs).replace("Theirs(", "Ours(", 1)
    assert dataclasses.replace(ours, count=9) == Ours(*one[:1], 9, *one[2:])


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
