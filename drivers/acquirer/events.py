"""What crosses the acquirer link: one ISO 8583 message, as a fact with a safe repr."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from drivers.errors import LocalProtocolError
from drivers.record import Record
from drivers.sensitive import mask_card_numbers, mask_pan

__all__ = ["HIDDEN_FIELDS", "HostMessage", "response_mti"]

# Never shown, not even in part: track 2, PIN block, ICC data (it embeds the PAN and track 2
# equivalent), the expiry date that would complete a masked PAN, and the working keys (62).
HIDDEN_FIELDS: Final = frozenset({"14", "35", "52", "55", "62"})
_PAN: Final = "2"
# Data-element keys beyond doubt ("2".."192" written plainly): any other key is checked one by one.
_PLAIN_KEYS: Final = frozenset(str(n) for n in range(2, 193))


def response_mti(mti: str) -> str:
    """The response class of an MTI: 0200 -> 0210, 0220 -> 0230, 0401 -> 0410, 0210 -> 0210."""
    return f"{mti[:2]}{int(mti[2]) | 1}0"


class HostMessage(Record):
    """One ISO 8583 message. `fields` maps pyiso8583 keys ("2", "39") to text, or to `bytes` for
    the binary fields (52, 55, 64); MTI and bitmaps are not in `fields`, the codec derives them.

    The PAN and track data are plain values here (the wire needs them); the repr hides them, and
    masks a card-number shape in any other field, so logging a message is safe. Terminal code
    keeps them in `Secret` until the builder runs.
    """

    mti: str
    fields: Mapping[str, str | bytes]

    def __post_init__(self) -> None:
        if len(self.mti) != 4 or not self.mti.isascii() or not self.mti.isdigit():
            raise LocalProtocolError("an MTI is four ASCII digits")
        if not _PLAIN_KEYS.issuperset(self.fields):  # the usual keys are checked in one C call
            bad = [key for key in self.fields if not (key.isascii() and key.isdigit()) or key == "1"]
            if bad:
                raise LocalProtocolError(f"not data-element keys: {sorted(bad)} (MTI and bitmaps are derived)")
        # A private read-only copy: the caller's dict cannot change a frozen message afterwards.
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    def __hash__(self) -> int:
        return hash((self.mti, tuple(sorted(self.fields.items()))))

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={self._shown(key)}" for key in sorted(self.fields, key=int))
        return f"HostMessage(mti={self.mti!r}, {{{shown}}})"

    __str__ = __repr__

    def _shown(self, key: str) -> str:
        if key in HIDDEN_FIELDS:
            return "<redacted>"
        value = self.fields[key]
        if key == _PAN:
            return repr(mask_pan(value if isinstance(value, str) else ""))
        # Any other field may carry a card number too (a host's free-form DE 48, 60, 63...):
        # every card-number shape is masked, whatever the field's number.
        if isinstance(value, bytes):
            return repr(mask_card_numbers(value.decode("latin-1")).encode("latin-1"))
        return repr(mask_card_numbers(value))

    # -- field helpers ----------------------------------------------------------------------
    def get(self, field: str) -> str | bytes | None:
        return self.fields.get(field)

    def text(self, field: str) -> str | None:
        """A text field's value; None when absent. A binary value here is our bug."""
        value = self.fields.get(field)
        if isinstance(value, bytes):
            raise LocalProtocolError(f"field {field} is binary, not text")
        return value

    @property
    def stan(self) -> str | None:
        return self.text("11")

    @property
    def terminal_id(self) -> str | None:
        return self.text("41")

    @property
    def response_code(self) -> str | None:
        return self.text("39")

    @property
    def match_key(self) -> tuple[str, str, str]:
        """Equal for a request and its response: (response MTI class, DE 41, DE 11)."""
        return response_mti(self.mti), self.terminal_id or "", self.stan or ""
