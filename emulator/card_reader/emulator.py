"""Card reader / PIN pad emulator: the device side of drivers/card_reader, as a transport Peer.

It speaks the real bytes through `CardReaderCodec(Role.DEVICE, profile)`: it ACKs good frames, NAKs
bad ones, resends its own frames on NAK (and, as time passes, on a missing ACK) and gives up with
EOT like the device would. Test cards come from emulator/card_reader/cards.toml: `present("approved")` puts
one in front of the reader, and the next (or pending) StartRead is answered from it. Chip and tap
reads carry a real ARQC (emulator/emv.py); the second GENERATE AC checks the issuer's ARPC.

Time: the emulator has no clock. `advance(seconds)` moves its virtual time: slow cards answer,
StartRead/RequestPin time out, unACKed frames are resent. Tests call it; a served link
(emulator/link.py) calls it with the real time that passed. The shape is emulator/base.py's.
Faults, by name through `set_fault(name, ...)` or by their own methods: "corrupt" /
`corrupt_frames(n)` flips the LRC of our next n frames, "nak-storm" / `nak_storm(frames)` NAKs
the host's frames, "silent" / `go_silent()` answers nothing, "disconnect" / `disconnect()` cuts
the line (see its docstring).
"""

from __future__ import annotations

import datetime
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from drivers.card_reader.codec import ETX, STX, CardReaderCodec, LinkStats
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
    FrameNaked,
    LoadPinKey,
    PinCancelled,
    PinEntered,
    PinTimeout,
    ReadCancelled,
    ReadFailed,
    RequestDeviceInfo,
    RequestPin,
    ShowMessage,
    StartRead,
)
from drivers.errors import FrameError
from drivers.events import Role
from drivers.sensitive import Secret
from emulator.base import Emulator
from emulator.card_reader import emv
from emulator.card_reader.cards import TestCard, get_card, load_catalogue
from emulator.files import rewrite_in_place

__all__ = ["CONTACTLESS_TAGS", "FAULTS", "ICC_TAGS", "CardReaderEmulator"]

ICC_TAGS, CONTACTLESS_TAGS = emv.ICC_TAGS, emv.CONTACTLESS_TAGS
_NAK = b"\x15"
FAULTS = ("corrupt", "nak-storm", "silent", "disconnect")


log = logging.getLogger("emulator.card_reader")

class CardReaderEmulator(Emulator):
    """A PIN pad on the other end of the wire (drivers.transport.Peer)."""

    CONTROL = "emulator.card_reader.control"  # its control vocabulary (emulator/control.py)
    FAULTS = FAULTS
    follows_till_clock = True  # a slow card answers after its delay on the till's clock
    FOLDER_OPTION = ("--state", "keep each test card's ATC in DIR/atc.json, so it keeps counting across restarts")
    STATE_IN_VAR = True  # in process (sim/wiring.py), its folder is the till's var/emulated/card-reader

    def __init__(
        self,
        profile: Mapping[str, Any],
        *,
        today: Callable[[], datetime.date] = datetime.date.today,
        auto_pin: bool = True,
    ) -> None:
        self.profile = profile
        self._codec = CardReaderCodec(Role.DEVICE, profile)
        self.link = self._codec.settings
        self._today = today
        # True: a PIN request with nothing typed is answered at once with the card's typed_pin.
        self.auto_pin = auto_pin
        reader = profile["reader"]
        self._reader_modes = tuple(reader["entry_modes"])
        self._contactless_limit = int(reader["contactless_limit_minor"]) or None
        self._country = str(reader["country_code"])  # 9F1A
        self.now = 0.0  # virtual seconds
        self._out = bytearray()
        self._outbox: deque[CardReaderEvent] = deque()  # waits while a frame of ours awaits ACK
        self._ack_due: float | None = None
        self._presented: deque[tuple[TestCard, EntryMode]] = deque()
        self._follow_up: tuple[TestCard, EntryMode] | None = None  # the cardholder's next try
        self._pending: StartRead | None = None
        self._read_due: float | None = None  # StartRead.timeout_s
        self._slow: tuple[float, CardReaderEvent] | None = None  # a slow card's answer, and when
        self._card: TestCard | None = None  # the card read last: PIN blocks bind to its PAN
        self._chip: emv.ChipSession | None = None
        self._atc: dict[str, int] = {}  # card name -> the last ATC it used
        self._atc_file: Path | None = None  # use_folder(): where _atc persists
        self._pin_request: RequestPin | None = None
        # The fixed test key until a sign-on's working PIN key is loaded (LoadPinKey).
        self._pin_key, self._pin_key_id = Secret(emv.TEST_PIN_KEY), emv.TEST_PIN_KEY_ID
        self._pin_due: float | None = None
        self._typed: deque[Secret[str] | None] = deque()  # typed-ahead PINs; None = cancel key
        # Faults.
        self.corrupt_left = 0
        self.nak_left: int | None = 0  # None = NAK every frame until clear_faults()
        self.silent = False
        self.unplugged: str | None = None  # "soft": the line is dead; "hard": the port is gone
        self.display = ""  # what ShowMessage last put on the screen
        self.commands: list[CardReaderCommand] = []  # every command received, for tests

    @property
    def stats(self) -> LinkStats:
        """The device end's link counters (NAKs sent, resends...)."""
        return self._codec.stats

    def use_folder(self, folder: Path) -> None:
        """Keep the ATCs in `folder`/atc.json (card name -> last ATC): a card's counter then only
        ever increases, across restarts, as a real card's does."""
        folder.mkdir(parents=True, exist_ok=True)
        self._atc_file = folder / "atc.json"
        try:
            saved = json.loads(self._atc_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            saved = {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self._atc_file}: not an ATC file ({type(exc).__name__})") from exc
        if not isinstance(saved, dict) or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in saved.values()):
            raise ValueError(f"{self._atc_file}: not an ATC file (card name -> 0..65535)")
        self._atc = {str(k): int(v) for k, v in saved.items()}

    def _next_atc(self, card: TestCard) -> int:
        """The card's next ATC, saved before it is used: a kill never makes a card repeat one."""
        atc = self._atc.get(card.name, 0) + 1
        if atc > 0xFFFF:
            raise ValueError(f"card {card.name}: the ATC is exhausted")  # a real card blocks itself
        self._atc[card.name] = atc
        if self._atc_file is not None:
            # Whole against a kill (a card never repeats an ATC then); a power cut of the developer's
            # machine may take the last ATCs back, which the host's replay check (whole ARQC) allows.
            # The file only grows (cards are added, counters rise): rewritten in place.
            rewrite_in_place(self._atc_file, json.dumps(self._atc, sort_keys=True).encode())
        return atc

    @staticmethod
    def list_cards() -> dict[str, TestCard]:
        return load_catalogue()

    # -- Peer ------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        self._check_line()
        if self.silent or self.unplugged:
            return
        self._codec.receive_data(data)
        while True:
            frames = self._codec.stats.frames_received
            try:
                event, failed = self._codec.next_event(), False
            except FrameError:  # noise, a bad LRC (NAKed) or an intact frame that did not decode
                event, failed = None, True
            reply = self._codec.data_to_send()
            if self._codec.stats.frames_received > frames and self.nak_left != 0:
                reply, event, failed = reply[:-1] + _NAK, None, True  # the storm: refuse an intact frame
                self.nak_left = None if self.nak_left is None else self.nak_left - 1
            self._send_bytes(reply)  # ACK (or NAK) before any answer to the frame
            if event is None and not failed:
                break
            if isinstance(event, FrameNaked):
                self._ack_due = self.now + self.link.ack_timeout_s  # the resend waits afresh
            if isinstance(event, CardReaderCommand):
                self.commands.append(event)
                self._handle(event)
            self._flush()  # after an ACK (or giving up with EOT) the next queued event may go out

    def transmit(self) -> bytes:
        self._check_line()
        out, self._out = bytes(self._out), bytearray()
        return b"" if self.silent or self.unplugged else out

    # -- what a tester does ----------------------------------------------------------------
    def present(self, card: str, mode: str | None = None) -> None:
        """Insert, swipe or tap a catalogue card (UnknownCardError for an unknown name)."""
        test_card = get_card(card)
        chosen = mode or test_card.default_mode
        if chosen not in test_card.entry_modes or chosen not in self._reader_modes:
            raise ValueError(
                f"{card!r} cannot be read by {chosen!r} here (card: {test_card.entry_modes}, "
                f"reader: {self._reader_modes})"
            )
        self._presented.append((test_card, EntryMode(chosen)))
        self._try_read()
        self._flush()

    def remove(self) -> bool:
        """The card leaves the reader; a chip transaction in progress is over. False: no card."""
        there = bool(self._presented or self._card or self._slow or self._follow_up)
        self._presented.clear()
        self._typed.clear()  # the cardholder walked away: nothing typed ahead survives
        self._card = self._chip = self._slow = self._follow_up = None
        if there:
            self._emit(CardRemoved())
            self._flush()
        return there

    def enter_pin(self, pin: str) -> None:
        """The cardholder types a PIN (now, or ahead of the next RequestPin)."""
        if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
            raise ValueError("a PIN is 4-12 digits")  # never echo it
        self._typed.append(Secret(pin))
        self._answer_pin()

    def cancel_pin(self) -> None:
        """The cardholder presses the cancel key (now, or at the next RequestPin)."""
        self._typed.append(None)
        self._answer_pin()

    def advance(self, seconds: float) -> None:
        """Move the emulator's virtual time on; whatever falls due happens, in order."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self.now += seconds
        while self._ack_due is not None and self._ack_due <= self.now and self._codec.awaiting_ack:
            resent = self._codec.ack_timed_out()
            self._send_bytes(self._codec.data_to_send())  # the resend, or EOT
            self._ack_due = self._ack_due + self.link.ack_timeout_s if resent else None
        if self._slow is not None and self._slow[0] <= self.now:
            self._emit(self._slow[1])
            self._slow = None
        if self._pending is not None and self._read_due is not None and self._read_due <= self.now:
            self._pending = self._read_due = None
            self._emit(ReadFailed(reason="no card presented in time", fallback_allowed=False))
        if self._pin_request is not None and self._pin_due is not None and self._pin_due <= self.now:
            self._pin_request = self._pin_due = None
            self._emit(PinTimeout())
        self._flush()

    # -- faults ----------------------------------------------------------------------------
    def set_fault(self, name: str, /, *, frames: int | None = None, hard: bool = False) -> None:
        """One of FAULTS: "corrupt" the next `frames` frames (default 1), a "nak-storm" of `frames`
        (default: until clear_faults), "silent", or "disconnect" (`hard`: the port vanishes)."""
        if name not in FAULTS:
            raise ValueError(f"unknown card reader fault {name!r} (known: {', '.join(FAULTS)})")
        if frames is not None and name not in ("corrupt", "nak-storm"):
            raise ValueError(f"only corrupt and nak-storm count frames, not {name}")
        if hard and name != "disconnect":
            raise ValueError(f"only disconnect can be hard, not {name}")
        if name == "corrupt":
            self.corrupt_frames(1 if frames is None else frames)
        elif name == "nak-storm":
            self.nak_storm(frames)
        elif name == "silent":
            self.go_silent()
        else:
            self.disconnect(hard=hard)

    def corrupt_frames(self, count: int) -> None:
        """Flip the LRC of the next `count` frames we send (resends count too)."""
        if count < 1:
            raise ValueError("corrupt at least one frame")
        self.corrupt_left = count

    def nak_storm(self, frames: int | None = None) -> None:
        """NAK the host's next `frames` intact frames (None: all of them, until clear_faults)."""
        if frames is not None and frames < 1:
            raise ValueError("a NAK storm lasts at least one frame")
        self.nak_left = frames

    def go_silent(self) -> None:
        """Answer nothing at all (no ACK, no event) until clear_faults()."""
        self.silent = True
        self._out.clear()

    def disconnect(self, *, hard: bool = False) -> None:
        """The cable is pulled until clear_faults(): what is on the line is lost both ways. `hard`:
        the port itself vanishes (a USB adapter unplugged): receive/transmit raise
        ConnectionResetError, which emu:// reports as a PortError. Hard is for in-process peers:
        a served link sees `hard_disconnect` and hangs up its pty or socket (emulator/link.py)."""
        self.unplugged = "hard" if hard else "soft"
        self._out.clear()
        if hard:  # the link restarts when it is plugged back: no frame of ours still awaits an ACK
            stats = self._codec.stats
            self._codec = CardReaderCodec(Role.DEVICE, self.profile)
            self._codec.link.stats = stats  # the counters go on (a test reads them across)
            self._outbox.clear()
            self._ack_due = None

    @property
    def hard_disconnect(self) -> bool:
        """The port is gone: a served link hangs up (emulator/link.py) instead of calling us."""
        return self.unplugged == "hard"

    def clear_faults(self) -> None:
        self.corrupt_left, self.nak_left, self.silent, self.unplugged = 0, 0, False, None

    def status(self) -> str:
        """One line for the control channel and for humans."""
        card = f"{self._card.name}" if self._card else "none"
        waiting = "pin" if self._pin_request else "card" if self._pending else "slow-card" if self._slow else "nothing"
        faults = [
            f"corrupt {self.corrupt_left}" if self.corrupt_left else "",
            "nak-storm" if self.nak_left is None else f"nak-storm {self.nak_left}" if self.nak_left else "",
            "silent" if self.silent else "",
            f"disconnected ({self.unplugged})" if self.unplugged else "",
        ]
        s = self.stats
        return (
            f"card={card} presented={len(self._presented)} waiting={waiting} "
            f"faults={','.join(f for f in faults if f) or 'none'} t={self.now:g}s "
            f"frames={s.frames_sent}/{s.frames_received} naks={s.naks_sent}/{s.naks_received} resends={s.resends}"
        )

    # -- the line --------------------------------------------------------------------------
    def _check_line(self) -> None:
        if self.unplugged == "hard":
            raise ConnectionResetError("card reader disconnected (emulated fault)")

    def _send_bytes(self, data: bytes) -> None:
        """Queue bytes for the host; a pending `corrupt` fault flips each frame's LRC."""
        out, i = bytearray(data), 0
        while i < len(out):
            if out[i] != STX:
                i += 1
                continue
            end = self._frame_end(out, i)
            if self.corrupt_left:
                self.corrupt_left -= 1
                out[end - 1] ^= 0xFF  # the LRC: framing intact, so the host NAKs it
            i = end
        if not (self.silent or self.unplugged):
            self._out += out

    def _frame_end(self, data: bytearray, start: int) -> int:
        """End (exclusive) of one of our own, well-formed frames starting at `start`."""
        if self.link.length_field == "none":
            return data.index(ETX, start + 1) + 2
        raw = bytes(data[start + 1 : start + 3])
        length = int.from_bytes(raw, "big") if self.link.length_field == "binary" else int(raw.hex())
        return start + 3 + length + 2

    def _emit(self, event: CardReaderEvent) -> None:
        self._outbox.append(event)

    def _flush(self) -> None:
        """Stop-and-wait: the next queued event goes out once the previous one was ACKed."""
        if self._outbox and not self._codec.awaiting_ack:
            self._send_bytes(self._codec.send(self._outbox.popleft()))
            self._ack_due = self.now + self.link.ack_timeout_s

    # -- device behaviour ------------------------------------------------------------------
    def _handle(self, command: CardReaderCommand) -> None:
        match command:
            case RequestDeviceInfo():
                model, serial, firmware = (str(self.profile[k]) for k in ("model", "serial_number", "firmware"))
                self._emit(DeviceInfo(model=model, serial_number=serial, firmware=firmware))
            case StartRead():
                self._pending, self._read_due = command, self.now + command.timeout_s
                self._card = self._chip = None  # a new transaction
                self._try_read()
            case CancelRead():
                if self._pin_request is not None:
                    self._pin_request = self._pin_due = None
                    self._emit(PinCancelled(reason="cancelled by the terminal"))
                    return
                self._pending = self._read_due = self._slow = self._follow_up = None
                self._emit(ReadCancelled())
            case RequestPin():
                self._pin_request, self._pin_due = command, self.now + command.timeout_s
                if not self._typed and self.auto_pin and self._card is not None:
                    self._typed.append(Secret(self._card.typed_pin))
                self._answer_pin()
            case CompleteChip():
                self._complete(command)
            case ShowMessage(text=text):
                self.display = text
            case LoadPinKey():
                self._load_pin_key(command)

    def _load_pin_key(self, command: LoadPinKey) -> None:
        """Decrypt the working PIN key under the pad's TMK (TEST ONLY, drivers/acquirer/keys.py)
        and keep it if its KCV matches; otherwise the old key stays (a real pad refuses it)."""
        from drivers.acquirer.keys import TEST_TMK, decrypt_key, kcv

        try:
            key = decrypt_key(TEST_TMK, command.wrapped_key.reveal())
        except ValueError:
            key = b""
        if len(key) != 16 or kcv(key) != command.kcv:
            log.warning("PIN pad: a working PIN key failed its check value; the old key stays")
            return
        self._pin_key, self._pin_key_id = Secret(key), f"WPK-{command.kcv.hex().upper()}"

    def _answer_pin(self) -> None:
        if self._pin_request is None:
            return
        if self._card is None:
            self._pin_request = self._pin_due = None
            self._emit(PinCancelled(reason="no card has been read: nothing to bind a PIN block to"))
        elif self._typed:
            typed = self._typed.popleft()
            self._pin_request = self._pin_due = None
            if typed is None:
                self._emit(PinCancelled(reason="cancelled by the cardholder"))
            else:
                block = emv.encrypt_pin_block(typed.reveal(), self._card.pan, self._pin_key.reveal())
                self._emit(PinEntered(pin_block=Secret(block), key_id=self._pin_key_id))
        self._flush()

    def _try_read(self) -> None:
        if self._pending is None or not (self._follow_up or self._presented):
            return
        request, self._pending, self._read_due = self._pending, None, None
        if self._follow_up is not None:
            (card, mode), self._follow_up = self._follow_up, None
        else:
            card, mode = self._presented.popleft()
        if card.behaviour == "slow" and card.delay_s > 0:
            self._slow = (self.now + card.delay_s, self._read(card, mode, request))
        else:
            self._emit(self._read(card, mode, request))
        if card.behaviour == "removed-during-read" and mode is EntryMode.CHIP:
            self._card = self._chip = None
            self._emit(CardRemoved())

    def _refuse(self, card: TestCard, reason: str) -> ReadFailed:
        """A read that may be retried another way: the cardholder follows the pad's advice."""
        if card.fallback_mode is not None:
            self._follow_up = (card, EntryMode(card.fallback_mode))
        return ReadFailed(reason=reason, fallback_allowed=True)

    def _read(self, card: TestCard, mode: EntryMode, request: StartRead) -> CardReaderEvent:
        if mode not in request.modes:
            return ReadFailed(reason=f"{mode.value} is not enabled for this read", fallback_allowed=True)
        if mode is EntryMode.TAP and self._contactless_limit and request.amount_minor > self._contactless_limit:
            return self._refuse(card, "amount over the contactless limit: insert the card / 超过非接限额 请插卡")
        if card.behaviour == "chip-error" and mode is EntryMode.CHIP:
            return self._refuse(card, "chip error: swipe the card / 芯片读取失败 请刷卡")
        if card.behaviour == "removed-during-read" and mode is EntryMode.CHIP:
            return ReadFailed(reason="card removed during the read / 读卡时卡被拔出", fallback_allowed=False)
        self._card = card
        pan, expiry, track2 = Secret(card.pan), Secret(card.expiry), Secret(card.track2)
        if mode is EntryMode.SWIPE:
            return CardRead(entry_mode=mode, pan=pan, expiry=expiry, track2=track2, cvm=card.cvm)
        # 9F37 is the terminal's; a host that sends none gets one the reader draws (a CSPRNG too).
        unpredictable = request.unpredictable_number or None
        session = emv.first_ac(card, request, country=self._country, today=self._today(), atc=self._next_atc(card),
                               unpredictable=unpredictable)
        if mode is EntryMode.CHIP:  # the card stays inserted for the second GENERATE AC
            self._chip = session
        icc = Secret(emv.field_55(session, contactless=mode is EntryMode.TAP))
        return CardRead(
            entry_mode=mode,
            pan=pan,
            expiry=expiry,
            track2=track2,
            icc_data=icc,
            pan_sequence=card.pan_sequence or None,
            cvm=card.cvm,
        )

    def _complete(self, command: CompleteChip) -> None:
        session, self._chip = self._chip, None
        if session is None:
            self._emit(ReadFailed(reason="no chip transaction to complete", fallback_allowed=False))
            return
        if session.card.behaviour == "removed-before-second-ac":
            # Pulled while the terminal was online: the pad finds the slot empty.
            self._presented.clear()
            self._card = None
            self._emit(CardRemoved())
            return
        result = emv.second_ac(
            session, host_approved=command.approved, arc=command.response_code, issuer_data=command.issuer_data
        )
        self._emit(ChipCompleted(approved=result.approved, icc_data=Secret(result.icc_data)))
