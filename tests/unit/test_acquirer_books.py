"""The acquirer simulator's books on disk (`Acquirer.use_folder`): a host restarted on the same
folder is the same host — its counters go on, repeats and reversals of what it approved before
the restart are recognised, and its batch totals still settle."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TypedDict

import pytest

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals, OriginalRef
from drivers.sensitive import Secret
from emulator.acquirer.books import decode, encode_put
from emulator.acquirer.core import BOOKS_FILE, Acquirer
from emulator.acquirer.ledger import LedgerEntry, Settlement, SignatureUpload, UploadedDetail
from emulator.books import BooksError
from emulator.card_reader.cards import get_card
from terminal.host.messages import (
    parse_settlement_response,
    parse_sign_on_response,
    refund_request,
    reversal_request,
    sale_request,
    settlement_request,
    sign_on_request,
)


class _Ids(TypedDict):
    terminal_id: str
    merchant_id: str


IDS: _Ids = {"terminal_id": "TERM0001", "merchant_id": "MERCHANT0000001"}
WHEN = datetime(2026, 12, 2, 9, 30, 0)


def _host(folder: Path) -> Acquirer:
    host = Acquirer(now=lambda: WHEN)
    host.use_folder(folder)
    return host


def _ask(host: Acquirer, request: HostMessage) -> HostMessage:
    answer = host.respond(request)
    assert answer is not None and not host.internal_errors
    return answer


def _sale(stan: int, amount: int = 1000) -> HostMessage:
    card = get_card("approved")
    return sale_request(stan=stan, amount_minor=amount, pan=Secret(card.pan), entry_mode="swipe", expiry=None,
                        track2=Secret(card.track2), icc_data=None, pan_sequence=None, when=WHEN, currency="156",
                        batch=1, **IDS)


def _reversal(stan: int, amount: int = 1000, *, repeat: bool = False) -> HostMessage:
    return reversal_request(stan=stan, amount_minor=amount, reason="98", original_when=WHEN, currency="156", batch=1,
                            repeat=repeat, **IDS)


def test_a_restarted_host_goes_on_counting_and_replays_what_it_answered(tmp_path: Path) -> None:
    first = _ask(_host(tmp_path), _sale(1))
    assert (first.response_code, first.text("38"), first.text("37")) == ("00", "000001", "000000000001")

    host = _host(tmp_path)  # the process restarted: a new host on the same folder
    second = _ask(host, _sale(2))
    assert (second.text("38"), second.text("37")) == ("000002", "000000000002")
    assert _ask(host, _sale(1)) == first  # a retry of the sale before the restart: the same answer
    assert _ask(host, _sale(1, amount=999)).response_code == "94"  # the same key, other content
    assert [e.stan for e in host.ledger] == ["000001", "000002"]


def test_a_repeated_reversal_after_the_restart_undoes_the_sale_once(tmp_path: Path) -> None:
    host = _host(tmp_path)
    _ask(host, _sale(1))
    _ask(host, _sale(2, amount=300))
    assert _ask(host, _reversal(2, 300)).response_code == "00"

    host = _host(tmp_path)
    assert host.net_effect(IDS["terminal_id"], "000001") == 1000
    assert _ask(host, _reversal(1)).response_code == "00"
    assert _ask(host, _reversal(1, repeat=True)).response_code == "00"  # 0401: acknowledged, nothing more
    assert host.net_effect(IDS["terminal_id"], "000001") == 0
    assert _ask(host, _sale(2, amount=300)).response_code == "12"  # reversed before the restart: stays undone

    host = _host(tmp_path)
    assert host.net_effect(IDS["terminal_id"], "000001") == 0 and host.net_effect(IDS["terminal_id"], "000002") == 0


def test_the_open_batch_settles_in_balance_after_a_restart(tmp_path: Path) -> None:
    host = _host(tmp_path)
    _ask(host, sign_on_request(stan=1, batch=1, when=WHEN, **IDS))
    _ask(host, _sale(2, amount=1000))
    _ask(host, _sale(3, amount=250))
    refund = refund_request(stan=4, amount_minor=100, original=OriginalRef.of(batch=1, stan=2, when=WHEN),
                            original_rrn=None, original_auth_code=None, when=WHEN, currency="156", batch=1, **IDS)
    assert _ask(host, refund).response_code == "00"
    terminal_totals = BatchTotals(sales_count=2, sales_amount=1250, refunds_count=1, refunds_amount=100)

    host = _host(tmp_path)
    settle = settlement_request(stan=5, totals=terminal_totals, when=WHEN, currency="156", batch=1, **IDS)
    answer = parse_settlement_response(_ask(host, settle))
    assert answer.approved and answer.host_totals == terminal_totals

    host = _host(tmp_path)
    assert host.current_batch(IDS["terminal_id"]) == 2 and len(host.settlements) == 1
    assert parse_settlement_response(_ask(host, settle)).approved  # the 0500 resent: the answer replayed
    sign_on = parse_sign_on_response(_ask(host, sign_on_request(stan=6, batch=1, when=WHEN, **IDS)))
    assert sign_on.batch == 2  # the host's batch, as before the restart


def test_working_keys_are_not_kept_but_never_issued_twice(tmp_path: Path) -> None:
    host = _host(tmp_path)
    before = _ask(host, sign_on_request(stan=1, batch=1, when=WHEN, **IDS)).get("62")
    host = _host(tmp_path)
    assert host.keys.request_ok(_sale(2))  # unMACed test mode: as before
    after = _ask(host, sign_on_request(stan=2, batch=1, when=WHEN, **IDS)).get("62")
    assert isinstance(before, str) and isinstance(after, str) and before != after
    assert before not in (tmp_path / BOOKS_FILE).read_text(encoding="utf-8")  # the keys never reach the disk


def test_every_table_reads_back_as_it_was_written() -> None:
    answer = HostMessage(mti="0210", fields={"11": "000001", "39": "00", "55": b"\x8a\x0200"})
    entry = LedgerEntry(terminal_id="T1", stan="000001", date="1202", batch=1, kind="refund", amount_minor=5,
                        response_code="00", original=("000009", "1201"), reversed=True, answer=answer)
    upload = SignatureUpload(terminal_id="T1", stan="000001", date="1202", rrn="000000000001", amount_minor=5,
                             receipt_tlv=b"\xff\x00", image=b"\x89PNG\x00" * 50)
    settlement = Settlement(terminal_id="T1", batch=1, totals=BatchTotals(sales_count=1, sales_amount=5),
                            basis="upload", audit=(3, "ab" * 32))
    detail = UploadedDetail(stan="000001", date="1202", kind="sale", amount_minor=5)
    puts = [encode_put("entry", entry.key, entry), encode_put("signature", upload.key, upload),
            encode_put("settlement", ("T1", 1), settlement), encode_put("upload", ("T1", 1, "000001", "1202"), detail),
            encode_put("reply", ("0210", "T1", "000001", "1202"), (("000000", "5", None), answer)),
            encode_put("cryptogram", ("digest", "01", b"\x01\x02"), True), encode_put("tombstone", entry.key, True)]
    tables: dict[str, dict[str, object]] = {}
    for table, key, value in puts:
        tables.setdefault(table, {})[key] = value
    state = decode(tables, "books")
    entry_back = state.entries[entry.key]
    assert entry_back == entry and entry_back.answer == answer
    assert state.signatures[upload.key] == upload and state.settled[("T1", 1)] == settlement
    assert state.uploads[("T1", 1)] == {("000001", "1202"): detail}
    assert state.replies[("0210", "T1", "000001", "1202")] == (("000000", "5", None), answer)
    assert state.cryptograms == {("digest", "01", b"\x01\x02")} and state.tombstones == {entry.key}


@pytest.mark.parametrize("damage", [b"{not json}\n", b"[[\"entry\", \"[1]\", {}]]\n", b"[\"flat\"]\n"])
def test_unreadable_books_are_a_clear_error_and_stay_as_they_are(tmp_path: Path, damage: bytes) -> None:
    _ask(_host(tmp_path), _sale(1))
    books = tmp_path / BOOKS_FILE
    books.write_bytes(books.read_bytes() + damage + b'[["counter","[\\"auth\\"]",7]]\n')
    before = books.read_bytes()
    with pytest.raises(BooksError, match=str(books)):
        _host(tmp_path)
    assert books.read_bytes() == before


def test_books_of_something_else_are_refused(tmp_path: Path) -> None:
    (tmp_path / BOOKS_FILE).write_text('{"books": "wallet", "version": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not acquirer books"):
        _host(tmp_path)


def test_a_write_the_crash_cut_short_is_dropped(tmp_path: Path) -> None:
    _ask(_host(tmp_path), _sale(1))
    books = tmp_path / BOOKS_FILE
    books.write_bytes(books.read_bytes() + b'[["counter","[\\"auth\\"]",9')  # no newline: never finished
    host = _host(tmp_path)
    assert _ask(host, _sale(2)).text("38") == "000002"
    assert books.read_bytes().endswith(b"\n")  # compacted at the load: the torn line is gone


def test_no_folder_no_books(tmp_path: Path) -> None:
    host = Acquirer(now=lambda: WHEN)
    _ask(host, _sale(1))
    with pytest.raises(ValueError, match="before the first request"):
        host.use_folder(tmp_path)
    assert not (tmp_path / BOOKS_FILE).exists()


def test_till_host_state_keeps_the_books_and_refuses_unreadable_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.services import serve_acquirer
    from terminal.cli import main

    simulator = serve_acquirer("127.0.0.1:0", state=tmp_path)
    try:
        _ask(simulator, _sale(1))
    finally:
        simulator.stop()
    books = tmp_path / BOOKS_FILE
    assert _ask(_host(tmp_path), _sale(2)).text("38") == "000002"
    books.write_bytes(books.read_bytes() + b"torn in the middle\n" + b"[]\n")
    assert main(["host", "--listen", "127.0.0.1:0", "--state", str(tmp_path)]) != 0
    assert str(books) in capsys.readouterr().err  # a clear line naming the file; nothing served
