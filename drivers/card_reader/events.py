"""Card reader / PIN pad events: what either end of the link can say, named as facts.

Three groups, all frozen keyword-only records (house rule 4):

- **Link events** (`FrameAcked`, `FrameNaked`, `PeerAborted`, and `FrameReceived` from the bare
  link layer) are about the STX/ETX framing; the driver and the emulator consume them.
- **Commands** (`RequestDeviceInfo`, `StartRead`, `ShowMessage`, `LoadPinKey`, `RequestPin`, `CompleteChip`,
  `CancelRead`) travel host -> device.
- **Device events** (`DeviceInfo`, `CardRead`, `ReadFailed`, `CardRemoved`, `ChipCompleted`,
  `ReadCancelled`, `PinEntered`, `PinCancelled`, `PinTimeout`) travel device -> host and subclass
  `drivers.events.DeviceEvent`: they are the conditions a driver reports to the terminal.

Card data (PAN, expiry, track 2, ICC data) and the PIN block only ever travel inside `Secret`, so
the reprs below are safe to log. A clear PIN never crosses the wire at all: the pad encrypts it.

The byte layout of every message is in messages.py; framing is in codec.py.
docs/card-reader-protocol.md describes both byte by byte.
"""

from __future__ import annotations

import enum

from drivers.events import DeviceEvent
from drivers.record import Record, field
from drivers.sensitive import Secret

__all__ = [
    "CancelRead",
    "CardRead",
    "CardReaderCommand",
    "CardReaderEvent",
    "CardRemoved",
    "ChipCompleted",
    "CompleteChip",
    "Cvm",
    "DeviceInfo",
    "EntryMode",
    "Event",
    "FrameAcked",
    "FrameNaked",
    "FrameReceived",
    "LinkEvent",
    "LoadPinKey",
    "Message",
    "PeerAborted",
    "PinCancelled",
    "PinEntered",
    "PinTimeout",
    "ReadCancelled",
    "ReadFailed",
    "RequestDeviceInfo",
    "RequestPin",
    "ShowMessage",
    "StartRead",
]


class EntryMode(enum.Enum):
    """How the card was (or may be) read."""

    CHIP = "chip"  # contact EMV
    SWIPE = "swipe"  # magnetic stripe
    TAP = "tap"  # contactless EMV


class Cvm(enum.Enum):
    """The cardholder verification the card (its CVM list, or its service code) asks for."""

    NONE = "none"  # no CVM required (small taps, unattended)
    ONLINE_PIN = "online-pin"  # enciphered PIN verified online: the terminal asks with RequestPin
    SIGNATURE = "signature"  # paper or e-signature


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
    """Wait for a card. `currency` is ISO 4217 numeric (`"156"` = CNY, as in ISO 8583 DE 49).
    `unpredictable_number` is the terminal's 9F37 for the chip's GENERATE AC (4 bytes from a
    CSPRNG; empty: the reader draws its own)."""

    amount_minor: int
    currency: str
    modes: frozenset[EntryMode]
    timeout_s: int
    unpredictable_number: bytes = b""


class ShowMessage(CardReaderCommand):
    """Text for the PIN pad's display (GB18030 on the wire: Chinese and English)."""

    text: str


class LoadPinKey(CardReaderCommand):
    """A working PIN key for the pad, as the acquirer sent it at sign-on: 3DES-encrypted under the
    terminal master key the pad holds (16 bytes), and the clear key's KCV (4 bytes). The pad
    decrypts it inside, checks the KCV and encrypts later PIN blocks under it (its `PinEntered`
    key_id names it); a KCV that does not match leaves the old key in place. No answer."""

    wrapped_key: Secret[bytes]
    kcv: bytes


class RequestPin(CardReaderCommand):
    """Ask the cardholder for the online PIN of the card the pad has just read.

    It carries no card data at all: the pad binds the PIN block to the PAN it read itself
    (ISO 9564 format 0). Answered by `PinEntered`, `PinCancelled` or `PinTimeout`. `prompt`
    is shown above the amount (e.g. "密码错误 请重输 Wrong PIN, try again").
    """

    amount_minor: int
    currency: str
    timeout_s: int
    min_length: int = 4
    max_length: int = 12
    prompt: str = ""


class CompleteChip(CardReaderCommand):
    """The host's answer for the second GENERATE AC: ARC (8A) and issuer authentication (91)."""

    approved: bool
    response_code: str
    issuer_data: bytes = b""


class CancelRead(CardReaderCommand):
    """Stop what the pad is waiting for: a card (answered by `ReadCancelled`) or a PIN
    (answered by `PinCancelled`)."""


# -- device -> host ----------------------------------------------------------------------------
class CardReaderEvent(DeviceEvent):
    """Base of what the device reports."""


class DeviceInfo(CardReaderEvent):
    model: str
    serial_number: str
    firmware: str


class CardRead(CardReaderEvent):
    """A card was read. Chip and tap reads carry ICC data (field 55 TLV); a swipe carries track 2.
    `cvm`: the verification the card asks for (None when the reader does not say)."""

    entry_mode: EntryMode
    pan: Secret[str]
    expiry: Secret[str]  # YYMM
    track2: Secret[str] | None = None  # ISO 7813 track 2 without sentinels: PAN=YYMM SVC DD
    icc_data: Secret[bytes] | None = None
    pan_sequence: str | None = None
    cvm: Cvm | None = None

    @property
    def pan_last4(self) -> str:
        """The only part of the PAN that may be shown, printed or journalled in clear."""
        return self.pan.reveal()[-4:]


class ReadFailed(CardReaderEvent):
    """The card could not be read. `fallback_allowed`: the terminal may offer another entry mode
    (the reason then says which, e.g. "insert the card" after a refused tap)."""

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


class PinEntered(CardReaderEvent):
    """The cardholder entered a PIN: an ISO 9564 format-0 PIN block (8 bytes), encrypted under
    the pad's PIN key `key_id`. Forward it to the host as is; never store or log it."""

    pin_block: Secret[bytes]
    key_id: str


class PinCancelled(CardReaderEvent):
    """PIN entry ended without a PIN: the cardholder pressed cancel, the host sent CancelRead,
    or the pad had no card to bind a PIN block to (`reason` says which)."""

    reason: str


class PinTimeout(CardReaderEvent):
    """No PIN was entered within RequestPin.timeout_s."""


Message = CardReaderCommand | CardReaderEvent
Event = LinkEvent | CardReaderCommand | CardReaderEvent  # what a codec's next_event() returns
