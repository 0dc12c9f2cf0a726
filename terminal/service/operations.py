"""The operator's functions of a running terminal, as the payment API and `till` commands ask
for them: void, refund, reprint, settlement, the journal, receipts and reports.

Each runs on the service loop's thread (`Service.call`) through the same Till methods a test
or the demo uses, so the rules are the till's own: the supervisor's own PIN bound to the one
operation, audited granted or denied, refused with a typed error when it cannot be done.
What leaves is masked: a transaction reads as its trace, amounts, codes and last 4 digits.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from drivers.events import Role
from drivers.record import Record, field_names
from terminal import devices as registry
from terminal.errors import InputError
from terminal.journal.core import TxnRecord
from terminal.money import parse_amount
from terminal.receipts.layout import Copy
from terminal.receipts.spool import PrintJob
from terminal.security.operators import check_new_pin

if TYPE_CHECKING:
    from terminal.service.loop import Service

__all__ = ["Operations", "plain", "txn_view"]


def plain(value: Any) -> Any:
    """A record (and what it holds) as JSON-ready data."""
    if isinstance(value, Record):
        return {name: plain(getattr(value, name)) for name in field_names(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def txn_view(record: TxnRecord) -> dict[str, Any]:
    return {"txn_id": record.txn_id, "kind": record.kind, "state": record.state, "trace": f"{record.stan:06d}",
            "batch": record.batch, "amount_minor": record.amount_minor, "currency": record.currency,
            "entry_mode": record.entry_mode, "masked_pan": f"**** {record.pan_last4}" if record.pan_last4 else None,
            "response_code": record.response_code, "auth_code": record.auth_code, "rrn": record.rrn,
            "original_txn_id": record.original_txn_id, "created_at": record.created_at}


class Operations:
    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def till(self) -> Any:
        return self.service.till

    def resolve(self, ref: str) -> str:
        """A transaction by its trace number (the newest with it) or its txn_id."""
        def find() -> str:
            journal = self.till.journal
            if ref == "last":
                last = journal.last_decided()
                txn_id = None if last is None else last.txn_id
            elif ref.isdigit() and len(ref) <= 6:
                txn_id = journal.txn_id_for_stan(int(ref))
            else:
                txn_id = ref if journal.get(ref) is not None else None
            if txn_id is None:
                raise LookupError(ref)
            return str(txn_id)

        try:
            return self.service.call(find)
        except LookupError:
            from terminal.service.routes import ApiError

            raise ApiError(404, "unknown_transaction", f"no transaction {ref[:40]!r} in the live journal") from None

    def credit(self, kind: str, txn_id: str, body: dict[str, Any]) -> dict[str, Any]:
        till = self.till

        def run() -> dict[str, Any]:
            if kind == "void":
                sale = till.void(txn_id, supervisor=body["supervisor"], pin=body["pin"], reason=body["reason"])
            else:
                amount = parse_amount(str(body["amount"]), max_minor=int(till.terminal["limits"]["max_amount_minor"]))
                sale = till.refund(txn_id, amount, supervisor=body["supervisor"], pin=body["pin"],
                                   reason=body["reason"])
            record = till.journal.get(sale.txn_id)
            return {"outcome": sale.outcome, "reason": sale.reason, "response_code": sale.response_code,
                    "transaction": None if record is None else txn_view(record)}

        return self.service.call(run)

    def reprint(self, txn_id: str, body: dict[str, Any]) -> dict[str, Any]:
        copy = _copy(body.get("copy", "cardholder"))

        def run() -> dict[str, Any]:
            approval = self.till.approve("reprint", operator_id=body["supervisor"], pin=body["pin"],
                                         reason=body["reason"], txn_id=txn_id)
            problems = self.till.flow.reprint(copy, approval=approval, txn_id=txn_id)
            return {"txn_id": txn_id, "copy": copy.value, "problems": problems}

        return self.service.call(run)

    def settle(self, body: dict[str, Any]) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            result = self.till.settle(supervisor=body["supervisor"], pin=body["pin"], reason=body["reason"])
            return {"settlement": plain(result)}

        return self.service.call(run)

    def journal(self, batch: int | None) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            journal = self.till.journal
            number = journal.current_batch() if batch is None else batch
            records = journal.batch_records(number, channel="all")
            return {"batch": number, "open_batch": journal.current_batch(),
                    "transactions": [txn_view(r) for r in records]}

        return self.service.call(run)

    def receipt(self, txn_id: str, *, copy: str, fmt: str) -> Any:
        def run() -> Any:
            till = self.till
            record = till.journal.get(txn_id)
            if record is None:
                raise InputError(f"no transaction {txn_id}")
            receipt = till.flow.spool.receipt_of(record, PrintJob(copy=_copy(copy)),
                                                 approved=record.state in ("APPROVED", "OFFLINE"))
            if fmt == "png":
                from terminal.receipts.e_receipt import render_png

                return render_png(receipt), "image/png"
            if fmt == "escpos":
                return _escpos(receipt, till), "application/octet-stream"
            from terminal.receipts.layout import line_text

            columns, chinese = _columns(till)
            text = "".join(line_text(line, columns, chinese) if not line.rule else "-" * columns + "\n"
                           for line in receipt.lines if line.image is None and not line.qr)
            return text.encode("utf-8"), "text/plain; charset=utf-8"

        return self.service.call(run)

    def exceptions(self) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            journal = self.till.journal
            return {"incidents": plain(journal.exception_report()),
                    "unresolved_reversals": [txn_view(r) for r in journal.unresolved_reversals()],
                    "pending_advices": len(journal.pending_advices())}

        return self.service.call(run)

    def operators(self) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            store, now = self.till.access.store, time.time()
            return {"operators": [
                {"id": op.id, "role": op.role, "disabled": op.disabled, "locked": store.failures(op.id)[1] > now}
                for op in store.operators().values()]}

        return self.service.call(run)

    def manage_operator(self, action: str, operator_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A supervisor adds, disables, enables an operator or gives them a new PIN: their own PIN
        for this one change, which the audit trail records with what was done (never the PIN)."""
        def run() -> dict[str, Any]:
            till = self.till
            reason = f"{action} {operator_id}: {body['reason']}"
            approval = till.approve("manage_operators", operator_id=body["supervisor"], pin=body["pin"], reason=reason)
            till.access.consume(approval, "manage_operators")
            store = till.access.store
            if action == "add":
                store.add(operator_id, str(body["role"]), check_new_pin(str(body["new_pin"])))
            elif action == "disable":
                store.disable(operator_id)
            elif action == "enable":
                store.enable(operator_id)
            else:
                if "new_pin" not in body:
                    raise InputError("reset-pin needs new_pin (4..12 digits)")
                store.set_pin(operator_id, check_new_pin(str(body["new_pin"])))
            till.audit.record(operation="manage_operators", actor=approval.approver, approver=approval.approver,
                              txn_id=None, reason=reason, result="done", at=till.clock.wall())
            return {"done": action, "operator": operator_id}

        return self.service.call(run)

    def cancellations(self) -> dict[str, Any]:
        return self.service.call(lambda: {"cancellations": plain(self.till.journal.cancellations())})

    def devices(self) -> dict[str, Any]:
        """Each fitted device slot: its family, port and the last thing it reported (published by
        the loop; read without it)."""
        health = self.service.device_health
        out: dict[str, Any] = {}
        for slot, settings in registry.fitted(self.till.terminal).items():
            driver = self.till.devices.get(slot)
            out[slot] = {"family": registry.resolve(slot, settings).family,
                         "present": driver is not None, **health.get(slot, {"condition": "ok"})}
        return out


def _copy(name: object) -> Copy:
    try:
        return Copy(name)
    except ValueError:
        raise InputError("copy is merchant or cardholder") from None


def _columns(till: Any) -> tuple[int, bool]:
    printer = till.profiles.get("printer")
    if printer is None:  # paperless: an 80 mm slip's width, in both languages
        return 48, True
    encoding = str(printer["text"]["encoding"]).lower()
    return int(printer["fonts"]["a"]["columns"]), encoding in {"gb18030", "gbk", "gb2312"}


def _escpos(receipt: Any, till: Any) -> bytes:
    """The copy as the printer is sent it (ESC/POS), by the printer family's own codec."""
    printer = till.profiles.get("printer")
    if printer is None:
        raise InputError("this terminal has no printer: ask for format=png (its e-receipt)")
    from terminal.receipts.layout import to_commands

    row = registry.family("printer")
    codec = row.codec_class()(Role.HOST, printer)
    return b"".join(codec.send(command) for command in to_commands(receipt, printer))
