"""Reversal (冲正) delivery: every queued reversal reaches the host, or a person is told.

The journal holds the queue (terminal/journal.py). This sends the oldest unresolved reversal
first — before any other online message — as 0400, repeats as 0401 with a growing pause, and
after the profile's number of attempts in a round escalates it ("reversal failed, handle manually /
冲正不成功,请人工处理"): it goes on the exception report and is tried again on the next
recovery, never dropped (jPOS's SAF drops on expiry; for a reversal that would leave the
customer charged).

The backoff is per round (`wait_for`): attempt k of a round waits `host.reversal_wait_s` x
2^(k-1), at most `max_wait_s` (the checkout's `LIMITS.reversal_max_wait_s`); with the defaults
(30 s, 3 attempts, cap 120 s) a round is 30 s, 60 s, 120 s. A later round (the next sale, the
escalated retry while idle) starts again at 30 s: the cumulative count only decides 0400 or 0401,
never how long a healthy host is waited for. A cashier's sale sends a waiting reversal at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drivers.acquirer.events import HostMessage
from terminal.clock import Clock
from terminal.host.link import HostLink
from terminal.host.messages import match, reversal_request
from terminal.journal import Journal

__all__ = ["ReversalDesk"]

log = logging.getLogger(__name__)
ACKNOWLEDGED = {"00", "25"}


class ReversalDesk:
    def __init__(self, *, journal: Journal, host: HostLink, clock: Clock, terminal: Mapping[str, Any],
                 max_wait_s: float = 120.0) -> None:
        self.journal, self.host, self.clock, self.terminal = journal, host, clock, terminal
        limits = terminal["host"]
        self.max_attempts = int(limits["reversal_max_attempts"])
        self.first_wait_s = float(limits["reversal_wait_s"])
        self.max_wait_s = max(max_wait_s, self.first_wait_s)  # a profile's first wait is never cut
        self.current: str | None = None
        self._request: HostMessage | None = None
        self._given_up: set[str] = set()
        self._round_attempts: dict[str, int] = {}

    def start_round(self) -> None:
        """A new recovery round: every unresolved reversal, escalated ones too, gets a try."""
        self._given_up.clear()
        self._round_attempts.clear()

    def wait_for(self, *, attempt_in_round: int) -> float:
        """How long attempt `attempt_in_round` (1, 2, ...) of a round waits for its answer."""
        return float(min(self.first_wait_s * 2 ** (attempt_in_round - 1), self.max_wait_s))

    def pick(self) -> bool:
        """Choose the next reversal to deliver this round; False when none is left."""
        queue = [t for t in self.journal.unresolved_reversals() if t not in self._given_up]
        self.current = queue[0] if queue else None
        self._request = None
        return self.current is not None

    def send(self) -> float:
        """Send (or repeat) the current reversal; returns how long to wait for its answer."""
        txn_id = self._txn()
        record = self.journal.get(txn_id)
        assert record is not None, f"reversal queued for unknown transaction {txn_id}"
        _, reason_code, attempts = self.journal.reversal_info(txn_id)
        attempts = self.journal.reversal_attempt(txn_id, at=self.clock.wall())  # durable before it leaves
        self._request = reversal_request(
            stan=record.stan, amount_minor=record.amount_minor, reason=reason_code,
            original_when=datetime.fromisoformat(record.created_at), terminal_id=str(self.terminal["terminal_id"]),
            merchant_id=str(self.terminal["merchant_id"]), currency=record.currency, batch=record.batch,
            kind=record.kind, rrn=record.rrn, auth_code=record.auth_code, repeat=attempts > 1,
        )
        if (fault := self.host.send(self._request)) is not None:
            log.warning("reversal of %s not sent (attempt %d): %s", txn_id, attempts, fault.detail)
        in_round = self._round_attempts[txn_id] = self._round_attempts.get(txn_id, 0) + 1
        return self.wait_for(attempt_in_round=in_round)

    def exhausted(self) -> bool:
        """This round's attempts are used up: escalate (the next round tries again)."""
        return self._round_attempts.get(self._txn(), 0) >= self.max_attempts

    def answered(self, msg: HostMessage) -> bool:
        """True when `msg` acknowledges the current reversal: 00, or 25 (the host never booked
        the original, so there is nothing to undo). Any other answer is retried."""
        if self._request is None or not match(self._request, msg):
            return False
        if msg.response_code not in ACKNOWLEDGED:
            log.warning("reversal of %s answered %s; will repeat", self.current, msg.response_code)
            return False
        self.journal.record_reversed(self._txn(), at=self.clock.wall())
        log.info("reversal of %s acknowledged (%s)", self.current, msg.response_code)
        self.current, self._request = None, None
        return True

    def escalate(self) -> None:
        self._given_up.add(self._txn())
        self.journal.escalate_reversal(self._txn(), at=self.clock.wall())
        self.current, self._request = None, None

    def _txn(self) -> str:
        assert self.current is not None, "no reversal in hand"
        return self.current
