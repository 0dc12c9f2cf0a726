"""Card reader / PIN pad wire protocol, sans-I/O (h11-style): framing, ACK/NAK, messages.

Link layer (PROTOCOLS.md §3): `STX [LEN(2)] payload ETX LRC`, LRC = XOR of every byte after STX
up to and including ETX. LEN is BCD, binary or absent per profile (`link.length_field`). The
receiver answers ACK for a good frame and NAK for a bad LRC; the sender resends on NAK and sends
EOT after `max_naks` failures in a row. `Link` keeps that state; what it owes the peer (ACK,
NAK, resends, EOT) accumulates in `data_to_send()`. Timers are the caller's: it reports an ACK
timeout with `ack_timed_out()` and a silent line in the middle of a frame with `line_idle()`.

The application layer (payload = command byte + data) is in messages.py; the events it
carries are in events.py. `CardReaderCodec(role, profile)` joins both layers and is what drivers and
emulators use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.card_reader import events as ev
from drivers.card_reader.messages import decode_message, encode_message
from drivers.errors import FrameError, LocalProtocolError
from drivers.events import Role
from drivers.record import Record

__all__ = [
    "ACK",
    "EOT",
    "ETX",
    "NAK",
    "STX",
    "CardReaderCodec",
    "Link",
    "LinkSettings",
    "LinkStats",
    "lrc",
]

STX, ETX, EOT, ACK, NAK = 0x02, 0x03, 0x04, 0x06, 0x15
_BETWEEN_FRAMES = frozenset({STX, ACK, NAK, EOT})  # anything else between frames is garbage
_OVERHEAD = {"bcd": 5, "binary": 5, "none": 3}  # STX [LEN LEN] ETX LRC


def lrc(data: bytes | bytearray) -> int:
    """The XOR of every byte. Folded as one integer, the high half onto the low half until one
    byte is left: log2(n) integer operations instead of a Python step per byte (a chip read's
    frame is a few hundred bytes, checked on both ends)."""
    width = len(data)
    x = int.from_bytes(data, "big")
    while width > 1:
        half = (width + 1) // 2
        x = (x >> (8 * half)) ^ (x & ((1 << (8 * half)) - 1))
        width = half
    return x


class LinkSettings(Record):
    """The profile's `[link]` table; `max_frame` counts every byte from STX to LRC.

    The field defaults are what a codec without a profile uses (`CardReaderCodec(role)`); they
    equal the card reader schema's `link.*` defaults (a test holds them equal), repeated here
    because a codec reads no files. A loaded profile always has every key: `from_profile` indexes."""

    length_field: str = "bcd"
    max_frame: int = 4096
    max_naks: int = 3
    ack_timeout_s: float = 5.0
    inter_char_timeout_s: float = 0.5  # a frame that stalls this long is abandoned (line_idle)

    def __post_init__(self) -> None:
        if self.length_field not in _OVERHEAD:
            raise ValueError(f"link.length_field must be bcd, binary or none, not {self.length_field!r}")
        if self.max_frame <= _OVERHEAD[self.length_field] or self.max_naks < 1:
            raise ValueError("link.max_frame must leave room for a payload and link.max_naks be >= 1")

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> LinkSettings:
        """From a loaded (schema-completed) card reader profile."""
        link = profile["link"]
        if link["lrc"] != "xor":
            raise ValueError(f"link.lrc {link['lrc']!r} is not supported (only xor)")
        return cls(
            length_field=str(link["length_field"]),
            max_frame=int(link["max_frame"]),
            max_naks=int(link["max_naks"]),
            ack_timeout_s=float(link["ack_timeout_s"]),
            inter_char_timeout_s=float(link["inter_char_timeout_s"]),
        )

    @property
    def max_payload(self) -> int:
        limit = self.max_frame - _OVERHEAD[self.length_field]
        return min(limit, 9999) if self.length_field == "bcd" else min(limit, 0xFFFF)


class LinkStats:
    """Counters of what happened on the line (the codec records; the driver exposes).

    Written out rather than `@dataclass` (whose exec() of three methods cost ~1.3 ms of every
    start): the same keyword/positional constructor, repr, value equality and (being mutable)
    no hash as the dataclass it replaced."""

    frames_sent: int = 0
    frames_received: int = 0
    frame_errors: int = 0
    garbage_bytes: int = 0
    naks_sent: int = 0
    naks_received: int = 0
    resends: int = 0
    eots_sent: int = 0
    eots_received: int = 0

    __match_args__ = ("frames_sent", "frames_received", "frame_errors", "garbage_bytes", "naks_sent",
                      "naks_received", "resends", "eots_sent", "eots_received")
    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value

    def __init__(self, frames_sent: int = 0, frames_received: int = 0, frame_errors: int = 0,
                 garbage_bytes: int = 0, naks_sent: int = 0, naks_received: int = 0, resends: int = 0,
                 eots_sent: int = 0, eots_received: int = 0) -> None:
        self.frames_sent = frames_sent
        self.frames_received = frames_received
        self.frame_errors = frame_errors
        self.garbage_bytes = garbage_bytes
        self.naks_sent = naks_sent
        self.naks_received = naks_received
        self.resends = resends
        self.eots_sent = eots_sent
        self.eots_received = eots_received

    def _values(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__qualname__}({inner})"


class Link:
    """One end of the framed link. Stop-and-wait: one frame of ours awaits ACK at a time."""

    def __init__(self, settings: LinkSettings | None = None) -> None:
        self.settings = settings or LinkSettings()
        self.stats = LinkStats()
        self._rx = bytearray()  # from a STX on, once the garbage before it is skipped
        self._tx = bytearray()
        self._scanned = 1  # length_field "none": how far we already looked for ETX
        self._outstanding: bytes | None = None
        self._failures = 0

    # -- sending ---------------------------------------------------------------------------
    def frame(self, payload: bytes) -> bytes:
        """The frame for `payload` (pure; `send` also tracks it for ACK/NAK)."""
        kind = self.settings.length_field
        if len(payload) > self.settings.max_payload:
            raise LocalProtocolError(f"payload of {len(payload)} bytes exceeds the link's maximum")
        if kind == "bcd":
            header = bytes.fromhex(f"{len(payload):04d}")
        elif kind == "binary":
            header = len(payload).to_bytes(2, "big")
        else:
            if STX in payload or ETX in payload:  # nothing else marks where such a frame ends
                raise LocalProtocolError("without a length field a payload cannot contain STX or ETX")
            header = b""
        body = header + payload + bytes([ETX])
        return bytes([STX]) + body + bytes([lrc(body)])

    def send(self, payload: bytes) -> bytes:
        if self._outstanding is not None:
            raise LocalProtocolError("the previous frame has not been acknowledged yet")
        self._outstanding = self.frame(payload)
        self._failures = 0
        self.stats.frames_sent += 1
        return self._outstanding

    @property
    def awaiting_ack(self) -> bool:
        return self._outstanding is not None

    def data_to_send(self) -> bytes:
        """ACK/NAK for received frames, resends and EOT, in order; the caller writes them."""
        out, self._tx = bytes(self._tx), bytearray()
        return out

    def abandon(self) -> None:
        """Forget the frame awaiting ACK without sending EOT: the line itself failed (a port
        error), so nobody can ACK it and the next send must not be refused."""
        self._outstanding, self._failures = None, 0

    def ack_timed_out(self) -> bool:
        """No answer within the ACK timeout: queue a resend (True) or give up with EOT (False)."""
        if self._outstanding is None:
            raise LocalProtocolError("no frame is waiting for an ACK")
        return self._failed()

    def _failed(self) -> bool:
        assert self._outstanding is not None
        self._failures += 1
        if self._failures >= self.settings.max_naks:
            self._outstanding = None
            self._tx.append(EOT)
            self.stats.eots_sent += 1
            return False
        self._tx += self._outstanding
        self.stats.resends += 1
        return True

    # -- receiving -------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        self._rx += data

    @property
    def in_frame(self) -> bool:
        """A frame has started and not ended (meaningful once next_event() returned None)."""
        return bool(self._rx) and self._rx[0] == STX

    @property
    def buffered(self) -> int:
        return len(self._rx)

    def line_idle(self) -> bool:
        """The line went quiet mid-frame: that STX was noise or its sender died. Drop the STX
        and let next_event() rescan the bytes after it. Returns whether anything was dropped."""
        if not self.in_frame:
            return False
        self._drop_start()
        return True

    def next_event(self) -> ev.LinkEvent | None:
        """The next link event, or None when more bytes are needed. A malformed frame raises
        FrameError after the link has resynchronised (and queued a NAK for a bad LRC), so the
        caller may simply call next_event() again."""
        while self._rx:
            skip = next((i for i, b in enumerate(self._rx) if b in _BETWEEN_FRAMES), len(self._rx))
            if skip:
                del self._rx[:skip]
                self.stats.garbage_bytes += skip
                self._scanned = 1
                continue
            head = self._rx[0]
            if head == STX:
                return self._parse_frame()
            del self._rx[0]
            event = self._on_control(head)
            if event is not None:
                return event
        return None

    def _on_control(self, byte: int) -> ev.LinkEvent | None:
        if byte == EOT:
            self.stats.eots_received += 1
            return ev.PeerAborted()
        if byte == ACK:
            if self._outstanding is None:
                return None  # stray or duplicate ACK: nothing to acknowledge
            self._outstanding, self._failures = None, 0
            return ev.FrameAcked()
        self.stats.naks_received += 1
        if self._outstanding is None:
            return None
        return ev.FrameNaked(resent=self._failed())

    def _drop_start(self) -> None:
        del self._rx[0]
        self._scanned = 1
        self.stats.frame_errors += 1

    def _parse_frame(self) -> ev.FrameReceived | None:
        rx, limit = self._rx, self.settings.max_frame
        if self.settings.length_field == "none":
            end = self._find_end()
            if end is None:
                if len(rx) >= limit:
                    self._drop_start()
                    raise FrameError(f"no ETX within link.max_frame ({limit} bytes)")
                return None
            header = 1
        else:
            if len(rx) < 3:
                return None
            length = self._length(bytes(rx[1:3]))
            if length is None or length + 5 > limit:
                self._drop_start()  # a false start is likelier than a real frame that long
                raise FrameError("frame length field is invalid or over link.max_frame")
            end = 3 + length
            if len(rx) < end + 2:
                return None
            if rx[end] != ETX:
                self._drop_start()
                raise FrameError("no ETX where the length field says the frame ends")
            header = 3
        if end + 2 > limit:
            self._drop_start()
            raise FrameError(f"frame longer than link.max_frame ({limit} bytes)")
        if lrc(rx[1 : end + 1]) != rx[end + 1]:
            # The frame is well-formed, so it was most likely real: NAK it whole, the peer resends.
            del rx[: end + 2]
            self._scanned = 1
            self.stats.frame_errors += 1
            self.stats.naks_sent += 1
            self._tx.append(NAK)
            raise FrameError("bad LRC; NAK sent")
        payload = bytes(rx[header:end])
        del rx[: end + 2]
        self._scanned = 1
        self.stats.frames_received += 1
        self._tx.append(ACK)
        return ev.FrameReceived(payload=payload)

    def _find_end(self) -> int | None:
        """Without a length field: index of the ETX whose LRC byte has arrived. A second STX
        before any ETX abandons the frame (payloads in this mode never hold STX)."""
        rx = self._rx
        for i in range(self._scanned, min(len(rx), self.settings.max_frame - 1)):
            if rx[i] == STX:
                del rx[:i]
                self._scanned = 1
                self.stats.frame_errors += 1
                raise FrameError("a frame was abandoned: STX before its ETX")
            if rx[i] == ETX:
                self._scanned = i
                return i if i + 1 < len(rx) else None
            self._scanned = i + 1
        return None

    def _length(self, raw: bytes) -> int | None:
        if self.settings.length_field == "binary":
            return int.from_bytes(raw, "big")
        text = raw.hex()
        return int(text) if text.isdigit() else None


class CardReaderCodec:
    """The whole protocol for one end (the drivers/codec.py shape): `Role.HOST` (driver) or
    `Role.DEVICE` (emulator), and the card reader profile, whose `[link]` table sets the framing
    (None: LinkSettings' defaults).

    `send(message)` returns the frame to write; `receive_data()` + `next_event()` yield link
    events and decoded messages; after each next_event() call write `data_to_send()` (the ACK
    or NAK for what was just parsed, resends, EOT). A good frame is ACKed even when its payload
    then fails to decode: the link delivered it intact, resending would not help.
    """

    def __init__(self, role: Role, settings: Mapping[str, Any] | None = None) -> None:
        self.role = role
        self.link = Link(LinkSettings() if settings is None else LinkSettings.from_profile(settings))

    @property
    def settings(self) -> LinkSettings:
        """The link settings read from the profile."""
        return self.link.settings

    @property
    def stats(self) -> LinkStats:
        return self.link.stats

    @property
    def awaiting_ack(self) -> bool:
        return self.link.awaiting_ack

    @property
    def in_frame(self) -> bool:
        return self.link.in_frame

    def send(self, message: ev.Message) -> bytes:
        ours = ev.CardReaderCommand if self.role is Role.HOST else ev.CardReaderEvent
        if not isinstance(message, ours):
            raise LocalProtocolError(f"a {self.role.value} does not send {type(message).__name__}")
        return self.link.send(encode_message(message))

    def receive_data(self, data: bytes) -> None:
        self.link.receive_data(data)

    def next_event(self) -> ev.Event | None:
        event = self.link.next_event()
        if isinstance(event, ev.FrameReceived):
            sender = Role.DEVICE if self.role is Role.HOST else Role.HOST
            return decode_message(event.payload, sender=sender)
        return event

    def data_to_send(self) -> bytes:
        return self.link.data_to_send()

    def ack_timed_out(self) -> bool:
        return self.link.ack_timed_out()

    def abandon(self) -> None:
        self.link.abandon()

    def line_idle(self) -> bool:
        return self.link.line_idle()
