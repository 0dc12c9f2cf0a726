"""The scanner codec (drivers/scanner/codec.py): PROTOCOLS.md §2.1's golden vectors both ways, every
table fed whole and one byte at a time, handshakes, and hypothesis fuzzing of every profile's both
roles (a malformed input raises RemoteProtocolError and nothing else)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import FrameError, LocalProtocolError, RemoteProtocolError
from drivers.events import Role
from drivers.scanner import events as ev
from drivers.scanner.codec import (
    AIM_IDS,
    SSI_SYMBOLOGIES,
    ScannerCodec,
    ScannerSettings,
    crc16_xmodem,
    ssi_checksum,
    ssi_retransmission,
)
from firmware_profiles import list_profiles, load_profile, validate_profile
from tests.support.codecs import drain_junk, feed, h
from tests.support.depth import examples

PROFILES = list_profiles("scanner")


def profile(name: str, **changes: Any) -> dict[str, Any]:
    loaded = load_profile("scanner", name)
    for path, value in changes.items():
        section, key = path.split("__")
        loaded[section][key] = value
    return loaded




# -- GM65 / GM8xx-class command frames (PROTOCOLS.md §2.1) -----------------------------------------
GM65_COMMANDS = [
    (ev.Trigger(), "7E 00 08 01 00 02 01 02 DA"),
    (ev.StopScan(), "7E 00 08 01 00 02 02 32 B9"),
    (ev.ZoneWrite(address=0x0000, data=b"\xf5"), "7E 00 08 01 00 00 F5 CB 23"),
    (ev.SaveSettings(), "7E 00 09 01 00 00 00 DE C8"),
    (ev.ZoneWrite(address=0x002A, data=b"\x39\x01"), "7E 00 08 02 00 2A 39 01 A7 EA"),
    (ev.ZoneRead(address=0x002A, length=2), "7E 00 07 01 00 2A 02 D8 0F"),
    (ev.Heartbeat(), "7E 00 0A 01 00 00 00 30 1A"),
]
GM65_REPLIES = [
    (ev.HeartbeatReply(), "03 00 00 01 00 33 31"),
    (ev.ZoneReply(), "02 00 00 01 00 33 31"),  # the acknowledgement
    (ev.ZoneReply(status=0, data=b"\x39\x01"), "02 00 00 02 39 01 " + f"{crc16_xmodem(h('00 02 39 01')):04X}"),
]


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize(("command", "wire"), GM65_COMMANDS, ids=[type(c).__name__ for c, _ in GM65_COMMANDS])
def test_gm65_commands_both_ways(command: ev.ScannerCommand, wire: str, one_by_one: bool) -> None:
    assert ScannerCodec(Role.HOST, profile("gm65")).send(command) == h(wire)
    assert feed(ScannerCodec(Role.DEVICE, profile("gm65")), h(wire), one_by_one=one_by_one) == [command]


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize(("reply", "wire"), GM65_REPLIES, ids=["heartbeat", "ack", "read"])
def test_gm65_replies_both_ways(reply: ev.ScannerReply, wire: str, one_by_one: bool) -> None:
    assert ScannerCodec(Role.DEVICE, profile("gm65")).send(reply) == h(wire)
    assert feed(ScannerCodec(Role.HOST, profile("gm65")), h(wire), one_by_one=one_by_one) == [reply]


def test_gm65_crc_is_xmodem_over_everything_after_the_header() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value
    for _, wire in GM65_COMMANDS + GM65_REPLIES:
        frame = h(wire)
        assert crc16_xmodem(frame[2:-2]).to_bytes(2, "big") == frame[-2:]


def test_gm65_unchecked_frames_are_sent_and_taken() -> None:
    host = ScannerCodec(Role.HOST, profile("gm65", gm65__crc="unchecked"))
    assert host.send(ev.Trigger()) == h("7E 00 08 01 00 02 01 AB CD")
    assert feed(ScannerCodec(Role.DEVICE, profile("gm65")), h("7E 00 08 01 00 02 01 AB CD"), one_by_one=True) == [
        ev.Trigger()]


@pytest.mark.parametrize("one_by_one", [False, True])
def test_gm65_ack_before_the_data_is_split_off(one_by_one: bool) -> None:
    stream = h("02 00 00 01 00 33 31") + b"6200123456789012\r" + h("02 00 00 01 00 33 31") + b"ABC\r"
    assert feed(ScannerCodec(Role.HOST, profile("gm65")), stream, one_by_one=one_by_one) == [
        ev.ZoneReply(), ev.Scanned(data="6200123456789012"), ev.ZoneReply(), ev.Scanned(data="ABC")]


def test_gm65_bad_frames_raise_and_resynchronise() -> None:
    device = ScannerCodec(Role.DEVICE, profile("gm65"))
    device.receive_data(h("7E 00 08 01 00 02 01 02 DB") + h("7E 00 0A 01 00 00 00 30 1A"))
    with pytest.raises(FrameError, match="bad CRC"):
        device.next_event()
    events = []
    while True:
        try:
            event = device.next_event()
        except RemoteProtocolError:
            continue
        if event is None:
            break
        events.append(event)
    assert events == [ev.Heartbeat()]
    host = ScannerCodec(Role.HOST, profile("gm65"))
    host.receive_data(h("02 01 00"))
    with pytest.raises(FrameError, match="02 00"):
        host.next_event()


# -- Zebra SSI (PROTOCOLS.md §2.1) ------------------------------------------------------------------
SSI_HOST = [
    (ev.Trigger(), "04 E4 04 00 FF 14"),
    (ev.StopScan(), "04 E5 04 00 FF 13"),
    (ev.Ack(), "04 D0 04 00 FF 28"),
    (ev.ScanEnable(permanent=True), "04 E9 04 08 FF 07"),
    (ev.ScanDisable(), "04 EA 04 00 FF 0E"),
    (ev.Nak(cause=1), "05 D1 04 00 01 FF 25"),  # computed: CMD_NAK cause RESEND
]
SSI_DECODER = [
    (ev.Ack(), "04 D0 00 00 FF 2C"),
    (ev.ScannerNotice(code=0x20), "05 F6 00 00 20 FE E5"),
    (ev.ScannerNotice(code=0x21), "05 F6 00 00 21 FE E4"),
    (ev.Scanned(data="123", symbology="qr"), "08 F3 00 00 1C 31 32 33 FE 53"),  # computed: DECODE_DATA
]


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize(("event", "wire"), SSI_HOST, ids=[type(e).__name__ for e, _ in SSI_HOST])
def test_ssi_host_packets_both_ways(event: Any, wire: str, one_by_one: bool) -> None:
    assert ScannerCodec(Role.HOST, profile("zebra-ssi")).send(event) == h(wire)
    assert feed(ScannerCodec(Role.DEVICE, profile("zebra-ssi")), h(wire), one_by_one=one_by_one) == [event]


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize(("event", "wire"), SSI_DECODER, ids=["ack", "event20", "event21", "decode"])
def test_ssi_decoder_packets_both_ways(event: Any, wire: str, one_by_one: bool) -> None:
    assert ScannerCodec(Role.DEVICE, profile("zebra-ssi")).send(event) == h(wire)
    assert feed(ScannerCodec(Role.HOST, profile("zebra-ssi")), h(wire), one_by_one=one_by_one) == [event]


def test_ssi_checksum_is_the_twos_complement_of_the_sum() -> None:
    for _, wire in SSI_HOST + SSI_DECODER:
        packet = h(wire)
        assert ssi_checksum(packet[:-2]) == packet[-2:]
        assert (sum(packet[:-2]) + int.from_bytes(packet[-2:], "big")) & 0xFFFF == 0


def test_ssi_every_packet_but_a_handshake_is_acked_by_the_codec() -> None:
    host = ScannerCodec(Role.HOST, profile("zebra-ssi"))
    assert feed(host, h("08 F3 00 00 1C 31 32 33 FE 53"), one_by_one=True) == [ev.Scanned(data="123", symbology="qr")]
    assert host.data_to_send() == h("04 D0 04 00 FF 28")
    feed(host, h("04 D0 00 00 FF 2C"), one_by_one=False)
    assert host.data_to_send() == b""  # an ACK is never answered
    device = ScannerCodec(Role.DEVICE, profile("zebra-ssi"))
    feed(device, h("04 E4 04 00 FF 14"), one_by_one=True)
    assert device.data_to_send() == h("04 D0 00 00 FF 2C")


def test_ssi_any_status_bits_are_accepted() -> None:
    odd = bytes([0x04, 0xD0, 0x00, 0x46])  # status bits the manual does not define
    host = ScannerCodec(Role.HOST, profile("zebra-ssi"))
    assert feed(host, odd + ssi_checksum(odd), one_by_one=True) == [ev.Ack()]
    decode = bytes([0x06, 0xF3, 0x00, 0x50, 0x0B, 0x39])
    assert feed(host, decode + ssi_checksum(decode), one_by_one=False) == [ev.Scanned(data="9", symbology="ean13")]


def test_ssi_bad_checksum_is_naked_and_the_retransmission_taken_once() -> None:
    good = h("08 F3 00 00 1C 31 32 33 FE 53")
    host = ScannerCodec(Role.HOST, profile("zebra-ssi"))
    host.receive_data(good[:-1] + b"\x00")
    with pytest.raises(FrameError, match="checksum"):
        host.next_event()
    assert host.data_to_send() == h("05 D1 04 00 01 FF 25")
    resent = ssi_retransmission(good)
    assert resent == h("08 F3 00 01 1C 31 32 33 FE 52")
    assert feed(host, resent, one_by_one=True) == [ev.Scanned(data="123", symbology="qr")]
    assert host.data_to_send() == h("04 D0 04 00 FF 28")
    # Our ACK was lost and the decoder retransmits: ACKed again, not a second scan.
    assert feed(host, resent, one_by_one=False) == []
    assert host.data_to_send() == h("04 D0 04 00 FF 28")


def test_ssi_long_codes_continue_across_packets() -> None:
    text = "码" * 100 + "7" * 400  # 700 bytes of UTF-8: three packets
    wire = ScannerCodec(Role.DEVICE, profile("zebra-ssi")).send(ev.Scanned(data=text, symbology="qr"))
    assert wire[3] & 0x02 and len(wire) > 700
    host = ScannerCodec(Role.HOST, profile("zebra-ssi"))
    assert feed(host, wire, one_by_one=True) == [ev.Scanned(data=text, symbology="qr")]
    assert host.data_to_send() == h("04 D0 04 00 FF 28") * 3


def test_ssi_unknown_opcodes_are_denied() -> None:
    packet = bytes([0x04, 0xA4, 0x00, 0x00])  # REPLY_REVISION: not one we take
    host = ScannerCodec(Role.HOST, profile("zebra-ssi"))
    host.receive_data(packet + ssi_checksum(packet))
    with pytest.raises(RemoteProtocolError, match="opcode"):
        host.next_event()
    assert host.data_to_send() == h("05 D1 04 00 06 FF 20")


# -- serial line mode (PROTOCOLS.md §2) -------------------------------------------------------------
SERIAL_LINES = [
    ("generic-serial", ev.Scanned(data="6200123456789012", symbology="qr", aim="]Q1"), b"]Q16200123456789012\r"),
    ("generic-serial", ev.Scanned(data="6901234567892", symbology="ean13", aim="]E0"), b"]E06901234567892\r"),
    ("generic-serial", ev.Scanned(data="ABC-123", symbology="code128", aim="]C0"), b"]C0ABC-123\r"),
    ("generic-serial", ev.Scanned(data="付款码 28", symbology="datamatrix", aim="]d1"),
     b"]d1" + "付款码 28".encode() + b"\r"),
    ("honeywell-xenon", ev.Scanned(data="6200123456789012", symbology="qr", aim="s"), b"s6200123456789012\r\n"),
    ("honeywell-xenon", ev.Scanned(data="ABC", symbology="code128", aim="j"), b"jABC\r\n"),
    ("honeywell-xenon", ev.Scanned(data="6901234567892", symbology="ean13", aim="d"), b"d6901234567892\r\n"),
    ("honeywell-xenon", ev.Scanned(data="DM", symbology="datamatrix", aim="w"), b"wDM\r\n"),
    ("honeywell-xenon", ev.NoRead(), b"NR\r\n"),
    ("gm65", ev.Scanned(data="6200123456789012"), b"6200123456789012\r"),
]


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize(("name", "code", "wire"), SERIAL_LINES, ids=[f"{n}-{w[:6]!r}" for n, _, w in SERIAL_LINES])
def test_lines_both_ways(name: str, code: Any, wire: bytes, one_by_one: bool) -> None:
    assert ScannerCodec(Role.DEVICE, profile(name)).send(code) == wire
    assert feed(ScannerCodec(Role.HOST, profile(name)), wire, one_by_one=one_by_one) == [code]


def test_a_prefix_and_gb18030_lines() -> None:
    cn = profile("generic-serial", output__prefix="PX", output__encoding="gb18030")
    code = ev.Scanned(data="微信付款 134567890123456789", symbology="qr", aim="]Q1")
    wire = ScannerCodec(Role.DEVICE, cn).send(code)
    assert wire == b"PX]Q1" + "微信付款 134567890123456789".encode("gb18030") + b"\r"
    assert feed(ScannerCodec(Role.HOST, cn), wire, one_by_one=True) == [code]
    with pytest.raises(RemoteProtocolError, match="prefix"):
        feed(ScannerCodec(Role.HOST, cn), b"]Q1123\r", one_by_one=False)


SERIAL_COMMANDS = [
    (ev.Trigger(), "16 54 0D"),
    (ev.StopScan(), "16 55 0D"),
    (ev.MenuCommand(tag="CBR", subtag="ENA", data="1", permanent=True), "16 4D 0D 43 42 52 45 4E 41 31 2E"),
    (ev.MenuCommand(tag="232", subtag="BAD", data="?"), "16 4D 0D 32 33 32 42 41 44 3F 21"),
    (ev.Ack(), "06"),
    (ev.Nak(), "15"),
]


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize(("command", "wire"), SERIAL_COMMANDS, ids=[w for _, w in SERIAL_COMMANDS])
def test_serial_commands_both_ways(command: Any, wire: str, one_by_one: bool) -> None:
    assert ScannerCodec(Role.HOST, profile("honeywell-xenon")).send(command) == h(wire)
    assert feed(ScannerCodec(Role.DEVICE, profile("honeywell-xenon")), h(wire), one_by_one=one_by_one) == [command]


@pytest.mark.parametrize("one_by_one", [False, True])
def test_menu_replies_echo_with_their_status(one_by_one: bool) -> None:
    device = ScannerCodec(Role.DEVICE, profile("honeywell-xenon"))
    assert device.send(ev.MenuReply(setting="CBRENA1", permanent=True)) == b"CBRENA1\x06."
    assert device.send(ev.MenuReply(setting="XYZABC1", status="enq")) == b"XYZABC1\x05!"
    stream = b"CBRENA1\x06.XYZABC1\x05!" + b"jABC\r\n"
    assert feed(ScannerCodec(Role.HOST, profile("honeywell-xenon")), stream, one_by_one=one_by_one) == [
        ev.MenuReply(setting="CBRENA1"), ev.MenuReply(setting="XYZABC1", status="enq"),
        ev.Scanned(data="ABC", symbology="code128", aim="j")]


def test_ack_nak_mode_answers_every_line() -> None:
    host = ScannerCodec(Role.HOST, profile("honeywell-xenon"))
    feed(host, b"s123\r\n", one_by_one=True)
    assert host.data_to_send() == b"\x06"
    host.receive_data(b"s1\x012\r\n")
    with pytest.raises(RemoteProtocolError):
        host.next_event()
    assert host.data_to_send() == b"\x15"
    plain = ScannerCodec(Role.HOST, profile("generic-serial"))
    feed(plain, b"]Q1123\r", one_by_one=False)
    assert plain.data_to_send() == b""  # no handshake configured: nothing owed


@pytest.mark.parametrize(("wire", "why"), [
    (b"123\r", "AIM id"), (b"]Q1\r", "no data"), (b"]Q1\xff\xfe\r", "not utf-8"), (b"]Q1a\x02b\r", "control"),
])
def test_malformed_lines_raise_and_the_next_line_decodes(wire: bytes, why: str) -> None:
    host = ScannerCodec(Role.HOST, profile("generic-serial"))
    host.receive_data(wire + b"]Q1OK\r")
    with pytest.raises(RemoteProtocolError, match=why):
        host.next_event()
    assert host.next_event() == ev.Scanned(data="OK", symbology="qr", aim="]Q1")


def test_crlf_profile_refuses_a_bare_cr() -> None:
    host = ScannerCodec(Role.HOST, profile("honeywell-xenon"))
    host.receive_data(b"sABC\rsDEF\r\n")
    with pytest.raises(RemoteProtocolError, match="LF"):
        host.next_event()
    assert host.next_event() == ev.Scanned(data="DEF", symbology="qr", aim="s")


def test_what_a_role_may_not_send() -> None:
    with pytest.raises(LocalProtocolError):
        ScannerCodec(Role.HOST).send(ev.Scanned(data="x"))
    with pytest.raises(LocalProtocolError):
        ScannerCodec(Role.DEVICE).send(ev.Trigger())
    with pytest.raises(LocalProtocolError):
        ScannerCodec(Role.HOST, profile("generic-serial")).send(ev.Heartbeat())
    with pytest.raises(LocalProtocolError):
        ScannerCodec(Role.DEVICE).send(ev.Scanned(data="a\rb", symbology="qr"))
    with pytest.raises(LocalProtocolError):
        ScannerCodec(Role.DEVICE).send(ev.NoRead())  # generic-serial has no no-read message


def test_settings_defaults_are_the_schemas() -> None:
    minimal = validate_profile("scanner", {"schema": 1, "name": "minimal"})
    assert ScannerSettings.from_profile(minimal) == ScannerSettings()


# -- every code round-trips, every junk byte is refused politely ----------------------------------
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=300)


@settings(max_examples=examples(60), deadline=None)
@given(name=st.sampled_from(PROFILES), text=_TEXT, symbology=st.sampled_from(sorted(SSI_SYMBOLOGIES)),
       split=st.integers(1, 7))
def test_any_code_round_trips(name: str, text: str, symbology: str, split: int) -> None:
    code_aim = {"aim": AIM_IDS[symbology], "honeywell": None, "none": ""}
    loaded = load_profile("scanner", name)
    wire = ScannerCodec(Role.DEVICE, loaded).send(ev.Scanned(data=text, symbology=symbology))
    host = ScannerCodec(Role.HOST, loaded)
    events: list[object] = []
    for i in range(0, len(wire), split):
        host.receive_data(wire[i : i + split])
        while (event := host.next_event()) is not None:
            events.append(event)
    (got,) = events
    assert isinstance(got, ev.Scanned) and got.data == text
    if loaded["protocol"] == "ssi" or loaded["output"]["symbology_id"] != "none":
        assert got.symbology == symbology
    style = loaded["output"]["symbology_id"]
    if loaded["protocol"] != "ssi" and code_aim[style] is not None:
        assert got.aim == code_aim[style]


@settings(max_examples=examples(300), deadline=None)
@given(name=st.sampled_from(PROFILES), role=st.sampled_from(list(Role)),
       chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=12),
       idle=st.booleans())
def test_junk_raises_only_remote_protocol_errors(name: str, role: Role, chunks: list[bytes], idle: bool) -> None:
    codec = ScannerCodec(role, load_profile("scanner", name))
    drain_junk(codec, chunks)
    if idle:
        while codec.line_idle():
            try:
                while codec.next_event() is not None:
                    pass
            except RemoteProtocolError:
                pass
        assert codec.buffered == 0


_STREAMS = {  # (profile, role that receives) -> golden bytes that role takes
    ("gm65", Role.DEVICE): b"".join(h(w) for _, w in GM65_COMMANDS),
    ("gm65", Role.HOST): b"".join(h(w) for _, w in GM65_REPLIES) + b"6200123456789012\r",
    ("zebra-ssi", Role.DEVICE): b"".join(h(w) for _, w in SSI_HOST),
    ("zebra-ssi", Role.HOST): b"".join(h(w) for _, w in SSI_DECODER),
    ("honeywell-xenon", Role.DEVICE): b"".join(h(w) for _, w in SERIAL_COMMANDS),
    ("honeywell-xenon", Role.HOST): b"CBRENA1\x06." + b"".join(w for n, _, w in SERIAL_LINES if n == "honeywell-xenon"),
    ("generic-serial", Role.HOST): b"".join(w for n, _, w in SERIAL_LINES if n == "generic-serial"),
}


@settings(max_examples=examples(300), deadline=None)
@given(key=st.sampled_from(sorted(_STREAMS, key=str)), data=st.data())
def test_mutated_golden_streams_raise_only_remote_protocol_errors(key: tuple[str, Role], data: st.DataObject) -> None:
    stream = bytearray(_STREAMS[key])
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(stream) - 1))
        match data.draw(st.sampled_from(["flip", "insert", "delete"])):
            case "flip":
                stream[at] ^= 1 << data.draw(st.integers(0, 7))
            case "insert":
                stream.insert(at, data.draw(st.integers(0, 255)))
            case _:
                del stream[at]
    codec = ScannerCodec(key[1], load_profile("scanner", key[0]))
    split = data.draw(st.integers(1, 9))
    for i in range(0, len(stream), split):
        codec.receive_data(bytes(stream[i : i + split]))
        for _ in range(2 * codec.buffered + 2):
            try:
                if codec.next_event() is None:
                    break
            except RemoteProtocolError:
                pass
        else:
            pytest.fail("next_event() kept producing without consuming")
        codec.data_to_send()
