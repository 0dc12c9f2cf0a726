"""The simulator's side of the keys (emulator/acquirer/keys.py) and the PIN pad's LoadPinKey:
MACs verified and given, A0 for a bad or missing one, keys void after a sign-off, PIN blocks
checked under the working PIN key, a working PIN key that fails its KCV refused by the pad."""

from __future__ import annotations

from datetime import datetime

import pytest

from drivers.acquirer import mac
from drivers.acquirer.events import HostMessage
from drivers.acquirer.keys import TEST_TMK, encrypt_key, kcv
from drivers.card_reader.events import EntryMode, LoadPinKey, PinEntered, RequestPin, StartRead
from drivers.card_reader.messages import decode_message, encode_message
from drivers.events import Role
from drivers.sensitive import Secret
from emulator.acquirer.core import Acquirer
from emulator.card_reader.cards import get_card
from emulator.card_reader.emv import TEST_PIN_KEY, TEST_PIN_KEY_ID, encrypt_pin_block
from firmware_profiles import load_profile
from terminal.host.messages import parse_sign_on_response, sale_request, sign_off_request, sign_on_request

IDS = {"terminal_id": "TERM0001", "merchant_id": "MERCHANT0000001"}
WHEN = datetime(2025, 1, 15, 14, 30, 15)


def _sign_on(host: Acquirer, stan: int = 1) -> bytes:
    answer = host.respond(sign_on_request(stan=stan, batch=1, when=WHEN, **IDS))
    assert answer is not None
    keys = parse_sign_on_response(answer).keys
    assert keys is not None
    return keys.mac_key_bytes.reveal()


def _sale(stan: int, card: str = "approved", pin_block: bytes | None = None) -> HostMessage:
    c = get_card(card)
    return sale_request(
        stan=stan, amount_minor=1000, pan=Secret(c.pan), entry_mode="swipe", expiry=Secret(c.expiry),
        track2=Secret(c.track2),
        icc_data=None, pan_sequence=None, when=WHEN, currency="156", batch=1,
        pin_block=None if pin_block is None else Secret(pin_block), **IDS,
    )


def _code(host: Acquirer, request: HostMessage) -> str | None:
    answer = host.respond(request)
    assert answer is not None
    return answer.response_code


@pytest.mark.parametrize("require_mac", [False, True])
def test_a_maced_request_is_verified_and_its_answer_maced(require_mac: bool) -> None:
    host = Acquirer(now=lambda: WHEN, require_mac=require_mac)
    key = _sign_on(host)
    answer = host.respond(mac.sign(_sale(2), key))
    assert answer is not None and answer.response_code == "00" and mac.verify(answer, key)
    assert _code(host, mac.sign(_sale(3), bytes(16))) == "A0"  # someone else's key
    unmaced = host.respond(_sale(4))
    assert unmaced is not None and unmaced.response_code == ("A0" if require_mac else "00")
    assert "64" not in unmaced.fields  # nothing to MAC with: the request carried no MAC


def test_a_mac_before_any_sign_on_or_after_a_sign_off_is_a0() -> None:
    host = Acquirer(now=lambda: WHEN)
    assert _code(host, mac.sign(_sale(1), bytes(range(16)))) == "A0"
    key = _sign_on(host, 2)
    assert _code(host, mac.sign(_sale(3), key)) == "00"
    assert _code(host, sign_off_request(stan=4, batch=1, when=WHEN, **IDS)) == "00"
    assert _code(host, mac.sign(_sale(5), key)) == "A0"  # the keys ended with the sign-off
    new = _sign_on(host, 6)
    assert new != key and _code(host, mac.sign(_sale(7), new)) == "00"


def test_the_pin_block_of_a_maced_request_is_checked_under_the_working_pin_key() -> None:
    host = Acquirer(now=lambda: WHEN)
    answer = host.respond(sign_on_request(stan=1, batch=1, when=WHEN, **IDS))
    assert answer is not None
    keys = parse_sign_on_response(answer).keys
    assert keys is not None
    card = get_card("pin-required")
    working = encrypt_pin_block(card.pin, card.pan, keys.pin_key_bytes.reveal())
    fixed = encrypt_pin_block(card.pin, card.pan, TEST_PIN_KEY)
    key = keys.mac_key_bytes.reveal()
    assert _code(host, mac.sign(_sale(2, "pin-required", working), key)) == "00"
    assert _code(host, mac.sign(_sale(3, "pin-required", fixed), key)) == "55"  # the pad kept the old key
    assert _code(host, _sale(4, "pin-required", fixed)) == "00"  # the unMACed test mode: the fixed key


def test_load_pin_key_round_trips_and_never_shows_the_key() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    command = LoadPinKey(wrapped_key=Secret(encrypt_key(TEST_TMK, key)), kcv=kcv(key))
    payload = encode_message(command)
    assert payload[0] == 0x41 and len(payload) == 21
    assert decode_message(payload, sender=Role.HOST) == command
    assert key.hex().upper() not in repr(command) and encrypt_key(TEST_TMK, key).hex() not in repr(command)


def _pin_from_pad(load: LoadPinKey | None) -> PinEntered:
    from emulator.card_reader.emulator import CardReaderEmulator

    pad = CardReaderEmulator(load_profile("card_reader", "generic-pinpad"))
    if load is not None:
        pad._handle(load)
    pad.present("pin-required", "swipe")
    pad._handle(StartRead(amount_minor=1000, currency="156", modes=frozenset({EntryMode.SWIPE}), timeout_s=30))
    pad._handle(RequestPin(amount_minor=1000, currency="156", timeout_s=30))
    events = [e for e in pad._outbox if isinstance(e, PinEntered)]
    assert len(events) == 1
    return events[0]


def test_the_pad_encrypts_under_a_loaded_key_and_refuses_one_that_fails_its_kcv() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    card = get_card("pin-required")
    wrapped = Secret(encrypt_key(TEST_TMK, key))
    loaded = _pin_from_pad(LoadPinKey(wrapped_key=wrapped, kcv=kcv(key)))
    assert loaded.pin_block.reveal() == encrypt_pin_block(card.pin, card.pan, key)
    assert loaded.key_id == f"WPK-{kcv(key).hex().upper()}"
    refused = _pin_from_pad(LoadPinKey(wrapped_key=wrapped, kcv=bytes(4)))
    assert refused.pin_block.reveal() == encrypt_pin_block(card.pin, card.pan, TEST_PIN_KEY)
    assert refused.key_id == TEST_PIN_KEY_ID
