"""One exception root for the terminal layer (house rule 6)."""

from __future__ import annotations

__all__ = ["AmountRefused", "ConfigError", "InputError", "JournalError", "TerminalError"]


class TerminalError(Exception):
    """Root of everything the terminal layer raises."""


class InputError(TerminalError, ValueError):
    """An operator or command-line input that cannot be accepted (bad amount, unknown card)."""


class AmountRefused(InputError):
    """An amount outside the checkout's rules (more than zero, at most the per-sale maximum)."""


class ConfigError(TerminalError, LookupError):
    """A profile or setting that does not exist or does not make sense."""


class JournalError(TerminalError, RuntimeError):
    """The journal cannot record what must be recorded; the sale must not go on."""
