"""Card reader / PIN pad application layer: the byte layout of every message, sans-I/O.

pymodbus-style: the message set's encoding in one place (framing is in codec.py, the event
classes in events.py). Payload = command byte + data, bit 7 of the command set for
device -> host. Fixed fields come first; variable ones are BER-TLV with private tags (C1...), so a
field can be added without breaking old readers. docs/card-reader-protocol.md describes it byte
by byte. Errors never quote the payload: it may hold card data or a PIN block.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

from drivers.card_reader.events import (
    CancelRead,
    CardRead,
    CardRemoved,
    ChipCompleted,
    CompleteChip,
    Cvm,
    DeviceInfo,
    EntryMode,
    LoadPinKey,
    Message,
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
from drivers.emv import tlv
from drivers.errors import FrameError, LocalProtocolError
from drivers.events import Role
from drivers.sensitive import Secret

__all__ = ["PIN_BLOCK_FORMAT_0", "Command", "decode_message", "encode_message"]


class Command(enum.IntEnum):
    """Payload byte 0. Bit 7 set = device -> host; an unknown byte is a FrameError."""

    REQUEST_DEVICE_INFO = 0x10
    START_READ = 0x20
    CANCEL_READ = 0x21
    COMPLETE_CHIP = 0x22
    SHOW_MESSAGE = 0x30
    REQUEST_PIN = 0x40
    LOAD_PIN_KEY = 0x41
    DEVICE_INFO = 0x90
    CARD_READ = 0xA0
    READ_FAILED = 0xA1
    CARD_REMOVED = 0xA2
    CHIP_COMPLETED = 0xA3
    READ_CANCELLED = 0xA4
    PIN_ENTERED = 0xC0
    PIN_CANCELLED = 0xC1
    PIN_TIMEOUT = 0xC2


PIN_BLOCK_FORMAT_0 = 0x00  # ISO 9564-1 format 0 (the only one we speak)
_PIN_BLOCK = 8
_KEY_ID_MAX = 32
_WRAPPED_KEY = 16  # LoadPinKey: a double-length 3DES key under the TMK
_KCV = 4
_TEXT = "gb18030"  # every human-readable string: the CN display and printer encoding
_MODE_BITS = {EntryMode.CHIP: 0x01, EntryMode.SWIPE: 0x02, EntryMode.TAP: 0x04}
_CVM_BYTES = {Cvm.NONE: 0x00, Cvm.ONLINE_PIN: 0x01, Cvm.SIGNATURE: 0x02}
_EMPTY: dict[Command, Callable[[], Message]] = {
    Command.REQUEST_DEVICE_INFO: RequestDeviceInfo,
    Command.CANCEL_READ: CancelRead,
    Command.CARD_REMOVED: CardRemoved,
    Command.READ_CANCELLED: ReadCancelled,
    Command.PIN_TIMEOUT: PinTimeout,
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


def _amount(amount: int, currency: str) -> bytes:
    """amount n12 (6 bytes BCD) + currency n4 (2 bytes BCD): StartRead and RequestPin."""
    if not 0 <= amount <= 999_999_999_999:
        raise LocalProtocolError("amount_minor must fit format n12")
    code = _digits(currency, "currency (ISO 4217 numeric, e.g. '156')", 3, 3).decode()
    return tlv.encode_n(amount, 6) + tlv.encode_n(code, 2)


def _printable(value: str, what: str, low: int, high: int) -> bytes:
    if not (value.isascii() and value.isprintable() and low <= len(value) <= high):
        raise LocalProtocolError(f"{what} must be {low}-{high} printable ASCII characters")
    return value.encode("ascii")


def encode_message(message: Message) -> bytes:
    """Payload (command byte + data) of one message; misuse raises LocalProtocolError."""
    match message:
        case StartRead(amount_minor=amount, currency=currency, modes=modes, timeout_s=timeout):
            if not modes or not 1 <= timeout <= 255:
                raise LocalProtocolError("StartRead needs at least one entry mode and timeout_s 1-255")
            if len(message.unpredictable_number) not in (0, 4):
                raise LocalProtocolError("StartRead's unpredictable_number (9F37) is 4 bytes, or none")
            bits = sum(_MODE_BITS[mode] for mode in modes)
            head = bytes([Command.START_READ]) + _amount(amount, currency) + bytes([bits, timeout])
            return head + message.unpredictable_number
        case RequestPin(amount_minor=amount, currency=currency, timeout_s=timeout, prompt=prompt):
            low, high = message.min_length, message.max_length
            if not 4 <= low <= high <= 12 or not 1 <= timeout <= 255:  # ISO 9564: PINs of 4-12 digits
                raise LocalProtocolError("RequestPin needs 4 <= min_length <= max_length <= 12 and timeout_s 1-255")
            head = bytes([Command.REQUEST_PIN]) + _amount(amount, currency)
            return head + bytes([low, high, timeout]) + _text(prompt, "prompt")
        case ShowMessage(text=text):
            return bytes([Command.SHOW_MESSAGE]) + _text(text, "display text")
        case LoadPinKey(wrapped_key=wrapped, kcv=check):
            if len(wrapped) != _WRAPPED_KEY or len(check) != _KCV:
                raise LocalProtocolError(f"LoadPinKey is a {_WRAPPED_KEY}-byte key and a {_KCV}-byte KCV")
            return bytes([Command.LOAD_PIN_KEY]) + wrapped.reveal() + check
        case CompleteChip(approved=approved, response_code=code, issuer_data=issuer):
            items = [("8A", _printable(code, "response_code", 2, 2))] + ([("91", issuer)] if issuer else [])
            return bytes([Command.COMPLETE_CHIP, approved]) + tlv.encode(items)
        case DeviceInfo(model=model, serial_number=serial, firmware=firmware):
            items = [
                ("C1", _text(model, "model")),
                ("C2", _text(serial, "serial")),
                ("C3", _text(firmware, "firmware")),
            ]
            return bytes([Command.DEVICE_INFO]) + tlv.encode(items)
        case CardRead():
            return bytes([Command.CARD_READ, _MODE_BITS[message.entry_mode]]) + tlv.encode(_card_items(message))
        case ReadFailed(reason=reason, fallback_allowed=fallback):
            return bytes([Command.READ_FAILED, fallback]) + _text(reason, "reason")
        case ChipCompleted(approved=approved, icc_data=icc):
            return bytes([Command.CHIP_COMPLETED, approved]) + icc.reveal()
        case PinEntered(pin_block=block, key_id=key_id):
            if len(block) != _PIN_BLOCK:
                raise LocalProtocolError(f"a PIN block is {_PIN_BLOCK} bytes")  # never echo the block
            key = _printable(key_id, "key_id", 1, _KEY_ID_MAX)
            return bytes([Command.PIN_ENTERED, PIN_BLOCK_FORMAT_0]) + block.reveal() + key
        case PinCancelled(reason=reason):
            return bytes([Command.PIN_CANCELLED]) + _text(reason, "reason")
        case _ if type(message) in _EMPTY_COMMAND:
            return bytes([_EMPTY_COMMAND[type(message)]])
    raise LocalProtocolError(f"not a card reader message: {type(message).__name__}")


def _card_items(message: CardRead) -> list[tuple[str, bytes]]:
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
    if message.cvm is not None:
        items.append(("C6", bytes([_CVM_BYTES[message.cvm]])))
    return items


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


def _ascii(value: bytes, what: str, low: int, high: int) -> str:
    if not (value.isascii() and value.decode().isprintable() and low <= len(value) <= high):
        raise FrameError(f"{what} must be {low}-{high} printable ASCII characters")
    return value.decode()


def _decode_amount(data: bytes, command: Command) -> tuple[int, str]:
    if data[6] & 0xF0:
        raise FrameError(f"{command.name}: currency is n3 (its first nibble must be 0)")
    return int(tlv.decode_n(data[:6])), tlv.decode_n(data[6:8])[1:]


def _decode(command: Command, data: bytes) -> Message:
    if command in _EMPTY:
        if data:
            raise FrameError(f"{command.name} carries no data")
        return _EMPTY[command]()
    if command is Command.START_READ:
        if len(data) not in (10, 14) or not data[8] or data[8] & ~0x07 or not data[9]:
            raise FrameError("START_READ: bad length, entry modes or timeout")
        amount, currency = _decode_amount(data, command)
        modes = frozenset(mode for mode, bit in _MODE_BITS.items() if data[8] & bit)
        return StartRead(amount_minor=amount, currency=currency, modes=modes, timeout_s=data[9],
                         unpredictable_number=bytes(data[10:]))
    if command is Command.REQUEST_PIN:
        if len(data) < 11 or not 4 <= data[8] <= data[9] <= 12 or not data[10]:
            raise FrameError("REQUEST_PIN: bad length, PIN lengths or timeout")
        amount, currency = _decode_amount(data, command)
        return RequestPin(
            amount_minor=amount,
            currency=currency,
            min_length=data[8],
            max_length=data[9],
            timeout_s=data[10],
            prompt=data[11:].decode(_TEXT),
        )
    if command is Command.LOAD_PIN_KEY:
        if len(data) != _WRAPPED_KEY + _KCV:
            raise FrameError(f"LoadPinKey carries {_WRAPPED_KEY + _KCV} bytes")
        return LoadPinKey(wrapped_key=Secret(data[:_WRAPPED_KEY]), kcv=data[_WRAPPED_KEY:])
    if command is Command.SHOW_MESSAGE:
        return ShowMessage(text=data.decode(_TEXT))
    if command is Command.READ_FAILED:
        return ReadFailed(fallback_allowed=_flag(data, command), reason=data[1:].decode(_TEXT))
    if command is Command.CHIP_COMPLETED:
        return ChipCompleted(approved=_flag(data, command), icc_data=Secret(data[1:]))
    if command is Command.PIN_ENTERED:
        if len(data) < 2 + _PIN_BLOCK or data[0] != PIN_BLOCK_FORMAT_0:
            raise FrameError("PIN_ENTERED: not an ISO 9564 format-0 PIN block")
        key_id = _ascii(data[1 + _PIN_BLOCK :], "PIN_ENTERED: key id", 1, _KEY_ID_MAX)
        return PinEntered(pin_block=Secret(data[1 : 1 + _PIN_BLOCK]), key_id=key_id)
    if command is Command.PIN_CANCELLED:
        return PinCancelled(reason=data.decode(_TEXT))
    if command is Command.COMPLETE_CHIP:
        approved, items = _flag(data, command), tlv.decode_dict(data[1:])
        code = _ascii(items.get("8A", b""), "COMPLETE_CHIP: tag 8A", 2, 2)
        return CompleteChip(approved=approved, response_code=code, issuer_data=items.get("91", b""))
    if command is Command.DEVICE_INFO:
        items = tlv.decode_dict(data)
        return DeviceInfo(
            model=_field(items, "C1", command),
            serial_number=_field(items, "C2", command),
            firmware=_field(items, "C3", command),
        )
    return _decode_card_read(data)


def _decode_card_read(data: bytes) -> CardRead:
    command = Command.CARD_READ
    modes = {bit: mode for mode, bit in _MODE_BITS.items()}
    if not data or data[0] not in modes:
        raise FrameError("CARD_READ: unknown entry mode")
    items = tlv.decode_dict(data[1:])
    track2 = items.get("C3")
    if track2 is not None:
        track2 = _ascii(track2, "CARD_READ: tag C3", 1, 79).encode()
    icc, psn, cvm = items.get("C4"), items.get("C5"), items.get("C6")
    cvms = {byte: value for value, byte in _CVM_BYTES.items()}
    if cvm is not None and (len(cvm) != 1 or cvm[0] not in cvms):
        raise FrameError("CARD_READ: tag C6 is not a known CVM")
    return CardRead(
        entry_mode=modes[data[0]],
        pan=Secret(_field(items, "C1", command, (12, 19))),
        expiry=Secret(_field(items, "C2", command, (4, 4))),
        track2=None if track2 is None else Secret(track2.decode()),
        icc_data=None if icc is None else Secret(icc),
        pan_sequence=None if psn is None else _field(items, "C5", command, (1, 3)),
        cvm=None if cvm is None else cvms[cvm[0]],
    )
