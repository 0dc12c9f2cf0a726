"""Card reader / PIN pad driver: the host end of drivers/card_reader/codec.py over any port URL.

Every command is one frame, sent stop-and-wait: the driver waits (bounded) for ACK or NAK,
resends on NAK or silence and gives up with EOT after the profile's `link.max_naks` failures,
returning a DeviceFault. Answers and unsolicited events (CardRead, CardRemoved, PinEntered...)
are ACKed as they are decoded and queued for `poll()`; `device_info()` is the one request that
also waits for its answer. Nothing sleeps: waiting is a bounded read.

What the terminal calls, and what then arrives through poll():

    start_read(...)     -> CardRead | ReadFailed (| CardRemoved)
    request_pin(...)    -> PinEntered | PinCancelled | PinTimeout
    complete(...)       -> ChipCompleted (| CardRemoved when the card was pulled first)
    cancel()            -> ReadCancelled (waiting for a card) | PinCancelled (PIN entry)
    show_message(text)  -> nothing
Each returns None once the pad ACKed the command, or the DeviceFault that stopped it.

Timing: each attempt waits the profile's `link.ack_timeout_s` for the ACK (resending earlier
would make a slow device see the frame twice: the link has no sequence numbers), so a command
blocks at most `link.max_naks` x `link.ack_timeout_s`; `timeout` bounds the wait for an answer
(device_info). Over a synchronous port (emu://, loop://: no file descriptor) a read that returns
nothing means the peer has nothing to say, so the driver treats it as a timeout at once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from drivers.base import DeviceEvent, DeviceFault, Driver, FaultKind, Role
from drivers.card_reader.codec import CardReaderCodec, LinkSettings, LinkStats
from drivers.card_reader.events import (
    CancelRead,
    CardReaderCommand,
    CardReaderEvent,
    CompleteChip,
    DeviceInfo,
    EntryMode,
    FrameNaked,
    LoadPinKey,
    PeerAborted,
    RequestDeviceInfo,
    RequestPin,
    ShowMessage,
    StartRead,
)
from drivers.errors import FrameError, PortError
from drivers.sensitive import Secret

__all__ = ["CardReaderDriver"]

_MAX_READS_PER_POLL = 64  # poll() never loops forever on a chatty line


class CardReaderDriver(Driver):
    family: ClassVar[str] = "card_reader"

    def __init__(self, url: str, profile: Mapping[str, Any], *, timeout: float = 1.0) -> None:
        super().__init__(url, profile, timeout=timeout)
        self.link_settings = LinkSettings.from_profile(profile)
        self._codec: CardReaderCodec | None = None
        self._events: deque[DeviceEvent] = deque()
        self._synchronous = False
        self._last_rx = 0.0
        self._gave_up = False  # set when a NAK made the codec give up the frame in flight

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        super().open()
        if self._codec is None:
            self._codec = CardReaderCodec(Role.HOST, self.profile)
            self._synchronous = self.fileno() is None
            self._last_rx = time.monotonic()

    def close(self) -> None:
        self._codec = None
        super().close()

    @property
    def link_stats(self) -> LinkStats:
        return self._require_codec().stats

    # -- commands --------------------------------------------------------------------------
    def device_info(self) -> DeviceInfo | DeviceFault:
        fault = self._send(RequestDeviceInfo())
        if fault is not None:
            return fault
        try:
            return self._await_answer(DeviceInfo)
        except PortError as exc:
            return self._fault(FaultKind.DISCONNECTED, str(exc))

    def start_read(
        self, *, amount_minor: int, currency: str, modes: Iterable[EntryMode], timeout_s: int,
        unpredictable_number: bytes = b"",
    ) -> DeviceFault | None:
        """Wait for a card; `unpredictable_number` is the terminal's 9F37 (4 bytes; empty: the
        reader draws its own)."""
        request = StartRead(amount_minor=amount_minor, currency=currency, modes=frozenset(modes), timeout_s=timeout_s,
                            unpredictable_number=unpredictable_number)
        return self._send(request)

    def request_pin(
        self,
        *,
        amount_minor: int,
        currency: str,
        timeout_s: int = 30,
        min_length: int = 4,
        max_length: int = 12,
        prompt: str = "",
    ) -> DeviceFault | None:
        """Ask for the online PIN of the card just read; PinEntered (an encrypted ISO 9564
        format-0 block), PinCancelled or PinTimeout arrives through poll()."""
        request = RequestPin(
            amount_minor=amount_minor,
            currency=currency,
            timeout_s=timeout_s,
            min_length=min_length,
            max_length=max_length,
            prompt=prompt,
        )
        return self._send(request)

    def cancel(self) -> DeviceFault | None:
        """Ask the reader to stop waiting for a card or a PIN; ReadCancelled (or PinCancelled)
        arrives through poll()."""
        return self._send(CancelRead())

    def complete(self, *, approved: bool, response_code: str, issuer_data: bytes = b"") -> DeviceFault | None:
        """Hand the host's answer to the card; `ChipCompleted` arrives through poll()."""
        return self._send(CompleteChip(approved=approved, response_code=response_code, issuer_data=issuer_data))

    def show_message(self, text: str) -> DeviceFault | None:
        return self._send(ShowMessage(text=text))

    def load_pin_key(self, wrapped: tuple[Secret[bytes], bytes]) -> DeviceFault | None:
        """The working PIN key of a sign-on, still under the TMK, with its KCV (`LoadPinKey`)."""
        key, check = wrapped
        return self._send(LoadPinKey(wrapped_key=key, kcv=check))

    def poll(self) -> list[DeviceEvent]:
        """Decode what has arrived (ACKing each frame); never blocks."""
        self._require_codec()
        try:
            for _ in range(_MAX_READS_PER_POLL):
                if not self._pump(0.0):
                    break
        except PortError as exc:
            self._events.append(self._fault(FaultKind.DISCONNECTED, str(exc)))
        events, self._events = list(self._events), deque()
        return events

    # -- internals -------------------------------------------------------------------------
    def _require_codec(self) -> CardReaderCodec:
        if self._codec is None:
            raise PortError(f"{self.family} driver is not open ({self.url})")
        return self._codec

    def _fault(self, kind: FaultKind, detail: str, *, blocking: bool = True) -> DeviceFault:
        return DeviceFault(device=self.family, kind=kind, detail=detail, blocking=blocking)

    def _send(self, command: CardReaderCommand) -> DeviceFault | None:
        codec = self._require_codec()
        frame = codec.send(command)  # LocalProtocolError (our bug) propagates
        try:
            self._write(frame)
            return self._await_ack(codec, type(command).__name__)
        except PortError as exc:
            codec.abandon()  # the line failed: the next command must not wait on this frame
            return self._fault(FaultKind.DISCONNECTED, str(exc))

    def _await_ack(self, codec: CardReaderCodec, what: str) -> DeviceFault | None:
        wait = self.link_settings.ack_timeout_s
        deadline = time.monotonic() + wait
        self._gave_up = False
        while True:
            resends = codec.stats.resends
            arrived = self._pump(max(0.0, deadline - time.monotonic()))
            if self._gave_up:
                naks = self.link_settings.max_naks
                return self._fault(FaultKind.PROTOCOL, f"{what}: reader NAKed it {naks} times; sent EOT")
            if not codec.awaiting_ack:
                return None
            if codec.stats.resends != resends:  # NAK -> resent: a fresh wait for the new copy
                deadline = time.monotonic() + wait
                continue
            if (arrived or not self._synchronous) and time.monotonic() < deadline:
                continue
            resent = codec.ack_timed_out()
            self._flush(codec)  # the resend, or EOT
            if not resent:
                return self._fault(FaultKind.NO_ANSWER, f"{what}: no ACK from the reader; sent EOT")
            deadline = time.monotonic() + wait

    def _await_answer(self, kind: type[DeviceInfo]) -> DeviceInfo | DeviceFault:
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self._events:
                if isinstance(event, kind):
                    self._events.remove(event)
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not self._pump(remaining) and self._synchronous:
                break
        return self._fault(FaultKind.NO_ANSWER, f"no {kind.__name__} from the reader within {self.timeout} s")

    def _pump(self, wait: float) -> bool:
        """One bounded read; decode, ACK/NAK and queue whatever it brought. True if bytes came."""
        codec = self._require_codec()
        data = self._read_available(wait)
        now = time.monotonic()
        if data:
            self._last_rx = now
            codec.receive_data(data)
        elif codec.in_frame and (self._synchronous or now - self._last_rx >= self.link_settings.inter_char_timeout_s):
            codec.line_idle()  # a frame stalled: it was noise, or its sender died mid-way
        self._drain(codec)
        return bool(data)

    def _flush(self, codec: CardReaderCodec) -> None:
        data = codec.data_to_send()
        if data:
            self._write(data)

    def _drain(self, codec: CardReaderCodec) -> None:
        while True:
            try:
                event = codec.next_event()
            except FrameError as exc:
                # Line noise or a peer bug: the link has resynchronised (and NAKed a bad LRC).
                self._events.append(self._fault(FaultKind.PROTOCOL, str(exc), blocking=False))
                self._flush(codec)
                continue
            self._flush(codec)
            if event is None:
                return
            if isinstance(event, CardReaderEvent):
                self._events.append(event)
            elif isinstance(event, FrameNaked) and not event.resent:
                self._gave_up = True
            elif isinstance(event, PeerAborted):
                detail = "the reader gave up sending a frame (EOT)"
                self._events.append(self._fault(FaultKind.PROTOCOL, detail, blocking=False))
