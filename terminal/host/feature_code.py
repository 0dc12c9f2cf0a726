"""The feature code (特征码) of a signed transaction, PROTOCOLS.md §4.1.

Shown on the signature pad while the customer signs and printed on the slip, so that a signature
image can be matched to its sale by eye. Input: the settlement date (4 ASCII digits, "0000" when
the host gave none) followed by the RRN (12 ASCII digits): 16 bytes. Output: for i = 0..7,
`data[i] XOR data[i + 8]` as one hex digit (two ASCII digits XOR to at most 0x0F): always 8
upper-case hex digits.
"""

from __future__ import annotations

from typing import Final

__all__ = ["feature_code"]

_HALF: Final = 8


def feature_code(settlement_date: str, rrn: str) -> str:
    """8 upper-case hex digits from the settlement date (MMDD, "0000" if none) and the RRN."""
    if not (len(settlement_date) == 4 and settlement_date.isascii() and settlement_date.isdigit()):
        raise ValueError("the settlement date of a feature code is 4 digits (MMDD, or 0000 when none)")
    if not (len(rrn) == 12 and rrn.isascii() and rrn.isdigit()):
        raise ValueError("the RRN of a feature code is 12 digits")
    data = (settlement_date + rrn).encode("ascii")
    return "".join(f"{data[i] ^ data[i + _HALF]:X}" for i in range(_HALF))
