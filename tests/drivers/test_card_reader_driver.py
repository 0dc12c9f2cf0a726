"""The real card reader driver against the real emulator over emu:// (no mocks of serial):
the read, the second GENERATE AC, and every line fault. Per-card behaviour and PIN entry are in
test_card_reader_cards.py."""

from __future__ import annotations

import pytest

from drivers.card_reader.driver import CardReaderDriver
from drivers.card_reader.events import (
    CardRead,
    CardRemoved,
    ChipCompleted,
    DeviceInfo,
    EntryMode,
    ReadCancelled,
    ReadFailed,
)
from drivers.emv import tlv
from drivers.errors import PortError
from drivers.transport import attach_peer, detach_peer
from emulator.card_reader import emv
from emulator.card_reader.cards import UnknownCardError, get_card
from emulator.card_reader.emulator import CONTACTLESS_TAGS, ICC_TAGS, CardReaderEmulator
from firmware_profiles import load_profile
from tests.drivers.card_rig import PROFILE, only

REQUIRED_ICC_TAGS = {
    "5A", "57", "5F24", "5F34", "82", "95", "9A", "9C", "9F02", "5F2A", "9F1A", "9F10", "9F26", "9F27", "9F36", "9F37",
}  # fmt: skip
ALL_MODES = frozenset(EntryMode)
ISSUER_DATA = bytes.fromhex("9E16BF16B1E390A23030")  # §7: ARPC + ARC, for the §7 ARQC only


def read_card(reader: CardReaderDriver, amount: int = 12500, modes: frozenset[EntryMode] = ALL_MODES) -> CardRead:
    assert reader.start_read(amount_minor=amount, currency="156", modes=modes, timeout_s=60) is None
    events = reader.poll()
    assert [type(e) for e in events] == [CardRead]
    read = events[0]
    assert isinstance(read, CardRead)
    return read


def test_device_info_comes_from_the_profile(reader: CardReaderDriver) -> None:
    info = reader.device_info()
    assert info == DeviceInfo(model=PROFILE["model"], serial_number="EMU-PP-0001", firmware=PROFILE["firmware"])
    assert reader.poll() == []


def test_chip_read_carries_field_55_with_the_amount(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved")
    read = read_card(reader, amount=12500)
    card = get_card("approved")
    assert read.entry_mode is EntryMode.CHIP
    assert read.pan.reveal() == card.pan and read.pan_last4 == "0010"
    assert read.expiry.reveal() == card.expiry and read.pan_sequence == "01"
    assert card.pan not in repr(read)
    assert read.icc_data is not None
    icc = tlv.decode_dict(read.icc_data.reveal())
    assert set(icc) >= REQUIRED_ICC_TAGS
    assert icc["9F02"] == bytes.fromhex("000000012500")
    assert icc["5A"] == bytes.fromhex(card.pan)
    assert tlv.decode_track2(icc["57"]) == card.track2
    assert icc["5F24"] == bytes.fromhex(card.expiry + "31") and icc["5F34"] == b"\x01"
    assert icc["5F2A"] == icc["9F1A"] == bytes.fromhex("0156")
    assert icc["9F27"] == b"\x80" and len(icc["9F26"]) == 8 and icc["9F36"] == b"\x00\x01"


def test_the_arqc_is_real_and_covers_the_amount(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    crypto = []
    card = get_card("approved")
    for amount in (100, 200):
        emulator.present("approved")
        read = read_card(reader, amount=amount)
        assert read.icc_data is not None
        assert emv.verify_arqc(read.icc_data.reveal(), card.pan, card.pan_sequence)
        crypto.append(tlv.decode_dict(read.icc_data.reveal())["9F26"])
        emulator.remove()
        assert reader.poll() == [CardRemoved()]
    assert crypto[0] != crypto[1]


def test_card_presented_after_start_read(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    assert reader.start_read(amount_minor=500, currency="156", modes=ALL_MODES, timeout_s=30) is None
    assert reader.poll() == []
    emulator.present("declined")
    (read,) = reader.poll()
    assert isinstance(read, CardRead) and read.pan_last4 == "0028"


def test_swipe_read_carries_track2(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved-swipe")
    read = read_card(reader)
    card = get_card("approved-swipe")
    assert read.entry_mode is EntryMode.SWIPE
    assert read.track2 is not None and read.track2.reveal() == card.track2
    assert read.icc_data is None and read.pan_sequence is None
    assert read.pan.reveal() == card.pan and read.expiry.reveal() == card.expiry


def test_tap_read_carries_the_contactless_subset(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved", "tap")
    read = read_card(reader, amount=3000)
    assert read.entry_mode is EntryMode.TAP and read.icc_data is not None
    assert [item.tag for item in tlv.decode(read.icc_data.reveal())] == list(CONTACTLESS_TAGS)
    assert set(CONTACTLESS_TAGS) < set(ICC_TAGS) and "5A" not in CONTACTLESS_TAGS


def test_tap_over_the_contactless_limit_fails(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved", "tap")
    limit = PROFILE["reader"]["contactless_limit_minor"]
    assert reader.start_read(amount_minor=limit + 1, currency="156", modes=ALL_MODES, timeout_s=60) is None
    (failed,) = reader.poll()
    assert isinstance(failed, ReadFailed) and failed.fallback_allowed


def test_entry_mode_not_enabled_fails(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved-swipe")
    assert reader.start_read(amount_minor=1, currency="156", modes={EntryMode.CHIP}, timeout_s=60) is None
    assert [type(e) for e in reader.poll()] == [ReadFailed]


def test_removal(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved")
    read_card(reader)
    emulator.remove()
    assert reader.poll() == [CardRemoved()]
    # The card left: the chip transaction cannot be completed any more.
    assert reader.complete(approved=True, response_code="00") is None
    assert [type(e) for e in reader.poll()] == [ReadFailed]


def test_cancel(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    assert reader.start_read(amount_minor=100, currency="156", modes=ALL_MODES, timeout_s=60) is None
    assert reader.cancel() is None
    assert reader.poll() == [ReadCancelled()]
    emulator.present("approved")  # nobody is waiting for a card any more
    assert reader.poll() == []


@pytest.mark.parametrize(
    ("card", "approved", "code", "arpc", "cid", "outcome"),
    [
        ("approved", True, "00", "valid", b"\x40", True),  # TC
        ("declined", False, "05", "valid", b"\x00", False),  # AAC
        ("approved", True, "00", "none", b"\x00", False),  # no issuer authentication: AAC
        ("approved", True, "00", "section-7", b"\x00", False),  # an ARPC for another ARQC: AAC
        ("approved", False, "Z3", "none", b"\x00", False),  # host unreachable: AAC
    ],
)
def test_complete_chip(
    reader: CardReaderDriver,
    emulator: CardReaderEmulator,
    card: str,
    approved: bool,
    code: str,
    arpc: str,
    cid: bytes,
    outcome: bool,
) -> None:
    emulator.present(card)
    first = read_card(reader)
    assert first.icc_data is not None
    first_icc = tlv.decode_dict(first.icc_data.reveal())
    test_card = get_card(card)
    issuer_data = {
        "valid": emv.make_arpc(first_icc["9F26"], code, pan=test_card.pan, psn=test_card.pan_sequence),
        "none": b"",
        "section-7": ISSUER_DATA,
    }[arpc]
    assert reader.complete(approved=approved, response_code=code, issuer_data=issuer_data) is None
    (done,) = reader.poll()
    assert isinstance(done, ChipCompleted) and done.approved is outcome
    icc = tlv.decode_dict(done.icc_data.reveal())
    assert icc["9F27"] == cid and icc["8A"] == code.encode()
    assert icc["9F36"] == first_icc["9F36"]


def test_show_message_in_chinese_and_english(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    assert reader.show_message("请插卡 Insert card") is None
    assert emulator.display == "请插卡 Insert card"
    assert reader.poll() == []


def test_emulator_refuses_unknown_cards_and_modes(emulator: CardReaderEmulator) -> None:
    with pytest.raises(UnknownCardError):
        emulator.present("no-such-card")
    with pytest.raises(ValueError):
        emulator.present("approved-swipe", "chip")
    assert "approved" in emulator.list_cards()


def test_driver_must_be_open() -> None:
    with pytest.raises(PortError):
        CardReaderDriver("emu://card_reader?instance=none", PROFILE).poll()


@pytest.mark.parametrize("profile_name", ["generic-pinpad", "cn-mispos-binary"])
def test_each_profile_reads_and_answers(profile_name: str) -> None:
    profile = load_profile("card_reader", profile_name)
    emulator = CardReaderEmulator(profile)
    url = attach_peer("card_reader", emulator)
    try:
        with CardReaderDriver(url, profile, timeout=0.5) as reader:
            info = reader.device_info()
            assert isinstance(info, DeviceInfo) and info.serial_number == profile["serial_number"]
            emulator.present("approved")
            emulator.corrupt_frames(1)
            assert reader.start_read(amount_minor=100, currency="156", modes=ALL_MODES, timeout_s=60) is None
            read = only(reader.poll(), CardRead)
            assert len(read) == 1 and emulator.stats.resends == 1
    finally:
        detach_peer(url)
