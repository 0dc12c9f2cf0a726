"""电签 in the journal: each signature bound to its transaction, and its upload to the acquirer.

A signature is kept losslessly and compactly (drivers/signature_pad/strokes.py, delta-encoded)
with a binding: SHA-256 over the txn_id, the amount, the feature code (特征码) and the stroke
bytes, so `verify_signature` can recompute it from what is stored and a swapped or edited
signature shows. The signature and its upload (PENDING) are one transaction: an approved sale's
signature is on disk before its slip prints, and its upload is owed until the host answers 00 or
94 (a repeat is safe: the host applies one upload per original). A signature is personal data:
it never goes to a log, and leaves the live journal with its batch: the batch archive keeps it
(`signature_export`, batch-NNNNNN-signatures.json) until the archive's retention deletes it.

Marks (`signature_marks`): OWED is committed as the capture begins, so a power cut while the
cardholder signs leaves a trace; the signature (or the fallback: a paper line, or a reversal)
removes it in the same transaction, and at boot an OWED sale gets the fallback
(checkout/signature.py `recover_signatures`). WAIVED: a 免签 sale, whose slip says so.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from drivers.record import Record
from terminal.errors import JournalError
from terminal.journal.core import JournalCore

__all__ = ["SignatureJournal", "StoredSignature", "binding_of"]


class StoredSignature(Record):
    txn_id: str
    strokes: bytes = b""  # drivers/signature_pad/strokes.py encoding
    width: int = 0
    height: int = 0
    dpi: int = 0
    feature_code: str = ""
    binding: str = ""
    created_at: str = ""

    def __repr__(self) -> str:  # personal data: never the strokes in a log line
        return f"StoredSignature(txn_id={self.txn_id!r}, {len(self.strokes)} bytes, binding={self.binding[:12]}...)"


def binding_of(txn_id: str, amount_minor: int, feature_code: str, strokes: bytes) -> str:
    """The hash that binds a signature to its transaction (hex)."""
    head = f"opentill-signature-v1\0{txn_id}\0{amount_minor}\0{feature_code}\0".encode()
    return hashlib.sha256(head + strokes).hexdigest()


class SignatureJournal(JournalCore):
    def record_signature(self, *, txn_id: str, strokes: bytes, width: int, height: int, dpi: int,
                         feature_code: str, at: datetime, upload: bool = True) -> StoredSignature:
        """The signature of an approved sale, bound to it, and (`upload`) its upload owed — one
        transaction. A second signature for the same sale is refused."""
        record = self.get(txn_id)
        if record is None:
            raise JournalError(f"no transaction {txn_id} to bind a signature to")
        binding = binding_of(txn_id, record.amount_minor, feature_code, strokes)
        stamp = at.isoformat()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM signatures WHERE txn_id = ?", (txn_id,)).fetchone() is not None:
                raise JournalError(f"transaction {txn_id} is signed already")
            db.execute("INSERT INTO signatures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (txn_id, strokes, width, height, dpi, feature_code, binding, stamp))
            db.execute("DELETE FROM signature_marks WHERE txn_id = ? AND mark = 'OWED'", (txn_id,))
            if upload:
                db.execute("INSERT INTO signature_uploads (txn_id, state, created_at) VALUES (?, 'PENDING', ?)",
                           (txn_id, stamp))
        return StoredSignature(txn_id=txn_id, strokes=strokes, width=width, height=height, dpi=dpi,
                               feature_code=feature_code, binding=binding, created_at=stamp)

    def signature(self, txn_id: str) -> StoredSignature | None:
        row = self._db.execute("SELECT txn_id, strokes, width, height, dpi, feature_code, binding, created_at"
                               " FROM signatures WHERE txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            return None
        return StoredSignature(txn_id=row[0], strokes=bytes(row[1]), width=row[2], height=row[3], dpi=row[4],
                               feature_code=row[5], binding=row[6], created_at=row[7])

    def verify_signature(self, txn_id: str) -> bool:
        """Recompute the binding from what is stored: True when the signature is the one made
        for this transaction, its amount and feature code."""
        stored, record = self.signature(txn_id), self.get(txn_id)
        if stored is None or record is None:
            return False
        return binding_of(txn_id, record.amount_minor, stored.feature_code, stored.strokes) == stored.binding

    # -- marks: a signature owed (the capture began), or waived (免签) -----------------------------
    def mark_signature(self, txn_id: str, mark: str, *, at: datetime) -> None:
        """OWED before the capture begins (durable: a crash then leaves the fallback owed), or
        WAIVED for a 免签 sale."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO signature_marks VALUES (?, ?, ?)", (txn_id, mark, at.isoformat()))

    def signature_mark(self, txn_id: str) -> str | None:
        row = self._db.execute("SELECT mark FROM signature_marks WHERE txn_id = ?", (txn_id,)).fetchone()
        return None if row is None else str(row[0])

    def signatures_owed(self) -> list[str]:
        """Sales whose capture began and never ended (a restart came between), oldest first."""
        return [str(r[0]) for r in self._db.execute(
            "SELECT txn_id FROM signature_marks WHERE mark = 'OWED' ORDER BY rowid")]

    def clear_signature_owed(self, txn_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM signature_marks WHERE txn_id = ? AND mark = 'OWED'", (txn_id,))

    def signature_fallback(self, txn_id: str, *, paper: bool, reason: str, at: datetime) -> None:
        """No e-signature: the paper line (an incident for the exception report) or the sale's
        reversal (code 06), and the OWED mark gone — one transaction."""
        with self._tx() as db:
            db.execute("DELETE FROM signature_marks WHERE txn_id = ? AND mark = 'OWED'", (txn_id,))
            if paper:
                self._incident(db, "signature_on_paper", txn_id, reason, at)
            else:
                db.execute("INSERT OR IGNORE INTO reversals (txn_id, state, reason, reason_code, created_at)"
                           " VALUES (?, 'PENDING', ?, '06', ?)", (txn_id, reason, at.isoformat()))

    def signature_export(self, batch: int) -> list[dict[str, object]]:
        """The batch's signatures as plain data for its archive: strokes (base64), binding,
        feature code and upload state, with the sale's trace and amount so the binding can be
        recomputed from the archive alone (`till receipt verify`)."""
        import base64

        rows = self._db.execute(
            "SELECT s.txn_id, t.stan, t.amount_minor, t.created_at, s.strokes, s.width, s.height, s.dpi,"
            " s.feature_code, s.binding, s.created_at, u.state, u.attempts, u.response_code"
            " FROM signatures s JOIN transactions t USING (txn_id) LEFT JOIN signature_uploads u USING (txn_id)"
            " WHERE t.batch = ? ORDER BY t.rowid", (batch,)).fetchall()
        keys = ("txn_id", "stan", "amount_minor", "txn_created_at", "strokes", "width", "height", "dpi",
                "feature_code", "binding", "created_at", "upload_state", "upload_attempts", "upload_response_code")
        out: list[dict[str, object]] = []
        for row in rows:
            item = dict(zip(keys, row, strict=True))
            item["strokes"] = base64.b64encode(bytes(row[4])).decode("ascii")
            out.append(item)
        return out

    # -- uploads (0820) ----------------------------------------------------------------------------
    def pending_uploads(self) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT txn_id FROM signature_uploads WHERE state = 'PENDING' ORDER BY rowid")]

    def upload_attempt(self, txn_id: str, *, at: datetime) -> int:
        """Count an attempt before the 0820 leaves; returns the attempts so far."""
        with self._tx() as db:
            db.execute("UPDATE signature_uploads SET attempts = attempts + 1, updated_at = ? WHERE txn_id = ?",
                       (at.isoformat(), txn_id))
            row = db.execute("SELECT attempts FROM signature_uploads WHERE txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            raise JournalError(f"no signature upload for {txn_id}")
        return int(row[0])

    def upload_done(self, txn_id: str, *, response_code: str, at: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE signature_uploads SET state = 'DONE', response_code = ?, updated_at = ?"
                       " WHERE txn_id = ? AND state = 'PENDING'", (response_code, at.isoformat(), txn_id))

    def upload_failed(self, txn_id: str, *, detail: str, at: datetime) -> None:
        """The last round failed: on the exception report, never retried by itself again."""
        with self._tx() as db:
            db.execute("UPDATE signature_uploads SET state = 'FAILED', updated_at = ? WHERE txn_id = ?"
                       " AND state = 'PENDING'", (at.isoformat(), txn_id))
            self._incident(db, "signature_upload_failed", txn_id, detail, at)

    def upload_state(self, txn_id: str) -> tuple[str, int] | None:
        row = self._db.execute("SELECT state, attempts FROM signature_uploads WHERE txn_id = ?", (txn_id,)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))
