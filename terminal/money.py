"""Amounts: parsed from operator text into integer minor units; never floats."""

from __future__ import annotations

import re

from terminal.errors import InputError

__all__ = ["format_amount", "parse_amount"]

_AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")


def parse_amount(text: str, *, max_minor: int) -> int:
    """'12.34' -> 1234. Refuses signs, exponents, more than two decimals, zero and over-limit."""
    cleaned = text.strip()
    if not _AMOUNT.match(cleaned):
        raise InputError(f"amount {text!r} is not a positive amount with at most two decimals (like 12.34)")
    whole, _, frac = cleaned.partition(".")
    minor = int(whole) * 100 + int((frac + "00")[:2])
    if minor <= 0:
        raise InputError(f"amount {text!r} must be more than zero")
    if minor > max_minor:
        raise InputError(f"amount {text!r} is over this terminal's limit of {format_amount(max_minor)}")
    return minor


def format_amount(minor: int, symbol: str = "") -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{symbol}{abs(minor) // 100}.{abs(minor) % 100:02d}"
