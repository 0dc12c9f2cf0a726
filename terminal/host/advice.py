"""Store and forward: offline sales reach the host as advices (0220), in order, when it is back.

An offline approval is a promise the merchant makes on the issuer's behalf, so it is bounded by
the profile's floor limits (per sale, count and total not yet forwarded). An advice is never
dropped: a lost answer is repeated (0221) on the next round; an A0 (the host cannot check our
MAC) is no refusal: the advice stays owed, the terminal signs on again and repeats it. A refusal
is final: the sale is DECLINED (out of both sides' totals) and goes on the exception report and
the settlement slip, because the customer has left with the goods (Stripe's `offlineDetails`;
jPOS SAF drops on expiry, which we do not).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drivers.acquirer.events import HostMessage
from terminal.clock import Clock
from terminal.host.link import HostLink
from terminal.host.messages import advice_request, as_repeat, match, parse_advice_response
from terminal.journal import Journal

__all__ = ["AdviceDesk", "OfflineLimits"]

log = logging.getLogger(__name__)
RETRY_AFTER_S = 60.0  # after a failed round, wait this long before trying the host again


class OfflineLimits:
    def __init__(self, profile: Mapping[str, Any]) -> None:
        offline = profile["offline"]
        self.enabled = bool(offline["enabled"])
        self.per_sale = int(offline["floor_limit_minor"])
        self.max_count = int(offline["max_count"])
        self.max_total = int(offline["max_total_minor"])

    def refusal(self, amount_minor: int, journal: Journal) -> str | None:
        """Why this sale may not be approved offline, or None when it may."""
        count, total = journal.offline_exposure()
        if not self.enabled:
            return "offline approval is not enabled on this terminal"
        if amount_minor > self.per_sale:
            return f"over the offline floor limit of {self.per_sale / 100:.2f}"
        if count + 1 > self.max_count:
            return f"{count} offline sales are already waiting to be forwarded (limit {self.max_count})"
        if total + amount_minor > self.max_total:
            return f"offline total would pass {self.max_total / 100:.2f}"
        return None


class AdviceDesk:
    def __init__(self, *, journal: Journal, host: HostLink, clock: Clock, terminal: Mapping[str, Any]) -> None:
        self.journal, self.host, self.clock, self.terminal = journal, host, clock, terminal
        self.limits = OfflineLimits(terminal)
        self.current: str | None = None
        self._request: HostMessage | None = None
        self.next_round_at = 0.0

    def due(self) -> bool:
        return bool(self.journal.pending_advices()) and self.clock.now() >= self.next_round_at

    def send_next(self) -> bool:
        """Send the oldest owed advice; False when none is left or the host cannot be reached."""
        queue = self.journal.pending_advices()
        if not queue or self.host.needs_sign_on:
            return False  # after an A0 the round ends: the idle terminal signs on first
        self.current = queue[0]
        record = self.journal.get(self.current)
        assert record is not None, f"advice for unknown transaction {self.current}"
        attempts = self.journal.advice_attempt(self.current, at=self.clock.wall())
        request = advice_request(
            stan=record.stan, amount_minor=record.amount_minor, offline_auth_code=record.auth_code or "Y10000",
            entry_mode=record.entry_mode, pan=None, terminal_id=str(self.terminal["terminal_id"]),
            merchant_id=str(self.terminal["merchant_id"]), currency=record.currency, batch=record.batch,
            when=datetime.fromisoformat(record.created_at),
        )
        self._request = as_repeat(request) if attempts > 1 else request
        if (fault := self.host.send(self._request)) is not None:
            log.info("advice %s not sent: %s", self.current, fault.detail)
            self.give_up_round()
            return False
        return True

    def answered(self, msg: HostMessage) -> bool:
        if self._request is None or self.current is None or not match(self._request, msg):
            return False
        answer = parse_advice_response(msg)
        if answer.sign_on_required:
            # A0 says nothing of the sale, only of our keys: the advice stays owed, and goes
            # again right after the new sign-on (the link now says `needs_sign_on`).
            log.warning("advice %s answered A0: kept, sent again after the sign-on", self.current)
            self.current, self._request = None, None
            return True
        self.journal.record_advised(self.current, accepted=answer.approved, response_code=answer.response_code,
                                    rrn=msg.text("37"), at=self.clock.wall())
        self.current, self._request = None, None
        return True

    def give_up_round(self) -> None:
        """The host is not answering: keep everything, try again later."""
        self.current, self._request = None, None
        self.next_round_at = self.clock.now() + RETRY_AFTER_S
