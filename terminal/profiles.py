"""The terminal profile as the rest of the terminal reads it: loaded by name or path, validated
against its schema (firmware_profiles), with "section.key" overrides applied.

Its own module, light to import: the CLI, the service client and the emulated world read a
profile without importing the checkout (terminal/app.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from firmware_profiles import ProfileError, load_profile
from terminal.errors import ConfigError

__all__ = ["load_terminal_profile"]


def load_terminal_profile(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A terminal profile by name or path, with "section.key" overrides applied."""
    try:
        terminal = load_profile("terminal", name)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from exc
    for key, value in (overrides or {}).items():
        section, _, field = key.partition(".")
        if field:
            terminal.setdefault(section, {})[field] = value
        else:
            terminal[section] = value
    return terminal
