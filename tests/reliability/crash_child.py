"""The victim of the crash-kill loop (tests/reliability/test_crash_kill.py): a till selling.

Started ahead of time, it imports everything and waits for a `GO` line on stdin (EOF: it exits
without touching the var dir), so the parent can overlap a child's start-up with its predecessor's
run. On `GO` it prints `START`, boots a till on the var dir against the parent's acquirer
simulator (emulated card reader and printer in process, the real SystemClock) — a kill can land
in the boot's own recovery too — prints `READY`, then runs sales with the `approved` card back
to back. After each sale returns it prints `ACK <txn_id> <amount_minor> <outcome>` and flushes:
a sale is *acknowledged* once its APPROVED line has left the process. The parent SIGKILLs it
at a random moment; nothing here cleans up on purpose, since a power cut would not either.

`--disk-full-after K --disk-full-at TEXT` (a disk-full round): after K sales the journal's disk
"fills" (tests/support/full_disk.py) the first time a statement containing TEXT runs, and stays
full; the till goes on selling (and declining) until it is killed.

Run: python -m tests.reliability.crash_child --var-dir DIR --port PORT --seed N
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from sim.wiring import build_emulated_till
from tests.support.full_disk import FullDisk

__all__ = ["CARD", "JOURNAL_CAPACITY", "MAX_AMOUNT_MINOR", "main", "overrides"]

CARD = "approved"
MAX_AMOUNT_MINOR = 999_999  # under the profile's per-sale limit; chip, so no contactless cap
JOURNAL_CAPACITY = 1_000_000  # hundreds of kills must never meet "journal full, settle first"


def overrides(port: int) -> dict[str, object]:
    """What the parent's recovery till and every child share: the one host, a roomy journal."""
    return {"host.url": f"tcp://127.0.0.1:{port}", "limits.journal_capacity": JOURNAL_CAPACITY}


def _say(line: str) -> None:
    # One write(2) of less than PIPE_BUF: the parent sees a whole line or none of it.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a till selling until it is killed")
    parser.add_argument("--var-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True, help="chooses the amounts")
    parser.add_argument("--max-sales", type=int, default=10_000, help="stop by itself after this many")
    parser.add_argument("--disk-full-after", type=int, default=None, help="sales before the disk fills")
    parser.add_argument("--disk-full-at", default="", help="the statement at which it fills")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    if sys.stdin.readline().strip() != "GO":
        return 0  # the parent did not need this one
    _say("START")
    till = build_emulated_till(var_dir=args.var_dir, overrides=overrides(args.port))
    reader = till.emulators.card_reader
    assert reader is not None, "the profile's card reader is emulated (emu://)"
    _say("READY")
    for number in range(args.max_sales):
        if number == args.disk_full_after:
            FullDisk(till.journal, full_from=args.disk_full_at)
        amount = rng.randint(1, MAX_AMOUNT_MINOR)
        reader.present(CARD)
        sale = till.sale(amount)
        _say(f"ACK {sale.txn_id} {sale.amount_minor} {sale.outcome}")
    till.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
