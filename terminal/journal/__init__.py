"""The local journal: every sale, reversal, cancellation and print, durable before it matters.

Money invariants (ARCHITECTURE.md §5), enforced here:
- `record_sent` allocates the STAN and commits the row as SENT (WAL, synchronous=FULL) before the
  request may leave; calling it again with the same txn_id returns the same STAN (retries reuse it).
- `record_timeout` marks TIMEOUT and queues the reversal in one transaction.
- An offline approval and its advice are one transaction.
- Only last 4 + a keyed hash of the PAN are stored; nothing else of the card.
- Capacity: at the profile's limit new sales are refused until the batch is settled.
"""

from __future__ import annotations

from terminal.journal.core import (
    JOURNAL_FULL_MESSAGE,
    REVERSAL_FAILED_MESSAGE,
    Capacity,
    TxnRecord,
    new_txn_id,
)
from terminal.journal.queues import OwedMessages

__all__ = ["JOURNAL_FULL_MESSAGE", "REVERSAL_FAILED_MESSAGE", "Capacity", "Journal", "TxnRecord", "new_txn_id"]


class Journal(OwedMessages):
    """The whole journal: the core (journal_core.py) and what is owed to the host (journal_queues.py)."""
