"""Profile schemas: `<kind>s/schema.toml` read into `Schema`, and profiles checked against it.

A schema file is data:

    schema = 1                     # the version profiles of this kind must name
    kind = "printer"               # the folder is this plus "s"
    title = "Printers"             # heading in docs/firmware-profiles.md
    doc = "..."                    # prose under it

    [keys."media.dots"]            # one table per key, under its dotted path
    type = "int"                   # str int float bool list[str] list[int] list[float] table map list[table]
    default = 576                  # or `required = true`, or `default_from = {key = "...", div = 12, at_most = 128}`
    min = 1                        # min / max (numbers), choices (closed set), pattern (re.fullmatch)
    doc = "dots across the print head"

A `table` is implied by the dotted paths under it (declaring one only adds a line of docs). A
`map` has free key names whose values are tables following `[keys.<path>.item.<subkey>]`, and a
`list[table]` (`[[operators]]`) has items following the same; `unique = true` on an item key
refuses two items with the same value. Checking is split in two so an error names the file that
made it: `check` runs on each file of an inheritance chain (unknown keys, types, ranges), and
`complete` on the merged result (required keys, defaults).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["TYPES", "DefaultFrom", "Fields", "Key", "ProfileError", "Schema", "check", "compile_schema", "complete"]

SCALARS = ("str", "int", "float", "bool")
TYPES = (*SCALARS, "list[str]", "list[int]", "list[float]", "table", "map", "list[table]")
_SPEC_FIELDS = {"type", "doc", "default", "required", "default_from", "choices", "min", "max", "pattern", "unique",
                "item", "item_name"}
_NOUNS = {
    "str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
    "list[str]": "a list of strings", "list[int]": "a list of integers", "list[float]": "a list of numbers",
    "table": "a table", "map": "a table of tables", "list[table]": "an array of tables",
}


class ProfileError(LookupError, ValueError):
    """An unknown profile, or one that does not follow the schema."""


# Plain classes, not NamedTuples: a NamedTuple evaluates each string annotation with compile()
# when its class is made (~3 ms of every till start for these four); nothing here needs a tuple.
class DefaultFrom:
    """A default computed from another key of the same table level: min(at_most, value // div)."""

    __slots__ = ("at_most", "div", "key")

    def __init__(self, key: str, div: int = 1, at_most: int | float | None = None) -> None:
        self.key, self.div, self.at_most = key, div, at_most

    def compute(self, source: int | float) -> int | float:
        value = source // self.div
        return value if self.at_most is None else min(value, self.at_most)


class Key:
    """One declared key. `path` is dotted and relative to its `Fields` (a map item's keys are
    relative to the item)."""

    __slots__ = ("choices", "default", "default_from", "doc", "item", "item_name", "max", "min", "path", "pattern",
                 "required", "type", "unique")

    def __init__(
        self, path: str, type: str, doc: str, *, required: bool = False,
        default: Any = None,  # meaningful when not required and default_from is None
        default_from: DefaultFrom | None = None, choices: tuple[Any, ...] | None = None,
        min: int | float | None = None, max: int | float | None = None, pattern: str | None = None,
        unique: bool = False,
        item: Fields | None = None,  # map values / list[table] items
        item_name: str = "name",  # what a map's free key names, in the docs: devices.<family>
    ) -> None:
        self.path, self.type, self.doc, self.required, self.default = path, type, doc, required, default
        self.default_from, self.choices, self.min, self.max = default_from, choices, min, max
        self.pattern, self.unique, self.item, self.item_name = pattern, unique, item, item_name

    def __repr__(self) -> str:
        return f"Key({self.path!r}, {self.type!r})"

    @property
    def element(self) -> str:
        """The type each value has: `int` for int and list[int]."""
        return self.type[5:-1] if self.type.startswith("list[") else self.type


class Fields:
    """The keys of one table level: a whole profile, or a map value / list item."""

    __slots__ = ("keys", "tables")

    def __init__(self, keys: Mapping[str, Key], tables: frozenset[str]) -> None:
        self.keys = keys
        self.tables = tables  # dotted paths that are (implied or declared) tables

    def names(self) -> list[str]:
        return [*self.keys, *sorted(self.tables - set(self.keys))]


class Schema:
    __slots__ = ("doc", "fields", "kind", "source", "title", "version")

    def __init__(self, *, kind: str, version: int, title: str, doc: str, fields: Fields, source: str = "") -> None:
        self.kind, self.version, self.title, self.doc, self.fields = kind, version, title, doc, fields
        self.source = source  # the schema file, for messages

    @property
    def keys(self) -> Mapping[str, Key]:
        return self.fields.keys


# -- reading a schema file ------------------------------------------------------------------------
def compile_schema(data: Mapping[str, Any], *, source: str, kind: str) -> Schema:
    """A parsed schema.toml as a `Schema`; a ProfileError names `source` and the bad key."""

    def bad(what: str) -> ProfileError:
        return ProfileError(f"{source}: {what}")

    unknown = set(data) - {"schema", "kind", "title", "doc", "keys"}
    if unknown:
        raise bad(f"unknown schema field {sorted(unknown)[0]!r} (known: schema, kind, title, doc, keys)")
    version, declared_kind = data.get("schema"), data.get("kind")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad("'schema' must be the version number profiles of this kind carry")
    if declared_kind != kind:
        raise bad(f"'kind' must be {kind!r} (the folder is {kind}s/), not {declared_kind!r}")
    title = data.get("title", kind.replace("_", " ").capitalize() + "s")
    doc, keys = data.get("doc", ""), data.get("keys")
    if not isinstance(title, str) or not isinstance(doc, str):
        raise bad("'title' and 'doc' must be strings")
    if not isinstance(keys, dict) or not keys:
        raise bad("'keys' must be a table of key specs: [keys.\"media.dots\"] type = ...")
    fields = _compile_fields(keys, bad, "keys.")
    for name, wanted in (("schema", "int"), ("name", "str"), ("inherits", "str")):
        spec = fields.keys.get(name)
        if spec is None or spec.type != wanted:
            raise bad(f"every schema declares '{name}' ({wanted}): the loader reads it")
    if fields.keys["inherits"].required or fields.keys["inherits"].default != "":
        raise bad("'inherits' must default to \"\" (no parent)")
    return Schema(kind=kind, version=version, title=title, doc=doc.strip(), fields=fields, source=source)


def _compile_fields(raw: Mapping[str, Any], bad: Any, where: str) -> Fields:
    keys: dict[str, Key] = {}
    for path, spec in raw.items():
        if not isinstance(spec, dict):
            raise bad(f"{where}{path}: a key spec must be a table (type = ..., doc = ...)")
        keys[path] = _compile_key(path, spec, bad, f"{where}{path}")
    tables = {".".join(p.split(".")[:i]) for p in keys for i in range(1, p.count(".") + 1)}
    tables |= {p for p, k in keys.items() if k.type == "table"}
    for path, key in keys.items():
        if path in tables and key.type != "table":
            raise bad(f"{where}{path}: is {key.type} but has keys under it")
        if any(not part for part in path.split(".")):
            raise bad(f"{where}{path}: an empty part in a dotted path")
    for path, key in keys.items():
        source = key.default_from
        if source is None:
            continue
        base = keys.get(source.key)
        if base is None or base.type not in ("int", "float") or base.default_from is not None:
            raise bad(f"{where}{path}: default_from key {source.key!r} must be a declared int or float "
                      "with a plain default")
    return Fields(keys=keys, tables=frozenset(tables))


def _compile_key(path: str, spec: Mapping[str, Any], bad: Any, where: str) -> Key:
    unknown = set(spec) - _SPEC_FIELDS
    if unknown:
        raise bad(f"{where}: unknown spec field {sorted(unknown)[0]!r} (known: {', '.join(sorted(_SPEC_FIELDS))})")
    kind, doc = spec.get("type"), spec.get("doc")
    if kind not in TYPES:
        raise bad(f"{where}: type must be one of {', '.join(TYPES)}, not {kind!r}")
    if not isinstance(doc, str) or not doc or "\n" in doc:
        raise bad(f"{where}: doc must be one line of text")
    required = spec.get("required", False)
    if not isinstance(required, bool):
        raise bad(f"{where}: required must be true or false")
    has_default, derived = "default" in spec, spec.get("default_from")
    if kind == "table":
        if set(spec) - {"type", "doc"}:
            raise bad(f"{where}: a table declares only type and doc (its keys are the dotted paths under it)")
        return Key(path=path, type=kind, doc=doc)
    if required + has_default + (derived is not None) != 1:
        raise bad(f"{where}: give exactly one of default, required = true, default_from")
    item: Fields | None = None
    if kind in ("map", "list[table]"):
        raw_item = spec.get("item")
        if not isinstance(raw_item, dict) or not raw_item:
            raise bad(f"{where}: a {kind} needs [{where}.item.<key>] specs for its values")
        item = _compile_fields(raw_item, bad, f"{where}.item.")
    elif "item" in spec:
        raise bad(f"{where}: only a map or a list[table] has an item schema")
    item_name = spec.get("item_name", "name")
    if not isinstance(item_name, str) or ("item_name" in spec and kind != "map"):
        raise bad(f"{where}: item_name (a word) is for a map only")
    choices = spec.get("choices")
    if choices is not None:
        if kind not in ("str", "int", "list[str]", "list[int]") or not isinstance(choices, list) or not choices:
            raise bad(f"{where}: choices is a non-empty list, for str, int and their lists")
        choices = tuple(choices)
    bounds: dict[str, int | float | None] = {}
    for end in ("min", "max"):
        value = spec.get(end)
        if value is not None and (kind not in ("int", "float", "list[int]", "list[float]")
                                  or not isinstance(value, int | float) or isinstance(value, bool)):
            raise bad(f"{where}: {end} is a number, for int and float keys and their lists")
        bounds[end] = value
    pattern = spec.get("pattern")
    if pattern is not None:
        if kind not in ("str", "list[str]") or not isinstance(pattern, str):
            raise bad(f"{where}: pattern is a regular expression, for str keys")
        import re

        try:
            re.compile(pattern)
        except re.error as exc:
            raise bad(f"{where}: pattern {pattern!r} is not a regular expression ({exc})") from None
    unique = spec.get("unique", False)
    if not isinstance(unique, bool):
        raise bad(f"{where}: unique must be true or false")
    default_from: DefaultFrom | None = None
    if derived is not None:
        if kind not in ("int", "float") or not isinstance(derived, dict) or set(derived) - {"key", "div", "at_most"}:
            raise bad(f"{where}: default_from is {{key = \"...\", div = N, at_most = N}}, for int and float keys")
        try:
            default_from = DefaultFrom(key=str(derived["key"]), div=int(derived.get("div", 1)),
                                       at_most=derived.get("at_most"))
        except (KeyError, TypeError, ValueError):
            raise bad(f"{where}: default_from needs key (a dotted path) and an integer div") from None
        if default_from.div < 1:
            raise bad(f"{where}: default_from div must be >= 1")
    key = Key(path=path, type=kind, doc=doc, required=required, default=spec.get("default"),
              default_from=default_from, choices=choices, min=bounds["min"], max=bounds["max"], pattern=pattern,
              unique=unique, item=item, item_name=item_name)
    if has_default:
        try:
            normalised = _value(key, key.default, "", path)
        except ProfileError as exc:
            raise bad(f"{where}: the default does not follow the spec ({str(exc).split(': ', 1)[1]})") from None
        if kind in ("map", "list[table]") and normalised:
            raise bad(f"{where}: a {kind} defaults to empty only")
        key.default = normalised
    return key


# -- checking a profile ---------------------------------------------------------------------------
def check(data: Mapping[str, Any], fields: Fields, where: str, shown: str = "", prefix: str = "") -> dict[str, Any]:
    """`data` (one file) with its values checked and floats made floats. Unknown keys, wrong types
    and values outside choices/min/max/pattern raise ProfileError naming `where` and the key."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        path = f"{prefix}{name}"
        spec = fields.keys.get(path)
        if spec is not None and spec.type != "table":
            out[name] = _value(spec, value, where, shown + path)
        elif path in fields.tables:
            if not isinstance(value, dict):
                raise _error(where, f"{shown + path!r} must be a table, not {_brief(value)}")
            out[name] = check(value, fields, where, shown, f"{path}.")
        else:
            raise _error(where, f"unknown key {shown + path!r}{_suggest(path, fields.names(), shown)}")
    return out


def complete(data: dict[str, Any], fields: Fields, where: str, shown: str = "") -> dict[str, Any]:
    """Fill in every default and refuse a missing required key; `data` is changed and returned."""
    derived: list[tuple[dict[str, Any], str, Key]] = []
    for path, spec in fields.keys.items():
        if spec.type == "table":
            continue
        *parents, leaf = path.split(".")
        table = data
        for part in parents:
            table = table.setdefault(part, {})
        if leaf not in table:
            if spec.required:
                raise _error(where, f"missing required key {shown + path!r}")
            if spec.default_from is not None:
                derived.append((table, leaf, spec))
            else:
                table[leaf] = _copy(spec.default)
            continue
        value = table[leaf]
        if spec.type == "map" and spec.item is not None:
            for name, item in value.items():
                complete(item, spec.item, where, f"{shown}{path}.{name}.")
        elif spec.type == "list[table]" and spec.item is not None:
            for i, item in enumerate(value):
                complete(item, spec.item, where, f"{shown}{path}[{i}].")
            _unique(value, spec.item, where, f"{shown}{path}")
    for table, leaf, spec in derived:
        assert spec.default_from is not None
        source = _get(data, spec.default_from.key)
        table[leaf] = _value(spec, spec.default_from.compute(source), where,
                             f"{shown + spec.path} (default {spec.default_from.key} // {spec.default_from.div})")
    return data


def _value(spec: Key, value: Any, where: str, name: str) -> Any:
    kind = spec.type
    if kind == "map":
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise _error(where, f"{name!r} must be {_NOUNS[kind]} ({name}.<{spec.item_name}> = {{...}}), "
                                f"not {_brief(value)}")
        assert spec.item is not None
        return {k: check(v, spec.item, where, f"{name}.{k}.") for k, v in value.items()}
    if kind == "list[table]":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise _error(where, f"{name!r} must be {_NOUNS[kind]} ([[{name}]]), not {_brief(value)}")
        assert spec.item is not None
        return [check(v, spec.item, where, f"{name}[{i}].") for i, v in enumerate(value)]
    if kind.startswith("list["):
        if not isinstance(value, list):
            raise _error(where, f"{name!r} must be {_NOUNS[kind]}, not {_brief(value)}")
        return [_scalar(spec, v, where, f"{name}[{i}]", _NOUNS[kind]) for i, v in enumerate(value)]
    return _scalar(spec, value, where, name, _NOUNS[kind])


def _scalar(spec: Key, value: Any, where: str, name: str, noun: str) -> Any:
    kind = spec.element
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise _error(where, f"{name!r} must be {noun}, not {_brief(value)}")
    if spec.choices is not None and value not in spec.choices:
        shown = ", ".join(repr(c) for c in spec.choices)
        hint = _suggest(value, [str(c) for c in spec.choices], "") if isinstance(value, str) else ""
        raise _error(where, f"{name!r} must be one of {shown}, not {value!r}{hint}")
    if spec.min is not None and not value >= spec.min:
        raise _error(where, f"{name!r} must be >= {spec.min}, not {value!r}")
    if spec.max is not None and not value <= spec.max:
        raise _error(where, f"{name!r} must be <= {spec.max}, not {value!r}")
    if spec.pattern is not None:
        import re

        if not re.fullmatch(spec.pattern, value):
            raise _error(where, f"{name!r} must match /{spec.pattern}/, not {value!r}")
    return value


def _unique(items: list[dict[str, Any]], fields: Fields, where: str, name: str) -> None:
    for path, spec in fields.keys.items():
        if not spec.unique:
            continue
        seen: set[Any] = set()
        for i, item in enumerate(items):
            value = _get(item, path)
            if value in seen:
                raise _error(where, f"{f'{name}[{i}].{path}'!r} repeats {value!r} (it must be unique)")
            seen.add(value)


def _get(data: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _error(where: str, what: str) -> ProfileError:
    return ProfileError(f"{where}: {what}")


def _suggest(word: str, candidates: Iterable[str], shown: str) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or ''. The same last part at another
    level counts first (`baud` -> `serial.baud`), then the one key it starts (`pin` -> `pin_hash`),
    then difflib's closest spelling."""
    options = list(candidates)
    leaf = word.rpartition(".")[2]
    same_leaf = [c for c in options if c.rpartition(".")[2] == leaf and c != word]
    if same_leaf:
        return f" (did you mean {shown + same_leaf[0]!r}?)"
    # a shortened name in the same table: pin -> pin_hash, flow -> flow_control
    longer = [c for c in options if len(word) >= 3 and c.startswith(word) and c.count(".") == word.count(".")]
    if len(longer) == 1:
        return f" (did you mean {shown + longer[0]!r}?)"
    import difflib

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {shown + close[0]!r}?)" if close else ""
