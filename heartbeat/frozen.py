"""Frozen records: immutable to the type checker, plain dataclasses when the code runs.

`mypy --strict` refuses an assignment to any field of a class made with `@frozen`, as
it refuses one to a `@dataclass(frozen=True)` (PEP 681's `frozen_default`), and the
class keeps a frozen dataclass's equality and hash. What it drops is the guard at run
time: a frozen dataclass sets every field through `object.__setattr__`, in `__init__`
and in every `dataclasses.replace`, and a check builds several records for each entry.
Dropping it took 13% off the instructions of a quiet check of 500 entries
(`valgrind --tool=callgrind`, bench/check.py's notes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
        # unsafe_hash: hashed by its fields, as a frozen dataclass is (when it compares).
        return dataclass(undecorated, eq=eq, repr=repr, unsafe_hash=eq)

    return make if cls is None else make(cls)
