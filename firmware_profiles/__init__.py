"""Firmware profiles: data (TOML) describing each device model and each terminal.

This is the one loader. A profile is `<kind>s/<name>.toml` (printers/cn-80mm.toml), carries
`schema = <version>` and `name = "<name>"`, and may `inherits = "<other-name>"` (keys deep-merge).
Every profile is checked against its kind's schema, `<kind>s/schema.toml` (data too: see
firmware_profiles/schema.py), and comes back with every declared key, defaults filled in.

Where a profile is found, first hit wins:
1. a path (`./my-till.toml`: anything with a path separator or ending in .toml) is that file;
2. a name is looked up in ROOT/<kind>s/ for each ROOT of `OPENTILL_PROFILE_PATH` (os.pathsep
   separated), then of `search=` (a plugin's own profile folder), then in this package.
A parent (`inherits`) is looked up in its child's folder first, then the same way; a file already
in the chain is skipped, so `~/profiles/printers/cn-80mm.toml` may inherit the shipped `cn-80mm`.
A kind's schema comes from this package first, then from `search=`/`OPENTILL_PROFILE_PATH` roots:
a plugin can add a kind (`cash_drawers/schema.toml`) but not redefine a shipped one.
Facts that vary by model live here, never in code.
"""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from firmware_profiles.schema import Key, ProfileError, Schema, check, compile_schema, complete

__all__ = [
    "KINDS",
    "PROFILE_PATH_ENV",
    "SCHEMA_VERSION",
    "Key",
    "ProfileError",
    "Schema",
    "list_kinds",
    "list_profiles",
    "load_profile",
    "load_schema",
    "profile_roots",
    "validate_profile",
]

SCHEMA_VERSION = 1  # the version every schema shipped here has (each schema.toml states its own)
PROFILE_PATH_ENV = "OPENTILL_PROFILE_PATH"
SCHEMA_FILE = "schema.toml"
# A plain path beside this file: the profiles ship as package data (importlib.resources would
# cost ~4 ms of every start for nothing, as the package is never zipped).
PACKAGE_ROOT = Path(__file__).resolve().parent
MAX_PROFILE_BYTES = 1024 * 1024  # a profile is a few KiB; a bigger file is refused, not read whole
MAX_NAME = 255  # a profile name or path component longer than a file name can be

Roots = Sequence[str | os.PathLike[str]]


def _kinds_in(root: Path) -> dict[str, str]:
    try:
        folders = sorted(root.iterdir())
    except OSError:
        return {}
    return {p.name[:-1]: p.name for p in folders if p.name.endswith("s") and (p / SCHEMA_FILE).is_file()}


KINDS: dict[str, str] = _kinds_in(PACKAGE_ROOT)  # kind -> folder, for the kinds this package ships
_schemas: dict[Path, tuple[int, Schema]] = {}  # schema file -> (mtime, compiled)


def profile_roots(search: Roots = ()) -> list[Path]:
    """Where names are looked up, in order: OPENTILL_PROFILE_PATH, then `search`, then this package."""
    env = [Path(p).expanduser() for p in os.environ.get(PROFILE_PATH_ENV, "").split(os.pathsep) if p]
    roots = [*env, *(Path(p) for p in search), PACKAGE_ROOT]
    return list(dict.fromkeys(roots))


def list_kinds(search: Roots = ()) -> list[str]:
    """Every kind with a schema: this package's, and those the roots add."""
    kinds: dict[str, str] = {}
    for root in profile_roots(search):
        kinds |= _kinds_in(root)
    return sorted(kinds)


def load_schema(kind: str, *, search: Roots = ()) -> Schema:
    """The schema of `kind`: this package's `<kind>s/schema.toml`, else the first root that has one."""
    roots = profile_roots(search)
    for root in (PACKAGE_ROOT, *roots):
        path = root / _folder(kind) / SCHEMA_FILE
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            continue
        cached = _schemas.get(path)
        if cached is None or cached[0] != stamp:
            source = _display(path)
            cached = stamp, compile_schema(_read_toml(path, source), source=source, kind=kind)
            _schemas[path] = cached
        return cached[1]
    known = list_kinds(search)
    raise ProfileError(f"unknown profile kind {kind!r}{_near(kind, known)} (known: {', '.join(known)})")


def list_profiles(kind: str, *, search: Roots = ()) -> list[str]:
    """The names a profile of `kind` can be loaded by, from every root."""
    load_schema(kind, search=search)  # an unknown kind is an error, not an empty list
    return sorted({name for root in profile_roots(search) for name in _names_in(root / _folder(kind))})


def load_profile(kind: str, name_or_path: str | os.PathLike[str], *, search: Roots = ()) -> dict[str, Any]:
    """The profile, inheritance merged, checked against its kind's schema, defaults filled in.
    `name_or_path` is a profile name or a path to a .toml file; `search` adds roots laid out
    like this package (ROOT/printers/NAME.toml) after OPENTILL_PROFILE_PATH."""
    roots = profile_roots(search)
    shipped = _shipped(kind, name_or_path, roots)
    if shipped is not None and (done := _completed(shipped)) is not None:
        return done
    schema = load_schema(kind, search=search)
    path = _locate(kind, name_or_path, roots, search)
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []
    while True:
        resolved = path.resolve()
        if resolved in chain:  # _parent skips these; a guard, not a path taken
            raise ProfileError(f"{_display(path)}: {_words(kind)} profile inherits from itself")
        chain.append(resolved)
        layer = _read_profile(kind, path, schema)
        layers.append(layer)
        parent = layer.get("inherits", "")
        if not parent:
            break
        path = _parent(kind, str(parent), path, chain, roots, search)
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        merged = _merge(merged, layer)
    profile = complete(merged, schema.fields, _display(chain[0]))
    if shipped is not None:
        _store_completed(shipped, [PACKAGE_ROOT / _folder(kind) / SCHEMA_FILE, *chain], profile)
    return profile


def validate_profile(kind: str, data: Mapping[str, Any], *, source: str = "<profile>",
                     search: Roots = ()) -> dict[str, Any]:
    """`data` (no inheritance) checked against the schema of `kind`, as a new dict with defaults."""
    schema = load_schema(kind, search=search)
    return complete(check(data, schema.fields, source), schema.fields, source)


# -- finding files --------------------------------------------------------------------------------
def _folder(kind: str) -> str:
    if not kind or not kind.replace("_", "a").isalnum() or not kind[0].isalpha() or kind != kind.lower():
        raise ProfileError(f"profile kind {kind!r} is not a kind name (like printer or card_reader)")
    return f"{kind}s"


def _names_in(folder: Path) -> Iterable[str]:
    try:
        files = list(folder.iterdir())
    except OSError:
        return []
    return [p.stem for p in files if p.suffix == ".toml" and p.name != SCHEMA_FILE and p.is_file()]


def _is_path(name: str | os.PathLike[str]) -> bool:
    if not isinstance(name, str):
        return True
    return name.endswith(".toml") or "/" in name or os.sep in name or bool(os.altsep and os.altsep in name)


def _too_long(kind: str, text: str) -> None:
    if len(text) > 4096 or any(len(part) > MAX_NAME for part in text.split(os.sep)):
        raise ProfileError(f"{_words(kind)} profile {text[:40]!r}... is too long ({len(text)} characters; "
                           f"a name or path part has at most {MAX_NAME})")


def _locate(kind: str, name_or_path: str | os.PathLike[str], roots: list[Path], search: Roots) -> Path:
    _too_long(kind, os.fspath(name_or_path))
    if _is_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(f"{_display(path)}: no such {_words(kind)} profile file")
        return path
    name = str(name_or_path)
    if name and name != SCHEMA_FILE.removesuffix(".toml"):
        for root in roots:
            path = root / _folder(kind) / f"{name}.toml"
            if path.is_file():
                return path
    known = list_profiles(kind, search=search)
    raise ProfileError(f"unknown {_words(kind)} profile {name!r}{_near(name, known)} (known: {', '.join(known)})")


def _parent(kind: str, name: str, child: Path, chain: list[Path], roots: list[Path], search: Roots) -> Path:
    """The file `inherits = name` means: the child's folder, then the roots; not one already in the chain."""
    _too_long(kind, name)
    looped = False
    for folder in (child.parent, *(root / _folder(kind) for root in roots)):
        path = folder / f"{name}.toml"
        if not path.is_file():
            continue
        if path.resolve() in chain:
            looped = True
            continue
        return path
    where = _display(child)
    if looped:
        names = " -> ".join([*(p.stem for p in chain), name])
        raise ProfileError(f"{where}: {_words(kind)} profile inherits from itself via {names}")
    known = list_profiles(kind, search=search)
    raise ProfileError(f"{where}: inherits unknown {_words(kind)} profile {name!r}{_near(name, known)} "
                       f"(known: {', '.join(known)})")


# -- reading files --------------------------------------------------------------------------------
def _read_profile(kind: str, path: Path, schema: Schema) -> dict[str, Any]:
    where = _display(path)
    data = _read_toml(path, where)
    if data.get("schema") != schema.version:
        raise ProfileError(f"{where}: {_words(kind)} profile schema must be {schema.version}, "
                           f"not {data.get('schema')!r}")
    if data.get("name") != path.stem:
        raise ProfileError(f"{where}: name field says {data.get('name')!r}, the file is {path.stem!r}")
    return check(data, schema.fields, where)


def _read_toml(path: Path, where: str) -> dict[str, Any]:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ProfileError(f"{where}: cannot be read: {exc}") from None
    cached = _cached(path, stat)
    if cached is not None:
        return cached
    import tomllib  # only for a file not cached yet: importing it costs ~13 ms of a start

    try:
        with path.open("rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)  # bounded: a 200 MB file is refused, not read
        if len(raw) > MAX_PROFILE_BYTES:
            raise ProfileError(f"{where}: larger than {MAX_PROFILE_BYTES // 2**20} MiB, not a profile")
        data = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ProfileError(f"{where}: not a profile: arrays or tables nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{where}: cannot be read: {exc}") from None
    _store(path, stat, data)
    return data


# The package's own TOML files (schemas, shipped profiles) are parsed once and kept in
# __pycache__ beside them, as Python keeps bytecode, and in the same format (marshal, named by
# the interpreter's cache tag as .pyc files are): tomllib is pure Python, and parsing the schemas
# and profiles cost ~25 ms of every till start; marshal reads them back in microseconds and,
# unlike json, costs no import. A cache whose file's mtime or size differs is ignored; an
# unwritable package just parses.
_CACHE_SUFFIX = f".{sys.implementation.cache_tag}.marshal"


def _cache_file(path: Path, what: str = "") -> Path | None:
    if path.parent.parent != PACKAGE_ROOT:
        return None  # a site's or a plugin's profile: never write beside someone else's files
    return path.parent / "__pycache__" / f"{path.name}{what}{_CACHE_SUFFIX}"


def _read_cache(cache: Path) -> dict[str, Any] | None:
    try:
        entry = marshal.loads(cache.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("data"), dict) else None


def _write_cache(cache: Path, entry: dict[str, Any]) -> None:
    try:
        blob = marshal.dumps(entry)
    except ValueError:  # a TOML date or time is no marshal value: parse it each time
        return
    try:
        cache.parent.mkdir(exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, cache)
    except OSError:
        pass


def _stamp(stat: os.stat_result) -> list[int]:
    return [stat.st_mtime_ns, stat.st_size]


def _cached(path: Path, stat: os.stat_result) -> dict[str, Any] | None:
    cache = _cache_file(path)
    entry = _read_cache(cache) if cache is not None else None
    if entry is None or entry.get("stamp") != _stamp(stat):
        return None
    data: dict[str, Any] = entry["data"]
    return data


def _store(path: Path, stat: os.stat_result, data: dict[str, Any]) -> None:
    cache = _cache_file(path)
    if cache is not None:
        _write_cache(cache, {"stamp": _stamp(stat), "data": data})


# A shipped profile loaded by name with nothing but this package to search is the same result
# every time until one of its files changes: it is kept too, checked and completed, with the
# stamps of every file it came from (its schema and its inheritance chain). That spares the
# schema compilation and the checks at every start (~5 ms); with another root searched a parent
# could resolve elsewhere, so such a load always runs in full.
def _shipped(kind: str, name_or_path: str | os.PathLike[str], roots: list[Path]) -> Path | None:
    if kind not in KINDS or roots != [PACKAGE_ROOT] or _is_path(name_or_path):
        return None
    name = str(name_or_path)
    if not name or name == SCHEMA_FILE.removesuffix(".toml"):
        return None
    return PACKAGE_ROOT / KINDS[kind] / f"{name}.toml"


def _completed(path: Path) -> dict[str, Any] | None:
    cache = _cache_file(path, ".profile")
    entry = _read_cache(cache) if cache is not None else None
    sources = entry.get("sources") if entry is not None else None
    if entry is None or not isinstance(sources, dict) or not sources:
        return None
    for name, stamp in sources.items():
        try:
            if _stamp((PACKAGE_ROOT / name).stat()) != stamp:
                return None
        except OSError:
            return None
    data: dict[str, Any] = entry["data"]
    return data


def _store_completed(path: Path, sources: list[Path], profile: dict[str, Any]) -> None:
    cache = _cache_file(path, ".profile")
    if cache is None:
        return
    try:
        stamps = {p.relative_to(PACKAGE_ROOT).as_posix(): _stamp(p.stat()) for p in sources}
    except (OSError, ValueError):  # gone meanwhile, or a file outside the package
        return
    _write_cache(cache, {"sources": stamps, "data": profile})


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key (map entries too); any other value replaces the parent's."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _display(path: Path) -> str:
    """A path as messages show it: as given when relative, else relative to the working directory
    when it is under it (no resolve(): this runs for every file loaded)."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        return text
    cwd = os.getcwd()
    return text[len(cwd) + 1:] if text.startswith(cwd + os.sep) else text


def _words(kind: str) -> str:
    return kind.replace("_", " ")


def _near(word: str, known: list[str]) -> str:
    if not known:
        return ""
    import difflib

    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
