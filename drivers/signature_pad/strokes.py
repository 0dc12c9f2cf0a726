"""A signature kept losslessly and compactly: `encode_strokes(sig) -> bytes`, `decode_strokes(bytes)`.

The format (version 1; docs/signature-pad.md §4), every number an unsigned LEB128 varint:

    "SG" 01                       magic and version
    width height dpi strokes      the pad's coordinate range and resolution, the number of strokes
    per stroke: n, then n points  each point as zigzag(dx) zigzag(dy), the delta from the point
                                  before it (the first point of the first stroke from 0,0; of a
                                  later stroke from the last point of the one before)

Pen points move a few units per sample, so most deltas take one byte each: a name of ~600 points
is ~1.2 kB against 2.4 kB of raw 16-bit pairs. Anything else (a short or long buffer, a bad
magic, a varint past 64 bits) is a StrokeFormatError. Also here: `ink_points`, `bbox`.
"""

from __future__ import annotations

from drivers.signature_pad.events import Signature

__all__ = ["MAGIC", "StrokeFormatError", "bbox", "decode_strokes", "encode_strokes", "ink_points", "ink_size"]

MAGIC = b"SG\x01"


class StrokeFormatError(ValueError):
    """Bytes that are not a stored signature."""


def _varint(value: int, out: bytearray) -> None:
    if value < 0:
        raise ValueError("varints are unsigned")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return value >> 1 if not value & 1 else -(value >> 1) - 1


def encode_strokes(sig: Signature) -> bytes:
    out = bytearray(MAGIC)
    for value in (sig.width, sig.height, sig.dpi, len(sig.strokes)):
        _varint(value, out)
    px = py = 0
    for stroke in sig.strokes:
        _varint(len(stroke), out)
        for x, y in stroke:
            _varint(_zigzag(x - px), out)
            _varint(_zigzag(y - py), out)
            px, py = x, y
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def varint(self) -> int:
        value = shift = 0
        while True:
            if self.at >= len(self.data):
                raise StrokeFormatError("the stored signature is cut short")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise StrokeFormatError("a number in the stored signature is too long")


def decode_strokes(data: bytes) -> Signature:
    if not data.startswith(MAGIC):
        raise StrokeFormatError("not a stored signature (magic SG, version 1)")
    reader = _Reader(data)
    reader.at = len(MAGIC)
    width, height, dpi, count = (reader.varint() for _ in range(4))
    if count > len(data):
        raise StrokeFormatError("more strokes than bytes")
    strokes = []
    px = py = 0
    for _ in range(count):
        n = reader.varint()
        if n > len(data):
            raise StrokeFormatError("more points than bytes")
        points = []
        for _ in range(n):
            px += _unzigzag(reader.varint())
            py += _unzigzag(reader.varint())
            points.append((px, py))
        strokes.append(tuple(points))
    if reader.at != len(data):
        raise StrokeFormatError("bytes after the last stroke")
    return Signature(strokes=tuple(strokes), width=width, height=height, dpi=dpi)


def ink_points(sig: Signature) -> int:
    """Pen-down points in all strokes."""
    return sum(len(stroke) for stroke in sig.strokes)


def bbox(sig: Signature) -> tuple[int, int, int, int] | None:
    """(x_min, y_min, x_max, y_max) of the ink, or None for a blank signature."""
    points = [p for stroke in sig.strokes for p in stroke]
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def ink_size(sig: Signature) -> tuple[int, int]:
    """(width, height) of the ink's bounding box in raw units; (0, 0) when blank (compare with
    the profile's capture.min_bbox)."""
    box = bbox(sig)
    return (0, 0) if box is None else (box[2] - box[0], box[3] - box[1])
