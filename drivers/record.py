"""Frozen, keyword-only records: the house event type, without dataclasses' start-up bill.

`@dataclass(frozen=True, kw_only=True)` compiles six functions per class with exec(); with ~70
event classes that alone cost ~35 ms of every start (more than a bare interpreter start). A
`Record` subclass behaves the same for our uses — keyword-only `__init__`, frozen, value
equality, hash, readable repr, `field(repr=False / default_factory=...)`, `__post_init__` — and
`typing.dataclass_transform` (PEP 681) tells mypy it is a dataclass, so constructors stay typed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, dataclass_transform

__all__ = ["FrozenRecordError", "Record", "as_dict", "field", "field_names", "replace"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenRecordError(AttributeError):
    """An attempt to change a field of a frozen record."""


class _Field:
    __slots__ = ("compare", "default", "default_factory", "repr")

    def __init__(self, default: Any, default_factory: Any, repr: bool, compare: bool) -> None:
        self.default, self.default_factory, self.repr, self.compare = default, default_factory, repr, compare


def field(
    *, default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING, repr: bool = True,
    compare: bool = True,
) -> Any:
    """Field options, as `dataclasses.field`."""
    return _Field(default, default_factory, repr, compare)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Record:
    _fields: ClassVar[dict[str, _Field]] = {}
    _repr_names: ClassVar[tuple[str, ...]] = ()
    _compare_names: ClassVar[tuple[str, ...]] = ()
    # The compared values as a tuple, in C (operator.attrgetter): equality and hashing are hot.
    _get_values: ClassVar[Callable[[Any], tuple[Any, ...]]] = staticmethod(lambda record: ())

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Runs once per event class (~110 at start-up): kept to one pass over the class's own
        # annotations; a class that declares none (`class Initialize(PrinterCommand)`) inherits
        # its parent's field tables as they are (they are never mutated, only replaced).
        super().__init_subclass__(**kwargs)
        namespace = cls.__dict__
        if "__init__" not in namespace:
            cls.__init__ = Record.__init__  # type: ignore[method-assign]  # compiled on first use
        own = namespace.get("__annotations__")  # own annotations only, no inspect import
        if not own:
            return
        fields = dict(cls._fields)  # inherited fields first, as dataclasses order them
        for name, annotation in own.items():
            if "ClassVar" in (annotation if type(annotation) is str else str(annotation)):
                continue
            value = namespace.get(name, MISSING)
            if type(value) is _Field:
                delattr(cls, name)
                fields[name] = value
            else:
                fields[name] = _Field(value, MISSING, True, True)
        cls._fields = fields
        cls._repr_names = tuple([n for n, f in fields.items() if f.repr])
        cls._compare_names = tuple([n for n, f in fields.items() if f.compare])
        cls._get_values = staticmethod(_values_getter(cls._compare_names))

    def __init__(self, **kwargs: Any) -> None:
        # First instance of this class: compile its own __init__ (as dataclasses would, but only
        # for classes that are ever built), install it, and use it from now on.
        cls = type(self)
        if cls.__dict__.get("__init__") is Record.__init__:
            cls.__init__ = _compile_init(cls)  # type: ignore[method-assign]
            cls.__init__(self, **kwargs)
        else:  # a subclass that defines __init__ itself and calls super().__init__()
            _generic_init(self, kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r} of a frozen {type(self).__qualname__}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r} of a frozen {type(self).__qualname__}")

    def _values(self) -> tuple[Any, ...]:
        return type(self)._get_values(self)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._repr_names)
        return f"{type(self).__qualname__}({inner})"


R = TypeVar("R", bound=Record)


def _values_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if not names:
        return lambda record: ()
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda record: (one(record),)
    return operator.attrgetter(*names)


def field_names(record: Record | type[Record]) -> tuple[str, ...]:
    return tuple(record._fields)


def as_dict(record: Record) -> dict[str, Any]:
    """The fields and their values, as `dataclasses.asdict` (one level: records hold plain values)."""
    return {name: getattr(record, name) for name in record._fields}


def replace(record: R, **changes: Any) -> R:
    """A copy with some fields changed, as `dataclasses.replace`."""
    values = {name: getattr(record, name) for name in record._fields}
    values.update(changes)
    return type(record)(**values)


def _generic_init(self: Record, kwargs: dict[str, Any]) -> None:
    for name, spec in self._fields.items():
        if name in kwargs:
            value = kwargs.pop(name)
        elif spec.default is not MISSING:
            value = spec.default
        elif spec.default_factory is not MISSING:
            value = spec.default_factory()
        else:
            raise TypeError(f"{type(self).__qualname__}() missing keyword argument {name!r}")
        object.__setattr__(self, name, value)
    if kwargs:
        raise TypeError(f"{type(self).__qualname__}() got unexpected keyword arguments {sorted(kwargs)}")
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _compile_init(cls: type[Record]) -> Callable[..., None]:
    env: dict[str, Any] = {"_set": object.__setattr__, "MISSING": MISSING}
    params, body = [], []
    for name, spec in cls._fields.items():
        if spec.default is not MISSING:
            env[f"_d_{name}"] = spec.default
            params.append(f"{name}=_d_{name}")
            body.append(f"_set(self, {name!r}, {name})")
        elif spec.default_factory is not MISSING:
            env[f"_f_{name}"] = spec.default_factory
            params.append(f"{name}=MISSING")
            body.append(f"_set(self, {name!r}, _f_{name}() if {name} is MISSING else {name})")
        else:
            params.append(name)
            body.append(f"_set(self, {name!r}, {name})")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    signature = f"self, *, {', '.join(params)}" if params else "self"
    source = f"def __init__({signature}):\n    " + "\n    ".join(body or ["pass"])
    exec(source, env)
    init: Callable[..., None] = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init
