"""Sensitive values that cannot leak by accident.

PAN, track data, PIN blocks and ICC data travel inside `Secret`. Its repr/str never show the
value, it refuses pickling and JSON, and code must call `reveal()` on purpose. This is the
Inhibit-marker idea from jPOS: a log line or an exception message that formats a Secret shows
`Secret(<redacted>)`, never the data.
"""

from __future__ import annotations

from typing import Any, Generic, NoReturn, TypeVar

__all__ = ["Secret", "luhn_ok", "mask_card_numbers", "mask_pan"]

T = TypeVar("T", str, bytes)


class Secret(Generic[T]):
    __slots__ = ("_value",)
    _value: T

    def __init__(self, value: T) -> None:
        self._value = value

    def reveal(self) -> T:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")

    def __getstate__(self) -> Any:
        raise TypeError("a Secret cannot be serialised")


def mask_pan(pan: str) -> str:
    """Receipt and screen form: last 4 only (PCI 3.4.1; we never show the BIN either)."""
    digits = "".join(ch for ch in pan if ch.isdigit())
    return "**** **** **** " + digits[-4:] if len(digits) >= 4 else "****"


# A card number's shape: a run of 13 or more digits (a PAN is 13-19; Luhn or not, a wrong check
# digit is still card data; a longer run may hold one anywhere), also inside a longer string, and
# in track-2 form `PAN=YYMM...` / `PANDYYMM...`. A space or dash between digits counts as inside.
_CARD_SHAPE = r"(?<![0-9])(?:[0-9][ -]?){12,}[0-9](?:[=Dd][0-9]*)?"


def mask_card_numbers(text: str) -> str:
    """Every card-number shape in `text` masked but its last 4 (track-2 data after the separator
    hidden whole): for log lines and any field a log may show, whatever its field number."""
    import re  # lazy: only a log line that shows a value needs it

    def hide(match: re.Match[str]) -> str:
        number = re.split(r"[=Dd]", match.group(0), maxsplit=1)[0]
        digits = "".join(ch for ch in number if ch.isdigit())
        tail = "=<redacted>" if len(match.group(0)) > len(number) else ""
        return "*" * (len(digits) - 4) + digits[-4:] + tail

    return re.sub(_CARD_SHAPE, hide, text)


def luhn_ok(number: str) -> bool:
    """Luhn check, used to validate PANs and by the canary scanners in tests."""
    if not number.isdigit() or len(number) < 12:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
