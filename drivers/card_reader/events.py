"""Card reader / PIN pad events: what either end of the link can say, named as facts.

Three groups, all frozen keyword-only dataclasses (house rule 4):

- **Link events** (`FrameAcked`, `FrameNaked`, `PeerAborted`, and `FrameReceived` from the bare
  link layer) are about the STX/ETX framing; the driver and the emulator consume them.
- **Commands** (`RequestDeviceInfo`, `StartRead`, `ShowMessage`, `CompleteChip`, `CancelRead`)
  travel host -> device.
- **Device events** (`DeviceInfo`, `CardRead`, `ReadFailed`, `CardRemoved`, `ChipCompleted`,
  `ReadCancelled`) travel device -> host and subclass `drivers.events.DeviceEvent`: they are the
  conditions a driver reports to the terminal.

Card data (PAN, expiry, track 2, ICC data) only ever travels inside `Secret`, so the dataclass
reprs below are safe to log.

The second half is the application layer's byte layout (pymodbus-style: the message set and its
encoding side by side; framing is in codec.py). Payload = command byte + data, bit 7 of the
command set for device -> host. Fixed fields come first; variable ones are BER-TLV with private
tags (C1...), so a field can be added without breaking old readers. docs/card-reader-protocol.md
describes it byte by byte.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

from drivers.card_reader import tlv
from drivers.errors import FrameError, LocalProtocolError
from drivers.events import DeviceEvent, Role
from drivers.record import Record, field
from drivers.sensitive import Secret

__all__ = [
    "CancelRead",
    "CardRead",
    "CardReaderCommand",
    "CardReaderEvent",
    "CardRemoved",
    "ChipCompleted",
    "Command",
    "CompleteChip",
    "DeviceInfo",
    "EntryMode",
    "Event",
    "FrameAcked",
    "FrameNaked",
    "FrameReceived",
    "LinkEvent",
    "Message",
    "PeerAborted",
    "ReadCancelled",
    "ReadFailed",
    "RequestDeviceInfo",
    "ShowMessage",
    "StartRead",
    "decode_message",
    "encode_message",
]


class EntryMode(enum.Enum):
    """How the card was (or may be) read."""

    CHIP = "chip"  # contact EMV
    SWIPE = "swipe"  # magnetic stripe
    TAP = "tap"  # contactless EMV


# -- link layer --------------------------------------------------------------------------------
class LinkEvent(Record):
    """Base of the framing-level facts (ACK, NAK, EOT, a whole frame)."""


class FrameAcked(LinkEvent):
    """The peer acknowledged (06) the frame we were waiting on."""


class FrameNaked(LinkEvent):
    """The peer rejected (15) our frame. `resent`: the codec queued it again; otherwise it gave
    up after `max_naks` failures in a row and queued EOT (04) instead."""

    resent: bool


class PeerAborted(LinkEvent):
    """The peer sent EOT (04): it gave up on a frame it was sending us."""


class FrameReceived(LinkEvent):
    """A frame with a good LRC (already ACKed). Only the bare `Link` yields it; the codec turns
    the payload into a message. The payload may hold card data, so the repr leaves it out."""

    payload: bytes = field(repr=False)


# -- host -> device ----------------------------------------------------------------------------
class CardReaderCommand(Record):
    """Base of what the host asks the device to do."""


class RequestDeviceInfo(CardReaderCommand):
    """Ask for model, serial number and firmware version (answered by `DeviceInfo`)."""


class StartRead(CardReaderCommand):
    """Wait for a card. `currency` is ISO 4217 numeric (`"156"` = CNY, as in ISO 8583 DE 49)."""

    amount_minor: int
    currency: str
    modes: frozenset[EntryMode]
    timeout_s: int


class ShowMessage(CardReaderCommand):
    """Text for the PIN pad's display (GB18030 on the wire: Chinese and English)."""

    text: str


class CompleteChip(CardReaderCommand):
    """The host's answer for the second GENERATE AC: ARC (8A) and issuer authentication (91)."""

    approved: bool
    response_code: str
    issuer_data: bytes = b""


class CancelRead(CardReaderCommand):
    """Stop waiting for a card (answered by `ReadCancelled`)."""


# -- device -> host ----------------------------------------------------------------------------
class CardReaderEvent(DeviceEvent):
    """Base of what the device reports."""


class DeviceInfo(CardReaderEvent):
    model: str
    serial_number: str
    firmware: str


class CardRead(CardReaderEvent):
    """A card was read. Chip and tap reads carry ICC data (field 55 TLV); a swipe carries track 2."""

    entry_mode: EntryMode
    pan: Secret[str]
    expiry: Secret[str]  # YYMM
    track2: Secret[str] | None = None  # ISO 7813 track 2 without sentinels: PAN=YYMM SVC DD
    icc_data: Secret[bytes] | None = None
    pan_sequence: str | None = None

    @property
    def pan_last4(self) -> str:
        """The only part of the PAN that may be shown, printed or journalled in clear."""
        return self.pan.reveal()[-4:]


class ReadFailed(CardReaderEvent):
    """The card could not be read. `fallback_allowed`: the terminal may offer another entry mode."""

    reason: str
    fallback_allowed: bool


class CardRemoved(CardReaderEvent):
    pass


class ChipCompleted(CardReaderEvent):
    """Outcome of the second GENERATE AC: TC (approved) or AAC (declined), with the card's data."""

    approved: bool
    icc_data: Secret[bytes]


class ReadCancelled(CardReaderEvent):
    pass


Message = CardReaderCommand | CardReaderEvent
Event = LinkEvent | CardReaderCommand | CardReaderEvent  # what a codec's next_event() returns


# -- application layer -------------------------------------------------------------------------
class Command(enum.IntEnum):
    """Payload byte 0. Bit 7 set = device -> host. 0x40-0x4F (host) and 0xC0-0xCF (device) are
    reserved for PIN entry, a later issue; an unknown byte is a FrameError."""

    REQUEST_DEVICE_INFO = 0x10
    START_READ = 0x20
    CANCEL_READ = 0x21
    COMPLETE_CHIP = 0x22
    SHOW_MESSAGE = 0x30
    DEVICE_INFO = 0x90
    CARD_READ = 0xA0
    READ_FAILED = 0xA1
    CARD_REMOVED = 0xA2
    CHIP_COMPLETED = 0xA3
    READ_CANCELLED = 0xA4


_TEXT = "gb18030"  # every human-readable string: the CN display and printer encoding
_MODE_BITS = {EntryMode.CHIP: 0x01, EntryMode.SWIPE: 0x02, EntryMode.TAP: 0x04}
_EMPTY: dict[Command, Callable[[], Message]] = {
    Command.REQUEST_DEVICE_INFO: RequestDeviceInfo,
    Command.CANCEL_READ: CancelRead,
    Command.CARD_REMOVED: CardRemoved,
    Command.READ_CANCELLED: ReadCancelled,
}
_EMPTY_COMMAND = {factory: command for command, factory in _EMPTY.items()}


def _text(value: str, what: str) -> bytes:
    try:
        return value.encode(_TEXT)
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{what} cannot be encoded in GB18030") from exc


def _digits(value: str, what: str, low: int, high: int) -> bytes:
    if not (value.isascii() and value.isdigit() and low <= len(value) <= high):
        raise LocalProtocolError(f"{what} must be {low}-{high} digits")  # never echo card data
    return value.encode("ascii")


def encode_message(message: Message) -> bytes:
    """Payload (command byte + data) of one message; misuse raises LocalProtocolError."""
    match message:
        case StartRead(amount_minor=amount, currency=currency, modes=modes, timeout_s=timeout):
            if not 0 <= amount <= 999_999_999_999:
                raise LocalProtocolError("amount_minor must fit format n12")
            if not modes or not 1 <= timeout <= 255:
                raise LocalProtocolError("StartRead needs at least one entry mode and timeout_s 1-255")
            code = _digits(currency, "currency (ISO 4217 numeric, e.g. '156')", 3, 3).decode()
            bits = sum(_MODE_BITS[mode] for mode in modes)
            return (
                bytes([Command.START_READ]) + tlv.encode_n(amount, 6) + tlv.encode_n(code, 2) + bytes([bits, timeout])
            )
        case ShowMessage(text=text):
            return bytes([Command.SHOW_MESSAGE]) + _text(text, "display text")
        case CompleteChip(approved=approved, response_code=code, issuer_data=issuer):
            if len(code) != 2 or not (code.isascii() and code.isprintable()):
                raise LocalProtocolError("response_code must be 2 printable ASCII characters")
            items = [("8A", code.encode("ascii"))] + ([("91", issuer)] if issuer else [])
            return bytes([Command.COMPLETE_CHIP, approved]) + tlv.encode(items)
        case DeviceInfo(model=model, serial_number=serial, firmware=firmware):
            items = [
                ("C1", _text(model, "model")),
                ("C2", _text(serial, "serial")),
                ("C3", _text(firmware, "firmware")),
            ]
            return bytes([Command.DEVICE_INFO]) + tlv.encode(items)
        case CardRead():
            items = [("C1", _digits(message.pan.reveal(), "pan", 12, 19))]
            items.append(("C2", _digits(message.expiry.reveal(), "expiry (YYMM)", 4, 4)))
            if message.track2 is not None:
                track2 = message.track2.reveal()
                if not (track2.isascii() and track2.isprintable()):
                    raise LocalProtocolError("track2 must be printable ASCII")
                items.append(("C3", track2.encode("ascii")))
            if message.icc_data is not None:
                items.append(("C4", message.icc_data.reveal()))
            if message.pan_sequence is not None:
                items.append(("C5", _digits(message.pan_sequence, "pan_sequence", 1, 3)))
            return bytes([Command.CARD_READ, _MODE_BITS[message.entry_mode]]) + tlv.encode(items)
        case ReadFailed(reason=reason, fallback_allowed=fallback):
            return bytes([Command.READ_FAILED, fallback]) + _text(reason, "reason")
        case ChipCompleted(approved=approved, icc_data=icc):
            return bytes([Command.CHIP_COMPLETED, approved]) + icc.reveal()
        case _ if type(message) in _EMPTY_COMMAND:
            return bytes([_EMPTY_COMMAND[type(message)]])
    raise LocalProtocolError(f"not a card reader message: {type(message).__name__}")


def decode_message(payload: bytes, *, sender: Role) -> Message:
    """The message in one frame's payload; anything malformed raises FrameError, whose text
    never contains the payload (it may hold card data)."""
    if not payload:
        raise FrameError("empty payload")
    try:
        command = Command(payload[0])
    except ValueError:
        raise FrameError(f"unknown command byte {payload[0]:02X}") from None
    if bool(command & 0x80) != (sender is Role.DEVICE):
        raise FrameError(f"{command.name} cannot come from the {sender.value}")
    try:
        return _decode(command, bytes(payload[1:]))
    except (tlv.TLVError, UnicodeDecodeError) as exc:
        raise FrameError(f"{command.name}: malformed data ({type(exc).__name__})") from None


def _flag(data: bytes, command: Command) -> bool:
    if data[:1] not in (b"\x00", b"\x01"):
        raise FrameError(f"{command.name}: flag byte must be 00 or 01")
    return data[0] == 1


def _field(items: Mapping[str, bytes], tag: str, command: Command, digits: tuple[int, int] | None = None) -> str:
    value = items.get(tag)
    if value is None:
        raise FrameError(f"{command.name}: tag {tag} missing")
    if digits and not (value.isdigit() and digits[0] <= len(value) <= digits[1]):
        raise FrameError(f"{command.name}: tag {tag} must be {digits[0]}-{digits[1]} digits")
    return value.decode(_TEXT)


def _decode(command: Command, data: bytes) -> Message:
    if command in _EMPTY:
        if data:
            raise FrameError(f"{command.name} carries no data")
        return _EMPTY[command]()
    if command is Command.START_READ:
        if len(data) != 10 or data[6] & 0xF0 or not data[8] or data[8] & ~0x07 or not data[9]:
            raise FrameError("START_READ: bad length, currency, entry modes or timeout")
        return StartRead(
            amount_minor=int(tlv.decode_n(data[:6])),
            currency=tlv.decode_n(data[6:8])[1:],
            modes=frozenset(mode for mode, bit in _MODE_BITS.items() if data[8] & bit),
            timeout_s=data[9],
        )
    if command is Command.SHOW_MESSAGE:
        return ShowMessage(text=data.decode(_TEXT))
    if command is Command.READ_FAILED:
        return ReadFailed(fallback_allowed=_flag(data, command), reason=data[1:].decode(_TEXT))
    if command is Command.CHIP_COMPLETED:
        return ChipCompleted(approved=_flag(data, command), icc_data=Secret(data[1:]))
    if command is Command.COMPLETE_CHIP:
        approved, items = _flag(data, command), tlv.decode_dict(data[1:])
        code = items.get("8A", b"")
        if len(code) != 2 or not (code.isascii() and code.decode().isprintable()):
            raise FrameError("COMPLETE_CHIP: tag 8A must be 2 printable ASCII characters")
        return CompleteChip(approved=approved, response_code=code.decode(), issuer_data=items.get("91", b""))
    items = tlv.decode_dict(data[1:] if command is Command.CARD_READ else data)
    if command is Command.DEVICE_INFO:
        return DeviceInfo(
            model=_field(items, "C1", command),
            serial_number=_field(items, "C2", command),
            firmware=_field(items, "C3", command),
        )
    modes = {bit: mode for mode, bit in _MODE_BITS.items()}
    if not data or data[0] not in modes:
        raise FrameError("CARD_READ: unknown entry mode")
    track2 = items.get("C3")
    if track2 is not None and not (track2.isascii() and track2.decode().isprintable()):
        raise FrameError("CARD_READ: tag C3 must be printable ASCII")
    icc, psn = items.get("C4"), items.get("C5")
    return CardRead(
        entry_mode=modes[data[0]],
        pan=Secret(_field(items, "C1", command, (12, 19))),
        expiry=Secret(_field(items, "C2", command, (4, 4))),
        track2=None if track2 is None else Secret(track2.decode()),
        icc_data=None if icc is None else Secret(icc),
        pan_sequence=None if psn is None else _field(items, "C5", command, (1, 3)),
    )
