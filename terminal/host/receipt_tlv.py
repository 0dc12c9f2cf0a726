"""The receipt TLV of an 0820 signature upload (DE 55), built from the sale: `receipt_tlv(...)`.

The tag table and `ReceiptTlv` (encode, decode) are in drivers/acquirer/spec.py, shared
with the acquirer simulator; docs/host-link.md "Signature upload (0820)" prints the table.
"""

from __future__ import annotations

from datetime import datetime

from drivers.acquirer.spec import RECEIPT_MANDATORY_TAGS, RECEIPT_TLV_MAX, ReceiptTlv

__all__ = ["RECEIPT_MANDATORY_TAGS", "RECEIPT_TLV_MAX", "ReceiptTlv", "receipt_tlv"]


def receipt_tlv(
    *, merchant_name: str, txn_type: str, operator: str, when: datetime, auth_code: str, currency: str,
    original_stan: int, original_batch: int, original_rrn: str, original_date: str, terminal_id: str,
    original_auth_code: str | None = None, print_count: int = 1, phone: str | None = None,
    aid: bytes | None = None, cryptogram: bytes | None = None,
) -> bytes:
    """DE 55 of an 0820 (see the table above). `original_auth_code` defaults to `auth_code` (a
    sale is its own original); `original_date` is the sale's DE 13 (MMDD)."""
    if not (0 <= original_stan <= 999999 and 0 <= original_batch <= 999999 and 0 <= print_count <= 99):
        raise ValueError("original_stan and original_batch are 0..999999, print_count 0..99")
    return ReceiptTlv(
        merchant_name=merchant_name, txn_type=txn_type, operator=operator, when=when, auth_code=auth_code,
        currency=currency, original_stan=f"{original_stan:06d}", original_batch=f"{original_batch:06d}",
        original_rrn=original_rrn, original_date=original_date,
        original_auth_code=auth_code if original_auth_code is None else original_auth_code,
        terminal_id=terminal_id, print_count=str(print_count), phone=phone, aid=aid, cryptogram=cryptogram,
    ).encode()
