"""The acquirer simulator's decisions: what the host answers, and the faults it can be told to make.

`Acquirer.respond(request)` is a plain, thread-safe method (tests call it without sockets); the
TCP server in emulator/acquirer/simulator.py subclasses it and adds the delivery faults (latency, lost and
late answers, dropped connections). The issuer's answer to a sale comes from the test-card
catalogue (emulator/card_reader/cards.toml). Nothing sensitive is logged: MTI, terminal id, STAN and
response code only. Rules, in the order they apply to a request, are in docs/host-link.md.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from drivers.acquirer.events import HostMessage, response_mti
from drivers.acquirer.spec import (
    FINANCIAL_CODES,
    NETWORK_CODES,
    RESPONSE_CODES,
    SETTLEMENT_CODES,
    BatchTotals,
    OriginalRef,
    ReceiptTlv,
    parse_audit_anchor,
)
from drivers.emv import tlv
from drivers.errors import ProtocolError, RemoteProtocolError
from emulator.acquirer import rules
from emulator.acquirer.books import Restored, decode, encode_put
from emulator.acquirer.keys import HostKeys
from emulator.acquirer.ledger import (
    APPROVED,
    Key,
    Ledger,
    LedgerEntry,
    Settlement,
    SignatureUpload,
    UploadedDetail,
)
from emulator.books import BookFile
from emulator.card_reader.cards import TestCard, card_by_pan, get_card
from emulator.card_reader.emv import make_arpc, verify_arqc_items, verify_pin_block

__all__ = ["BOOKS_FILE", "Acquirer"]

log = logging.getLogger("emulator.acquirer.simulator")

BOOKS_FILE: Final = "acquirer.jsonl"  # in the folder of use_folder()
DO_NOT_HONOUR: Final = "05"  # also the answer for a PAN the issuer does not know
INVALID_TRANSACTION: Final = "12"
INVALID_AMOUNT: Final = "13"
WRONG_PIN: Final = "55"
ORIGINAL_NOT_FOUND: Final = "25"
FORMAT_ERROR: Final = "30"
ORIGINAL_AMOUNT_WRONG: Final = "64"
DUPLICATE: Final = "94"
OUT_OF_BALANCE: Final = "95"
MAC_ERROR: Final = "A0"
_ECHOED: Final = ("3", "4", "11", "41", "42", "49", "60")  # copied into the answer
_KIND_BY_CODE: Final = {code: kind for kind, code in FINANCIAL_CODES.items()}
# The method that answers each request MTI (looked up on the instance, so a subclass's override counts).
_HANDLERS: Final = {
    "0200": "_financial", "0201": "_financial", "0220": "_advice", "0221": "_advice", "0400": "_reversal",
    "0401": "_reversal", "0500": "_settlement", "0320": "_upload", "0800": "_network",
    "0820": "_signature_upload",
}
# Faults of the signature upload (`fail_uploads`): besides an error code, two ways to be silent.
UPLOAD_SILENT: Final = "silent"  # stored, then the answer is lost: the resend gets 94
UPLOAD_IGNORED: Final = "ignore"  # neither stored nor answered: as if it never arrived


class _FormatError(Exception):
    """A request missing a field its type needs, or with a private field out of layout."""


def _need(request: HostMessage, *keys: str) -> list[str]:
    values = [request.text(k) for k in keys]
    if any(not v for v in values):
        raise _FormatError
    return [v for v in values if v]


class Acquirer:
    def __init__(
        self, *, now: Callable[[], datetime] = datetime.now, require_sign_on: bool = False, require_mac: bool = False,
        currency: str = "156",
    ) -> None:
        self.require_sign_on = require_sign_on  # financial requests before a sign-on get A0
        self.keys = HostKeys(require_mac=require_mac)  # working keys, MAC and PIN key (keys.py)
        self.currency = currency  # the one currency (ISO 4217 numeric) the host's terminals are set up for
        self._cryptograms: set[tuple[str, str, bytes]] = set()  # (PAN digest, PSN, ARQC) of every approved ARQC
        self.internal_errors: list[BaseException] = []  # bugs in respond(); tests assert it empty
        self._now = now
        self._lock = threading.RLock()
        self._ledger = Ledger()
        self._replies: dict[tuple[str, str, str, str], tuple[tuple[str | None, ...], HostMessage]] = {}
        self._last_auth = self._last_rrn = 0  # the last auth code (DE 38) and RRN (DE 37) issued
        self._batches: dict[str, int] = {}  # the batch the host expects each terminal to be in
        self._signed_on: set[str] = set()
        self._audit_anchors: dict[str, tuple[int, str]] = {}  # each terminal's audit anchor at its last settlement
        self.audit_regressions: list[tuple[str, int, int, int]] = []  # terminal, batch, entries before, now
        self._books: BookFile | None = None  # use_folder(): where the books persist
        self._saved_counters: dict[str, int] = {}
        self._clear_decision_faults()

    def _clear_decision_faults(self) -> None:
        self._decline_code: str | None = None
        self._decline_left = 0
        self._card_codes: dict[str, str] = {}  # test PAN -> forced response code
        self._mac_refused: set[str] = set()
        self._mac_refused_all = False
        self._signed_on_since_refusal: set[str] = set()
        self._out_of_balance_once = False
        self._advice_code: str | None = None
        self._upload_fault: str | None = None  # UPLOAD_SILENT, UPLOAD_IGNORED or a response code
        self._upload_faults_left = 0
        self._lose_answer = False  # set by a handler: decided, then not answered

    # -- books on disk -----------------------------------------------------------------------------
    def use_folder(self, folder: Path, *, durable: bool = False) -> None:
        """Keep the host's books in `folder`/acquirer.jsonl (emulator/acquirer/books.py says what
        they hold), so a restarted host is the same host: auth codes and RRNs go on counting, the
        open batch and its settlement, reversals and repeated requests are recognised. Loaded
        now (BooksError, a ValueError naming the file, for one it cannot read; the file is left
        as it is), then every answer's change is written before the answer leaves. `durable`:
        fsync each change too (emulator/books.py has the trade-off). Call it before serving."""
        with self._lock:
            if self._books is not None or tuple(self._ledger) or self._replies:
                raise ValueError("use_folder() goes before the first request, once")
            books = BookFile(folder / BOOKS_FILE, kind="acquirer", durable=durable)
            self._take_over(books.load(lambda tables: decode(tables, str(books.path))))
            self._books = books
            self._ledger.changes = []

    def _take_over(self, state: Restored) -> None:
        self._ledger.restore(entries=state.entries, tombstones=state.tombstones, uploads=state.uploads,
                             settled=state.settled, signatures=state.signatures)
        self._replies, self._cryptograms = state.replies, state.cryptograms
        self._batches, self._audit_anchors = state.batches, state.anchors
        self.audit_regressions = state.regressions
        counters = state.counters
        self._last_auth, self._last_rrn = counters.get("auth", 0), counters.get("rrn", 0)
        self.keys.serial = counters.get("keys", 0)
        self._saved_counters = dict(counters)

    def _save(self) -> None:
        """The changes of one answer as one line of the books, before the answer leaves. Kept
        for the next answer if the write fails (the error goes up: this answer is not sent)."""
        assert self._books is not None and self._ledger.changes is not None
        counters = {"auth": self._last_auth, "rrn": self._last_rrn, "keys": self.keys.serial}
        moved = {name: n for name, n in counters.items() if self._saved_counters.get(name) != n}
        if not self._ledger.changes and not moved:
            return
        puts = [encode_put(*change) for change in self._ledger.changes]
        puts += [encode_put("counter", (name,), n) for name, n in moved.items()]
        self._books.append(puts)
        self._ledger.changes.clear()
        self._saved_counters.update(moved)

    # -- faults that change the answer (thread-safe, settable while serving) --------------------
    def decline_next(self, code: str, count: int = 1) -> None:
        """Answer the next `count` 0200 requests (sales, voids, refunds) with `code`."""
        if count < 0:
            raise ValueError("a count is not negative")
        with self._lock:
            self._decline_code, self._decline_left = _declining(code), count

    def refuse_advices(self, code: str | None) -> None:
        """Answer every 0220/0221 with `code` and book nothing (a host that will not pay an offline
        sale); None lifts it."""
        with self._lock:
            self._advice_code = None if code is None else _declining(code)

    def decline_card(self, card: str, code: str | None) -> None:
        """Answer every 0200 for the catalogue card `card` with `code`; None lifts it."""
        pan = get_card(card).pan
        with self._lock:
            if code is None:
                self._card_codes.pop(pan, None)
            else:
                self._card_codes[pan] = _declining(code)

    def refuse_mac(self, terminal_id: str | None = None) -> None:
        """A0 to every request but 0800 from `terminal_id` (None: every terminal) until it signs
        on again — what a host does when it cannot verify the MAC with its working key."""
        with self._lock:
            if terminal_id is None:
                self._mac_refused_all = True
                self._signed_on_since_refusal.clear()
            else:
                self._mac_refused.add(terminal_id)

    def fail_uploads(self, fault: str, count: int = 1) -> None:
        """The next `count` 0820 signature uploads: `"silent"` stored and not answered (the
        terminal's resend then gets 94), `"ignore"` neither stored nor answered, or a response
        code (not 00 or 94) answered with nothing stored."""
        if count < 0:
            raise ValueError("a count is not negative")
        if fault not in (UPLOAD_SILENT, UPLOAD_IGNORED):
            fault = _declining(fault)
            if fault == DUPLICATE:
                raise ValueError("94 means stored: use silent for a lost answer")
        with self._lock:
            self._upload_fault, self._upload_faults_left = fault, count

    def report_out_of_balance_once(self) -> None:
        """The next settlement answers 95 whatever the totals say."""
        with self._lock:
            self._out_of_balance_once = True

    def clear_faults(self) -> None:
        with self._lock:
            self._clear_decision_faults()

    # -- what tests and scenarios ask ------------------------------------------------------------
    @property
    def ledger(self) -> tuple[LedgerEntry, ...]:
        with self._lock:
            return tuple(self._ledger)

    def net_effect(self, terminal_id: str, stan: str, date: str | None = None) -> int:
        """Minor units the cardholder pays for the transaction at this STAN, after reversals,
        voids and refunds (see `Ledger.net_effect`); `date` (MMDD) narrows a reused STAN."""
        with self._lock:
            return self._ledger.net_effect(terminal_id, stan, date)

    def batch_totals(self, terminal_id: str, batch: int) -> BatchTotals:
        """The host's own totals of a batch: its effective sales, voids and refunds."""
        with self._lock:
            return self._ledger.batch_totals(terminal_id, batch)

    def uploads(self, terminal_id: str, batch: int) -> tuple[UploadedDetail, ...]:
        with self._lock:
            return self._ledger.uploads(terminal_id, batch)

    @property
    def settlements(self) -> tuple[Settlement, ...]:
        with self._lock:
            return self._ledger.settlements

    @property
    def signature_uploads(self) -> tuple[SignatureUpload, ...]:
        """Every signature upload stored, in order of arrival (one per sale)."""
        with self._lock:
            return self._ledger.signatures

    def signature_upload(self, terminal_id: str, stan: str, date: str) -> SignatureUpload | None:
        """The stored upload of the sale (terminal, STAN, DE 13 date MMDD), or None."""
        with self._lock:
            return self._ledger.signature((terminal_id, stan, date))

    def current_batch(self, terminal_id: str) -> int | None:
        with self._lock:
            return self._batches.get(terminal_id)

    # -- decisions -------------------------------------------------------------------------------
    def respond(self, request: HostMessage) -> HostMessage | None:
        """The host's answer to one request; None for a message that gets no answer."""
        name = _HANDLERS.get(request.mti)
        if name is None:
            if int(request.mti[2]) % 2:
                return None  # a response or advice response: nothing to answer
            return self._answer(request, response_mti(request.mti), INVALID_TRANSACTION)
        if not rules.matchable(request):
            # No DE 41 or DE 11: no answer could be matched to it, so none is sent (the terminal's
            # own timer decides); the connection stays open.
            log.warning("%s without DE 41 or DE 11: cannot be matched, not answered", request.mti)
            return None
        handler: Callable[[HostMessage], HostMessage] = getattr(self, name)
        with self._lock:
            self._lose_answer = False
            try:
                if rules.format_error(request):
                    raise _FormatError
                if not self.keys.request_ok(request):
                    answer = self._answer(request, response_mti(request.mti), MAC_ERROR)  # keys.py
                else:
                    answer = self.keys.answer(request, handler(request))
            except (_FormatError, RemoteProtocolError):
                answer = self._format_error(request)
            lost, self._lose_answer = self._lose_answer, False
            if self._books is not None:
                self._save()
        if lost:
            log.info("%s terminal=%s stan=%s: not answered (fault)", request.mti, request.terminal_id, request.stan)
            return None
        log.info("%s terminal=%s stan=%s -> %s", request.mti, request.terminal_id, request.stan, answer.response_code)
        return answer

    def _format_error(self, request: HostMessage) -> HostMessage:
        """30, MACed like any answer when the request's own MAC verifies (docs/host-link.md "Keys
        and MAC": the host can and does authenticate an error answer to an authenticated request,
        so the terminal may act on it); without one, or with a wrong one, the 30 goes unMACed
        and a keyed terminal drops it as it would any unauthenticated answer."""
        answer = self._answer(request, response_mti(request.mti), FORMAT_ERROR)
        try:
            return self.keys.answer(request, answer) if self.keys.request_ok(request) else answer
        except ProtocolError:  # a request too malformed to re-encode for its MAC
            return answer

    def _answer(self, request: HostMessage, mti: str, code: str, **extra: str | bytes) -> HostMessage:
        fields: dict[str, str | bytes] = {k: v for k in _ECHOED if (v := request.get(k)) is not None}
        now = self._now()
        fields.update({"12": now.strftime("%H%M%S"), "13": now.strftime("%m%d"), "39": code, **extra})
        return HostMessage(mti=mti, fields=fields)

    def _approval_refs(self) -> dict[str, str]:
        self._last_auth += 1
        return {"37": self._next_rrn(), "38": f"{self._last_auth:06d}"}

    def _next_rrn(self) -> str:
        self._last_rrn += 1
        return f"{self._last_rrn:012d}"

    def _mac_error(self, terminal_id: str) -> bool:
        if terminal_id in self._mac_refused:
            return True
        if self._mac_refused_all and terminal_id not in self._signed_on_since_refusal:
            return True
        return self.require_sign_on and terminal_id not in self._signed_on

    def _replay(self, request: HostMessage, key: Key, content: tuple[str | None, ...]) -> HostMessage | None:
        """The first answer to this (terminal, STAN, date), or 94 for the same key with other
        content (a different DE 3 or amount is not a retry: it is a terminal bug)."""
        first = self._replies.get((response_mti(request.mti), *key))
        if first is None:
            return None
        if first[0] != content:
            return self._answer(request, response_mti(request.mti), DUPLICATE)
        log.info("duplicate %s terminal=%s stan=%s: replaying %s", request.mti, key[0], key[1], first[1].response_code)
        return first[1]

    def _remember(self, request: HostMessage, key: Key, content: tuple[str | None, ...], answer: HostMessage) -> None:
        self._replies[(response_mti(request.mti), *key)] = (content, answer)
        self._ledger.note("reply", (response_mti(request.mti), *key), (content, answer))

    def _financial(self, request: HostMessage) -> HostMessage:
        terminal_id, stan, date, amount, processing = _need(request, "41", "11", "13", "4", "3")
        key, content = (terminal_id, stan, date), (processing, amount, _card_digest(request))
        if self._mac_error(terminal_id):
            return self._answer(request, "0210", MAC_ERROR)  # not remembered: resent after sign-on
        if self._ledger.was_reversed(key):
            # The tombstone wins over the duplicate rule: once reversed, the original stays undone,
            # whether it arrives after its reversal or is resent after it.
            log.warning("0200 terminal=%s stan=%s arrived after its reversal: refused", terminal_id, stan)
            return self._answer(request, "0210", INVALID_TRANSACTION)
        replay = self._replay(request, key, content)
        if replay is not None:
            return replay
        kind = _KIND_BY_CODE.get(processing)
        if self._ledger.get(key) is not None:
            answer = self._answer(request, "0210", DUPLICATE)  # the key is booked as an advice
        elif kind is None:
            answer = self._answer(request, "0210", INVALID_TRANSACTION)
        elif self._ledger.is_settled(terminal_id, _batch_of(request)):
            # A closed batch's totals never change: the terminal must sign on and learn the new batch.
            log.warning("0200 terminal=%s stan=%s for settled batch %d: refused", terminal_id, stan,
                        _batch_of(request))
            answer = self._answer(request, "0210", INVALID_TRANSACTION)
        else:
            original = OriginalRef.from_field(_need(request, "61")[0]) if kind != "sale" else None
            code = (self._forced_code(request) or rules.decline(request, now=self._now(), currency=self.currency)
                    or self._replayed_cryptogram(request)
                    or self._issuer(request, kind, key, int(amount), original))
            if code == APPROVED and (spent := self._cryptogram_key(request)) is not None:
                self._cryptograms.add(spent)  # an approved ARQC is used up
                self._ledger.note("cryptogram", spent, True)
            extra: dict[str, str | bytes] = dict(self._approval_refs()) if code == APPROVED else {}
            extra.update(_issuer_script(request, code))
            answer = self._answer(request, "0210", code, **extra)
            self._ledger.book(LedgerEntry(
                terminal_id=terminal_id, stan=stan, date=date, batch=_batch_of(request), kind=kind,
                amount_minor=int(amount), response_code=code, answer=answer,
                original=None if original is None else (f"{original.stan:06d}", original.date),
            ))
        self._remember(request, key, content, answer)
        return answer

    def _cryptogram_key(self, request: HostMessage) -> tuple[str, str, bytes] | None:
        arqc = rules.icc_items(request).get("9F26")
        return None if arqc is None else (_card_digest(request), _psn(request), arqc)

    def _replayed_cryptogram(self, request: HostMessage) -> str | None:
        """05 for an ARQC (9F26) this card already had approved, on another transaction: a
        replayed cryptogram (same ATC, amount and unpredictable number). An ARQC declined (a
        wrong PIN: 55) may come again with a new PIN block, as the terminal's PIN retry does;
        a retry of the same request is replayed before this is asked."""
        key = self._cryptogram_key(request)
        if key is None or key not in self._cryptograms:
            return None
        atc = rules.icc_items(request).get("9F36", b"")
        log.warning("replayed ARQC (ATC %s) for terminal=%s stan=%s: refused", atc.hex(), request.terminal_id,
                    request.stan)
        return DO_NOT_HONOUR

    def _forced_code(self, request: HostMessage) -> str | None:
        forced = self._card_codes.get(_pan_of(request))
        if forced is None and self._decline_left > 0:
            self._decline_left -= 1
            forced = self._decline_code
        return forced

    def _issuer(self, request: HostMessage, kind: str, key: Key, amount: int, original: OriginalRef | None) -> str:
        if original is None:
            card = card_by_pan(_pan_of(request))
            if card is None:
                return DO_NOT_HONOUR
            return _card_checks(request, card, self.keys.pin_key(request)) or card.response_code
        sale = self._ledger.get((key[0], f"{original.stan:06d}", original.date))
        if sale is None or sale.kind != "sale" or not sale.effective:
            return ORIGINAL_NOT_FOUND
        credits = self._ledger.credits_against(*sale.key)
        if any(c.kind == "void" for c in credits):
            return INVALID_TRANSACTION  # already voided
        if kind == "void":
            if credits or self._ledger.is_settled(sale.terminal_id, sale.batch):
                return INVALID_TRANSACTION  # refunded in part, or its batch is closed: refund it
            return APPROVED if amount == sale.amount_minor else ORIGINAL_AMOUNT_WRONG
        refunded = sum(c.amount_minor for c in credits)
        return APPROVED if amount <= sale.amount_minor - refunded else INVALID_AMOUNT

    def _advice(self, request: HostMessage) -> HostMessage:
        terminal_id, stan, date, amount, processing = _need(request, "41", "11", "13", "4", "3")
        key, content = (terminal_id, stan, date), (processing, amount, _card_digest(request))
        if self._mac_error(terminal_id):
            return self._answer(request, "0230", MAC_ERROR)
        replay = self._replay(request, key, content)
        if replay is not None:
            return replay
        if processing != FINANCIAL_CODES["sale"]:
            answer = self._answer(request, "0230", INVALID_TRANSACTION)
        elif self._advice_code is not None:
            answer = self._answer(request, "0230", self._advice_code)
        elif self._ledger.get(key) is not None or self._ledger.was_reversed(key):
            answer = self._answer(request, "0230", DUPLICATE)
        elif code := rules.decline(request, now=self._now(), currency=self.currency):
            answer = self._answer(request, "0230", code)
        else:
            # The terminal already approved it offline: the host books it (an issuer that
            # refuses it later is a chargeback, not an answer here).
            answer = self._answer(request, "0230", APPROVED, **{"37": self._next_rrn()})
            self._ledger.book(LedgerEntry(
                terminal_id=terminal_id, stan=stan, date=date, batch=_batch_of(request), kind="sale",
                amount_minor=int(amount), response_code=APPROVED, offline=True, answer=answer,
            ))
        self._remember(request, key, content, answer)
        return answer

    def _reversal(self, request: HostMessage) -> HostMessage:
        terminal_id, stan, date = _need(request, "41", "11", "13")
        if self._mac_error(terminal_id):
            return self._answer(request, "0410", MAC_ERROR)
        key = (terminal_id, stan, date)
        entry = self._ledger.get(key)
        outcome = self._ledger.reverse(key)
        if entry is not None and request.text("4") not in (None, f"{entry.amount_minor:012d}"):
            log.warning("0400 terminal=%s stan=%s: amount differs from the original; reversed in full",
                        terminal_id, stan)
        log.info("reversal terminal=%s stan=%s reason=%s: %s", terminal_id, stan, request.text("39"), outcome)
        # Unknown originals are answered 00 too: the reversal's promise (the original is not
        # booked) holds, and any other answer would keep the terminal repeating it forever.
        return self._answer(request, "0410", APPROVED)

    def _settlement(self, request: HostMessage) -> HostMessage:
        terminal_id, stan, date, processing, totals_field = _need(request, "41", "11", "13", "3", "63")
        batch, key = _batch_of(request), (terminal_id, stan, date)
        terminal_totals = BatchTotals.from_field(totals_field)
        content = (processing, totals_field, str(batch))
        if self._mac_error(terminal_id):
            return self._answer(request, "0510", MAC_ERROR)
        replay = self._replay(request, key, content)
        if replay is not None:
            return replay
        if processing not in SETTLEMENT_CODES.values():
            return self._answer(request, "0510", INVALID_TRANSACTION)
        uploaded = self._ledger.upload_totals(terminal_id, batch)
        basis, host_totals = ("upload", uploaded) if uploaded is not None else (
            "ledger", self._ledger.batch_totals(terminal_id, batch))
        balanced = host_totals == terminal_totals and not self._out_of_balance_once
        self._out_of_balance_once = False
        if balanced:
            audit = parse_audit_anchor(request.text("48"))
            last = self._audit_anchors.get(terminal_id)
            if audit is not None and last is not None and audit[0] < last[0]:
                # The host's copy of the anchor: a trail that lost entries shows at the next settlement.
                log.warning("terminal %s: audit trail has %d entries, %d at its last settlement",
                            terminal_id, audit[0], last[0])
                self.audit_regressions.append((terminal_id, batch, last[0], audit[0]))
                self._ledger.note("regression", (len(self.audit_regressions),), self.audit_regressions[-1])
            if audit is not None:
                self._audit_anchors[terminal_id] = audit
                self._ledger.note("anchor", (terminal_id,), audit)
            self._ledger.settle(Settlement(terminal_id=terminal_id, batch=batch, totals=host_totals, basis=basis,
                                           audit=audit))
            self._batches[terminal_id] = max(self._batches.get(terminal_id, 0), batch + 1)
            self._ledger.note("batch", (terminal_id,), self._batches[terminal_id])
            if basis == "upload" and host_totals != self._ledger.batch_totals(terminal_id, batch):
                log.warning("batch %d of terminal %s settled on the uploaded detail, which differs from "
                            "the host's ledger", batch, terminal_id)
        code = APPROVED if balanced else OUT_OF_BALANCE
        answer = self._answer(request, "0510", code, **{"63": host_totals.to_field()})
        self._remember(request, key, content, answer)
        return answer

    def _upload(self, request: HostMessage) -> HostMessage:
        terminal_id, stan, date, amount, processing = _need(request, "41", "11", "13", "4", "3")
        if self._mac_error(terminal_id):
            return self._answer(request, "0330", MAC_ERROR)
        kind = _KIND_BY_CODE.get(processing)
        if kind is None:
            return self._answer(request, "0330", INVALID_TRANSACTION)
        if kind != "sale":
            OriginalRef.from_field(_need(request, "61")[0])  # layout check: a credit names its sale
        batch = _batch_of(request)
        detail = UploadedDetail(stan=stan, date=date, kind=kind, amount_minor=int(amount))
        self._ledger.record_upload(terminal_id, batch, detail)
        entry = self._ledger.get((terminal_id, stan, date))
        if entry is None or not entry.effective or (entry.kind, entry.amount_minor) != (kind, detail.amount_minor):
            log.info("upload terminal=%s stan=%s differs from the ledger", terminal_id, stan)
        return self._answer(request, "0330", APPROVED)

    def _signature_upload(self, request: HostMessage) -> HostMessage:
        """0820: store the signature of an approved sale once; a repeat answers 94 (docs/host-link.md)."""
        terminal_id, stan, rrn, amount = _need(request, "41", "11", "37", "4")
        if self._mac_error(terminal_id):
            return self._answer(request, "0830", MAC_ERROR)
        fault = self._upload_fault if self._upload_faults_left > 0 else None
        if fault is not None:
            self._upload_faults_left -= 1
            if fault == UPLOAD_IGNORED:
                self._lose_answer = True
                return self._answer(request, "0830", FORMAT_ERROR)  # never sent
            if fault != UPLOAD_SILENT:
                return self._answer(request, "0830", fault)
        data, image = request.get("55"), request.get("62")
        if not isinstance(data, bytes) or not isinstance(image, bytes):
            raise _FormatError
        receipt = ReceiptTlv.decode(data)  # rules checked it: the same original as DE 11/37/41
        sale = self._ledger.get((terminal_id, stan, receipt.original_date))
        if (sale is None or sale.kind != "sale" or not sale.approved or sale.reversed
                or sale.answer.text("37") != rrn or sale.amount_minor != int(amount)):
            log.info("0820 terminal=%s stan=%s names no approved sale", terminal_id, stan)
            return self._answer(request, "0830", ORIGINAL_NOT_FOUND)
        upload = SignatureUpload(terminal_id=terminal_id, stan=stan, date=sale.date, rrn=rrn,
                                 amount_minor=sale.amount_minor, receipt_tlv=data, image=image)
        stored = self._ledger.store_signature(upload)
        if not stored:
            log.info("0820 terminal=%s stan=%s: signature stored already", terminal_id, stan)
        self._lose_answer = fault == UPLOAD_SILENT
        return self._answer(request, "0830", APPROVED if stored else DUPLICATE)

    def _network(self, request: HostMessage) -> HostMessage:
        function = request.text("3") or NETWORK_CODES["echo"]  # a bare 0800 is an echo test
        terminal_id = request.terminal_id or ""
        if function == NETWORK_CODES["echo"]:
            return self._answer(request, "0810", APPROVED)
        _need(request, "41")
        if function == NETWORK_CODES["sign-off"]:
            self._signed_on.discard(terminal_id)
            self.keys.forget(terminal_id)
            return self._answer(request, "0810", APPROVED)
        if function != NETWORK_CODES["sign-on"]:
            return self._answer(request, "0810", INVALID_TRANSACTION)
        self._signed_on.add(terminal_id)
        self._signed_on_since_refusal.add(terminal_id)
        self._mac_refused.discard(terminal_id)
        # The host's batch wins: a terminal that missed a 0510 learns its batch was closed.
        if terminal_id not in self._batches:
            self._batches[terminal_id] = _batch_of(request) or 1
            self._ledger.note("batch", (terminal_id,), self._batches[terminal_id])
        batch = self._batches[terminal_id]
        return self._answer(request, "0810", APPROVED, **{"60": f"{batch:06d}", "62": self.keys.issue(terminal_id)})


def _declining(code: str) -> str:
    if code not in RESPONSE_CODES or code == APPROVED:
        raise ValueError(f"a decline code is one of {sorted(set(RESPONSE_CODES) - {APPROVED})}")
    return code


def _batch_of(request: HostMessage) -> int:
    value = request.text("60") or "0"
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise _FormatError
    return int(value)


def _card_checks(request: HostMessage, card: TestCard, pin_key: bytes) -> str | None:
    """The issuer's own checks before its answer for the card: the chip's ARQC, then the PIN."""
    icc = request.get("55")
    # rules.icc_items is DE 55 decoded once for the host's checks ({} when it does not decode,
    # which verifies as nothing does).
    if isinstance(icc, bytes) and icc and not verify_arqc_items(rules.icc_items(request), card.pan, _psn(request)):
        log.warning("ARQC did not verify for terminal=%s stan=%s", request.terminal_id, request.stan)
        return DO_NOT_HONOUR
    if card.cvm.value == "online-pin":
        block = request.get("52")
        if not isinstance(block, bytes) or not verify_pin_block(block, card.pan, card.pin, pin_key):
            return WRONG_PIN
    return None


def _issuer_script(request: HostMessage, code: str) -> dict[str, str | bytes]:
    """For a chip sale, DE 55 of the answer: 8A (ARC) and 91 (ARPC + ARC) so the card can trust it."""
    icc = request.get("55")
    if not isinstance(icc, bytes) or not icc:
        return {}
    items = rules.icc_items(request)
    if items and not any(int(tag[:2], 16) & 0x20 for tag in items):
        # No template at the top level, so the first 9F26 depth-first is the top-level one; DE 55
        # is decoded already (the rules read it): nothing to search.
        arqc = items.get("9F26")
    else:
        try:
            arqc = tlv.find(icc, "9F26")
        except RemoteProtocolError:
            return {}
    arc = code.encode("ascii")
    if arqc is None or len(arc) != 2:
        return {}
    arpc = make_arpc(arqc, arc, pan=_pan_of(request), psn=_psn(request))
    return {"55": tlv.encode([("8A", arc), ("91", arpc)])}


def _psn(request: HostMessage) -> str:
    return (request.text("23") or "0")[-2:].zfill(2)


def _pan_of(request: HostMessage) -> str:
    """DE 2, or the PAN part of track 2 (DE 35) for a request that sent no DE 2."""
    return rules.pan_of(request)


def _card_digest(request: HostMessage) -> str:
    """The card a request names, as a digest: part of what makes a resend a retry (the same key
    with another card is not one), kept without keeping the PAN."""
    pan = _pan_of(request)
    return hashlib.sha256(pan.encode()).hexdigest()[:16] if pan else ""
