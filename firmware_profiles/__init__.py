"""Firmware profiles: data (TOML) describing each device model and each terminal.

This is the one loader. A profile file is `<kind-folder>/<name>.toml`, carries `schema = 1`
and `name = "<name>"`, and may `inherits = "<other-name>"` (same folder; keys deep-merge).
Facts that vary by model live here, never in code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "SCHEMA_VERSION", "ProfileError", "list_profiles", "load_profile"]

SCHEMA_VERSION = 1
KINDS = {
    "printer": "printers",
    "card_reader": "card_readers",
    "terminal": "terminals",
}


class ProfileError(LookupError, ValueError):
    """An unknown profile, or one that does not follow the schema."""


def _folder(kind: str) -> Any:
    if kind not in KINDS:
        raise ProfileError(f"unknown profile kind {kind!r} (known: {', '.join(KINDS)})")
    # A plain path beside this file: the profiles ship as package data (importlib.resources would
    # cost ~4 ms of every start for nothing, as the package is never zipped).
    return Path(__file__).resolve().parent / KINDS[kind]


def list_profiles(kind: str) -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in _folder(kind).iterdir() if p.name.endswith(".toml"))


def load_profile(kind: str, name: str) -> dict[str, Any]:
    return _load(kind, name, seen=())


def _load(kind: str, name: str, seen: tuple[str, ...]) -> dict[str, Any]:
    if name in seen:
        raise ProfileError(f"{kind} profile {name!r} inherits from itself via {' -> '.join(seen)}")
    path = _folder(kind).joinpath(f"{name}.toml")
    if not name or "/" in name or not path.is_file():
        known = ", ".join(list_profiles(kind))
        raise ProfileError(f"unknown {kind.replace('_', ' ')} profile {name!r} (known: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{kind} profile {name!r} is not valid TOML: {exc}") from exc
    if data.get("schema") != SCHEMA_VERSION:
        raise ProfileError(f"{kind} profile {name!r}: schema must be {SCHEMA_VERSION}")
    if data.get("name") != name:
        raise ProfileError(f"{kind} profile {name!r}: name field says {data.get('name')!r}")
    parent = data.pop("inherits", None)
    if parent:
        return _merge(_load(kind, str(parent), (*seen, name)), data)
    return data


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
