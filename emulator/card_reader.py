"""Card reader / PIN pad emulator: the device side of drivers/card_reader, as a transport Peer.

It speaks the real bytes through `CardReaderCodec(role=Role.DEVICE)`: it ACKs good frames, NAKs
bad ones, resends its own frames on NAK and gives up with EOT like the device would. Test cards
come from emulator/cards.toml: `present("approved")` puts one in front of the reader, and the
next (or pending) StartRead is answered with a CardRead built from it.

Chip and tap reads carry field 55 TLV with the tags an acquirer expects. The first cryptogram
(9F26) is a deterministic placeholder derived by hashing the other data; computing the real
ARQC with pyemv (VisaCVN10 and the test keys of PROTOCOLS.md §7) is a later issue. The read
timeout (StartRead.timeout_s) is not emulated yet: it needs the runtime's clock.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import drivers.card_reader.tlv as tlv
from drivers.card_reader.codec import CardReaderCodec, LinkSettings, LinkStats
from drivers.card_reader.events import (
    CancelRead,
    CardRead,
    CardReaderCommand,
    CardReaderEvent,
    CardRemoved,
    ChipCompleted,
    CompleteChip,
    DeviceInfo,
    EntryMode,
    ReadCancelled,
    ReadFailed,
    RequestDeviceInfo,
    ShowMessage,
    StartRead,
)
from drivers.errors import FrameError
from drivers.events import Role
from drivers.sensitive import Secret
from emulator.cards import TestCard, get_card, load_catalogue

__all__ = ["CONTACTLESS_TAGS", "ICC_TAGS", "CardReaderEmulator"]

# Field 55 of a contact read, in the order the §7 vector uses (plus 5F24).
ICC_TAGS = (
    "5A", "57", "5F24", "5F34", "82", "95", "9A", "9C", "9F02", "5F2A", "9F1A", "9F36", "9F37",
    "9F26", "9F27", "9F10",
)  # fmt: skip
# A contactless (qVSDC-like) read reports the track 2 equivalent rather than 5A/5F24.
CONTACTLESS_TAGS = tuple(t for t in ICC_TAGS if t not in {"5A", "5F24"})

_AIP = bytes.fromhex("1800")  # SDA + cardholder verification supported, as in the §7 vector
_IAD = bytes.fromhex("06010A03A00000")  # Visa CVN10 issuer application data (§7 vector)
_CID = {"arqc": b"\x80", "tc": b"\x40", "aac": b"\x00"}


@dataclass
class _ChipSession:
    """What the card remembers between the first and the second GENERATE AC."""

    card: TestCard
    atc: bytes
    first_ac: bytes


class CardReaderEmulator:
    """A PIN pad on the other end of the wire (drivers.transport.Peer)."""

    def __init__(
        self,
        profile: Mapping[str, Any],
        *,
        today: Callable[[], datetime.date] = datetime.date.today,
    ) -> None:
        self.profile = profile
        self._codec = CardReaderCodec(role=Role.DEVICE, link=LinkSettings.from_profile(profile))
        self._today = today
        reader = profile.get("reader", {})
        self._contactless_limit = int(reader.get("contactless_limit_minor", 0)) or None
        self._country = str(reader.get("country_code", "156"))  # 9F1A; CN unless the profile says
        self._out = bytearray()
        self._outbox: deque[CardReaderEvent] = deque()  # waits while a frame of ours awaits ACK
        self._presented: deque[tuple[TestCard, EntryMode]] = deque()
        self._pending: StartRead | None = None
        self._chip: _ChipSession | None = None
        self._atc: dict[str, int] = {}
        self.display = ""  # what ShowMessage last put on the screen
        self.commands: list[CardReaderCommand] = []  # every command received, for tests
        self.closed = False

    @property
    def stats(self) -> LinkStats:
        """The device end's link counters (NAKs sent, resends...)."""
        return self._codec.stats

    @staticmethod
    def list_cards() -> dict[str, TestCard]:
        return load_catalogue()

    # -- Peer ------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        self._codec.receive_data(data)
        while True:
            try:
                event = self._codec.next_event()
            except FrameError:
                self._out += self._codec.data_to_send()  # the NAK (or nothing, for noise)
                continue
            self._out += self._codec.data_to_send()  # ACK before any answer to the frame
            if event is None:
                break
            if isinstance(event, CardReaderCommand):
                self.commands.append(event)
                self._handle(event)
            # After an ACK (or giving up with EOT) the next queued event may go out.
            self._flush()

    def transmit(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def close(self) -> None:
        self.closed = True

    # -- what a tester does with a card ----------------------------------------------------
    def present(self, card: str, mode: str | None = None) -> None:
        """Insert, swipe or tap a catalogue card (UnknownCardError for an unknown name)."""
        test_card = get_card(card)
        chosen = mode or test_card.default_mode
        if chosen not in test_card.entry_modes:
            raise ValueError(f"card {card!r} cannot be read by {chosen!r} (it supports {test_card.entry_modes})")
        self._presented.append((test_card, EntryMode(chosen)))
        self._try_read()
        self._flush()

    def remove(self) -> None:
        """The card leaves the reader (a chip transaction in progress is over)."""
        self._presented.clear()
        self._chip = None
        self._emit(CardRemoved())
        self._flush()

    # -- device behaviour ------------------------------------------------------------------
    def _handle(self, command: CardReaderCommand) -> None:
        match command:
            case RequestDeviceInfo():
                self._emit(
                    DeviceInfo(
                        model=str(self.profile.get("model", "")),
                        serial_number=str(self.profile.get("serial_number", "")),
                        firmware=str(self.profile.get("firmware", "")),
                    )
                )
            case StartRead():
                self._pending = command
                self._try_read()
            case CancelRead():
                self._pending = None
                self._emit(ReadCancelled())
            case CompleteChip():
                self._complete(command)
            case ShowMessage(text=text):
                self.display = text

    def _emit(self, event: CardReaderEvent) -> None:
        self._outbox.append(event)

    def _flush(self) -> None:
        """Stop-and-wait: the next queued event goes out once the previous one was ACKed."""
        if self._outbox and not self._codec.awaiting_ack:
            self._out += self._codec.send(self._outbox.popleft())

    def _try_read(self) -> None:
        if self._pending is None or not self._presented:
            return
        request, self._pending = self._pending, None
        card, mode = self._presented.popleft()
        self._emit(self._read(card, mode, request))

    def _read(self, card: TestCard, mode: EntryMode, request: StartRead) -> CardReaderEvent:
        if mode not in request.modes:
            return ReadFailed(reason=f"{mode.value} is not enabled for this read", fallback_allowed=True)
        if mode is EntryMode.TAP and self._contactless_limit and request.amount_minor > self._contactless_limit:
            return ReadFailed(reason="amount over the contactless limit: insert the card", fallback_allowed=True)
        pan, expiry, track2 = Secret(card.pan), Secret(card.expiry), Secret(card.track2)
        if mode is EntryMode.SWIPE:
            return CardRead(entry_mode=mode, pan=pan, expiry=expiry, track2=track2)
        atc = self._next_atc(card)
        icc = self._first_ac(card, request, atc, CONTACTLESS_TAGS if mode is EntryMode.TAP else ICC_TAGS)
        if mode is EntryMode.CHIP:  # the card stays inserted for the second GENERATE AC
            self._chip = _ChipSession(card=card, atc=atc, first_ac=icc)
        return CardRead(
            entry_mode=mode,
            pan=pan,
            expiry=expiry,
            track2=track2,
            icc_data=Secret(icc),
            pan_sequence=card.pan_sequence or None,
        )

    def _next_atc(self, card: TestCard) -> bytes:
        self._atc[card.name] = self._atc.get(card.name, 0) + 1
        return self._atc[card.name].to_bytes(2, "big")

    def _first_ac(self, card: TestCard, request: StartRead, atc: bytes, tags: tuple[str, ...]) -> bytes:
        today = self._today()
        year, month = 2000 + int(card.expiry[:2]), int(card.expiry[2:])
        amount = tlv.encode_n(request.amount_minor, 6)
        values = {
            "5A": tlv.encode_cn(card.pan),
            "57": tlv.encode_track2(card.track2),
            "5F24": tlv.encode_n(f"{card.expiry}{calendar.monthrange(year, month)[1]:02d}", 3),
            "5F34": tlv.encode_n(card.pan_sequence or "0", 1),
            "82": _AIP,
            "95": bytes(5),  # TVR: no failed checks
            "9A": tlv.encode_n(today.strftime("%y%m%d"), 3),
            "9C": b"\x00",  # purchase
            "9F02": amount,
            "5F2A": tlv.encode_n(request.currency, 2),
            "9F1A": tlv.encode_n(self._country, 2),
            "9F36": atc,
            # The terminal's unpredictable number; deterministic so scenarios replay byte for byte.
            "9F37": hashlib.sha256(b"UN" + card.pan.encode() + atc + amount).digest()[:4],
            "9F27": _CID["arqc"],
            "9F10": _IAD,
        }
        # Placeholder ARQC: a hash of everything else; the real pyemv ARQC is a later issue.
        values["9F26"] = hashlib.sha256(tlv.encode(values)).digest()[:8]
        return tlv.encode([(tag, values[tag]) for tag in tags])

    def _complete(self, command: CompleteChip) -> None:
        session, self._chip = self._chip, None
        if session is None:
            self._emit(ReadFailed(reason="no chip transaction to complete", fallback_allowed=False))
            return
        # The card accepts only an online approval with ARC 00; anything else is declined (AAC).
        approved = command.approved and command.response_code == "00"
        cid = _CID["tc" if approved else "aac"]
        arc = command.response_code.encode("ascii")
        # Placeholder TC/AAC, chained to the first cryptogram and the issuer's answer.
        seed = session.first_ac + arc + command.issuer_data + cid
        values = [
            ("9F27", cid),
            ("9F26", hashlib.sha256(seed).digest()[:8]),
            ("9F36", session.atc),
            ("8A", arc),
            ("95", bytes(5)),
            ("9F10", _IAD),
        ]
        self._emit(ChipCompleted(approved=approved, icc_data=Secret(tlv.encode(values))))
