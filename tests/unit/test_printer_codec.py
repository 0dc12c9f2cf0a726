"""ESC/POS codec: PROTOCOLS.md §7 golden tables both ways, byte at a time, hostile input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import Role
from drivers.errors import FrameError, LocalProtocolError, RemoteProtocolError
from drivers.printer import events as ev
from drivers.printer.codec import DEFAULTS, PrinterCodec, _text_end, power_on_chinese
from firmware_profiles import load_schema, validate_profile

H = bytes.fromhex
EAN13 = b"4006381333931"
URL = b"https://x.cn/p?o=1"

# §7 "ESC/POS, host -> printer": bytes <-> the events they are.
HOST_TO_PRINTER = [
    ("1B 40", [ev.Initialize()]),
    (
        "1B 21 00 1B 21 00 1B 21 30 1B 45 01 1B 61 01",
        [
            ev.SelectPrintMode(),
            ev.SelectPrintMode(),
            ev.SelectPrintMode(double_height=True, double_width=True),
            ev.SetEmphasis(on=True),
            ev.SetAlignment(align=ev.Align.CENTER),
        ],
    ),
    ("1B 64 06 1D 56 00", [ev.FeedLines(lines=6), ev.Cut()]),
    ("1B 64 06 1D 56 01", [ev.FeedLines(lines=6), ev.Cut(partial=True)]),
    ("1D 56 42 00", [ev.Cut(partial=True, feed=0)]),
    ("1B 70 00 32 32", [ev.PulseDrawer(pin=2, on_ms=100, off_ms=100)]),
    (
        "1D 28 6B 04 00 31 41 32 00 1D 28 6B 03 00 31 43 04 1D 28 6B 03 00 31 45 30"
        " 1D 28 6B 08 00 31 50 30 48 45 4C 4C 4F 1D 28 6B 03 00 31 51 30",
        [
            ev.QrSelectModel(model=2),
            ev.QrSetModuleSize(size=4),
            ev.QrSetErrorCorrection(level="L"),
            ev.QrStore(data=b"HELLO"),
            ev.QrPrint(),
        ],
    ),
    ("1D 28 6B 15 00 31 50 30" + URL.hex(), [ev.QrStore(data=URL)]),
    (
        "1B 61 01 1D 68 40 1D 77 02 1D 66 00 1D 48 02 1D 6B 02 34 30 30 36 33 38 31 33 33 33 39 33 31 00",
        [
            ev.SetAlignment(align=ev.Align.CENTER),
            ev.SetBarcodeHeight(dots=64),
            ev.SetBarcodeWidth(module=2),
            ev.SetHriFont(font=0),
            ev.SetHriPosition(pos=2),
            ev.PrintBarcode(symbology=2, data=EAN13),
        ],
    ),
    ("1D 6B 49 09 7B 42 54 45 53 54 31 32 33", [ev.PrintBarcode(symbology=73, data=b"{BTEST123")]),
    (
        "1D 76 30 00 02 00 02 00 80 00 00 01",
        [ev.PrintRasterImage(width_bytes=2, height=2, data=H("80 00 00 01"))],
    ),
    ("D6 D0 CE C4 B2 E2 CA D4 0A", [ev.PrintText(data="中文测试\n".encode("gb18030"))]),
    ("81 30 84 36", [ev.PrintText(data="¥".encode("gb18030"))]),
    ("A3 A4", [ev.PrintText(data="￥".encode("gb18030"))]),
    ("1B 74 00 43 61 66 82 0A", [ev.SelectCodePage(page=0), ev.PrintText(data="Café\n".encode("cp437"))]),
    ("1B 40 1B 3D 01 10 04 01", [ev.Initialize(), ev.SelectPeripheral(device=1), ev.RequestStatus(kind=1)]),
    ("1D 61 0F", [ev.SetAutoStatus(mask=0x0F)]),
]
IDS = [row[0][:23] for row in HOST_TO_PRINTER]
# A printer profile that starts in Chinese mode (True) or not, the schema's defaults for the rest.
CHINESE = {on: validate_profile("printer", {"schema": 1, "name": "test", "text": {"chinese_mode_at_power_on": on}},
                                source="<test>") for on in (False, True)}


def decode(data: bytes, *, chunk: int = 0, chinese: bool = False) -> list[ev.PrinterCommand]:
    """Device-side decode, whole or `chunk` bytes at a time; adjacent text runs joined."""
    codec = PrinterCodec(Role.DEVICE, CHINESE[chinese])
    out: list[ev.PrinterCommand] = []
    for start in range(0, len(data), chunk or max(1, len(data))):
        codec.receive_data(data[start : start + (chunk or len(data))])
        while (event := codec.next_event()) is not None:
            assert isinstance(event, ev.PrinterCommand)
            if isinstance(event, ev.PrintText) and out and isinstance(out[-1], ev.PrintText):
                out[-1] = ev.PrintText(data=out[-1].data + event.data)
            else:
                out.append(event)
    return out


def test_defaults_without_a_profile_are_the_schema_defaults() -> None:
    """A codec made without a profile (settings=None) uses DEFAULTS: the codec reads no files, so
    they repeat the schema's, and must never drift from them."""
    schema = load_schema("printer").keys
    assert {key: schema[key].default for key in DEFAULTS} == dict(DEFAULTS)
    assert power_on_chinese(None) is power_on_chinese(validate_profile("printer", {"schema": 1, "name": "test"}))
    assert PrinterCodec(Role.DEVICE).chinese_mode is PrinterCodec(Role.DEVICE, CHINESE[False]).chinese_mode is False


@pytest.mark.parametrize(("hexbytes", "events"), HOST_TO_PRINTER, ids=IDS)
def test_host_encodes_golden_bytes(hexbytes: str, events: list[ev.PrinterCommand]) -> None:
    codec = PrinterCodec(Role.HOST)
    assert b"".join(codec.send(e) for e in events) == H(hexbytes)


@pytest.mark.parametrize(("hexbytes", "events"), HOST_TO_PRINTER, ids=IDS)
@pytest.mark.parametrize("chunk", [0, 1, 3])
def test_device_decodes_golden_bytes(hexbytes: str, events: list[ev.PrinterCommand], chunk: int) -> None:
    assert decode(H(hexbytes), chunk=chunk) == events


def test_device_decodes_code_128_after_its_setup() -> None:
    data = H("1B 61 01 1D 68 40 1D 77 02 1D 66 00 1D 48 02 1D 6B 49 09 7B 42 54 45 53 54 31 32 33")
    assert decode(data, chunk=1)[-1] == ev.PrintBarcode(symbology=73, data=b"{BTEST123")


def test_ascii_digit_selectors_and_alternate_cut_codes() -> None:
    assert decode(H("1B 61 32 1B 2D 31 1D 48 33 1D 56 30 1D 56 31 1D 56 41 05")) == [
        ev.SetAlignment(align=ev.Align.RIGHT),
        ev.SetUnderline(dots=1),
        ev.SetHriPosition(pos=3),
        ev.Cut(),
        ev.Cut(partial=True),
        ev.Cut(feed=5),
    ]


# Commands the corpus and real receipts use beyond §7, both directions.
# -- Chinese mode ---------------------------------------------------------------------------------
def test_chinese_pair_is_never_split_and_its_second_byte_is_not_a_command() -> None:
    data = b"\x1c&" + "中文".encode("gb18030") + b"\x81\x1b\x1c." + b"\x1b@"
    for chunk in (0, 1, 2, 3):
        codec = PrinterCodec(Role.DEVICE)
        texts: list[bytes] = []
        for i in range(0, len(data), chunk or len(data)):
            codec.receive_data(data[i : i + (chunk or len(data))])
            while (event := codec.next_event()) is not None:
                if isinstance(event, ev.PrintText):
                    texts.append(event.data)
        assert all(len(t) % 2 == 0 for t in texts), texts  # only whole 2-byte codes
        assert b"".join(texts) == "中文".encode("gb18030") + b"\x81\x1b"
    assert decode(data)[-2:] == [ev.ChineseMode(on=False), ev.Initialize()]


# The text run as the codec documents it: in Chinese mode a lead byte 0x81..0xFE takes the byte after it.
_RUN = {False: re.compile(rb"[\t\n\r\x20-\xff]+"),
        True: re.compile(rb"(?:[\t\n\r\x20-\x80\xff]|[\x81-\xfe][\x00-\xff])+")}
_FRAMING_BYTES = st.binary(max_size=24).map(lambda b: bytes(x if x % 3 else 0x81 + x % 0x7E for x in b))


@given(_FRAMING_BYTES, st.booleans())
def test_text_runs_end_where_the_documented_pattern_ends(data: bytes, chinese: bool) -> None:
    # The codec frames text without the per-byte pattern (it is slow): the same runs, at every start.
    PrinterCodec(Role.DEVICE)  # the device role's tables load with its first codec
    for pos in range(len(data)):
        match = _RUN[chinese].match(data, pos)
        assert _text_end(bytearray(data), pos, chinese) == (pos if match is None else match.end())


def test_send_many_is_send_of_each_joined() -> None:
    job = [ev.Initialize(), ev.ChineseMode(on=True), ev.SetAlignment(align=ev.Align.CENTER),
           ev.SelectPrintMode(bold=True), ev.PrintText(data="中文 A\n".encode("gb18030")), ev.Initialize(),
           ev.PrintText(data=b"\x81\x40\n"), ev.FeedLines(lines=3), ev.Cut(partial=True)]
    one, many = PrinterCodec(Role.HOST), PrinterCodec(Role.HOST)
    assert many.send_many(job) == b"".join(one.send(cmd) for cmd in job)
    assert many.chinese_mode == one.chinese_mode is False
    with pytest.raises(LocalProtocolError):
        PrinterCodec(Role.HOST).send_many([ev.ChineseMode(on=True), ev.PrintText(data=b"\x81\n")])
    with pytest.raises(LocalProtocolError):
        PrinterCodec(Role.DEVICE).send_many([ev.Cut()])


def test_chinese_mode_follows_power_on_and_initialize() -> None:
    # Power-on Chinese; FS . leaves it, ESC @ restores the power-on state.
    data = b"\x1c.\x81\x1b@\x1b@\x81\x1b@"
    assert decode(data, chinese=True) == [
        ev.ChineseMode(on=False),
        ev.PrintText(data=b"\x81"),
        ev.Initialize(),
        ev.Initialize(),
        ev.PrintText(data=b"\x81\x1b@"),
    ]


def test_host_in_chinese_mode_refuses_split_or_four_byte_codes() -> None:
    codec = PrinterCodec(Role.HOST, CHINESE[True])
    assert codec.send(ev.PrintText(data="￥".encode("gb18030"))) == H("A3 A4")
    for bad in ("¥".encode("gb18030"), b"\xd6"):
        with pytest.raises(LocalProtocolError):
            codec.send(ev.PrintText(data=bad))
    codec.send(ev.ChineseMode(on=False))
    assert codec.send(ev.PrintText(data=b"\xd6")) == b"\xd6"


# -- printer -> host ------------------------------------------------------------------------------
# §7 "ESC/POS, printer -> host": (kind, reply byte, the status that answers it).
STATUS_ROWS = [
    (1, 0x12, ev.PrinterStatus()),
    (1, 0x16, ev.PrinterStatus(drawer_high=True)),
    (1, 0x1A, ev.PrinterStatus(online=False)),
    (2, 0x12, ev.PrinterStatus()),
    (2, 0x16, ev.PrinterStatus(online=False, cover_open=True)),
    (2, 0x32, ev.PrinterStatus(online=False, paper_out=True)),
    (2, 0x52, ev.PrinterStatus(online=False, unrecoverable_error=True)),
    (3, 0x12, ev.PrinterStatus()),
    (3, 0x1A, ev.PrinterStatus(online=False, cutter_error=True)),
    (3, 0x32, ev.PrinterStatus(online=False, unrecoverable_error=True)),
    (3, 0x52, ev.PrinterStatus(online=False, auto_recoverable_error=True)),
    (4, 0x12, ev.PrinterStatus()),
    (4, 0x1E, ev.PrinterStatus(paper_near_end=True)),
    (4, 0x72, ev.PrinterStatus(online=False, paper_out=True)),
    (4, 0x7E, ev.PrinterStatus(online=False, paper_out=True, paper_near_end=True)),
]
ASB_ROWS = [
    ("10 00 00 00", ev.PrinterStatus()),
    ("38 00 00 00", ev.PrinterStatus(online=False, cover_open=True)),
    ("18 00 0C 00", ev.PrinterStatus(online=False, paper_out=True)),
    ("10 00 03 00", ev.PrinterStatus(paper_near_end=True)),
]


@pytest.mark.parametrize(("kind", "value", "status"), STATUS_ROWS)
def test_status_reply_golden(kind: int, value: int, status: ev.PrinterStatus) -> None:
    assert status.status_byte(kind) == value
    device = PrinterCodec(Role.DEVICE)
    assert device.send(ev.StatusReply(kind=kind, value=value)) == bytes([value])
    host = PrinterCodec(Role.HOST)
    assert host.send(ev.RequestStatus(kind=kind)) == bytes([0x10, 0x04, kind])
    host.receive_data(bytes([value]))
    assert host.next_event() == ev.StatusReply(kind=kind, value=value)
    assert host.next_event() is None
    all_four = {k: status.status_byte(k) for k in (1, 2, 3, 4)}
    assert ev.PrinterStatus.from_replies(all_four) == status


@pytest.mark.parametrize(("hexbytes", "status"), ASB_ROWS)
def test_asb_golden(hexbytes: str, status: ev.PrinterStatus) -> None:
    assert status.asb_bytes() == H(hexbytes)
    assert ev.PrinterStatus.from_asb(H(hexbytes)) == status
    assert PrinterCodec(Role.DEVICE).send(ev.AutoStatus(data=H(hexbytes))) == H(hexbytes)
    host = PrinterCodec(Role.HOST)
    for byte in H(hexbytes)[:-1]:
        host.receive_data(bytes([byte]))
        assert host.next_event() is None
    host.receive_data(H(hexbytes)[-1:])
    assert host.next_event() == ev.AutoStatus(data=H(hexbytes))


def test_idle_status_is_0x12_everywhere() -> None:
    assert [ev.PrinterStatus().status_byte(k) for k in (1, 2, 3, 4)] == [0x12] * 4
    assert ev.PrinterStatus.from_replies({1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12}) == ev.PrinterStatus()


def test_replies_match_requests_in_fifo_order_with_asb_and_flow_control_interleaved() -> None:
    host = PrinterCodec(Role.HOST)
    host.send(ev.RequestStatus(kind=4))
    host.send(ev.RequestStatus(kind=1))
    assert host.outstanding == (4, 1)
    stream = H("13 72 18 11 00 0C 00 1A")  # XOFF, reply, ASB with XON inside, reply
    events = []
    for byte in stream:
        host.receive_data(bytes([byte]))
        while (event := host.next_event()) is not None:
            events.append(event)
    assert events == [
        ev.FlowControl(paused=True),
        ev.StatusReply(kind=4, value=0x72),
        ev.FlowControl(paused=False),
        ev.AutoStatus(data=H("18 00 0C 00")),
        ev.StatusReply(kind=1, value=0x1A),
    ]
    assert not host.outstanding


@pytest.mark.parametrize(
    ("stream", "after"),
    [
        ("12 11", ev.FlowControl(paused=False)),  # a status byte nobody asked for
        ("80 13", ev.FlowControl(paused=True)),  # fits no pattern
        ("10 00 12 11", ev.FlowControl(paused=False)),  # ASB cut short; the 12 then answers nothing
    ],
)
def test_host_garbage_raises_frame_error_then_resyncs(stream: str, after: ev.PrinterReply) -> None:
    host = PrinterCodec(Role.HOST)
    host.receive_data(H(stream))
    seen = []
    for _ in range(4):
        try:
            event = host.next_event()
        except FrameError:
            continue
        if event is not None:
            seen.append(event)
    assert seen == [after]


def test_forget_outstanding_makes_a_late_reply_an_error() -> None:
    host = PrinterCodec(Role.HOST)
    host.send(ev.RequestStatus(kind=1))
    host.forget_outstanding()
    host.receive_data(b"\x12")
    with pytest.raises(RemoteProtocolError):
        host.next_event()


@given(st.binary(max_size=64))
def test_host_decoder_raises_only_frame_error_and_always_consumes(data: bytes) -> None:
    host = PrinterCodec(Role.HOST)
    for kind in (1, 2, 3, 4):
        host.send(ev.RequestStatus(kind=kind))
    host.receive_data(data)
    for _ in range(2 * len(data) + 2):  # each call consumes a byte or drops a partial ASB
        try:
            if host.next_event() is None:
                break
        except FrameError:
            pass
    assert host.next_event() is None


# -- misuse ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        ev.SetUnderline(dots=3),
        ev.SetCharacterSize(width=9),
        ev.SetAlignment(align=3),  # type: ignore[arg-type]
        ev.PrintText(data=b"a\x1bb"),
        ev.PrintBarcode(symbology=2, data=b"12\x003"),
        ev.PrintBarcode(symbology=7, data=b"1"),
        ev.PrintRasterImage(width_bytes=2, height=2, data=b"\x00"),
        ev.PrintRasterImage(width_bytes=0x800, height=0x800, data=bytes(0x400000)),
        ev.QrSetErrorCorrection(level="X"),
        ev.QrSetModuleSize(size=17),
        ev.RequestStatus(kind=5),
        ev.PulseDrawer(pin=3, on_ms=100, off_ms=100),
        ev.PulseDrawer(pin=2, on_ms=101, off_ms=100),
        ev.UnknownCommand(data=b"\x1b~"),
        ev.StatusReply(kind=1, value=0x12),
    ],
)
def test_host_refuses_what_it_cannot_send(bad: ev.PrinterCommand | ev.PrinterReply) -> None:
    host = PrinterCodec(Role.HOST)
    with pytest.raises(LocalProtocolError):
        host.send(bad)
    assert host.outstanding == ()


@pytest.mark.parametrize(
    "bad",
    [
        ev.Initialize(),
        ev.StatusReply(kind=1, value=0x10),
        ev.StatusReply(kind=0, value=0x12),
        ev.AutoStatus(data=H("12 00 00 00")),
        ev.AutoStatus(data=H("10 00 00")),
    ],
)
def test_device_refuses_what_it_cannot_send(bad: ev.PrinterCommand | ev.PrinterReply) -> None:
    with pytest.raises(LocalProtocolError):
        PrinterCodec(Role.DEVICE).send(bad)


# -- python-escpos cross-check --------------------------------------------------------------------
def test_python_escpos_output_decodes_to_the_expected_events() -> None:
    from escpos.printer import Dummy

    printer = Dummy()
    printer.set(align="center", bold=True, double_height=True, double_width=True)
    printer.cut()
    printer.qr("HELLO", native=True, size=4)
    printer.text("中文测试\n")
    assert decode(printer.output) == [
        ev.SelectPrintMode(),
        ev.SelectPrintMode(),
        ev.SelectPrintMode(double_height=True, double_width=True),
        ev.SetEmphasis(on=True),
        ev.SetAlignment(align=ev.Align.CENTER),
        ev.FeedLines(lines=6),
        ev.Cut(),
        ev.QrSelectModel(model=2),
        ev.QrSetModuleSize(size=4),
        ev.QrSetErrorCorrection(level="L"),
        ev.QrStore(data=b"HELLO"),
        ev.QrPrint(),
        ev.PrintText(data="中文测试\n".encode("gb18030")),
    ]


def test_encoding_is_a_pure_function_of_the_command_and_the_mode() -> None:
    """encode_command keeps the bytes of small commands it has encoded: the same values give the
    same bytes (in Chinese mode and not), and a command that cannot be sent raises every time."""
    from drivers.printer.encoders import encode_command

    text = "合计".encode("gb18030") + b"\n"
    assert encode_command(ev.PrintText(data=text), chinese=True) == text
    assert encode_command(ev.PrintText(data=text), chinese=True) == text
    with pytest.raises(LocalProtocolError):
        encode_command(ev.PrintText(data=text[:1] + b"\n"), chinese=True)  # a split GB18030 code
    with pytest.raises(LocalProtocolError):
        encode_command(ev.PrintText(data=text[:1] + b"\n"), chinese=True)
    bold = encode_command(ev.SelectPrintMode(bold=True), chinese=False)
    assert bold == b"\x1b!\x08" == encode_command(ev.SelectPrintMode(bold=True), chinese=True)
    assert encode_command(ev.SelectPrintMode(), chinese=False) == b"\x1b!\x00"
    for _ in range(2):
        with pytest.raises(LocalProtocolError):
            encode_command(ev.SetAlignment(align=7), chinese=False)  # type: ignore[arg-type]


def test_text_runs_end_where_the_documented_pattern_ends_for_every_short_string() -> None:
    # Every string of up to 4 bytes over one byte of each class that matters (control, text,
    # 0x80, lead bytes at both ends of their range, 0xFF): the edges a random draw may miss.
    import itertools

    PrinterCodec(Role.DEVICE)
    alphabet = bytes((0x00, 0x09, 0x1B, 0x41, 0x80, 0x81, 0xA1, 0xFE, 0xFF))
    for size in range(1, 5):
        for chars in itertools.product(alphabet, repeat=size):
            data = bytes(chars)
            for chinese, pos in itertools.product((False, True), range(size)):
                match = _RUN[chinese].match(data, pos)
                assert _text_end(bytearray(data), pos, chinese) == (pos if match is None else match.end()), data
