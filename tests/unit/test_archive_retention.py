"""The batch archive's retention (terminal/host/settlement.py `Archive.prune`): a settled batch's
files, its QR orders, its e-signatures and its e-receipts (its copies, its settlement slip, its
merchant-code slips) go together once they are older than the
retention; what cannot be read is kept (never delete what you cannot date)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from drivers.acquirer.spec import BatchTotals
from terminal.host.settlement import Archive
from terminal.journal import TxnRecord

T0 = datetime(2026, 1, 15, 9, 30)
TXN = "0b5f6c1e-9a8d-4c3b-8e7f-1a2b3c4d5e6f"


def _record(txn_id: str) -> TxnRecord:
    return TxnRecord(txn_id=txn_id, kind="sale", state="APPROVED", stan=2, batch=1, amount_minor=1000,
                     currency="156", entry_mode="chip", pan_last4="0085", response_code="00", auth_code="000001",
                     rrn="000000000001", created_at=T0.isoformat(), original_txn_id=None)


def test_old_archives_go_with_their_signatures_and_e_receipts(tmp_path: Path) -> None:
    archive, receipts = Archive(tmp_path / "batches"), tmp_path / "receipts"
    receipts.mkdir()
    archive.write(1, [_record(TXN)], BatchTotals(), T0)
    archive.write_signatures(1, [{"txn_id": TXN, "stan": 2, "amount_minor": 1000, "strokes": "AA==",
                                  "feature_code": "00000001", "binding": "ab"}], T0)
    archive.write_qr(1, [{"order_no": "OT1", "txn_id": "2" * 36}], T0)
    archive.write(2, [_record("1" * 36)], BatchTotals(), T0 + timedelta(days=10))
    archive.write_qr(2, [{"order_no": "OT2", "txn_id": "3" * 36}], T0 + timedelta(days=10))
    kept = [f"{'1' * 36}-merchant.png", "pay-OT2.json", "pay-OT2.png", "settlement-000002.png", "settlement-1.png"]
    for name in (f"{TXN}-merchant.png", f"{TXN}-merchant.json", "settlement-000001.png", "settlement-000001.json",
                 "pay-OT1.png", "pay-OT1.json", *kept):
        (receipts / name).write_bytes(b"x")
    (archive.folder / "batch-000003.json").write_text("not json")  # unreadable: kept
    assert archive.signature(TXN) is not None and archive.signature("000002") is not None
    assert archive.prune(before=T0 + timedelta(days=5), receipts=receipts) == [1]
    assert sorted(p.name for p in archive.folder.iterdir()) == [
        "batch-000002-qr.json", "batch-000002.csv", "batch-000002.json", "batch-000002.sha256", "batch-000003.json"]
    # the batch's settlement slip and merchant-code slips go with it; another batch's, and a name
    # that is not a slip of this batch, stay
    assert sorted(p.name for p in receipts.iterdir()) == kept
    assert archive.signature(TXN) is None
    assert archive.prune(before=T0 + timedelta(days=5), receipts=receipts) == []


def test_the_signature_archive_is_owner_only_and_none_is_written_without_signatures(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    assert archive.write_signatures(1, [], T0) is None
    path = archive.write_signatures(4, [{"txn_id": TXN, "stan": 7}], T0)
    assert path is not None and path.name == "batch-000004-signatures.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["signatures"][0]["stan"] == 7


def test_a_batch_whose_qr_orders_cannot_be_read_is_kept_whole(tmp_path: Path) -> None:
    archive, receipts = Archive(tmp_path / "batches"), tmp_path / "receipts"
    receipts.mkdir()
    archive.write(1, [_record(TXN)], BatchTotals(), T0)
    (archive.folder / "batch-000001-qr.json").write_text("{ torn")  # its merchant-code slips unknown
    names = [f"{TXN}-merchant.png", "pay-OT1.png", "settlement-000001.png"]
    for name in names:
        (receipts / name).write_bytes(b"x")
    assert archive.prune(before=T0 + timedelta(days=5), receipts=receipts) == []
    assert sorted(p.name for p in receipts.iterdir()) == sorted(names)
    assert (archive.folder / "batch-000001.json").exists() and (archive.folder / "batch-000001-qr.json").exists()
