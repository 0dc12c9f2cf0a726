"""EMV BER-TLV (EMV Book 3 Annex B) and the EMV numeric data formats, sans-I/O.

Tags are upper-case hex strings (`"9F02"`), as in pyemv and the EMV books. Values are raw bytes;
a constructed value (templates such as `6F`, `70`, `77`) is itself TLV and is decoded on demand
with `TLV.children()`. Decoding never copies a value into an error message or a repr: field 55
carries the PAN (`5A`) and track 2 equivalent (`57`).

Errors: malformed bytes from a peer raise `TLVError` (a RemoteProtocolError); asking to encode
something BER-TLV cannot carry raises LocalProtocolError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

from drivers.errors import LocalProtocolError, RemoteProtocolError
from drivers.record import Record

__all__ = [
    "TLV",
    "TLVError",
    "decode",
    "decode_cn",
    "decode_dict",
    "decode_n",
    "decode_track2",
    "encode",
    "encode_cn",
    "encode_length",
    "encode_n",
    "encode_tag",
    "encode_track2",
    "find",
]

_MAX_TAG_BYTES = 3  # EMV uses 1-2 byte tags; 3 leaves room for proprietary ones
_MAX_LENGTH_BYTES = 3  # 81 xx / 82 xx xx / 83 xx xx xx
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")


class TLVError(RemoteProtocolError):
    """Bytes that are not well-formed BER-TLV or not a well-formed EMV numeric field."""


class TLV(Record):
    """One data object. The repr shows the tag and the length, never the value."""

    tag: str
    value: bytes

    @property
    def constructed(self) -> bool:
        return bool(int(self.tag[:2], 16) & 0x20)

    def children(self) -> list[TLV]:
        if not self.constructed:
            raise TLVError(f"tag {self.tag} is primitive, it has no children")
        return decode(self.value)

    def __repr__(self) -> str:
        return f"TLV(tag={self.tag!r}, length={len(self.value)})"


# -- encoding ----------------------------------------------------------------------------------
@lru_cache(maxsize=256)  # a card and its issuer encode the same dozen tags every transaction
def encode_tag(tag: str) -> bytes:
    """The tag's bytes, checked against the BER rules for multi-byte tag numbers (a bad tag
    raises every time: exceptions are not cached)."""
    upper = tag.upper()
    if not _HEX.match(upper) or len(upper) > 2 * _MAX_TAG_BYTES:
        raise LocalProtocolError(f"not a BER-TLV tag: {tag!r}")
    raw = bytes.fromhex(upper)
    multi = (raw[0] & 0x1F) == 0x1F
    if raw[0] == 0x00 or multi != (len(raw) > 1):
        raise LocalProtocolError(f"not a BER-TLV tag: {tag!r}")
    if any(not b & 0x80 for b in raw[1:-1]) or (len(raw) > 1 and raw[-1] & 0x80):
        raise LocalProtocolError(f"not a BER-TLV tag: {tag!r}")
    return raw


def encode_length(length: int) -> bytes:
    """Short form below 0x80, else 81 xx / 82 xx xx / 83 xx xx xx."""
    if length < 0:
        raise LocalProtocolError("a TLV length cannot be negative")
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    if size > _MAX_LENGTH_BYTES:
        raise LocalProtocolError(f"a TLV value of {length} bytes is too long")
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def encode(items: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> bytes:
    """Concatenated TLVs, in the order given (EMV does not sort data objects)."""
    pairs = items.items() if isinstance(items, Mapping) else items
    out = bytearray()
    for tag, value in pairs:
        size = len(value)
        # The short form inline: EMV values are almost all under 128 bytes.
        out += encode_tag(tag) + (bytes((size,)) if size < 0x80 else encode_length(size)) + bytes(value)
    return bytes(out)


# -- decoding ----------------------------------------------------------------------------------
def _iter(data: bytes) -> Iterator[TLV]:
    for tag, value in _pairs(data):
        yield TLV(tag=tag, value=value)


def _pairs(data: bytes) -> Iterator[tuple[str, bytes]]:
    # (tag, value) without a TLV record each: decode_dict, the card's and the host's hot path,
    # needs no more.
    i, end = 0, len(data)
    while i < end:
        if data[i] == 0x00:  # EMV Book 3 B1: 00 bytes may pad before, between or after objects
            i += 1
            continue
        start = i
        if (data[i] & 0x1F) == 0x1F:
            i += 1
            while i < end and data[i] & 0x80:
                i += 1
            if i >= end:
                raise TLVError(f"truncated tag at offset {start}")
        i += 1
        if i - start > _MAX_TAG_BYTES:
            raise TLVError(f"tag at offset {start} is longer than {_MAX_TAG_BYTES} bytes")
        tag = data[start:i].hex().upper()
        if i >= end:
            raise TLVError(f"tag {tag} has no length")
        first = data[i]
        i += 1
        if first & 0x80:
            size = first & 0x7F
            if size == 0 or size > _MAX_LENGTH_BYTES:
                raise TLVError(f"tag {tag}: unsupported length form {first:02X}")
            if i + size > end:
                raise TLVError(f"tag {tag}: truncated length")
            length = int.from_bytes(data[i : i + size], "big")
            i += size
        else:
            length = first
        if i + length > end:
            raise TLVError(f"tag {tag}: value runs past the end of the data")
        yield tag, data[i : i + length]
        i += length


def decode(data: bytes) -> list[TLV]:
    """The data objects at the top level, in wire order (duplicates kept)."""
    return list(_iter(bytes(data)))


def decode_dict(data: bytes) -> dict[str, bytes]:
    """Top-level objects by tag; a repeated tag is an error (field 55 never repeats one)."""
    out: dict[str, bytes] = {}
    for tag, value in _pairs(bytes(data)):
        if tag in out:
            raise TLVError(f"tag {tag} occurs twice")
        out[tag] = value
    return out


def find(data: bytes, tag: str) -> bytes | None:
    """First value with this tag, searching constructed objects depth-first."""
    wanted = tag.upper()
    for item in _iter(bytes(data)):
        if item.tag == wanted:
            return item.value
        if item.constructed:
            inner = find(item.value, wanted)
            if inner is not None:
                return inner
    return None


# -- EMV numeric formats -----------------------------------------------------------------------
def encode_n(value: int | str, length: int) -> bytes:
    """Format n: BCD, right-justified, zero-padded to `length` bytes (9F02, 5F2A, 9A...)."""
    digits = str(value)
    if not digits.isdigit() or not digits.isascii() or len(digits) > 2 * length:
        raise LocalProtocolError(f"{len(digits)} characters do not fit format n{2 * length}")
    return bytes.fromhex(digits.rjust(2 * length, "0"))


def decode_n(data: bytes) -> str:
    text = bytes(data).hex()
    if not text.isdigit() and text:
        raise TLVError("format n holds a nibble above 9")
    return text


def encode_cn(digits: str, length: int | None = None) -> bytes:
    """Format cn: BCD, left-justified, F-padded (5A PAN). `length` in bytes, else minimal."""
    if not digits.isdigit() or not digits.isascii():
        raise LocalProtocolError("format cn takes digits only")
    size = (len(digits) + 1) // 2 if length is None else length
    if len(digits) > 2 * size:
        raise LocalProtocolError(f"{len(digits)} digits do not fit cn{2 * size}")
    return bytes.fromhex(digits.ljust(2 * size, "F"))


def decode_cn(data: bytes) -> str:
    text = bytes(data).hex().upper().rstrip("F")
    if not text.isdigit() and text:
        raise TLVError("format cn holds a nibble above 9 before the F padding")
    return text


def encode_track2(track2: str) -> bytes:
    """Tag 57: track 2 (`PAN=YYMM...`, no sentinels) as BCD with D for `=`, F-padded."""
    nibbles = track2.replace("=", "D")
    if nibbles.count("D") != 1 or not nibbles.replace("D", "").isdigit():
        raise LocalProtocolError("track 2 must be digits with exactly one '=' separator")
    if len(nibbles) % 2:
        nibbles += "F"
    return bytes.fromhex(nibbles)


def decode_track2(data: bytes) -> str:
    text = bytes(data).hex().upper().rstrip("F")
    if text.count("D") != 1 or not text.replace("D", "").isdigit():
        raise TLVError("tag 57 is not a track 2 equivalent")
    return text.replace("D", "=")
