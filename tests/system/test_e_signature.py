"""电签 end to end on virtual time: the pad captures, the signature is bound to its sale and
printed on the merchant copy, blank ones are asked again, Clear / Cancel / the time running out /
a pad fault fall back as the profile says, and every signature goes up to the acquirer once
(0820; a repeat is 94), retried at settlement and reported when it never goes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.control import apply
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from tests.system.conftest import SUPERVISOR, run_cli, sign_on_pad

S = CheckoutState


@pytest.fixture
def till(clock: FakeClock, var_dir: Path) -> Iterator[EmulatedTill]:
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu") as t:
        yield t


def _signature_sale(till: EmulatedTill, amount: int = 4321):  # type: ignore[no-untyped-def]
    till.emulators.card_reader.present("signature-required")
    sale = till.sale(amount)
    assert till.flow.state is S.SIGNATURE_REQUIRED
    return sale


def _wait(till: EmulatedTill, clock: FakeClock, seconds: float) -> None:
    for _ in range(int(seconds / 0.25)):
        clock.advance(0.25)
        till.runtime.run_until(lambda: False, io_wait=0.0)


def _press(till: EmulatedTill, clock: FakeClock, key: str) -> None:
    assert apply(till.emulators.signature_pad, key).startswith("ok")
    _wait(till, clock, 0.5)


def test_the_pad_shows_the_amount_and_feature_code_and_the_signature_is_bound(till: EmulatedTill,
                                                                               clock: FakeClock) -> None:
    sale = _signature_sale(till)
    screen = apply(till.emulators.signature_pad, "status")
    assert "43.21" in screen and "特征码 " in screen
    sign_on_pad(till, clock, "张三")
    assert sale.outcome == "APPROVED" and sale.signed and till.flow.state is S.IDLE
    stored = till.journal.signature(sale.txn_id)
    assert stored is not None and till.journal.verify_signature(sale.txn_id)
    assert stored.feature_code in screen and len(stored.strokes) < 4000  # compact: delta-encoded
    merchant = till.emulators.printer.pages[-2].text
    assert "持卡人签名" in merchant and stored.feature_code in merchant
    assert "张三" not in repr(stored)  # personal data stays out of logs


def test_the_signature_goes_up_once_and_a_repeat_is_94(till: EmulatedTill, clock: FakeClock) -> None:
    host = till.emulators.acquirer
    assert host is not None
    host.fail_uploads("silent", 1)  # stored, the answer lost: the resend must not store it twice
    sale = _signature_sale(till)
    sign_on_pad(till, clock)
    assert till.journal.upload_state(sale.txn_id) == ("PENDING", 1)
    _wait(till, clock, 130.0)  # the host's timeout for the lost answer, then the next idle round
    assert till.journal.upload_state(sale.txn_id) == ("DONE", 2)
    assert len(host.signature_uploads) == 1


def test_a_blank_signature_is_asked_again_then_falls_back_to_paper(till: EmulatedTill, clock: FakeClock) -> None:
    sale = _signature_sale(till)
    attempts = int(till.profiles["signature_pad"]["capture"]["max_attempts"])
    for attempt in range(attempts):
        _press(till, clock, "ok")
        if attempt < attempts - 1:
            assert till.flow.state is S.SIGNATURE_REQUIRED and "签名无效" in sale.messages[-2]
    till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=0.01)
    assert sale.outcome == "APPROVED" and not sale.signed  # signed on paper instead
    assert till.journal.signature(sale.txn_id) is None
    assert "signature_on_paper" in [i["kind"] for i in till.journal.exception_report()]


def test_clear_starts_again(till: EmulatedTill, clock: FakeClock) -> None:
    sale = _signature_sale(till)
    assert apply(till.emulators.signature_pad, "sign J. SMITH").startswith("ok")
    _wait(till, clock, 0.5)
    _press(till, clock, "clear")
    assert till.flow.state is S.SIGNATURE_REQUIRED
    sign_on_pad(till, clock, "张三")
    assert sale.signed


@pytest.mark.parametrize("how", ["cancel", "timeout", "unplugged"])
def test_without_a_signature_a_void_profile_reverses_the_sale(clock: FakeClock, var_dir: Path, how: str) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu",
                             overrides={"signature.fallback": "void"}) as till:
        sale = _signature_sale(till, 999)
        if how == "cancel":
            _press(till, clock, "cancel")
        elif how == "unplugged":
            assert apply(till.emulators.signature_pad, "fault unplugged").startswith("ok")
            _wait(till, clock, 3.0)
        else:
            _wait(till, clock, float(till.terminal["signature"]["timeout_s"]) + 1)
        till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=0.01)
        _wait(till, clock, 1.0)
        assert sale.outcome == "DECLINED" and "未签名" in (sale.reason or "")
        assert till.journal.get(sale.txn_id).state == "REVERSED"  # type: ignore[union-attr]
        terminal_id = str(till.terminal["terminal_id"])
        assert till.emulators.acquirer.net_effect(terminal_id, f"{sale.record.stan:06d}") == 0  # type: ignore[union-attr]


def test_an_upload_that_never_goes_fails_at_settlement_and_prints_on_paper(till: EmulatedTill,
                                                                          clock: FakeClock) -> None:
    host = till.emulators.acquirer
    assert host is not None
    host.fail_uploads("96", 100)
    sale = _signature_sale(till)
    sign_on_pad(till, clock)
    pages = len(till.emulators.printer.pages)
    result = till.settle(supervisor=SUPERVISOR["supervisor"], pin=SUPERVISOR["pin"], reason="end of day")
    assert result.balanced
    assert till.journal.upload_state(sale.txn_id) is None  # left the live journal with the batch...
    assert "signature_upload_failed" in [i["kind"] for i in till.journal.exception_report()]  # ...reported
    printed = [p.text for p in till.emulators.printer.pages[pages:]]
    assert any("重打印" in text and "持卡人签名" in text for text in printed)  # the signed copy on paper


def test_receipt_verify_recomputes_the_binding(till: EmulatedTill, clock: FakeClock, var_dir: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sale = _signature_sale(till)
    sign_on_pad(till, clock)
    code, out, _ = run_cli(capsys, monkeypatch, "receipt", "verify", sale.txn_id, "--var", str(var_dir))
    assert code == 0 and "bound to its sale" in out
    till.journal._db.execute("UPDATE signatures SET strokes = X'00' WHERE txn_id = ?", (sale.txn_id,))
    assert sale.record is not None
    code, out, _ = run_cli(capsys, monkeypatch, "receipt", "verify", f"{sale.record.stan:06d}", "--var", str(var_dir))
    assert code == 1 and "BROKEN" in out
    assert not till.journal.verify_signature(sale.txn_id)


def test_a_power_cut_after_the_signature_loses_neither_it_nor_its_upload(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        host = till.emulators.host
        assert host is not None
        host.fail_uploads("ignore", 1)  # the first upload never reaches the books
        sale = _signature_sale(till)
        sign_on_pad(till, clock)
        # the power goes here, the upload unanswered
    with build_emulated_till(clock=clock, var_dir=var_dir) as again:
        assert again.journal.verify_signature(sale.txn_id)
        _wait(again, clock, 1.0)
        state = again.journal.upload_state(sale.txn_id)
        assert state is not None and state[0] in ("PENDING", "DONE")


def test_a_30_answer_fails_the_upload_at_once_and_prints_the_signed_copy(till: EmulatedTill,
                                                                         clock: FakeClock) -> None:
    host = till.emulators.acquirer
    assert host is not None
    host.fail_uploads("30", 1)  # a format error, MACed: the terminal acts on it
    sale = _signature_sale(till)
    pages = len(till.emulators.printer.pages)
    sign_on_pad(till, clock)
    _wait(till, clock, 1.0)
    assert till.journal.upload_state(sale.txn_id) == ("FAILED", 1)  # final: the same 0820 would get 30 again
    _wait(till, clock, 130.0)  # later idle rounds leave it alone
    assert till.journal.upload_state(sale.txn_id) == ("FAILED", 1) and host.signature_uploads == ()
    assert "signature_upload_failed" in [i["kind"] for i in till.journal.exception_report()]
    printed = [p.text for p in till.emulators.printer.pages[pages:]]
    assert any("重打印" in text and "持卡人签名" in text for text in printed)


def test_a_small_tap_is_免签_and_a_larger_one_is_signed(clock: FakeClock, var_dir: Path) -> None:
    # The signature-tap card: contactless, CVM signature. Under the limit no capture (the merchant
    # copy says so), over it the pad captures.
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu",
                             overrides={"signature.no_signature_limit_minor": 30000}) as till:
        reader, printer = till.emulators.card_reader, till.emulators.printer
        reader.present("signature-tap")
        small = till.sale(20000)  # 200.00 <= 300.00: 免签
        assert (small.outcome, small.signed, till.flow.state) == ("APPROVED", False, S.IDLE)
        assert till.journal.signature(small.txn_id) is None and till.journal.pending_uploads() == []
        assert till.journal.signature_mark(small.txn_id) == "WAIVED"
        merchant = printer.pages[-2].text
        assert "免签" in merchant and "NO SIGNATURE REQUIRED" in merchant and "持卡人签名" not in merchant
        assert "signature_on_paper" not in [i["kind"] for i in till.journal.exception_report()]
        reader.present("signature-tap")
        large = till.sale(50000)  # 500.00: signed on the pad
        assert till.flow.state is S.SIGNATURE_REQUIRED
        sign_on_pad(till, clock)
        assert large.signed and till.journal.verify_signature(large.txn_id)
        assert "免签" not in printer.pages[-2].text and "持卡人签名" in printer.pages[-2].text


def test_a_settled_sale_keeps_its_signature_in_the_archive_until_the_retention_ends(
        clock: FakeClock, var_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu",
                             overrides={"limits.archive_retention_days": 30}) as till:
        sale = _signature_sale(till)
        sign_on_pad(till, clock, "张三")
        _wait(till, clock, 1.0)  # uploaded while idle
        stored = till.journal.signature(sale.txn_id)
        assert stored is not None
        assert till.settle(supervisor=SUPERVISOR["supervisor"], pin=SUPERVISOR["pin"], reason="day 1").balanced
        assert till.journal.signature(sale.txn_id) is None  # out of the live journal with its batch...
        archived = var_dir / "batches" / "batch-000001-signatures.json"
        assert archived.stat().st_mode & 0o777 == 0o600  # personal data: owner only
        code, out, _ = run_cli(capsys, monkeypatch, "receipt", "verify", sale.txn_id, "--var", str(var_dir))
        assert code == 0 and "bound to its sale" in out and "batch archive" in out  # ...still verifiable
        doc = archived.read_text()
        assert '"upload_state": "DONE"' in doc and stored.binding in doc
        archived.write_text(doc.replace(stored.binding, "0" * 64))
        code, out, _ = run_cli(capsys, monkeypatch, "receipt", "verify", sale.txn_id, "--var", str(var_dir))
        assert code == 1 and "BROKEN" in out
        clock.advance(31 * 86_400.0)  # past the retention: the next settlement deletes batch 1's archive
        till.emulators.card_reader.present("approved")
        assert till.sale(1000).outcome == "APPROVED"
        assert till.settle(supervisor=SUPERVISOR["supervisor"], pin=SUPERVISOR["pin"], reason="day 32").balanced
    assert sorted(p.name for p in (var_dir / "batches").iterdir()) == [
        "batch-000002.csv", "batch-000002.json", "batch-000002.sha256"]
    code, out, _ = run_cli(capsys, monkeypatch, "receipt", "verify", sale.txn_id, "--var", str(var_dir))
    assert code == 1 and "no transaction" in out


@pytest.mark.parametrize("fallback", ["paper", "void"])
def test_a_power_cut_while_signing_gets_the_fallback_at_boot(clock: FakeClock, var_dir: Path, fallback: str) -> None:
    settings = {"signature.fallback": fallback}
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu", overrides=settings) as till:
        sale = _signature_sale(till)  # approved, the cardholder about to sign...
        assert till.journal.signature_mark(sale.txn_id) == "OWED"  # ...marked with the request
        # the power goes here
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu", overrides=settings) as again:
        assert again.journal.signatures_owed() == []
        kinds = [i["kind"] for i in again.journal.exception_report()]
        pages = [p.text for p in again.emulators.printer.pages]
        if fallback == "paper":  # the merchant copy owed prints with the paper line
            assert "signature_on_paper" in kinds and again.journal.get(sale.txn_id).state == "APPROVED"  # type: ignore[union-attr]
            assert any("重打印" in p and "持卡人签名" in p for p in pages)
        else:  # reversed at boot; no slip says approved
            assert again.journal.get(sale.txn_id).state == "REVERSED"  # type: ignore[union-attr]
            assert not any("POS签购单" in p for p in pages)
