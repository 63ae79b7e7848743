"""Frozen records: immutable to the type checker, plain dataclasses when the code runs.

`mypy --strict` refuses an assignment to any field of a class made with `@frozen`, as
it refuses one to a `@dataclass(frozen=True)` (PEP 681's `frozen_default`), and the
class keeps a frozen dataclass's equality, hash and repr. Two costs go, both paid by
every check (cron starts one a minute, and most change nothing):

- The guard at run time. A frozen dataclass sets every field through
  `object.__setattr__`, in `__init__` and in every `dataclasses.replace`, and a check
  builds several records for each entry.
- Compiling. dataclasses writes the source of each class's methods and compiles it when
  the class is made; here only `__init__` is, and equality, hash and repr are the same
  few functions for every class, reading the fields with `operator.attrgetter`.

The first took 12% off the instructions of a quiet check of 500 entries, the second 6%
of the rest (`valgrind --tool=callgrind`, on bench/check.py's notes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

Class = TypeVar("Class", bound=type)


@overload
def frozen(cls: Class, /) -> Class: ...
@overload
def frozen(*, eq: bool = True, repr: bool = True) -> Callable[[Class], Class]: ...
@dataclass_transform(frozen_default=True)
def frozen(cls: Any = None, /, *, eq: bool = True, repr: bool = True) -> Any:
    """`@dataclass(frozen=True)` as the type checker sees it (with `eq`, `repr`)."""

    def make(undecorated: type) -> type:
        made: type = dataclass(undecorated, eq=False, repr=False)  # compiles `__init__` alone
        if repr:
            shown = tuple(item.name for item in fields(made) if item.repr)
            setattr(made, "__repr__", _repr_of(shown))  # noqa: B010 (mypy: on a type)
        if eq:
            compared = tuple(item.name for item in fields(made) if item.compare)
            hashed = tuple(
                item.name
                for item in fields(made)
                if (item.compare if item.hash is None else item.hash)
            )
            setattr(made, "__eq__", _eq_of(_values(compared)))  # noqa: B010
            setattr(made, "__hash__", _hash_of(_values(hashed)))  # noqa: B010
        return made

    return make if cls is None else make(cls)


def _values(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The fields' values as a tuple (attrgetter gives a bare value for one name)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda record: (one(record),)
    return lambda record: ()


def _eq_of(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    """Equal when of the same class with equal fields, as a dataclass is."""

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return values(self) == values(other)

    return __eq__


def _hash_of(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __hash__


def _repr_of(names: tuple[str, ...]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__
