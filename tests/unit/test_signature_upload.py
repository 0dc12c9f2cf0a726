"""电签 on the host link (PROTOCOLS.md §4.1, docs/host-link.md "Signature upload (0820)"): the
feature code, the receipt TLV of DE 55, the 0820 frame (golden, byte by byte, MACed under the
published X9.19 test key), the 0830 answer, and the simulator storing an upload once."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.acquirer import mac
from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import ReceiptTlv
from drivers.emv.tlv import TLVError
from drivers.errors import RemoteProtocolError
from drivers.events import Role
from drivers.sensitive import Secret
from emulator.acquirer.control import COMMANDS
from emulator.acquirer.core import Acquirer
from emulator.acquirer.simulator import AcquirerSimulator
from emulator.card_reader.cards import get_card
from terminal.host.feature_code import feature_code
from terminal.host.messages import (
    match,
    parse_sale_response,
    parse_sign_on_response,
    parse_upload_answer,
    sale_request,
    sign_on_request,
    signature_upload_request,
)
from terminal.host.receipt_tlv import receipt_tlv

WHEN = datetime(2025, 1, 15, 14, 30, 15)


class _Ids(TypedDict):
    terminal_id: str
    merchant_id: str


IDS: _Ids = {"terminal_id": "TERM0001", "merchant_id": "MERCHANT0000001"}
X919_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # ANSI X9.19 published test key
# A real JBIG1 BIE of an 8 x 2 image, top row black (pbmtojbg -q): BIH (20 bytes) + data.
TINY_JBIG = bytes.fromhex("00 00 01 00 00000008 00000002 00000002 08 00 03 1C" "F5C0FF02")
PAN = "4761739001010010"  # public test PAN (cards.toml "approved")


# -- feature code -------------------------------------------------------------------------------
@pytest.mark.parametrize(("date", "rrn", "code"), [
    ("0527", "123456789012", "535F8226"),
    ("1231", "000000000001", "12310001"),
    ("0101", "240101123456", "00131057"),
])
def test_feature_code_vectors(date: str, rrn: str, code: str) -> None:
    assert feature_code(date, rrn) == code


@pytest.mark.parametrize(("date", "rrn", "what"), [
    ("527", "123456789012", "settlement date"), ("05a7", "123456789012", "settlement date"),
    ("0527", "12345678901", "RRN"), ("0527", "1234567890123", "RRN"), ("0527", "12345678901A", "RRN"),
    ("0527", "１２３４５６７８９０１２", "RRN"),  # full-width digits are digits to str.isdigit, not ASCII
])
def test_feature_code_refuses_what_is_not_4_and_12_digits(date: str, rrn: str, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        feature_code(date, rrn)


@given(st.from_regex(r"[0-9]{4}", fullmatch=True), st.from_regex(r"[0-9]{12}", fullmatch=True))
def test_feature_code_is_8_hex_digits_of_the_xor(date: str, rrn: str) -> None:
    code = feature_code(date, rrn)
    data = (date + rrn).encode()
    assert len(code) == 8 and [int(c, 16) for c in code] == [data[i] ^ data[i + 8] for i in range(8)]


# -- receipt TLV --------------------------------------------------------------------------------
def _receipt(**over: Any) -> bytes:
    args: dict[str, Any] = {
        "merchant_name": "测试商户", "txn_type": "000000", "operator": "01", "when": WHEN, "auth_code": "000001",
        "currency": "156", "original_stan": 123, "original_batch": 1, "original_rrn": "000000000001",
        "original_date": "0115", "terminal_id": "TERM0001", "aid": bytes.fromhex("A000000333010101"),
    }
    args.update(over)
    return receipt_tlv(**args)


RECEIPT = bytes.fromhex(
    "FF00 08 B2E2CAD4C9CCBBA7"  # merchant name, GBK: 测试商户
    "FF01 06 303030303030"  # txn type: DE 3 of the sale, "000000"
    "FF02 02 3031"  # operator "01"
    "FF06 07 20250115143015"  # date-time, BCD YYYYMMDDhhmmss
    "FF07 06 303030303031"  # auth code "000001"
    "FF0A 03 313536"  # currency "156"
    "FF22 08 A000000333010101"  # AID (UnionPay debit)
    "FF60 06 303030313233"  # original trace "000123"
    "FF61 06 303030303031"  # original batch "000001"
    "FF62 0C 303030303030303030303031"  # original RRN "000000000001"
    "FF63 04 30313135"  # original date "0115"
    "FF64 06 303030303031"  # original auth code "000001"
    "FF65 08 5445524D30303031"  # terminal id "TERM0001"
    "FF70 01 31"  # print count "1"
)


def test_receipt_tlv_golden_vector_and_parse_back() -> None:
    assert _receipt() == RECEIPT
    back = ReceiptTlv.decode(RECEIPT)
    assert (back.merchant_name, back.when, back.original_stan, back.original_rrn, back.aid) == (
        "测试商户", WHEN, "000123", "000000000001", bytes.fromhex("A000000333010101"))
    assert back.phone is None and back.cryptogram is None and back.original_auth_code == "000001"
    assert back.encode() == RECEIPT


def test_receipt_tlv_optional_tags_and_the_phone_never_shown() -> None:
    data = _receipt(phone="13800138000", cryptogram=bytes(range(8)), aid=None, print_count=0)
    back = ReceiptTlv.decode(data)
    assert (back.phone, back.cryptogram, back.aid, back.print_count) == ("13800138000", bytes(range(8)), None, "0")
    assert "13800138000" not in repr(back)


@pytest.mark.parametrize(("over", "what"), [
    ({"merchant_name": ""}, "FF00"), ({"merchant_name": "商" * 21}, "FF00"), ({"merchant_name": "🙂"}, "GBK"),
    ({"operator": "1"}, "FF02"), ({"currency": "CNY"}, "FF0A"), ({"original_rrn": "1"}, "FF62"),
    ({"aid": b"\xa0"}, "FF22"), ({"cryptogram": b"\x00"}, "FF23"), ({"phone": "+86"}, "FF0B"),
    ({"original_stan": 1_000_000}, "original_stan"),
])
def test_receipt_tlv_refuses_values_outside_its_table(over: dict[str, Any], what: str) -> None:
    with pytest.raises(ValueError, match=what):
        _receipt(**over)


@pytest.mark.parametrize("data", [
    RECEIPT.replace(bytes.fromhex("FF7001 31"), b""),  # a mandatory tag missing
    RECEIPT + bytes.fromhex("FF7001 31"),  # repeated
    RECEIPT + bytes.fromhex("9F2608") + bytes(8),  # EMV data is not a receipt tag
    RECEIPT.replace(bytes.fromhex("20250115143015"), bytes.fromhex("2025011514301A")),  # not BCD
    RECEIPT.replace(bytes.fromhex("20250115143015"), bytes.fromhex("20251315143015")),  # month 13
    RECEIPT.replace(bytes.fromhex("FF0202 3031"), bytes.fromhex("FF0202") + b"0x"),  # operator not digits
    RECEIPT[:-1],  # truncated
])
def test_receipt_tlv_decode_refuses_broken_bytes(data: bytes) -> None:
    with pytest.raises(TLVError):
        ReceiptTlv.decode(data)


@given(st.binary(max_size=300))
def test_receipt_tlv_decode_never_fails_otherwise(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):  # a TLVError, never another exception
        ReceiptTlv.decode(data)


@given(name=st.text(st.characters(codec="gbk", exclude_categories=["Cs"]), min_size=1, max_size=20),
       phone=st.none() | st.from_regex(r"[0-9]{1,20}", fullmatch=True),
       stan=st.integers(0, 999999), count=st.integers(0, 99))
def test_receipt_tlv_round_trips(name: str, phone: str | None, stan: int, count: int) -> None:
    try:
        data = _receipt(merchant_name=name, phone=phone, original_stan=stan, print_count=count)
    except ValueError:
        assert len(name.encode("gbk")) > 40
        return
    back = ReceiptTlv.decode(data)
    assert (back.merchant_name, back.phone, back.original_stan, back.print_count) == (
        name, phone, f"{stan:06d}", str(count))


# -- the 0820 frame -----------------------------------------------------------------------------
UPLOAD_FRAME = bytes.fromhex(
    "01 08"  # length 264
    "30 38 32 30"  # MTI 0820
    "50 22 00 00 08 C0 02 15"  # bitmap: 2 4 11 15 37 41 42 55 60 62 64
    "31 36" "34 37 36 31 37 33 39 30 30 31 30 31 30 30 31 30"  # DE 2 LL 16: the PAN of the sale
    "30 30 30 30 30 30 30 30 31 30 30 30"  # DE 4 amount "000000001000"
    "30 30 30 31 32 33"  # DE 11 the sale's STAN "000123"
    "30 31 31 36"  # DE 15 settlement date "0116"
    "30 30 30 30 30 30 30 30 30 30 30 31"  # DE 37 the sale's RRN "000000000001"
    "54 45 52 4D 30 30 30 31"  # DE 41 "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31"  # DE 42 "MERCHANT0000001"
    "31 32 35" + RECEIPT.hex() +  # DE 55 LLL 125: the receipt TLV
    "30 31 31" "30 37 30 30 30 30 30 31 38 30 30"  # DE 60 LLL 11: "07" + batch "000001" + "800"
    "30 32 34" + TINY_JBIG.hex() +  # DE 62 LLL 24: the image, binary
    "28 64 C4 B5 8F AC BE 49"  # DE 64 MAC, X9.19 under 0123456789ABCDEFFEDCBA9876543210
)


def _upload(**over: Any) -> HostMessage:
    args: dict[str, Any] = {
        "original_stan": 123, "amount_minor": 1000, "pan": Secret(PAN), "settlement_date": "0116",
        "rrn": "000000000001", "batch": 1, "receipt": RECEIPT, "image": TINY_JBIG, **IDS,
    }
    args.update(over)
    return signature_upload_request(**args)


def test_the_0820_golden_frame_both_ways_one_byte_at_a_time() -> None:
    signed = mac.sign(_upload(), X919_KEY)
    assert AcquirerCodec(Role.HOST).send(signed) == UPLOAD_FRAME
    device = AcquirerCodec(Role.DEVICE)
    got: list[HostMessage] = []
    for i in range(len(UPLOAD_FRAME)):
        device.receive_data(UPLOAD_FRAME[i:i + 1])
        if (event := device.next_event()) is not None:
            got.append(event)
    assert got == [signed] and isinstance(got[0].get("62"), bytes) and mac.verify(got[0], X919_KEY)
    assert mac.is_maced("0820") and mac.is_maced("0830")


def test_the_builder_leaves_out_what_is_not_there() -> None:
    msg = _upload(pan=None, settlement_date="0000", receipt=ReceiptTlv.decode(RECEIPT))
    assert "2" not in msg.fields and "15" not in msg.fields and msg.get("55") == RECEIPT
    timed = _upload(when=WHEN, currency="156")
    assert (timed.text("12"), timed.text("13"), timed.text("49")) == ("143015", "0115", "156")
    assert "<redacted>" in repr(msg) and TINY_JBIG.hex() not in repr(msg).lower()


@pytest.mark.parametrize(("over", "what"), [
    ({"image": b""}, "image"), ({"image": bytes(1000)}, "999"), ({"settlement_date": "116"}, "settlement_date"),
    ({"rrn": "1"}, "rrn"), ({"original_stan": 0}, "original_stan"), ({"batch": 10**6}, "batch"),
    ({"amount_minor": 0}, "amount_minor"), ({"terminal_id": "T1"}, "terminal_id"), ({"receipt": b""}, "receipt"),
    ({"pan": Secret("12")}, "PAN"),
])
def test_the_builder_refuses_bad_values_without_quoting_them(over: dict[str, Any], what: str) -> None:
    with pytest.raises(ValueError, match=what) as caught:
        _upload(**over)
    assert PAN not in str(caught.value)


def test_a_999_byte_image_fits_and_an_0810_still_carries_its_keys_as_text() -> None:
    big = _upload(image=bytes(range(256)) * 3 + bytes(231))
    codec = AcquirerCodec(Role.DEVICE)
    codec.receive_data(AcquirerCodec(Role.HOST).send(big))
    assert codec.next_event() == big
    host = Acquirer(now=lambda: WHEN)
    answer = host.respond(sign_on_request(stan=1, batch=1, when=WHEN, **IDS))
    assert answer is not None
    terminal = AcquirerCodec(Role.HOST)
    terminal.receive_data(AcquirerCodec(Role.DEVICE).send(answer))
    keys_answer = terminal.next_event()
    assert keys_answer is not None and isinstance(keys_answer.get("62"), str)


# -- the 0830 ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "ok", "repeat"), [("00", True, False), ("94", True, True), ("30", False, False),
                                                     ("25", False, False), ("A0", False, False)])
def test_00_and_94_are_both_success(code: str, ok: bool, repeat: bool) -> None:
    answer = parse_upload_answer(HostMessage(mti="0830", fields={"11": "000123", "39": code, "41": "TERM0001"}))
    assert (answer.ok, answer.repeat, answer.code, answer.sign_on_required) == (ok, repeat, code, code == "A0")
    assert answer.final is (code == "30")  # a format error: the same 0820 would be refused again


def test_the_0830_parser_wants_an_0830_with_a_code() -> None:
    for msg in (HostMessage(mti="0810", fields={"39": "00"}), HostMessage(mti="0830", fields={})):
        with pytest.raises(RemoteProtocolError):
            parse_upload_answer(msg)


# -- the simulator ------------------------------------------------------------------------------
class _Host:
    """A simulator with a signed-on terminal and one approved sale (STAN 2) to sign for."""

    def __init__(self) -> None:
        self.acquirer = Acquirer(now=lambda: WHEN)
        answer = self.acquirer.respond(sign_on_request(stan=1, batch=1, when=WHEN, **IDS))
        assert answer is not None
        keys = parse_sign_on_response(answer).keys
        assert keys is not None
        self.key = keys.mac_key_bytes.reveal()
        card = get_card("approved")
        sale = sale_request(
            stan=2, amount_minor=1000, pan=Secret(card.pan), entry_mode="swipe", expiry=None,
            track2=Secret(card.track2), icc_data=None, pan_sequence=None, when=WHEN, currency="156", batch=1, **IDS,
        )
        sold = self.acquirer.respond(mac.sign(sale, self.key))
        assert sold is not None
        self.sale = parse_sale_response(sold)
        assert self.sale.approved and self.sale.rrn is not None and self.sale.auth_code is not None
        self.rrn: str = self.sale.rrn

    def upload(self, *, signed: bool = True, **over: Any) -> HostMessage:
        args: dict[str, Any] = {
            "original_stan": 2, "rrn": self.rrn, "settlement_date": "0000",
            "receipt": _receipt(original_stan=2, original_rrn=self.rrn, auth_code=self.sale.auth_code),
        }
        args.update(over)
        msg = _upload(**args)
        return mac.sign(msg, self.key) if signed else msg

    def code(self, request: HostMessage) -> str | None:
        answer = self.acquirer.respond(request)
        if answer is None:
            return None
        assert match(request, answer)
        # A0 is never MACed; 30 is when the request's own MAC verified (docs/host-link.md).
        if answer.response_code != "A0" and (answer.response_code != "30" or _mac_ok(request, self.key)):
            assert mac.verify(answer, self.key), f"{answer.response_code} answer without a good MAC"
        return answer.response_code


def _mac_ok(request: HostMessage, key: bytes) -> bool:
    return request.get("64") is not None and mac.verify(request, key)


def test_the_host_stores_an_upload_once_and_answers_a_repeat_94() -> None:
    host = _Host()
    request = host.upload()
    assert host.code(request) == "00"
    stored = host.acquirer.signature_upload("TERM0001", "000002", "0115")
    assert stored is not None and (stored.image, stored.rrn, stored.amount_minor) == (TINY_JBIG, host.rrn, 1000)
    assert ReceiptTlv.decode(stored.receipt_tlv).original_stan == "000002"
    assert host.code(request) == "94"
    assert host.code(host.upload(image=b"another image")) == "94"  # a second image of the same sale: ignored
    assert host.acquirer.signature_uploads == (stored,)
    assert host.acquirer.internal_errors == []


@pytest.mark.parametrize("field", ["4", "11", "37", "41", "42", "55", "60", "62", "64"])
def test_a_missing_mandatory_field_is_30_and_nothing_is_stored(field: str) -> None:
    host = _Host()
    request = host.upload()
    fields = {k: v for k, v in request.fields.items() if k != field}
    stripped = HostMessage(mti="0820", fields=fields)
    if field != "64":
        stripped = mac.sign(stripped, host.key)
    expected = None if field in ("11", "41") else "30"  # unmatchable: not answered at all
    assert host.code(stripped) == expected
    assert host.acquirer.signature_uploads == ()


@pytest.mark.parametrize(("field", "value"), [
    ("60", "00000001800"), ("60", "07000001000"), ("60", "000001"), ("15", "1399"),
    ("55", bytes.fromhex("9F260800000000000000009F360200019F0206000000001000")),  # EMV data, not a receipt
])
def test_malformed_fields_are_30(field: str, value: str | bytes) -> None:
    host = _Host()
    request = host.upload()
    assert host.code(mac.sign(HostMessage(mti="0820", fields={**request.fields, field: value}), host.key)) == "30"
    assert host.acquirer.signature_uploads == ()


def test_a_receipt_that_names_another_sale_than_de_11_and_37_is_30() -> None:
    host = _Host()
    assert host.code(host.upload(receipt=_receipt(original_stan=3, original_rrn=host.rrn))) == "30"
    assert host.code(host.upload(receipt=_receipt(original_stan=2, original_rrn="999999999999"))) == "30"


@pytest.mark.parametrize("over", [
    {"original_stan": 9, "receipt": None},  # no such sale
    {"rrn": "999999999999", "receipt": None},  # the RRN is another's
    {"amount_minor": 999},  # not the sale's amount
])
def test_an_upload_that_names_no_approved_sale_is_25(over: dict[str, Any]) -> None:
    host = _Host()
    if over.pop("receipt", "keep") is None:
        over["receipt"] = _receipt(original_stan=over.get("original_stan", 2), original_rrn=over.get("rrn", host.rrn))
    assert host.code(host.upload(**over)) == "25"
    assert host.acquirer.signature_uploads == ()


def test_a_30_to_a_maced_upload_is_maced_so_the_terminal_may_act_on_it() -> None:
    host = _Host()
    broken = mac.sign(HostMessage(mti="0820", fields={**host.upload().fields, "60": "000001"}), host.key)
    answer = host.acquirer.respond(broken)
    assert answer is not None and answer.response_code == "30" and mac.verify(answer, host.key)
    unmaced = HostMessage(mti="0820", fields={k: v for k, v in broken.fields.items() if k != "64"})
    answer = host.acquirer.respond(unmaced)  # no MAC to trust: the 30 goes unMACed
    assert answer is not None and answer.response_code == "30" and answer.get("64") is None
    assert parse_upload_answer(answer).final and not parse_upload_answer(answer).ok


def test_a_wrong_mac_is_a0() -> None:
    host = _Host()
    request = host.upload()
    forged = HostMessage(mti="0820", fields={**request.fields, "64": bytes(8)})
    assert host.code(forged) == "A0" and host.acquirer.signature_uploads == ()


def test_upload_faults_for_retry_tests() -> None:
    host = _Host()
    request = host.upload()
    host.acquirer.fail_uploads("96", 1)
    assert host.code(request) == "96" and host.acquirer.signature_uploads == ()
    host.acquirer.fail_uploads("ignore", 1)
    assert host.code(request) is None and host.acquirer.signature_uploads == ()
    host.acquirer.fail_uploads("silent", 1)
    assert host.code(request) is None and len(host.acquirer.signature_uploads) == 1  # stored, answer lost
    assert host.code(request) == "94"  # the retry: success, one effect
    for bad in ("00", "94", "ZZ"):
        with pytest.raises(ValueError):
            host.acquirer.fail_uploads(bad)


def test_the_till_host_control_line() -> None:
    with AcquirerSimulator() as sim:
        handler = COMMANDS["upload-fail"]
        assert handler(sim, ["silent", "2"]).startswith("ok: the next 2 signature upload(s) are stored")
        assert "upload-fail=2" in sim.status()
        assert handler(sim, ["96"]).startswith("ok: the next 1")
        for args in ([], ["00"], ["silent", "x"], ["a", "b", "c"]):
            with pytest.raises(ValueError):
                handler(sim, args)
        COMMANDS["clear"](sim, [])
        assert "upload-fail" not in sim.status()


def test_through_the_link_driver_the_0820_is_maced_and_its_0830_trusted() -> None:
    from drivers.acquirer.driver import AcquirerDriver
    from drivers.transport import attach_peer, detach_peer
    from emulator.acquirer.peer import AcquirerPeer

    host = _Host()
    url = attach_peer("acquirer", AcquirerPeer(host.acquirer))
    driver = AcquirerDriver(url)
    try:
        assert driver.connect() is None
        on = host.acquirer.respond(sign_on_request(stan=3, batch=1, when=WHEN, **IDS))
        assert on is not None
        driver.use_keys(parse_sign_on_response(on).keys)  # new keys: the driver MACs with them
        answers = []
        for _ in range(2):
            assert driver.send(host.upload(signed=False)) is None
            (answer,) = driver.poll()
            assert isinstance(answer, HostMessage)
            answers.append(parse_upload_answer(answer))
        assert [(a.code, a.ok, a.repeat) for a in answers] == [("00", True, False), ("94", True, True)]
        assert not driver.needs_sign_on and driver.mac_failures == 0
        assert len(host.acquirer.signature_uploads) == 1 and host.acquirer.internal_errors == []
    finally:
        driver.close()
        detach_peer(url)
