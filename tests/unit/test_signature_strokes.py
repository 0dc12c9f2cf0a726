"""The stored signature format (drivers/signature_pad/strokes.py): a golden encoding, lossless round
trips of any signature, compactness, refusal of what is not one, and the ink measures."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.signature_pad.events import Signature
from drivers.signature_pad.strokes import (
    StrokeFormatError,
    bbox,
    decode_strokes,
    encode_strokes,
    ink_points,
    ink_size,
)
from tests.support.depth import examples

SMALL = Signature(strokes=(((10, 20), (11, 22), (9, 22)), ((300, 5),)), width=2151, height=601, dpi=410)


def test_golden_encoding() -> None:
    # SG 01 | width 2151 = E7 10 | height 601 = D9 04 | dpi 410 = 9A 03 | 2 strokes
    # stroke 1: 3 points: +10,+20 -> 14 28; +1,+2 -> 02 04; -2,0 -> 03 00
    # stroke 2: 1 point: +291,-17 -> zigzag 582 = C6 04, 33 = 21
    assert encode_strokes(SMALL) == bytes.fromhex("53 47 01 E7 10 D9 04 9A 03 02 03 14 28 02 04 03 00 01 C6 04 21")
    assert decode_strokes(encode_strokes(SMALL)) == SMALL


_POINT = st.tuples(st.integers(0, 4095), st.integers(0, 4095))


@settings(max_examples=examples(200), deadline=None)
@given(strokes=st.lists(st.lists(_POINT, max_size=40).map(tuple), max_size=12).map(tuple),
       width=st.integers(1, 4096), height=st.integers(1, 4096), dpi=st.integers(1, 2000))
def test_any_signature_round_trips(strokes: tuple[tuple[tuple[int, int], ...], ...], width: int, height: int,
                                   dpi: int) -> None:
    sig = Signature(strokes=strokes, width=width, height=height, dpi=dpi)
    assert decode_strokes(encode_strokes(sig)) == sig


def test_pen_like_strokes_take_about_a_byte_a_coordinate() -> None:
    stroke = tuple((1000 + i * 3, 500 + (i % 7) - 3) for i in range(500))
    sig = Signature(strokes=(stroke,), width=2151, height=601, dpi=410)
    assert len(encode_strokes(sig)) < 500 * 2 + 20  # raw 16-bit pairs would be 2000 bytes


@pytest.mark.parametrize("data", [b"", b"PNG", b"SG\x02\x01\x01\x01\x00", b"SG\x01\x01\x01\x01",
                                  b"SG\x01\x01\x01\x01\x01\x02\x00", b"SG\x01\x01\x01\x01\x00\x00",
                                  b"SG\x01" + b"\xff" * 12])
def test_what_is_not_a_stored_signature_is_refused(data: bytes) -> None:
    with pytest.raises(StrokeFormatError):
        decode_strokes(data)


@settings(max_examples=examples(200), deadline=None)
@given(data=st.binary(max_size=60))
def test_junk_raises_only_stroke_format_errors(data: bytes) -> None:
    with contextlib.suppress(StrokeFormatError):
        decode_strokes(b"SG\x01" + data)


def test_ink_measures() -> None:
    assert ink_points(SMALL) == 4
    assert bbox(SMALL) == (9, 5, 300, 22)
    assert ink_size(SMALL) == (291, 17)
    blank = Signature(strokes=(), width=10, height=10, dpi=410)
    assert (ink_points(blank), bbox(blank), ink_size(blank)) == (0, None, (0, 0))
