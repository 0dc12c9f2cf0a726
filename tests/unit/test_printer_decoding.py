"""ESC/POS device-role decoding beyond §7: modelled commands, unknown and hostile input, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import Role
from drivers.errors import LocalProtocolError
from drivers.printer import events as ev
from drivers.printer.codec import MAX_PAYLOAD, PrinterCodec
from tests.support.depth import examples
from tests.unit.test_printer_codec import CHINESE, H, decode

MORE_COMMANDS = [
    ("1B 33 18 1B 32", [ev.SetLineSpacing(dots=24), ev.SetLineSpacing()]),
    ("1D 4C 10 00 1D 57 00 02", [ev.SetLeftMargin(dots=16), ev.SetPrintAreaWidth(dots=512)]),
    ("1B 4A 20 1B 65 02", [ev.FeedDots(dots=32), ev.ReverseFeed(lines=2)]),
    ("1B 47 01 1D 42 01 1B 7B 00", [ev.SetDoubleStrike(on=True), ev.SetReverse(on=True), ev.SetUpsideDown(on=False)]),
    ("1B 63 34 03", [ev.SelectPaperStopSensors(near_end_stops=True)]),
    ("1B 2A 21 02 00 80 00 00 00 00 01", [ev.PrintColumnImage(mode=33, columns=2, data=H("80 00 00 00 00 01"))]),
    ("1D 28 4C 0C 00 30 70 30 01 02 31 08 00 02 00 80 01 1D 28 4C 02 00 30 32",
     [ev.StoreGraphics(width=8, height=2, data=H("80 01"), scale_y=2), ev.PrintGraphics()]),
    ("1D 28 6B 03 00 30 41 04 1D 28 6B 0E 00 30 50 30" + b"Testing 123".hex() + "1D 28 6B 03 00 30 51 30",
     [ev.Pdf417Configure(function=0x41, params=b"\x04"), ev.Pdf417Store(data=b"Testing 123"), ev.Pdf417Print()]),
    ("1B 26 03 41 42 02 FF 00 00 00 00 FF 00",
     [ev.DefineUserCharacters(height_bytes=3, first=0x41, glyphs=(H("FF 00 00 00 00 FF"), b""))]),
    ("1B 25 01 1B 3F 41", [ev.SelectUserCharacters(on=True), ev.CancelUserCharacter(code=0x41)]),
    ("10 05 01 10 05 02", [ev.RecoverFromError(), ev.RecoverFromError(clear_buffers=True)]),
]


@pytest.mark.parametrize(("hexbytes", "events"), MORE_COMMANDS, ids=[r[0][:23] for r in MORE_COMMANDS])
@pytest.mark.parametrize("chunk", [0, 1])
def test_more_commands_both_ways(hexbytes: str, events: list[ev.PrinterCommand], chunk: int) -> None:
    host = PrinterCodec(Role.HOST)
    assert b"".join(host.send(e) for e in events) == H(hexbytes)
    assert decode(H(hexbytes), chunk=chunk) == events


def test_gs_8_l_graphics_decode_like_gs_paren_l() -> None:
    data = H("1D 38 4C 0C 00 00 00 30 70 30 02 01 31 08 00 02 00 80 01")
    assert decode(data, chunk=1) == [ev.StoreGraphics(width=8, height=2, data=H("80 01"), scale_x=2)]


@pytest.mark.parametrize("bad", [
    ev.PrintColumnImage(mode=2, columns=1, data=b"\x00"),
    ev.PrintColumnImage(mode=33, columns=1, data=b"\x00"),
    ev.StoreGraphics(width=9, height=1, data=b"\x00"),
    ev.StoreGraphics(width=8, height=1, data=b"\x00", scale_x=3),
    ev.DefineUserCharacters(height_bytes=3, first=0x41, glyphs=(b"\x00\x00",)),
    ev.SetLeftMargin(dots=70000),
    ev.SetLineSpacing(dots=256),
])
def test_host_refuses_malformed_images_and_settings(bad: ev.PrinterCommand) -> None:
    with pytest.raises(LocalProtocolError):
        PrinterCodec(Role.HOST).send(bad)


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=17), st.booleans())
def test_batch_decoding_equals_event_by_event(data: bytes, chunk: int, chinese: bool) -> None:
    profile = CHINESE[chinese]
    one, batch = PrinterCodec(Role.DEVICE, profile), PrinterCodec(Role.DEVICE, profile)
    singles: list[object] = []
    batched: list[object] = []
    for i in range(0, len(data), chunk):
        one.receive_data(data[i : i + chunk])
        while (event := one.next_event()) is not None:
            singles.append(event)
        batch.receive_data(data[i : i + chunk])
        batched += batch.commands()
        assert batch.buffered == one.buffered
    assert batched == singles


# -- device role: unknown and hostile input -------------------------------------------------------
@pytest.mark.parametrize(
    ("hexbytes", "unknown"),
    [
        ("1B 20 05", "1B 20 05"),  # ESC SP n: documented 3 bytes
        ("1B 57 00 00 00 00 40 02 00 01", "1B 57 00 00 00 00 40 02 00 01"),  # ESC W: 10 bytes
        ("1D 28 4C 02 00 30 30", "1D 28 4C 02 00 30 30"),  # GS ( L fn 48 by pL pH
        ("1D 28 6B 03 00 31 52 30", "1D 28 6B 03 00 31 52 30"),  # QR "transmit size"
        ("1B 2A 02 02 00 FF 81", "1B 2A 02 02 00 FF 81"),  # ESC * with an undefined density
        ("1B 44 08 10 00", "1B 44 08 10 00"),  # ESC D tab stops, NUL-terminated
        ("10 05 03", "10 05 03"),  # DLE ENQ 3 (slip printers only)
        ("10 04 07", "10 04 07"),  # DLE EOT with a kind we do not know
        ("10 14 08 01 03 14 01 06 02 08", "10 14 08 01 03 14 01 06 02 08"),  # DLE DC4 8: 10 bytes
        ("1B 63 35 01", "1B 63 35 01"),  # ESC c 5: panel buttons
        ("1B 7E", "1B 7E"),  # unknown ESC x: 2 bytes
        ("07", "07"),  # stray control byte
    ],
)
def test_unknown_commands_are_skipped_by_their_length(hexbytes: str, unknown: str) -> None:
    assert decode(H(hexbytes) + b"ok\n", chunk=1) == [
        ev.UnknownCommand(data=H(unknown)),
        ev.PrintText(data=b"ok\n"),
    ]


@pytest.mark.parametrize("rows", [0xFFFF, MAX_PAYLOAD // 0x100 + 1])
def test_oversized_raster_is_refused_by_its_header_and_decoding_resumes(rows: int) -> None:
    header = H("1D 76 30 00 00 01") + rows.to_bytes(2, "little")  # 256 bytes wide: over MAX_PAYLOAD
    assert decode(header + b"next\n") == [ev.UnknownCommand(data=header), ev.PrintText(data=b"next\n")]


def test_raster_at_the_payload_limit_is_accepted() -> None:
    rows = MAX_PAYLOAD // 0x100
    data = H("1D 76 30 00 00 01") + rows.to_bytes(2, "little") + bytes(MAX_PAYLOAD)
    assert decode(data) == [ev.PrintRasterImage(width_bytes=0x100, height=rows, data=bytes(MAX_PAYLOAD))]


def test_barcode_without_terminator_resyncs_after_the_header() -> None:
    data = H("1D 6B 04") + b"A" * 300
    assert decode(data) == [ev.UnknownCommand(data=H("1D 6B 04")), ev.PrintText(data=b"A" * 300)]


def test_partial_commands_wait_for_more_bytes() -> None:
    codec = PrinterCodec(Role.DEVICE)
    for prefix in (b"\x1b", b"\x1d(k\x08\x00", b"\x1dv0\x00\x02\x00\x02\x00\x80", b"\x10\x04"):
        codec.receive_data(prefix)
        assert codec.next_event() is None
        codec = PrinterCodec(Role.DEVICE)


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=17), st.booleans())
def test_device_decoder_never_raises_and_is_chunk_invariant(data: bytes, chunk: int, chinese: bool) -> None:
    whole = decode(data, chinese=chinese)
    assert decode(data, chunk=chunk, chinese=chinese) == whole


# -- round trip -----------------------------------------------------------------------------------
def _u8(lo: int = 0, hi: int = 255) -> st.SearchStrategy[int]:
    return st.integers(min_value=lo, max_value=hi)


_texts = st.binary(min_size=1, max_size=20).map(lambda b: bytes(x | 0x20 for x in b))
_raster = st.tuples(_u8(0, 4), _u8(0, 4), _u8(0, 3)).flatmap(
    lambda t: st.builds(ev.PrintRasterImage, width_bytes=st.just(t[0]), height=st.just(t[1]),
                        data=st.binary(min_size=t[0] * t[1], max_size=t[0] * t[1]), mode=st.just(t[2]))
)
COMMANDS = st.one_of(
    st.builds(ev.Initialize),
    st.builds(ev.SelectPrintMode, font_b=st.booleans(), bold=st.booleans(), double_height=st.booleans(),
              double_width=st.booleans(), underline=st.booleans()),
    st.builds(ev.SetEmphasis, on=st.booleans()),
    st.builds(ev.SetUnderline, dots=_u8(0, 2)),
    st.builds(ev.SetAlignment, align=st.sampled_from(ev.Align)),
    st.builds(ev.SelectFont, font=_u8(0, 4)),
    st.builds(ev.SetCharacterSize, width=_u8(1, 8), height=_u8(1, 8)),
    st.builds(ev.SelectCodePage, page=_u8()),
    st.builds(ev.SelectInternationalCharset, charset=_u8()),
    st.builds(ev.PrintText, data=_texts),
    st.builds(ev.FeedLines, lines=_u8()),
    st.builds(ev.Cut, partial=st.booleans(), feed=st.none() | _u8()),
    st.builds(ev.SetBarcodeHeight, dots=_u8(1)),
    st.builds(ev.SetHriPosition, pos=_u8(0, 3)),
    st.builds(ev.PrintBarcode, symbology=_u8(0, 6), data=st.binary(max_size=20).map(lambda b: b.replace(b"\0", b"1"))),
    st.builds(ev.PrintBarcode, symbology=_u8(65, 79), data=st.binary(max_size=40)),
    _raster,
    st.builds(ev.QrSelectModel, model=_u8(1, 3)),
    st.builds(ev.QrSetModuleSize, size=_u8(1, 16)),
    st.builds(ev.QrSetErrorCorrection, level=st.sampled_from("LMQH")),
    st.builds(ev.QrStore, data=st.binary(max_size=50)),
    st.builds(ev.QrPrint),
    st.builds(ev.RequestStatus, kind=_u8(1, 4)),
    st.builds(ev.SetAutoStatus, mask=_u8()),
    st.builds(ev.PulseDrawer, pin=st.sampled_from([2, 5]), on_ms=_u8().map(lambda n: n * 2),
              off_ms=_u8().map(lambda n: n * 2)),
    st.builds(ev.SetLineSpacing, dots=st.none() | _u8()),
    st.builds(ev.SetLeftMargin, dots=_u8(0, 0xFFFF)),
    st.builds(ev.SetPrintAreaWidth, dots=_u8(0, 0xFFFF)),
    st.builds(ev.FeedDots, dots=_u8()),
    st.builds(ev.SetReverse, on=st.booleans()),
    st.builds(ev.SetUpsideDown, on=st.booleans()),
    st.builds(ev.SetDoubleStrike, on=st.booleans()),
    st.builds(ev.SelectUserCharacters, on=st.booleans()),
    st.builds(ev.PrintGraphics),
    st.builds(ev.Pdf417Store, data=st.binary(max_size=50)),
    st.builds(ev.Pdf417Print),
    st.builds(ev.RecoverFromError, clear_buffers=st.booleans()),
    st.tuples(_u8(1, 3), _u8(0, 4)).flatmap(
        lambda t: st.builds(ev.PrintColumnImage, mode=st.sampled_from([0, 1, 32, 33]), columns=st.just(t[1]),
                            data=st.just(b"")).map(
            lambda c: ev.PrintColumnImage(mode=c.mode, columns=c.columns,
                                          data=bytes(c.columns * (3 if c.mode >= 32 else 1))))),
)


@given(st.lists(COMMANDS, max_size=12), st.integers(min_value=1, max_value=9))
def test_host_to_device_round_trip(commands: list[ev.PrinterCommand], chunk: int) -> None:
    host = PrinterCodec(Role.HOST)
    data = b"".join(host.send(c) for c in commands)
    expected: list[ev.PrinterCommand] = []
    for cmd in commands:  # the device sees adjacent text as one run
        if isinstance(cmd, ev.PrintText) and expected and isinstance(expected[-1], ev.PrintText):
            expected[-1] = ev.PrintText(data=expected[-1].data + cmd.data)
        else:
            expected.append(cmd)
    assert decode(data, chunk=chunk) == expected


# -- the fast path (commands(), the emulator's) and the slow path (next_event()) agree -------------
def _both_paths(data: bytes, chinese: bool = False) -> tuple[list[ev.PrinterCommand], list[object]]:
    profile = CHINESE[chinese]
    slow, fast = PrinterCodec(Role.DEVICE, profile), PrinterCodec(Role.DEVICE, profile)
    slow.receive_data(data)
    singles: list[object] = []
    while (event := slow.next_event()) is not None:
        singles.append(event)
    fast.receive_data(data)
    return list(fast.commands()), singles


def test_a_nul_before_a_cached_two_byte_command_is_not_dropped() -> None:
    # ESC FF (2 bytes, cached once decoded) then NUL ESC FF: the 3-byte look-up of 00 1B 0C used to
    # hit the 2-byte entry 1B 0C and swallow the NUL.
    fast, slow = _both_paths(H("1B 0C 00 1B 0C"))
    assert fast == slow == [ev.UnknownCommand(data=H("1B 0C")), ev.UnknownCommand(data=H("00")),
                            ev.UnknownCommand(data=H("1B 0C"))]


# Command-shaped tokens (a prefix or NUL, then 0..2 function/parameter bytes), warm caches and NULs:
# dense in collisions between 2- and 3-byte commands, unlike st.binary().
_PREFIXES = st.sampled_from([0x00, 0x0A, 0x10, 0x1B, 0x1C, 0x1D, 0x41])
_PARAMS = st.sampled_from([0x00, 0x01, 0x04, 0x05, 0x0C, 0x1B, 0x21, 0x26, 0x2E, 0x30, 0x31, 0x32, 0x3C, 0x40,
                           0x56, 0x61, 0x63, 0x69, 0x6D, 0x76, 0x81])
_TOKENS = st.tuples(_PREFIXES, st.lists(_PARAMS, max_size=2)).map(lambda t: bytes((t[0], *t[1])))


@settings(max_examples=examples(400))
@given(st.lists(_TOKENS, max_size=30).map(b"".join), st.booleans())
def test_fast_and_slow_decode_paths_agree_on_command_dense_input(data: bytes, chinese: bool) -> None:
    fast, slow = _both_paths(data, chinese)
    assert fast == slow
