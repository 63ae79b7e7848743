"""Records: heartbeat's dataclasses, made without the `dataclasses` module.

`@frozen` is `@dataclass(frozen=True)` and `@record` is `@dataclass` to the type checker
(PEP 681): `mypy --strict` refuses an assignment to any field of a frozen one, and
`field`, `fields`, `replace` and `asdict` take what dataclasses' do. When the code runs,
a record keeps a dataclass's `__init__` (defaults, factories, `init=False`,
`__post_init__`), equality, hash and repr; tests/test_records.py holds them to real
dataclasses.

Why by hand: cron starts a check every minute and most change nothing, so what Python
does before the check starts is most of its cost. Importing `dataclasses` (it imports
`inspect`, which imports `ast`, `dis` and `tokenize`) and making heartbeat's records
with it took 12 ms of a 65 ms quiet check of 500 entries. Here a class costs a few
dictionary lookups when it is made, and its `__init__` is compiled the first time one is
made; a frozen one skips the guard on every field a frozen dataclass sets through
`object.__setattr__`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

Class = TypeVar("Class", bound=type)
Value = TypeVar("Value")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # no default (None is a default)


class Field:
    """One field of a record, as `field()` describes it."""

    __slots__ = ("compare", "default", "default_factory", "hash", "init", "name", "repr")

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Any = MISSING,
        init: bool = True,
        repr: bool = True,
        compare: bool = True,
        hash: bool | None = None,
    ) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.compare = compare
        self.hash = hash

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r})"


@overload
def field(
    *,
    default: Value,
    init: bool = True,
    repr: bool = True,
    compare: bool = True,
    hash: bool | None = None,
) -> Value: ...
@overload
def field(
    *,
    default_factory: Callable[[], Value],
    init: bool = True,
    repr: bool = True,
    compare: bool = True,
    hash: bool | None = None,
) -> Value: ...
@overload
def field(
    *, init: bool = True, repr: bool = True, compare: bool = True, hash: bool | None = None
) -> Any: ...
def field(**options: Any) -> Any:
    """A field with more than a default, as `dataclasses.field` (the options are
    Field's)."""
    return Field(**options)


@overload
def frozen(cls: Class, /) -> Class: ...
@overload
def frozen(*, eq: bool = True, repr: bool = True) -> Callable[[Class], Class]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def frozen(cls: Any = None, /, *, eq: bool = True, repr: bool = True) -> Any:
    """`@dataclass(frozen=True)` as the type checker sees it (with `eq`, `repr`)."""

    def make(undecorated: type) -> type:
        return _make(undecorated, eq, repr, hashed=eq)

    return make if cls is None else make(cls)


@overload
def mutable(cls: Class, /) -> Class: ...
@overload
def mutable(*, eq: bool = True, repr: bool = True) -> Callable[[Class], Class]: ...
@dataclass_transform(field_specifiers=(field, Field))
def mutable(cls: Any = None, /, *, eq: bool = True, repr: bool = True) -> Any:
    """`@dataclass` (with `eq`, `repr`): compared by its fields, so not hashable."""

    def make(undecorated: type) -> type:
        return _make(undecorated, eq, repr, hashed=False)

    return make if cls is None else make(cls)


def fields(record_or_class: Any) -> tuple[Field, ...]:
    """The record's fields in order, as `dataclasses.fields`."""
    try:
        found: tuple[Field, ...] = record_or_class.__record_fields__
    except AttributeError:
        raise TypeError("fields() takes a record or a record's class") from None
    return found


def replace(record: Value, /, **changes: Any) -> Value:
    """A new record with `changes`, as `dataclasses.replace`: made by its `__init__`."""
    cls = record.__class__
    try:
        given: tuple[str, ...] = cls.__record_given__  # type: ignore[attr-defined]
        fixed: frozenset[str] = cls.__record_fixed__  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError("replace() takes a record") from None
    if fixed and not fixed.isdisjoint(changes):
        name = sorted(fixed & changes.keys())[0]
        raise ValueError(f"field {name} is not set by __init__: not replaceable")
    for name in given:
        if name not in changes:
            changes[name] = getattr(record, name)
    made: Value = cls(**changes)
    return made


def asdict(record: Any) -> dict[str, Any]:
    """The record as a dict, records and containers in it copied, as `dataclasses.asdict`."""
    return {item.name: _plain(getattr(record, item.name)) for item in fields(record)}


def _plain(value: Any) -> Any:
    if hasattr(type(value), "__record_fields__"):
        return asdict(value)
    if isinstance(value, tuple | list):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return type(value)((_plain(key), _plain(item)) for key, item in value.items())
    return value


def _make(cls: type, eq: bool, repr: bool, hashed: bool) -> type:
    """The record class: what the class itself defines stays, as a dataclass keeps it."""
    found = _fields_of(cls)
    own = cls.__dict__
    # Defining __eq__ sets __hash__ to None in the class: that one is not the author's.
    explicit_hash = own.get("__hash__", MISSING) not in (MISSING, None) or (
        "__hash__" in own and "__eq__" not in own
    )
    made = {
        "__record_fields__": found,
        "__record_given__": tuple(item.name for item in found if item.init),
        "__record_fixed__": frozenset(item.name for item in found if not item.init),
        "__match_args__": tuple(item.name for item in found if item.init),
        "__init__": _lazy_init(cls, found),
    }
    if repr:
        made["__repr__"] = _repr_of(tuple(item.name for item in found if item.repr))
    if eq:
        made["__eq__"] = _eq_of(_values(item.name for item in found if item.compare))
    for name, value in made.items():
        if name not in own or name.startswith("__record_"):
            setattr(cls, name, value)
    if eq and not explicit_hash:
        if hashed:
            names = (x.name for x in found if (x.compare if x.hash is None else x.hash))
            setattr(cls, "__hash__", _hash_of(_values(names)))  # noqa: B010 (mypy: a type)
        else:
            setattr(cls, "__hash__", None)  # noqa: B010 (equal by value, changeable: unhashable)
    return cls


def _fields_of(cls: type) -> tuple[Field, ...]:
    """The fields of the class and of the records it derives from, in their order;
    a default stays a class attribute, as a dataclass keeps it."""
    found: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for item in base.__dict__.get("__record_fields__", ()):
            found[item.name] = item
    # Not inspect.get_annotations: importing inspect is what this module saves.
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if _is_class_variable(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        item = value if isinstance(value, Field) else Field(default=value)
        item.name = name
        if type(item.default).__hash__ is None:  # a list, dict or set: shared by all
            raise ValueError(f"mutable default {type(item.default)} for field {name}")
        if item.default is MISSING:
            if name in cls.__dict__:
                delattr(cls, name)  # a factory's field: no class attribute
        else:
            setattr(cls, name, item.default)
        found[name] = item
    required_after_default = False
    for item in found.values():
        if not item.init:
            continue
        if item.default is MISSING and item.default_factory is MISSING:
            if required_after_default:
                raise TypeError(f"non-default argument {item.name!r} follows default argument")
        else:
            required_after_default = True
    return tuple(found.values())


def _is_class_variable(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return isinstance(text, str) and text.replace("typing.", "").startswith("ClassVar")


def _lazy_init(cls: type, found: tuple[Field, ...]) -> Callable[..., None]:
    """An `__init__` that compiles the real one the first time a record is made, and
    puts it in its place: a check makes only some of its classes' records."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        real = _compile_init(cls, found)
        if cls.__dict__.get("__init__") is __init__:
            setattr(cls, "__init__", real)  # noqa: B010
        real(self, *args, **kwargs)

    return __init__


def _compile_init(cls: type, found: tuple[Field, ...]) -> Callable[..., None]:
    """`__init__` written out as dataclasses writes it: one assignment per field."""
    names: dict[str, Any] = {"MISSING": MISSING}
    parameters, lines = ["self"], []
    for index, item in enumerate(found):
        default, factory = f"_default_{index}", f"_factory_{index}"
        names[default], names[factory] = item.default, item.default_factory
        if not item.init:
            if item.default_factory is not MISSING:
                lines.append(f"self.{item.name} = {factory}()")
            elif item.default is not MISSING:
                lines.append(f"self.{item.name} = {default}")
            continue
        if item.default_factory is not MISSING:
            parameters.append(f"{item.name}=MISSING")
            value = f"{factory}() if {item.name} is MISSING else {item.name}"
        elif item.default is not MISSING:
            parameters.append(f"{item.name}={default}")
            value = item.name
        else:
            parameters.append(item.name)
            value = item.name
        lines.append(f"self.{item.name} = {value}")
    if hasattr(cls, "__post_init__"):
        lines.append("self.__post_init__()")
    body = "\n".join(f"    {line}" for line in lines or ["pass"])
    source = f"def __init__({', '.join(parameters)}):\n{body}\n"
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), names)
    made: Callable[..., None] = names["__init__"]
    made.__qualname__ = f"{cls.__qualname__}.__init__"
    return made


def _values(names: Iterable[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The fields' values as a tuple (attrgetter gives a bare value for one name)."""
    taken = tuple(names)
    if len(taken) > 1:
        return attrgetter(*taken)
    if taken:
        one = attrgetter(taken[0])
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
