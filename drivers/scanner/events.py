"""Scanner events, sans-I/O. The scanner helper owns this file and may add to it; `Scanned` is the
one fact the checkout consumes and its fields are fixed (the checkout's QR phase is built on them).

Three groups, frozen keyword-only records, the same for the three wire protocols (serial line
mode, GM65-class command frames, Zebra SSI; drivers/scanner/codec.py and docs/scanner.md):

- **Commands** host -> scanner (`ScannerCommand`): `Trigger`, `StopScan`, `ScanEnable`,
  `ScanDisable`, `MenuCommand` (serial), `ZoneRead` / `ZoneWrite` / `SaveSettings` / `Heartbeat`
  (GM65). A protocol that has no bytes for one raises LocalProtocolError when asked to send it.
- **Handshake** either way: `Ack`, `Nak` (the serial ACK/NAK mode's 06 / 15, SSI's CMD_ACK /
  CMD_NAK). Codecs send the ones they owe by themselves (`data_to_send()`).
- **Replies** scanner -> host (`ScannerReply`, a DeviceEvent so a driver can report the one its
  caller asked for): `MenuReply`, `ZoneReply`, `HeartbeatReply`, `ScannerNotice` (SSI EVENT); and
  what the checkout sees: `Scanned`, `NoRead`.
"""

from __future__ import annotations

from drivers.events import DeviceEvent
from drivers.record import Record

__all__ = [
    "Ack",
    "Handshake",
    "Heartbeat",
    "HeartbeatReply",
    "MenuCommand",
    "MenuReply",
    "Nak",
    "NoRead",
    "SaveSettings",
    "ScanDisable",
    "ScanEnable",
    "Scanned",
    "ScannerCommand",
    "ScannerNotice",
    "ScannerReply",
    "StopScan",
    "Trigger",
    "ZoneRead",
    "ZoneReply",
    "ZoneWrite",
]


class Scanned(DeviceEvent):
    """One decoded code, as the driver reports it to the checkout (prefix, AIM id, suffix and any
    protocol framing already stripped)."""

    data: str  # the decoded text (a payment code is ASCII digits)
    symbology: str = ""  # normalised name: "qr", "code128", "ean13", "datamatrix", ... ("" unknown)
    aim: str = ""  # the AIM identifier as sent ("]Q1"), "" when the profile sends none


class NoRead(DeviceEvent):
    """A triggered scan ended without a code: the scanner said so (its no-read message)."""


# -- host -> scanner --------------------------------------------------------------------------------
class ScannerCommand(Record):
    """Base of what the host sends."""


class Trigger(ScannerCommand):
    """Start a scan: serial `SYN T CR`, GM65 zone 0x0002 = 01, SSI START_SESSION (E4)."""


class StopScan(ScannerCommand):
    """End a scan: serial `SYN U CR`, GM65 zone 0x0002 = 02, SSI STOP_SESSION (E5)."""


class ScanEnable(ScannerCommand):
    """SSI SCAN_ENABLE (E9); `permanent` sets status bit 3."""

    permanent: bool = False


class ScanDisable(ScannerCommand):
    """SSI SCAN_DISABLE (EA)."""

    permanent: bool = False


class MenuCommand(ScannerCommand):
    """Honeywell menu command `SYN M CR` + tag(3) + subtag(3) + data + `.` (permanent) / `!`.
    `data` may be a value or a query (`?` current, `^` default, `*` range)."""

    tag: str
    subtag: str
    data: str = ""
    permanent: bool = False

    @property
    def setting(self) -> str:
        return f"{self.tag}{self.subtag}{self.data}"


class ZoneRead(ScannerCommand):
    """GM65 type 07: read `length` bytes of the setting zone from `address`."""

    address: int
    length: int = 1


class ZoneWrite(ScannerCommand):
    """GM65 type 08: write `data` into the setting zone at `address` (0x0002 = 01 / 02 decode as
    Trigger / StopScan, their canonical form)."""

    address: int
    data: bytes


class SaveSettings(ScannerCommand):
    """GM65 type 09: save the setting zone to flash."""


class Heartbeat(ScannerCommand):
    """GM65 type 0A: are you there? Answered by `HeartbeatReply`."""


# -- either way -------------------------------------------------------------------------------------
class Handshake(Record):
    """ACK / NAK: the serial ACK/NAK mode (06 / 15) and SSI CMD_ACK / CMD_NAK."""


class Ack(Handshake):
    pass


class Nak(Handshake):
    """`cause` is SSI's NAK cause (1 RESEND, 2 BAD_CONTEXT, 6 DENIED); the serial NAK has none."""

    cause: int = 1


# -- scanner -> host --------------------------------------------------------------------------------
class ScannerReply(DeviceEvent):
    """Base of the scanner's answers to commands (drivers report the ones their caller asked for)."""


class MenuReply(ScannerReply):
    """The echo of a menu command and its status: "ack" (done), "enq" (unknown tag or subtag),
    "nak" (a value out of range); a query's echo carries the value."""

    setting: str
    status: str = "ack"
    permanent: bool = False


class ZoneReply(ScannerReply):
    """GM65 `02 00 Status Len Data CRC`; status 0 is OK (`02 00 00 01 00 33 31` is the ack)."""

    status: int = 0
    data: bytes = b"\x00"


class HeartbeatReply(ScannerReply):
    """GM65 `03 00 00 01 00 33 31`."""


class ScannerNotice(ScannerReply):
    """SSI EVENT (F6): an event code the decoder reports (its meaning is model-specific)."""

    code: int
