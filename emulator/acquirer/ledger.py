"""The acquirer simulator's books: one entry per financial decision, reversals, batches.

Pure data and arithmetic, no locking and no sockets: `emulator.acquirer.core.Acquirer` owns
one `Ledger` and calls it under its lock. Keys are (terminal id, STAN, date MMDD) — the host's
identity of a transaction (RELIABILITY.md §5). Amounts are minor units.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals
from drivers.record import Record, field, replace

__all__ = [
    "APPROVED", "Key", "LateApproval", "Ledger", "LedgerEntry", "Settlement", "SignatureUpload", "UploadedDetail",
]

APPROVED: Final = "00"
CREDIT_KINDS: Final = frozenset({"void", "refund"})

Key = tuple[str, str, str]  # (terminal id, STAN, date MMDD)


class LedgerEntry(Record):
    """One financial decision: a sale (online or forwarded offline), a void or a refund."""

    terminal_id: str
    stan: str
    date: str  # DE 13 of the request, MMDD
    batch: int
    kind: str  # "sale", "void" or "refund"
    amount_minor: int
    response_code: str
    offline: bool = False  # a sale approved by the terminal and forwarded by 0220 advice
    original: tuple[str, str] | None = None  # (STAN, date) of the sale a void/refund credits
    reversed: bool = False
    answer: HostMessage = field(repr=False, compare=False)  # replayed for a duplicate; no card data

    @property
    def key(self) -> Key:
        return self.terminal_id, self.stan, self.date

    @property
    def approved(self) -> bool:
        return self.response_code == APPROVED

    @property
    def effective(self) -> bool:
        """Does it move money? Approved and not reversed."""
        return self.approved and not self.reversed

    @property
    def signed_amount(self) -> int:
        """What the cardholder pays: sales positive, voids and refunds negative."""
        return -self.amount_minor if self.kind in CREDIT_KINDS else self.amount_minor


class UploadedDetail(Record):
    """One 0320 batch-upload record, as the terminal sent it."""

    stan: str
    date: str
    kind: str
    amount_minor: int


class SignatureUpload(Record):
    """One 0820 the host stored: the signature of the sale at `key`, as the terminal sent it."""

    terminal_id: str
    stan: str  # the sale's STAN (the 0820's DE 11)
    date: str  # the sale's DE 13, MMDD
    rrn: str
    amount_minor: int
    receipt_tlv: bytes = field(repr=False)  # DE 55
    image: bytes = field(repr=False)  # DE 62, opaque (JBIG1 or PNG)

    @property
    def key(self) -> Key:
        return self.terminal_id, self.stan, self.date


class Settlement(Record):
    """A batch the host closed: the totals it agreed to and what they were compared with."""

    terminal_id: str
    batch: int
    totals: BatchTotals
    basis: str  # "ledger" (the host's own books) or "upload" (the terminal's uploaded detail)
    audit: tuple[int, str] | None = None  # the terminal's audit anchor (DE 48): entries, head hash


class LateApproval(Record):
    """An approval that went out after the transaction it approves had been reversed."""

    terminal_id: str
    stan: str
    date: str
    mti: str


class Ledger:
    def __init__(self) -> None:
        self._entries: dict[Key, LedgerEntry] = {}
        self._tombstones: set[Key] = set()  # reversed before the original ever arrived
        self._uploads: dict[tuple[str, int], dict[tuple[str, str], UploadedDetail]] = {}
        self._settled: dict[tuple[str, int], Settlement] = {}
        self._signatures: dict[Key, SignatureUpload] = {}
        # (table, key, record) of every change, for the books on disk (emulator/acquirer/books.py);
        # None while nothing persists, so the in-memory host pays nothing for it.
        self.changes: list[tuple[str, tuple[Any, ...], Any]] | None = None

    def restore(self, *, entries: dict[Key, LedgerEntry], tombstones: set[Key],
                uploads: dict[tuple[str, int], dict[tuple[str, str], UploadedDetail]],
                settled: dict[tuple[str, int], Settlement], signatures: dict[Key, SignatureUpload]) -> None:
        """Take over the books as a restart found them (Acquirer.use_folder)."""
        self._entries, self._tombstones, self._uploads = dict(entries), set(tombstones), dict(uploads)
        self._settled, self._signatures = dict(settled), dict(signatures)

    def note(self, table: str, key: tuple[Any, ...], record: Any) -> None:
        """A change the books on disk must get (the Acquirer notes its own tables here too)."""
        if self.changes is not None:
            self.changes.append((table, key, record))

    # -- entries -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(tuple(self._entries.values()))

    def get(self, key: Key) -> LedgerEntry | None:
        return self._entries.get(key)

    def book(self, entry: LedgerEntry) -> None:
        if entry.key in self._entries:
            raise KeyError("a ledger key is booked once")  # callers answer 94 before this
        self._entries[entry.key] = entry
        self.note("entry", entry.key, entry)

    def was_reversed(self, key: Key) -> bool:
        entry = self._entries.get(key)
        return key in self._tombstones or (entry is not None and entry.reversed)

    def reverse(self, key: Key) -> str:
        """Undo the entry at `key`. Idempotent; returns "reversed", "already" or "unknown". An
        unknown key leaves a tombstone, so an original that arrives after its reversal (over
        another connection) is refused rather than booked."""
        entry = self._entries.get(key)
        if entry is None:
            new = key not in self._tombstones
            self._tombstones.add(key)
            if new:
                self.note("tombstone", key, True)
            return "unknown" if new else "already"
        if entry.reversed:
            return "already"
        self._entries[key] = replace(entry, reversed=True)
        self.note("entry", key, self._entries[key])
        return "reversed"

    def credits_against(self, terminal_id: str, stan: str, date: str) -> list[LedgerEntry]:
        """The effective voids and refunds of the sale (terminal_id, stan, date)."""
        return [
            e for e in self._entries.values()
            if e.terminal_id == terminal_id and e.original == (stan, date) and e.effective
        ]

    # -- questions tests and scenarios ask ------------------------------------------------------
    def net_effect(self, terminal_id: str, stan: str, date: str | None = None) -> int:
        """For a sale's STAN: what the cardholder pays, the sale less its voids and refunds (0
        when declined or reversed). For a void's or refund's STAN: its own, negative, effect."""
        total = 0
        for e in self._entries.values():
            if e.terminal_id != terminal_id or not e.effective:
                continue
            own = e.stan == stan and date in (None, e.date)
            credits_it = e.original is not None and e.original[0] == stan and date in (None, e.original[1])
            if own or credits_it:
                total += e.signed_amount
        return total

    def batch_totals(self, terminal_id: str, batch: int) -> BatchTotals:
        totals = BatchTotals()
        for e in self._entries.values():
            if e.terminal_id == terminal_id and e.batch == batch and e.effective:
                totals = totals.plus(e.kind, e.amount_minor)
        return totals

    # -- batch upload and settlement ------------------------------------------------------------
    def record_upload(self, terminal_id: str, batch: int, detail: UploadedDetail) -> None:
        # Keyed by the detail's STAN and date: an upload repeated after another 95 replaces it.
        self._uploads.setdefault((terminal_id, batch), {})[(detail.stan, detail.date)] = detail
        self.note("upload", (terminal_id, batch, detail.stan, detail.date), detail)

    def uploads(self, terminal_id: str, batch: int) -> tuple[UploadedDetail, ...]:
        return tuple(self._uploads.get((terminal_id, batch), {}).values())

    def upload_totals(self, terminal_id: str, batch: int) -> BatchTotals | None:
        """Totals of the uploaded detail; None when nothing was uploaded for the batch."""
        details = self._uploads.get((terminal_id, batch))
        if not details:
            return None
        totals = BatchTotals()
        for detail in details.values():
            totals = totals.plus(detail.kind, detail.amount_minor)
        return totals

    # -- signature uploads (0820) -----------------------------------------------------------------
    def store_signature(self, upload: SignatureUpload) -> bool:
        """Keep `upload`; False (and nothing changes) when the sale has one already: one effect."""
        if upload.key in self._signatures:
            return False
        self._signatures[upload.key] = upload
        self.note("signature", upload.key, upload)
        return True

    def signature(self, key: Key) -> SignatureUpload | None:
        return self._signatures.get(key)

    @property
    def signatures(self) -> tuple[SignatureUpload, ...]:
        return tuple(self._signatures.values())

    def settle(self, settlement: Settlement) -> None:
        self._settled[(settlement.terminal_id, settlement.batch)] = settlement
        self.note("settlement", (settlement.terminal_id, settlement.batch), settlement)

    def is_settled(self, terminal_id: str, batch: int) -> bool:
        return (terminal_id, batch) in self._settled

    @property
    def settlements(self) -> tuple[Settlement, ...]:
        return tuple(self._settled.values())

