"""SIGNATURE_REQUIRED: the cardholder's signature for a sale whose CVM asks for one."""

from __future__ import annotations

from typing import Any

from terminal.checkout.base import FlowBase, log
from terminal.checkout.table import CheckoutState
from terminal.errors import InputError

__all__ = ["SignatureSteps"]

S = CheckoutState


class SignatureSteps(FlowBase):
    def on_enter_SIGNATURE_REQUIRED(self, _: Any) -> None:
        # The e-signature pad will capture here (电签); until then the cardholder signs the
        # merchant copy and the operator confirms with `confirm_signature()`.
        self._show("sign_here")

    def confirm_signature(self, *, actor: str) -> None:
        if self.state is not S.SIGNATURE_REQUIRED:
            raise InputError(f"no signature is awaited (now {self.state.name})")
        log.info("signature for %s confirmed by %s", self._sale().txn_id, actor)
        self.print_receipts()
