"""Sans-I/O codec for the acquirer link: 2-byte length framing + ISO 8583 via pyiso8583.

Frame = `LL LL` (big-endian length of what follows, header excluded) + one ISO 8583 message
(layout in drivers/acquirer/spec.py and docs/host-link.md). h11-style: `receive_data(bytes)`,
`next_event() -> HostMessage | None` (None = need more bytes), `send(HostMessage) -> bytes`.

Roles: Role.HOST is the terminal (sends requests and advices, receives their responses);
Role.DEVICE is the acquirer. Network management (08xx) may go either way.

Errors never quote field contents: a message may hold a PAN or track 2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import iso8583

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import MTI_FIELD, FieldFormat, content_ok, field_format, spec_for, text_rules
from drivers.errors import FrameError, LocalProtocolError, RemoteProtocolError
from drivers.events import Role

__all__ = ["HEADER_SIZE", "MAX_MESSAGE", "AcquirerCodec", "encode_body", "encode_fields", "remember_body"]

HEADER_SIZE: Final = 2
MAX_MESSAGE: Final = 8 * 1024  # bytes after the header; a larger header is a broken stream


def _is_request(mti: str) -> bool:
    # Third MTI digit: 0 request, 2 advice, 4 notification (even) vs 1/3 their responses (odd).
    return int(mti[2]) % 2 == 0


def _bad_content(key: str, mti: str) -> str:
    fmt = field_format(mti, key)
    return f"field {key} has characters outside its '{fmt.content if fmt else '?'}' class"


def _may_send(sender: Role, mti: str) -> bool:
    if mti.startswith("08"):
        return True
    return _is_request(mti) == (sender is Role.HOST)


# A message's body when whoever made the message already had it (mac.sign encodes the message
# to MAC it; the frame would encode it again): kept on the message itself, so it lives no longer
# than the fields it encodes, and equality, hash and repr never see it.
_BODY: Final = "_encoded_body"


def remember_body(message: HostMessage, body: bytes) -> None:
    """`body` is `message`'s canonical encoding (what encode_body would make): keep it for the frame."""
    object.__setattr__(message, _BODY, body)


def encode_body(message: HostMessage) -> bytes:
    """The ISO 8583 bytes of `message` (no length header), whichever side sends it: what the
    frame carries and what the MAC (drivers/acquirer/mac.py) is computed over."""
    known: bytes | None = message.__dict__.get(_BODY)
    if known is not None:
        return known
    return encode_fields(message.mti, message.fields)


def encode_fields(mti: str, fields: Mapping[str, str | bytes]) -> bytes:
    """encode_body of a message of `mti` with `fields`, without making the message (the MAC input
    is a variant of a message that exists already: its keys were checked when it was made)."""
    doc: dict[str, str] = {MTI_FIELD: mti}
    rules = text_rules(mti)
    for key, value in fields.items():
        doc[key] = _outbound_field(rules, mti, key, value)
    try:
        raw, _ = iso8583.encode(doc, spec_for(mti))
    except iso8583.EncodeError as exc:
        # Lengths and classes were checked above; not chained: the error holds the document.
        raise LocalProtocolError(f"cannot encode field {exc.field}") from None
    if len(raw) > MAX_MESSAGE:
        raise LocalProtocolError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE}")
    return bytes(raw)


def _outbound_field(rules: Mapping[str, tuple[FieldFormat, re.Pattern[str] | None]], mti: str, key: str,
                    value: str | bytes) -> str:
    rule = rules.get(key)
    if rule is None:
        raise LocalProtocolError(f"field {key} is not in the acquirer spec")
    fmt, pattern = rule
    if isinstance(value, bytes) != (pattern is None):
        raise LocalProtocolError(
            f"field {key} is {'binary: give bytes' if fmt.content == 'b' else 'text: give str'}"
        )
    # Checked here, not left to pyiso8583, for an error that says what is wrong without the value.
    if len(value) > fmt.length or (not fmt.var and len(value) != fmt.length):
        bound = f"at most {fmt.length}" if fmt.var else f"exactly {fmt.length}"
        raise LocalProtocolError(f"field {key} is {len(value)} long; the spec says {bound}")
    if isinstance(value, bytes):
        return value.hex().upper()
    if pattern is None or pattern.fullmatch(value) is None:
        raise LocalProtocolError(_bad_content(key, mti))
    return value


class AcquirerCodec:
    """One connection's framing state (the drivers/codec.py shape). After a FrameError the stream
    cannot be resynchronised (the next length header is unknown): the buffer is dropped and the
    caller must close."""

    def __init__(self, role: Role, settings: Mapping[str, Any] | None = None) -> None:
        # The drivers/codec.py shape; the framing has no settings (HEADER_SIZE and MAX_MESSAGE are
        # the link's definition), so `settings` is accepted and not read.
        self.role = role
        self._buffer = bytearray()
        self._broken = False

    # -- outbound ---------------------------------------------------------------------------
    def send(self, message: HostMessage) -> bytes:
        if not _may_send(self.role, message.mti):
            raise LocalProtocolError(f"{self.role.value} side does not send MTI {message.mti}")
        raw = encode_body(message)
        return len(raw).to_bytes(HEADER_SIZE, "big") + raw

    # -- inbound ----------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if not self._broken:
            self._buffer += data

    def next_event(self) -> HostMessage | None:
        if self._broken:
            raise FrameError("the stream lost framing earlier; close the connection")
        if len(self._buffer) < HEADER_SIZE:
            return None
        size = int.from_bytes(self._buffer[:HEADER_SIZE], "big")
        if size > MAX_MESSAGE:
            self._broken = True
            self._buffer.clear()
            raise FrameError(f"length header {size} exceeds {MAX_MESSAGE}")
        end = HEADER_SIZE + size
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[HEADER_SIZE:end])
        del self._buffer[:end]  # the frame is consumed either way: framing stays in sync
        return self._decode(body)

    def _decode(self, body: bytes) -> HostMessage:
        # The MTI (4 ASCII bytes, no header) picks the spec: a few private layouts depend on it.
        spec = spec_for(body[:4].decode("ascii", "replace"))
        try:
            doc, _ = iso8583.decode(body, spec)
        except iso8583.DecodeError as exc:
            # Not chained: the DecodeError keeps the raw bytes and the partial document (.s,
            # .doc_dec), which would carry the PAN into any traceback that renders causes.
            raise RemoteProtocolError(f"undecodable message: field {exc.field} at byte {exc.pos}") from None
        except KeyError as exc:
            # The bitmap names a field that is not in our spec (pyiso8583 looks it up raw).
            raise RemoteProtocolError(f"message carries field {exc.args[0]}, not in the spec") from None
        mti = doc.pop(MTI_FIELD)
        if not (mti.isascii() and mti.isdigit()):
            raise RemoteProtocolError("MTI is not four digits")
        peer = Role.DEVICE if self.role is Role.HOST else Role.HOST
        if not _may_send(peer, mti):
            raise RemoteProtocolError(f"the peer may not send MTI {mti} to the {self.role.value} side")
        fields: dict[str, str | bytes] = {}
        rules = text_rules(mti)
        for key, value in doc.items():
            if key in ("p", "1"):
                continue
            rule = rules.get(key)
            if rule is None:  # not in the spec: pyiso8583 would have refused it (content_ok says so)
                ok = content_ok(key, value, mti)
            elif rule[1] is None:
                fields[key] = bytes.fromhex(value)
                continue
            else:
                ok = rule[1].fullmatch(value) is not None
            if not ok:
                raise RemoteProtocolError(_bad_content(key, mti))
            fields[key] = value
        return HostMessage(mti=mti, fields=fields)

    def data_to_send(self) -> bytes:
        """Nothing: the length-prefixed stream has no acknowledgements of its own."""
        return b""
