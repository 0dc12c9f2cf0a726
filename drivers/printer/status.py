"""What a printer's sensors say, and the conditions the driver reports (PROTOCOLS.md §1.2).

`PrinterStatus` is shared by the driver (decoding replies) and the emulator (producing them), so the
status bit tables exist exactly once, here. drivers/printer/events.py re-exports every name.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.events import DeviceEvent
from drivers.record import Record

__all__ = [
    "ASB_FIXED", "FIXED", "CoverOpen", "CutterError", "PaperNearEnd", "PaperOut", "PrinterOffline",
    "PrinterReady", "PrinterStatus",
]

# -- status bits (PROTOCOLS.md §1.2) -------------------------------------------------------------
FIXED = 0x12  # DLE EOT reply: bits 1 and 4 set, bits 0 and 7 clear
ASB_FIXED = 0x10  # ASB byte 1: bit 4 set


class PrinterStatus(Record):
    """What the printer's sensors say; idle answers 0x12 to every DLE EOT n."""

    online: bool = True
    cover_open: bool = False
    paper_near_end: bool = False
    paper_out: bool = False
    cutter_error: bool = False
    unrecoverable_error: bool = False
    auto_recoverable_error: bool = False
    drawer_high: bool = False
    feed_pressed: bool = False

    @property
    def error(self) -> bool:
        return self.cutter_error or self.unrecoverable_error or self.auto_recoverable_error

    @property
    def printable(self) -> bool:
        """Online and nothing that stops printing (near end only warns)."""
        return self.online and not (self.cover_open or self.paper_out or self.error)

    def status_byte(self, kind: int) -> int:
        """The one-byte answer to DLE EOT `kind`."""
        if kind == 1:
            bits = _bits((self.drawer_high, 0x04), (not self.online, 0x08), (self.feed_pressed, 0x40))
        elif kind == 2:
            bits = _bits((self.cover_open, 0x04), (self.paper_out, 0x20), (self.error, 0x40))
        elif kind == 3:
            bits = _bits(
                (self.cutter_error, 0x08),
                (self.unrecoverable_error, 0x20),
                (self.auto_recoverable_error, 0x40),
            )
        elif kind == 4:
            bits = _bits((self.paper_near_end, 0x0C), (self.paper_out, 0x60))
        else:
            raise ValueError(f"DLE EOT kind must be 1..4, not {kind}")
        return FIXED | bits

    def asb_bytes(self) -> bytes:
        """The 4 bytes of an Automatic Status Back push."""
        return bytes(
            (
                ASB_FIXED
                | _bits(
                    (self.drawer_high, 0x04),
                    (not self.online, 0x08),
                    (self.cover_open, 0x20),
                    (self.feed_pressed, 0x40),
                ),
                _bits(
                    (self.cutter_error, 0x08),
                    (self.unrecoverable_error, 0x20),
                    (self.auto_recoverable_error, 0x40),
                ),
                _bits((self.paper_near_end, 0x03), (self.paper_out, 0x0C)),
                0,
            )
        )

    @classmethod
    def from_replies(cls, replies: Mapping[int, int]) -> PrinterStatus:
        """Status from DLE EOT answers keyed by kind; a kind not asked reads as idle."""
        r1, r2, r3, r4 = (replies.get(kind, FIXED) for kind in (1, 2, 3, 4))
        return cls(
            online=not r1 & 0x08,
            drawer_high=bool(r1 & 0x04),
            feed_pressed=bool(r1 & 0x40),
            cover_open=bool(r2 & 0x04),
            paper_out=bool(r2 & 0x20 or r4 & 0x60),
            cutter_error=bool(r3 & 0x08),
            unrecoverable_error=bool(r3 & 0x20),
            auto_recoverable_error=bool(r3 & 0x40),
            paper_near_end=bool(r4 & 0x0C),
        )

    @classmethod
    def from_asb(cls, data: bytes) -> PrinterStatus:
        if len(data) != 4:
            raise ValueError(f"ASB is 4 bytes, not {len(data)}")
        b1, b2, b3 = data[0], data[1], data[2]
        return cls(
            online=not b1 & 0x08,
            drawer_high=bool(b1 & 0x04),
            cover_open=bool(b1 & 0x20),
            feed_pressed=bool(b1 & 0x40),
            cutter_error=bool(b2 & 0x08),
            unrecoverable_error=bool(b2 & 0x20),
            auto_recoverable_error=bool(b2 & 0x40),
            paper_near_end=bool(b3 & 0x03),
            paper_out=bool(b3 & 0x0C),
        )


def _bits(*pairs: tuple[bool, int]) -> int:
    out = 0
    for flag, mask in pairs:
        if flag:
            out |= mask
    return out


# -- conditions the driver reports ---------------------------------------------------------------
class PaperOut(DeviceEvent):
    pass


class PaperNearEnd(DeviceEvent):
    """Printing still works; the roll needs changing soon."""


class CoverOpen(DeviceEvent):
    pass


class PrinterOffline(DeviceEvent):
    cause: str


class CutterError(DeviceEvent):
    pass


class PrinterReady(DeviceEvent):
    """The printer came back: online with nothing stopping it (reported by poll())."""
