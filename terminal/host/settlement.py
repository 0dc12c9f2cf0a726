"""Settlement (结算) and reconciliation (对账): the batch's totals to the host, the detail when
the host disagrees, and an archive before any row leaves the live journal.

One exchange at a time: 0500 with the totals; 00 closes the batch; 95 (out of balance) sends
every transaction as 0320 (a void or refund names its sale in DE 61) and settles again (DE 3 960000); a second
disagreement leaves the batch open. A transaction whose reversal is unresolved is carried into the
next batch (journal.close_batch). Until the host answers definitively the settlement is owed
(`Journal.settlement_owed`): the terminal settles the same batch again before any sale, so its
batch number never drifts from the host's. The archive (JSON + CSV + a SHA-256 of both) is
written and fsynced before the rows are deleted, so a crash in between only means the same batch
is archived again. With it go the batch's QR orders and its e-signatures (batch-NNNNNN-qr.json,
batch-NNNNNN-signatures.json); archives older than `limits.archive_retention_days` are deleted at
each balanced settlement, signatures and e-receipts included (docs/signature.md "Privacy").
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals, OriginalRef
from drivers.record import Record, as_dict, field_names
from terminal.clock import Clock
from terminal.host.messages import (
    batch_upload_request,
    match,
    parse_settlement_response,
    parse_upload_response,
    settlement_request,
)
from terminal.journal import Journal, TxnRecord

__all__ = ["Archive", "SettlementDesk", "SettlementResult", "batch_totals"]

log = logging.getLogger(__name__)


class SettlementResult(Record):
    batch: int
    balanced: bool
    totals: BatchTotals
    uploaded: int
    detail: str
    # Transactions whose reversal was still unresolved: carried into the next batch (on the slip
    # and the exception report), never dropped.
    carried: tuple[TxnRecord, ...] = ()
    # Offline sales the host refused to pay (DECLINED, in neither side's totals): the merchant's
    # loss, on the slip and the exception report.
    refused: tuple[TxnRecord, ...] = ()
    # False when the terminal cannot know whether the host closed the batch (no answer, or an
    # error after the host agreed): it settles again before anything else (`Journal.settlement_owed`).
    definitive: bool = True


def batch_totals(records: list[TxnRecord]) -> BatchTotals:
    """What the terminal says the batch holds: approved sales (reversed ones count nowhere)."""
    totals = BatchTotals()
    for record in records:
        if record.state in ("APPROVED", "OFFLINE"):
            totals = totals.plus(record.kind, record.amount_minor)
    return totals


class Archive:
    """var/batches/batch-NNNNNN.{json,csv,sha256} (+ -qr.json, -signatures.json): what a settled
    batch held, kept off the live journal until its retention ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, batch: int, records: list[TxnRecord], totals: BatchTotals, settled_at: datetime) -> Path:
        import hashlib  # lazy, as csv below: only a settlement needs these (hashlib loads OpenSSL)
        import json

        self.folder.mkdir(parents=True, exist_ok=True)
        rows = [as_dict(r) for r in records]
        sums = {name: getattr(totals, name) for name in field_names(totals)}
        doc = {"batch": batch, "settled_at": settled_at.isoformat(), "totals": sums, "transactions": rows}
        json_bytes = json.dumps(doc, ensure_ascii=False, indent=2).encode()
        import csv  # only a settlement needs it

        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["txn_id"])
        writer.writeheader()
        writer.writerows(rows)
        csv_bytes = out.getvalue().encode()
        base = self.folder / f"batch-{batch:06d}"
        digest = hashlib.sha256(json_bytes + csv_bytes).hexdigest()
        for suffix, data in ((".json", json_bytes), (".csv", csv_bytes), (".sha256", f"{digest}\n".encode())):
            _write_durably(base.with_suffix(suffix), data)
        return base.with_suffix(".json")

    def write_qr(self, batch: int, orders: list[dict[str, Any]], settled_at: datetime) -> Path | None:
        """batch-NNNNNN-qr.json: the batch's QR payments with their orders and histories (the
        wallet settles them; the statement of a later day is reconciled against these too)."""
        if not orders:
            return None
        import json  # lazy, as in write

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"batch-{batch:06d}-qr.json"
        doc = {"batch": batch, "settled_at": settled_at.isoformat(), "orders": orders}
        _write_durably(path, json.dumps(doc, ensure_ascii=False, indent=2).encode())
        return path

    def write_signatures(self, batch: int, signatures: list[dict[str, object]], settled_at: datetime) -> Path | None:
        """batch-NNNNNN-signatures.json (0600): the batch's e-signatures — strokes, binding, feature
        code, upload state — kept with its archive, so `till receipt verify` still recomputes a
        binding after the rows left the live journal. Personal data: owner-only, never logged,
        deleted with the archive (`prune`)."""
        if not signatures:
            return None
        import json  # lazy, as in write

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"batch-{batch:06d}-signatures.json"
        doc = {"batch": batch, "settled_at": settled_at.isoformat(), "signatures": signatures}
        _write_durably(path, json.dumps(doc, ensure_ascii=False, indent=2).encode(), mode=0o600)
        return path

    def signature(self, txn: str) -> tuple[int, dict[str, Any]] | None:
        """(batch, archived signature) of the transaction id, or of the 6-digit trace (the newest
        batch's first); None when no archive holds it."""
        import json

        by_trace = txn.isdigit() and len(txn) <= 6
        for path in sorted(self.folder.glob("batch-*-signatures.json"), reverse=True) if self.folder.is_dir() else ():
            try:
                doc = json.loads(path.read_text())
                for item in doc["signatures"]:
                    if (int(item["stan"]) == int(txn)) if by_trace else item["txn_id"] == txn:
                        return int(doc["batch"]), item
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("signature archive %s not read: %s", path.name, type(exc).__name__)
        return None

    def prune(self, *, before: datetime, receipts: Path | None = None) -> list[int]:
        """Retention: delete every batch archive settled before `before` — its JSON, CSV, digest,
        QR orders and signatures — and the e-receipts in `receipts` that belong to it: its
        transactions' copies (they carry the signature's picture), its settlement slip
        (`settlement-NNNNNN`) and its merchant-code slips (`pay-<order_no>`, from its QR orders).
        Returns the batches deleted, oldest first."""
        import json

        doomed: dict[int, set[str]] = {}
        for path in sorted(self.folder.glob("batch-[0-9][0-9][0-9][0-9][0-9][0-9].json")) if self.folder.is_dir() \
                else ():
            try:
                doc = json.loads(path.read_text())
                settled = datetime.fromisoformat(str(doc["settled_at"]))
                if settled < before:
                    doomed[int(doc["batch"])] = {str(t["txn_id"]) for t in doc["transactions"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:  # kept: never delete what cannot be read
                log.warning("archive %s not read for retention: %s", path.name, type(exc).__name__)
        slips: set[str] = set()
        for batch in list(doomed):
            codes = self._payment_code_slips(batch)
            if codes is None:  # its QR orders cannot be read: the batch is kept whole, slips and all
                del doomed[batch]
            else:
                slips |= {f"settlement-{batch:06d}", *codes}
        if not doomed:
            return []
        # The signatures first: a crash half-way leaves the totals, never a signature past its time.
        suffixes = ("-signatures.json", "-qr.json", ".csv", ".sha256", ".json")
        for batch in sorted(doomed):
            for suffix in suffixes:
                (self.folder / f"batch-{batch:06d}{suffix}").unlink(missing_ok=True)
        txn_ids = set().union(*doomed.values())
        if receipts is not None and receipts.is_dir():
            for entry in os.scandir(receipts):  # one listing, not one glob per transaction
                if entry.name[:36] in txn_ids or entry.name.rpartition(".")[0] in slips:
                    os.unlink(entry.path)
        return sorted(doomed)

    def _payment_code_slips(self, batch: int) -> set[str] | None:
        """The e-receipt names of the batch's merchant-code slips (主扫, `pay-<order_no>`), from its
        QR archive (read before it goes); None when that archive is there but cannot be read."""
        import json

        path = self.folder / f"batch-{batch:06d}-qr.json"
        try:
            orders = json.loads(path.read_text())["orders"]
            return {f"pay-{o['order_no']}" for o in orders if isinstance(o, dict) and o.get("order_no")}
        except FileNotFoundError:
            return set()  # a batch without QR payments
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("QR archive %s not read for retention: %s", path.name, type(exc).__name__)
            return None

    def qr_orders(self) -> list[dict[str, Any]]:
        """Every QR row of the settled batches' archives (for reconciling a day's statement)."""
        import json

        orders: list[dict[str, Any]] = []
        for path in sorted(self.folder.glob("batch-*-qr.json")) if self.folder.is_dir() else ():
            try:
                orders += [o for o in json.loads(path.read_text())["orders"] if isinstance(o, dict)]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("QR archive %s not read: %s", path.name, exc)
        return orders

    @staticmethod
    def verify(json_path: Path) -> bool:
        import hashlib  # lazy, as in write

        base = json_path.with_suffix("")
        data = base.with_suffix(".json").read_bytes() + base.with_suffix(".csv").read_bytes()
        return hashlib.sha256(data).hexdigest() == base.with_suffix(".sha256").read_text().strip()


def _write_durably(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover of a crash would keep its own mode
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class SettlementDesk:
    def __init__(self, *, journal: Journal, clock: Clock, terminal: Mapping[str, Any], archive: Archive,
                 audit_head: Callable[[], tuple[int, str]] | None = None) -> None:
        self.journal, self.clock, self.terminal, self.archive = journal, clock, terminal, archive
        self.audit_head = audit_head  # the audit trail's (count, head), anchored at the host in DE 48
        self.batch = 0
        self.totals = BatchTotals()
        self._upload: list[TxnRecord] = []
        self._refused: tuple[TxnRecord, ...] = ()
        self._uploaded = 0
        self._after_upload = False
        self.request: HostMessage | None = None
        # What the host said of the batch since the last 0500 left: None (nothing yet), "open"
        # (95: the batch is open on both sides) or "closed" (00). An error after "open" leaves
        # nothing in doubt; after "closed" or before any answer the settlement stays owed.
        self.host_said: str | None = None

    def begin(self) -> HostMessage:
        self.batch = self.journal.current_batch()
        self.totals = batch_totals(self.journal.batch_records(self.batch))
        self._refused = tuple(self.journal.refused_advices(self.batch))
        self._upload, self._uploaded, self._after_upload = [], 0, False
        return self._settle()

    def _settle(self) -> HostMessage:
        self.host_said = None
        self.request = settlement_request(
            stan=self.journal.next_stan(), totals=self.totals, batch=self.batch, when=self.clock.wall(),
            after_upload=self._after_upload, audit=self.audit_head() if self.audit_head else None, **self._ids(),
        )
        return self.request

    def answer(self, msg: HostMessage) -> HostMessage | SettlementResult | None:
        """Feed a host message: the next request to send, the result, or None (not ours)."""
        if self.request is None or not match(self.request, msg):
            return None
        if self.request.mti == "0320":
            if not parse_upload_response(msg).approved:
                return self._done(False, f"batch upload refused ({msg.response_code})")
            self._uploaded += 1
            return self._next_upload()
        answer = parse_settlement_response(msg)
        self.host_said = "closed" if answer.balanced else "open"
        if answer.balanced:
            # The host has closed the batch: from here an error leaves the settlement owed
            # (settle.py), so the terminal closes it too on the next try, never a batch apart.
            records = self.journal.batch_records(self.batch)
            self.archive.write(self.batch, records, self.totals, self.clock.wall())
            self.archive.write_qr(self.batch, self.journal.qr_export(self.batch), self.clock.wall())
            self.archive.write_signatures(self.batch, self.journal.signature_export(self.batch), self.clock.wall())
            carried = self.journal.close_batch(self.batch, at=self.clock.wall())
            self._apply_retention()
            return self._done(True, "balanced", carried=tuple(carried))
        if answer.out_of_balance and not self._after_upload:
            self._upload = [r for r in self.journal.batch_records(self.batch) if r.state == "APPROVED"]
            self._after_upload = True
            return self._next_upload()
        return self._done(False, f"out of balance ({answer.response_code}); the batch stays open")

    def _apply_retention(self) -> None:
        """Batch archives older than `limits.archive_retention_days` go, with their signatures
        and e-receipts (a signature is personal data: kept no longer than its archive)."""
        from datetime import timedelta

        days = int(self.terminal["limits"]["archive_retention_days"])
        try:
            receipts = None if str(self.journal.path) == ":memory:" else self.journal.path.parent / "receipts"
            gone = self.archive.prune(before=self.clock.wall() - timedelta(days=days), receipts=receipts)
        except OSError as exc:  # the settlement stands; the next one tries again
            log.warning("archive retention not applied: %s", exc)
            return
        if gone:
            log.info("archives of batch(es) %s deleted: older than %d days (retention)",
                     ", ".join(f"{b:06d}" for b in gone), days)

    def _next_upload(self) -> HostMessage | SettlementResult:
        if not self._upload:
            return self._settle()
        record = self._upload.pop(0)
        original = None
        if record.kind != "sale":  # a void or refund names its sale (DE 61), as its 0200 did
            sale = self.journal.get(record.original_txn_id) if record.original_txn_id else None
            if sale is None:
                return self._done(False, f"batch upload: the sale credited by STAN {record.stan:06d} is not in"
                                         " the journal; the batch stays open")
            original = OriginalRef.of(batch=sale.batch, stan=sale.stan, when=datetime.fromisoformat(sale.created_at))
        self.request = batch_upload_request(
            stan=record.stan, kind=record.kind, amount_minor=record.amount_minor,
            when=datetime.fromisoformat(record.created_at), auth_code=record.auth_code, rrn=record.rrn,
            batch=record.batch, entry_mode=record.entry_mode, terminal_id=str(self.terminal["terminal_id"]),
            merchant_id=str(self.terminal["merchant_id"]), currency=record.currency, original=original,
        )
        return self.request

    def failed(self, why: str, *, definitive: bool = False) -> SettlementResult:
        """The settlement ended without the host's definitive answer (or before anything left,
        `definitive=True`)."""
        return self._done(False, why, definitive=definitive)

    def _done(self, balanced: bool, detail: str, *, carried: tuple[TxnRecord, ...] = (),
              definitive: bool = True) -> SettlementResult:
        self.request = None
        if definitive and not balanced:  # the host said no: the batch is open on both sides
            self.journal.clear_settlement_owed()
        return SettlementResult(batch=self.batch, balanced=balanced, totals=self.totals,
                                uploaded=self._uploaded, detail=detail, carried=carried, refused=self._refused,
                                definitive=definitive)

    def _ids(self) -> dict[str, str]:
        return {"terminal_id": str(self.terminal["terminal_id"]), "merchant_id": str(self.terminal["merchant_id"]),
                "currency": str(self.terminal["currency"])}
