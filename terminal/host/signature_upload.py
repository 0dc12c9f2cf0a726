"""The 0820 of one e-signed sale, from the journal: its row, its stored signature and the profile.

The builder (terminal/host/messages.py `signature_upload_request`), the receipt TLV
(receipt_tlv.py) and the image (terminal/receipts/signature_image.py) are the parts; this puts
them together the same way for every attempt, so a resend after a crash is the same message and
the host's 94 makes it one effect. The full PAN is not in the journal (never stored), so DE 2 is
left out; the host finds the sale by its trace, RRN and amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drivers.acquirer.events import HostMessage
from terminal.host.messages import UploadAnswer, parse_upload_answer, signature_upload_request
from terminal.host.receipt_tlv import receipt_tlv
from terminal.journal import StoredSignature, TxnRecord

__all__ = ["UploadAnswer", "parse_upload_answer", "upload_request_for"]

UPLOAD_DOTS = 384  # the width the DE 62 image is first drawn at (48 mm); smaller when it must fit
TXN_TYPES = {"sale": "000000", "void": "200000", "refund": "200000"}  # DE 3 of the signed transaction


def upload_request_for(record: TxnRecord, stored: StoredSignature, *, terminal: Mapping[str, Any],
                       when: datetime) -> HostMessage:
    from drivers.signature_pad.strokes import decode_strokes
    from terminal.receipts.signature_image import upload_image

    signature = decode_strokes(stored.strokes)
    image = upload_image(signature.strokes, signature.width, signature.height, dots=UPLOAD_DOTS,
                         jbig=str(terminal["signature"]["upload_image"]) == "jbig1")
    made = datetime.fromisoformat(record.created_at)
    rrn = record.rrn or "0" * 12
    receipt = receipt_tlv(
        merchant_name=str(terminal["merchant_name"]["zh"]), txn_type=TXN_TYPES.get(record.kind, "000000"),
        operator="01", when=made, auth_code=record.auth_code or "", currency=record.currency,
        original_stan=record.stan, original_batch=record.batch, original_rrn=rrn, original_date=f"{made:%m%d}",
        terminal_id=str(terminal["terminal_id"]))
    return signature_upload_request(
        original_stan=record.stan, amount_minor=record.amount_minor, pan=None, settlement_date="0000", rrn=rrn,
        terminal_id=str(terminal["terminal_id"]), merchant_id=str(terminal["merchant_id"]), batch=record.batch,
        receipt=receipt, image=image.data, when=when, currency=str(terminal["currency"]))
