"""Every test card's device behaviour, PIN entry and the emulator's clock, through the real driver
over emu:// (what the host simulator and the terminal then do with it is tested elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from drivers.base import DeviceEvent
from drivers.card_reader.codec import ACK, CardReaderCodec
from drivers.card_reader.driver import CardReaderDriver
from drivers.card_reader.events import (
    CardRead,
    CardRemoved,
    ChipCompleted,
    Cvm,
    EntryMode,
    FrameReceived,
    PinCancelled,
    PinEntered,
    PinTimeout,
    ReadCancelled,
    ReadFailed,
    StartRead,
)
from drivers.emv import tlv
from drivers.events import Role
from drivers.transport import attach_peer, detach_peer
from emulator.card_reader import emv
from emulator.card_reader.cards import CatalogueError, get_card, load_catalogue, parse_catalogue
from emulator.card_reader.emulator import CONTACTLESS_TAGS, CardReaderEmulator
from firmware_profiles import load_profile

PROFILE = load_profile("card_reader", "generic-pinpad")
LIMIT = int(PROFILE["reader"]["contactless_limit_minor"])
ALL = frozenset(EntryMode)
Rig = tuple[CardReaderDriver, CardReaderEmulator]


@pytest.fixture
def rig() -> Iterator[Rig]:
    emulator = CardReaderEmulator(PROFILE)
    url = attach_peer("card_reader", emulator)
    with CardReaderDriver(url, PROFILE, timeout=0.5) as driver:
        yield driver, emulator
    detach_peer(url)


def start(driver: CardReaderDriver, amount: int = 5000, modes: frozenset[EntryMode] = ALL) -> list[DeviceEvent]:
    assert driver.start_read(amount_minor=amount, currency="156", modes=modes, timeout_s=60) is None
    return driver.poll()


def ask_pin(driver: CardReaderDriver) -> list[DeviceEvent]:
    assert driver.request_pin(amount_minor=5000, currency="156", timeout_s=30) is None
    return driver.poll()


def clear_pin(block: bytes, pan: str) -> str:
    """Test-only decryption of a PIN block under the documented test key."""
    key = emv.TEST_PIN_KEY
    decryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).decryptor()
    clear = decryptor.update(block) + decryptor.finalize()
    text = bytes(a ^ b for a, b in zip(clear, bytes.fromhex("0000" + pan[:-1][-12:]), strict=True)).hex().upper()
    return text[2 : 2 + int(text[1], 16)]


# -- the catalogue -----------------------------------------------------------------------------
REQUIRED = {
    "approved", "approved-swipe", "approved-tap", "declined", "insufficient-funds", "wrong-pin", "expired",
    "pin-required", "signature-required", "chip-error-fallback", "removed-during-read",
    "removed-before-second-ac", "tap-over-limit", "slow-card",
}  # fmt: skip


def test_catalogue_has_every_card_the_issue_names() -> None:
    cards = load_catalogue()
    assert set(cards) >= REQUIRED
    assert len({c.pan for c in cards.values()}) == len(cards)  # the host finds cards by PAN
    codes = {name: cards[name].response_code for name in ("declined", "insufficient-funds", "wrong-pin", "expired")}
    assert codes == {"declined": "05", "insufficient-funds": "51", "wrong-pin": "55", "expired": "54"}
    assert cards["wrong-pin"].pin != cards["wrong-pin"].typed_pin
    assert cards["pin-required"].pin == cards["pin-required"].typed_pin
    card = cards["wrong-pin"]
    assert card.pan not in repr(card) and card.pin not in repr(card) and card.typed_pin not in repr(card)


@pytest.mark.parametrize(
    "patch",
    ['cvm = "telepathy"', 'behaviour = "explodes"', 'entry_modes = ["chip", "nfc"]', 'pin = "12"',
     'fallback_mode = "tap"', 'expiry = "2613"', 'delay_s = -1'],
)  # fmt: skip
def test_catalogue_mistakes_are_caught_at_load(patch: str) -> None:
    base = (
        '[x]\ndescription = "d"\npan = "4761739001010010"\nexpiry = "3012"\nservice_code = "201"\n'
        'entry_modes = ["chip", "swipe"]\ndefault_mode = "chip"\nresponse_code = "00"\n'
    )
    assert parse_catalogue(base)["x"].cvm is Cvm.NONE
    key = patch.split(" ")[0]
    text = "\n".join(line for line in base.splitlines() if not line.startswith(key + " ")) + "\n" + patch + "\n"
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(text)
    assert "4761739001010010" not in str(caught.value)


# -- one test per card's device behaviour ------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cvm"),
    [("approved", Cvm.NONE), ("pin-required", Cvm.ONLINE_PIN), ("wrong-pin", Cvm.ONLINE_PIN),
     ("signature-required", Cvm.SIGNATURE), ("expired", Cvm.NONE), ("declined", Cvm.NONE),
     ("insufficient-funds", Cvm.NONE)],
)  # fmt: skip
def test_plain_chip_cards_read_with_their_cvm_and_a_verifiable_arqc(rig: Rig, name: str, cvm: Cvm) -> None:
    driver, emulator = rig
    card = get_card(name)
    emulator.present(name)
    (read,) = start(driver)
    assert isinstance(read, CardRead) and read.entry_mode is EntryMode.CHIP and read.cvm is cvm
    assert read.expiry.reveal() == card.expiry and read.icc_data is not None
    icc = read.icc_data.reveal()
    assert emv.verify_arqc(icc, card.pan, card.pan_sequence)
    cvm_results = {Cvm.ONLINE_PIN: "020000", Cvm.SIGNATURE: "1E0000", Cvm.NONE: "1F0002"}[cvm]
    assert tlv.decode_dict(icc)["9F34"] == bytes.fromhex(cvm_results)


def test_approved_tap_reads_contactless_below_the_limit(rig: Rig) -> None:
    driver, emulator = rig
    emulator.present("approved-tap")
    (read,) = start(driver, amount=LIMIT)
    assert isinstance(read, CardRead) and read.entry_mode is EntryMode.TAP and read.icc_data is not None
    assert [item.tag for item in tlv.decode(read.icc_data.reveal())] == list(CONTACTLESS_TAGS)
    card = get_card("approved-tap")
    assert emv.verify_arqc(read.icc_data.reveal(), card.pan, card.pan_sequence) and read.cvm is Cvm.NONE


def test_tap_over_limit_is_refused_then_inserted(rig: Rig) -> None:
    driver, emulator = rig
    card = get_card("tap-over-limit")
    assert card.demo_amount_minor is not None and card.demo_amount_minor > LIMIT
    emulator.present("tap-over-limit")
    (failed,) = start(driver, amount=card.demo_amount_minor)
    assert isinstance(failed, ReadFailed) and failed.fallback_allowed and "insert" in failed.reason
    (read,) = start(driver, amount=card.demo_amount_minor, modes=frozenset({EntryMode.CHIP}))
    assert isinstance(read, CardRead) and read.entry_mode is EntryMode.CHIP and read.pan_last4 == card.pan[-4:]


def test_tap_over_limit_card_taps_fine_below_the_limit(rig: Rig) -> None:
    driver, emulator = rig
    emulator.present("tap-over-limit")
    (read,) = start(driver, amount=100)
    assert isinstance(read, CardRead) and read.entry_mode is EntryMode.TAP


def test_chip_error_falls_back_to_swipe(rig: Rig) -> None:
    driver, emulator = rig
    card = get_card("chip-error-fallback")
    emulator.present("chip-error-fallback")
    (failed,) = start(driver)
    assert isinstance(failed, ReadFailed) and failed.fallback_allowed and "swipe" in failed.reason
    (read,) = start(driver, modes=frozenset({EntryMode.SWIPE}))
    assert isinstance(read, CardRead) and read.entry_mode is EntryMode.SWIPE
    assert read.track2 is not None and read.track2.reveal() == card.track2 and read.icc_data is None


def test_fallback_is_forgotten_when_the_terminal_cancels(rig: Rig) -> None:
    driver, emulator = rig
    emulator.present("chip-error-fallback")
    assert isinstance(start(driver)[0], ReadFailed)
    assert driver.cancel() is None and driver.poll() == [ReadCancelled()]
    assert start(driver) == []  # the cardholder took the card away


def test_removed_during_read(rig: Rig) -> None:
    driver, emulator = rig
    emulator.present("removed-during-read")
    failed, removed = start(driver)
    assert isinstance(failed, ReadFailed) and not failed.fallback_allowed and removed == CardRemoved()


def test_removed_before_second_ac(rig: Rig) -> None:
    driver, emulator = rig
    card = get_card("removed-before-second-ac")
    emulator.present(card.name)
    (read,) = start(driver)
    assert isinstance(read, CardRead) and read.icc_data is not None
    arqc = tlv.decode_dict(read.icc_data.reveal())["9F26"]
    arpc = emv.make_arpc(arqc, "00", pan=card.pan, psn=card.pan_sequence)
    assert driver.complete(approved=True, response_code="00", issuer_data=arpc) is None
    assert driver.poll() == [CardRemoved()]  # no TC: the terminal must reverse the approval


def test_approved_card_gets_a_tc_for_the_issuers_arpc(rig: Rig) -> None:
    driver, emulator = rig
    card = get_card("approved")
    emulator.present("approved")
    (read,) = start(driver)
    assert isinstance(read, CardRead) and read.icc_data is not None
    arqc = tlv.decode_dict(read.icc_data.reveal())["9F26"]
    arpc = emv.make_arpc(arqc, "00", pan=card.pan, psn=card.pan_sequence)
    assert driver.complete(approved=True, response_code="00", issuer_data=arpc) is None
    (done,) = driver.poll()
    assert isinstance(done, ChipCompleted) and done.approved


def test_slow_card_answers_when_its_time_has_passed(rig: Rig) -> None:
    driver, emulator = rig
    delay = get_card("slow-card").delay_s
    emulator.present("slow-card")
    assert start(driver) == []
    emulator.advance(delay / 2)
    assert driver.poll() == []
    emulator.advance(delay / 2)
    (read,) = driver.poll()
    assert isinstance(read, CardRead) and read.pan_last4 == get_card("slow-card").pan[-4:]


def test_slow_card_read_can_be_cancelled(rig: Rig) -> None:
    driver, emulator = rig
    emulator.present("slow-card")
    assert start(driver) == []
    assert driver.cancel() is None and driver.poll() == [ReadCancelled()]
    emulator.advance(60)
    assert driver.poll() == []


def test_start_read_times_out_on_the_emulators_clock(rig: Rig) -> None:
    driver, emulator = rig
    assert start(driver) == []
    emulator.advance(59)
    assert driver.poll() == []
    emulator.advance(1)
    (failed,) = driver.poll()
    assert isinstance(failed, ReadFailed) and not failed.fallback_allowed


# -- PIN entry ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "right"), [("pin-required", True), ("wrong-pin", False)])
def test_pin_block_is_bound_to_the_card_and_the_typed_pin(rig: Rig, name: str, right: bool) -> None:
    driver, emulator = rig
    card = get_card(name)
    emulator.present(name)
    assert isinstance(start(driver)[0], CardRead)
    blocks = []
    for _ in range(3):  # the terminal asks again after each 55; the cardholder keeps typing it
        (entered,) = ask_pin(driver)
        assert isinstance(entered, PinEntered) and entered.key_id == emv.TEST_PIN_KEY_ID
        block = entered.pin_block.reveal()
        assert block.hex() not in repr(entered).lower()
        assert emv.verify_pin_block(block, card.pan, card.pin) is right
        assert emv.verify_pin_block(block, card.pan, card.typed_pin)
        assert clear_pin(block, card.pan) == card.typed_pin
        blocks.append(block)
    assert len(set(blocks)) == 1


def test_pin_typed_ahead_wins_over_the_card(rig: Rig) -> None:
    driver, emulator = rig
    emulator.present("pin-required")
    start(driver)
    emulator.enter_pin("975310")
    (entered,) = ask_pin(driver)
    assert isinstance(entered, PinEntered)
    assert clear_pin(entered.pin_block.reveal(), get_card("pin-required").pan) == "975310"


def test_manual_pin_entry_waits_for_the_cardholder(rig: Rig) -> None:
    driver, emulator = rig
    emulator.auto_pin = False
    emulator.present("pin-required")
    start(driver)
    assert ask_pin(driver) == []
    emulator.enter_pin("2468")
    (entered,) = driver.poll()
    assert isinstance(entered, PinEntered)
    assert ask_pin(driver) == []
    emulator.cancel_pin()
    (cancelled,) = driver.poll()
    assert isinstance(cancelled, PinCancelled) and "cardholder" in cancelled.reason
    assert ask_pin(driver) == []
    emulator.advance(29)
    assert driver.poll() == []
    emulator.advance(1)
    assert driver.poll() == [PinTimeout()]


def test_terminal_cancels_pin_entry(rig: Rig) -> None:
    driver, emulator = rig
    emulator.auto_pin = False
    emulator.present("pin-required")
    start(driver)
    assert ask_pin(driver) == []
    assert driver.cancel() is None
    (cancelled,) = driver.poll()
    assert isinstance(cancelled, PinCancelled) and "terminal" in cancelled.reason


def test_pin_without_a_card_is_refused(rig: Rig) -> None:
    driver, emulator = rig
    (refused,) = ask_pin(driver)
    assert isinstance(refused, PinCancelled)
    emulator.present("pin-required")
    start(driver)
    emulator.remove()
    assert driver.poll() == [CardRemoved()]
    (refused,) = ask_pin(driver)
    assert isinstance(refused, PinCancelled)


def test_bad_pins_are_refused_without_echo(rig: Rig) -> None:
    _, emulator = rig
    for pin in ("123", "12345678901234", "12a4"):
        with pytest.raises(ValueError) as caught:
            emulator.enter_pin(pin)
        assert pin not in str(caught.value)


# -- the device end's own ACK timer --------------------------------------------------------------
def test_emulator_resends_an_unacknowledged_frame_then_gives_up() -> None:
    emulator = CardReaderEmulator(PROFILE)
    host = CardReaderCodec(Role.HOST)
    emulator.receive(host.send(StartRead(amount_minor=1, currency="156", modes=ALL, timeout_s=60)))
    emulator.present("approved")
    first = emulator.transmit()
    assert first[:1] == bytes([ACK]) and len(first) > 10  # ACK for StartRead, then the CardRead frame
    frame = first[1:]
    wait = float(PROFILE["link"]["ack_timeout_s"])
    emulator.advance(wait - 0.5)
    assert emulator.transmit() == b""
    emulator.advance(0.5)
    assert emulator.transmit() == frame  # resent, unchanged
    emulator.advance(wait)
    assert emulator.transmit() == frame
    emulator.advance(wait)
    assert emulator.transmit() == b"\x04"  # max_naks failures: EOT
    host.receive_data(first)
    events = []
    while (event := host.next_event()) is not None:
        events.append(event)
    assert not any(isinstance(e, FrameReceived) for e in events) and isinstance(events[-1], CardRead)


def test_tick_is_advance_for_served_links() -> None:
    emulator = CardReaderEmulator(PROFILE)
    host = CardReaderCodec(Role.HOST)
    emulator.present("slow-card")
    emulator.receive(host.send(StartRead(amount_minor=1, currency="156", modes=ALL, timeout_s=60)))
    assert emulator.transmit() == bytes([ACK])  # nothing but the ACK: the card is still thinking
    emulator.advance(get_card("slow-card").delay_s)
    host.receive_data(emulator.transmit())
    events = []
    while (event := host.next_event()) is not None:
        events.append(event)
    assert isinstance(events[-1], CardRead) and emulator.now == get_card("slow-card").delay_s


def test_a_reader_without_contactless_refuses_a_tap() -> None:
    emulator = CardReaderEmulator({**PROFILE, "reader": {**PROFILE["reader"], "entry_modes": ["chip", "swipe"]}})
    with pytest.raises(ValueError):
        emulator.present("approved-tap")
    emulator.present("approved-tap", "chip")


# -- the ATC persists per card; the unpredictable number is the terminal's -------------------------
def _chip_read(emulator: CardReaderEmulator, card: str = "approved", un: bytes = b"") -> dict[str, bytes]:
    url = attach_peer("card_reader", emulator)
    try:
        with CardReaderDriver(url, PROFILE, timeout=0.5) as driver:
            emulator.present(card)
            assert driver.start_read(amount_minor=5000, currency="156", modes=ALL, timeout_s=60,
                                     unpredictable_number=un) is None
            (read,) = driver.poll()
    finally:
        detach_peer(url)
    assert isinstance(read, CardRead) and read.icc_data is not None
    return tlv.decode_dict(read.icc_data.reveal())


def test_the_atc_survives_a_restart_and_counts_per_card(tmp_path: Path) -> None:
    first = CardReaderEmulator(PROFILE)
    first.use_folder(tmp_path)
    assert [_chip_read(first)["9F36"] for _ in range(2)] == [b"\x00\x01", b"\x00\x02"]
    again = CardReaderEmulator(PROFILE)  # the emulator restarts on the same folder
    again.use_folder(tmp_path)
    assert _chip_read(again)["9F36"] == b"\x00\x03"
    assert _chip_read(again, "pin-required")["9F36"] == b"\x00\x01"  # each card its own counter
    assert "4761" not in (tmp_path / "atc.json").read_text()  # names the cards, never a PAN


def test_the_card_signs_the_terminals_unpredictable_number() -> None:
    emulator = CardReaderEmulator(PROFILE)
    icc = _chip_read(emulator, un=bytes.fromhex("A1B2C3D4"))
    assert icc["9F37"] == bytes.fromhex("A1B2C3D4")
    card = get_card("approved")
    assert emv.verify_arqc(tlv.encode(list(icc.items())), card.pan, card.pan_sequence)


def test_without_a_terminal_number_the_reader_draws_its_own_at_random() -> None:
    emulator = CardReaderEmulator(PROFILE)
    assert _chip_read(emulator)["9F37"] != _chip_read(CardReaderEmulator(PROFILE))["9F37"]  # same ATC, card, amount


def test_start_read_carries_the_unpredictable_number_on_the_wire() -> None:
    host, device = CardReaderCodec(Role.HOST, PROFILE), CardReaderCodec(Role.DEVICE, PROFILE)
    device.receive_data(host.send(StartRead(amount_minor=1, currency="156", modes=ALL, timeout_s=9,
                                            unpredictable_number=b"\x01\x02\x03\x04")))
    read = device.next_event()
    assert isinstance(read, StartRead) and read.unpredictable_number == b"\x01\x02\x03\x04"
