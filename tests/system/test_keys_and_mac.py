"""Working keys in use: DE 64 on every financial message both ways, the PIN block under the
working PIN key loaded into the PIN pad, A0 and a new sign-on for a bad MAC, and an answer with
a bad MAC treated as no answer (docs/host-link.md "Keys and MAC")."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.acquirer import mac
from drivers.acquirer.events import HostMessage
from drivers.acquirer.keys import TEST_TMK
from drivers.acquirer.spec import WorkingKeys
from emulator.acquirer.simulator import AcquirerSimulator
from emulator.card_reader.cards import get_card
from emulator.card_reader.emv import encrypt_pin_block
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.clock import FakeClock
from tests.system.conftest import SUPERVISOR

S = CheckoutState


def _flip(msg: HostMessage) -> HostMessage:
    """The message with one bit of its DE 64 changed (line noise, or a forger without the key)."""
    given = msg.get("64")
    assert isinstance(given, bytes), f"{msg.mti} carries no MAC"
    return HostMessage(mti=msg.mti, fields={**msg.fields, "64": bytes([given[0] ^ 1]) + given[1:]})


class RecordingHost(AcquirerSimulator):
    """The simulator, recording what crossed it and spoiling the MAC of chosen messages."""

    def __init__(self) -> None:
        super().__init__(require_sign_on=True)
        self.keys.require_mac = True  # an unMACed financial request is A0
        self.requests: list[HostMessage] = []
        self.answers: list[HostMessage] = []
        self.spoil_requests: set[str] = set()  # MTIs whose next request arrives with a bad MAC
        self.spoil_answers: set[str] = set()  # MTIs whose next answer leaves with a bad MAC

    def respond(self, request: HostMessage) -> HostMessage | None:
        if request.mti in self.spoil_requests:
            self.spoil_requests.discard(request.mti)
            request = _flip(request)
        self.requests.append(request)
        answer = super().respond(request)
        if answer is not None:
            self.answers.append(answer)
            if answer.mti in self.spoil_answers:
                self.spoil_answers.discard(answer.mti)
                answer = _flip(answer)
        return answer

    def last(self, mti: str, of: list[HostMessage]) -> HostMessage:
        return [m for m in of if m.mti == mti][-1]


@pytest.fixture
def host() -> Iterator[RecordingHost]:
    sim = RecordingHost()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def till(clock: FakeClock, var_dir: Path, host: RecordingHost) -> Iterator[EmulatedTill]:
    url = f"tcp://{host.address[0]}:{host.address[1]}"
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"host.url": url}) as t:
        yield t


def _sell(till: EmulatedTill, card: str = "approved") -> tuple[str | None, str | None]:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present(card)
    sale = till.sale(1500, io_wait=2.0)
    return sale.outcome, sale.response_code


def test_a_sale_is_maced_both_ways(till: EmulatedTill, host: RecordingHost) -> None:
    assert _sell(till) == ("APPROVED", "00")
    request, answer = host.last("0200", host.requests), host.last("0210", host.answers)
    keys = till.flow.working_keys
    assert keys is not None
    assert mac.verify(request, keys.mac_key_bytes.reveal())
    assert mac.verify(answer, keys.mac_key_bytes.reveal())
    assert "64" not in host.last("0800", host.requests).fields  # the sign-on brings the key: no MAC


def test_the_pin_block_is_under_the_working_pin_key(till: EmulatedTill, host: RecordingHost) -> None:
    assert _sell(till, "pin-required") == ("APPROVED", "00")
    block = host.last("0200", host.requests).get("52")
    keys = till.flow.working_keys
    assert keys is not None and isinstance(block, bytes)
    card = get_card("pin-required")
    assert block == encrypt_pin_block(card.pin, card.pan, keys.pin_key_bytes.reveal())
    assert block != encrypt_pin_block(card.pin, card.pan)  # not the pad's fixed test key any more


def test_a_request_with_a_bad_mac_is_a0_and_the_terminal_signs_on_again(
    till: EmulatedTill, host: RecordingHost,
) -> None:
    first = till.flow.working_keys
    host.spoil_requests.add("0200")
    assert _sell(till) == ("DECLINED", "A0")
    assert "64" not in host.last("0210", host.answers).fields  # A0 is not MACed: the key is in doubt
    assert till.runtime.run_until(lambda: till.flow.state is S.IDLE and till.flow.signed_on, io_wait=2.0)
    assert till.flow.working_keys not in (None, first)  # new keys ...
    assert _sell(till) == ("APPROVED", "00")  # ... that the host accepts
    assert [m.mti for m in host.requests][-3:] == ["0200", "0800", "0200"]


def test_an_answer_with_a_bad_mac_is_no_answer(till: EmulatedTill, host: RecordingHost, clock: FakeClock) -> None:
    assert till.emulators.card_reader is not None
    first = till.flow.working_keys
    host.spoil_answers.add("0210")
    till.emulators.card_reader.present("approved")
    sale = till.flow.begin_sale(4200)
    assert till.runtime.run_until(lambda: till.flow.state is S.AUTHORIZING, io_wait=2.0)
    till.runtime.run_until(lambda: host.answers != [] and host.answers[-1].mti == "0210", io_wait=2.0)
    till.runtime.step()
    assert till.flow.state is S.AUTHORIZING  # the approval was dropped: still waiting
    clock.advance(float(till.terminal["host"]["timeout_s"]))
    assert till.runtime.run_until(lambda: till.flow.state is S.IDLE and not till.journal.pending_reversals(),
                                  io_wait=2.0)
    assert sale.outcome != "APPROVED"
    assert sale.record is not None
    stan = f"{sale.record.stan:06d}"
    assert host.net_effect(str(till.terminal["terminal_id"]), stan) == 0  # reversed, as for no answer
    mtis = [m.mti for m in host.requests]
    # The reversal goes at once, under the keys the 0200 went under (the host still holds them);
    # then new keys before the next sale.
    assert mtis[mtis.index("0200"):][:3] == ["0200", "0400", "0800"]
    assert till.flow.working_keys not in (None, first)


def _key_canaries(keys: WorkingKeys | None) -> dict[str, bytes]:
    """Every form a key could leak in: hex either case, raw bytes, hex of the ASCII hex."""
    assert keys is not None
    forms: dict[str, bytes] = {}
    secrets = {"pin key": keys.pin_key_bytes.reveal(), "mac key": keys.mac_key_bytes.reveal(), "TMK": TEST_TMK}
    for name, raw in secrets.items():
        forms |= {f"{name} hex": raw.hex().upper().encode(), f"{name} hex lower": raw.hex().encode(),
                  f"{name} raw": raw, f"{name} ascii dump": raw.hex().upper().encode().hex().encode()}
    return forms


def test_keys_never_reach_logs_receipts_or_the_disk(
    clock: FakeClock, var_dir: Path, host: RecordingHost, caplog: pytest.LogCaptureFixture,
) -> None:
    """The card-data canary scan (tests/system/test_sale.py) extended to the working keys and the TMK:
    every key set of the run, in every form, is looked for in the log, the receipts and var/
    (journal, settlement archives, audit trail: what `till` exports from)."""
    caplog.set_level(logging.DEBUG)
    url = f"tcp://{host.address[0]}:{host.address[1]}"
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"host.url": url}) as till:
        key_sets = [till.flow.working_keys]
        assert _sell(till, "pin-required") == ("APPROVED", "00")
        host.spoil_requests.add("0200")
        assert _sell(till) == ("DECLINED", "A0")
        assert till.runtime.run_until(lambda: till.flow.signed_on, io_wait=2.0)
        key_sets.append(till.flow.working_keys)
        assert _sell(till, "pin-required") == ("APPROVED", "00")
        assert till.settle(**SUPERVISOR, io_wait=2.0) is not None
        assert till.emulators.printer is not None
        receipts = "\n".join(page.text for page in till.emulators.printer.pages).encode("utf-8")
    assert key_sets[0] != key_sets[1] and receipts
    places = {"log": caplog.text.encode("utf-8"), "receipts": receipts}
    places |= {str(p.relative_to(var_dir)): p.read_bytes() for p in var_dir.rglob("*") if p.is_file()}
    assert any(name.startswith("journal") for name in places)
    for keys in key_sets:
        for form, canary in _key_canaries(keys).items():
            leaks = [where for where, data in places.items() if canary in data]
            assert not leaks, f"the {form} shows in {leaks}"


@pytest.mark.parametrize("sign_off", [True, False])
def test_sign_off_after_settlement_where_the_profile_says_so(
    clock: FakeClock, var_dir: Path, host: RecordingHost, sign_off: bool,
) -> None:
    url = f"tcp://{host.address[0]}:{host.address[1]}"
    overrides = {"host.url": url, "host.sign_off_after_settlement": sign_off}
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides=overrides) as till:
        first = till.flow.working_keys
        assert _sell(till) == ("APPROVED", "00")
        result = till.settle(**SUPERVISOR, io_wait=2.0)
        assert result is not None and result.balanced
        assert till.flow.state is S.IDLE
        if sign_off:  # the host sees 0800 sign-off (签退) and answers it
            assert till.runtime.run_until(lambda: any(m.mti == "0810" and m.text("3") == "930000"
                                                      for m in host.answers), io_wait=2.0)
        network = [m.text("3") for m in host.requests if m.mti == "0800"]
        assert network == (["920000", "930000"] if sign_off else ["920000"])
        assert till.flow.signed_on is not sign_off
        clock.advance(LIMITS.housekeeping_s)
        assert till.runtime.run_until(lambda: till.flow.signed_on and till.flow.state is S.IDLE, io_wait=2.0)
        assert (till.flow.working_keys != first) is sign_off  # signed on again: new keys for the new batch
        assert _sell(till) == ("APPROVED", "00")
