"""A QR payment end to end on virtual time (customer code, paid at once), against what it cannot
do without: its durable journal commits and the gateway simulator's own time.

The till is in process with every device, the acquirer and the wallet gateway emulated
(emu://wallet: the gateway answers inside the driver's send, no thread, no socket), on a
FakeClock, so the figure is the terminal's own work for a QR payment: the scan through the
scanner codec and driver, the checkout's QR states, the signed request and answer, the journal
and both 扫码存根联 slips. The baseline is measured in the same run, as bench/sale.py's: the
payment's journal commits times one synchronous=FULL commit and its journal-witness syncs times
one small fdatasync (every sync its durability requires), plus the time spent inside the
gateway's `respond`. `commits_only_ratio` leaves the witness out, as this bench did before.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median
from bench.sale import commit_floor, fdatasync_floor

__all__ = ["bench_qr"]

TARGET_RATIO = 3.0


def _payments(folder: Path, reps: int) -> tuple[list[float], list[int], list[int], list[float]]:
    from emulator.wallet.gateway import WalletGateway
    from emulator.wallet.payers import payment_code
    from sim.wiring import build_emulated_till
    from terminal.checkout.table import CheckoutState
    from terminal.clock import FakeClock

    gateway_time = [0.0]
    respond = WalletGateway.respond

    def timed(self: WalletGateway, call: Any) -> Any:
        start = time.perf_counter()
        try:
            return respond(self, call)
        finally:
            gateway_time[0] += time.perf_counter() - start

    clock = FakeClock()
    till = build_emulated_till(var_dir=folder, clock=clock, host_transport="emu")
    WalletGateway.respond = timed  # type: ignore[method-assign]
    try:
        times, commits, syncs, gateway = [], [], [], []
        for _ in range(reps + 1):
            before, synced, gateway_time[0] = till.journal.commits, till.journal.witness_syncs, 0.0
            start = time.perf_counter()
            sale = till.sale(1234, tender="qr")
            till.enter_code(payment_code("00"))
            while till.flow.state is not CheckoutState.IDLE:  # the scan's bytes at the line rate: virtual
                due = clock.next_deadline()
                assert due is not None, till.flow.state
                clock.advance(max(0.0, min(due - clock.now(), 0.05)))
                till.runtime.run_until(lambda: till.flow.state is CheckoutState.IDLE, io_wait=0.0)
            times.append(time.perf_counter() - start)
            commits.append(till.journal.commits - before)
            syncs.append(till.journal.witness_syncs - synced)
            gateway.append(gateway_time[0])
            assert sale.outcome == "APPROVED", sale
    finally:
        WalletGateway.respond = respond  # type: ignore[method-assign]
        till.close()
    return times[1:], commits[1:], syncs[1:], gateway[1:]  # the first warms imports (qrcode, the codec) once


def bench_qr(reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        commit, sync = commit_floor(folder, reps), fdatasync_floor(folder, reps)
        times, commits, syncs, gateway = _payments(folder / "qr", reps)
        # before and after: the disk may drift
        commit = median([commit, commit_floor(folder, reps)])
        sync = median([sync, fdatasync_floor(folder, reps)])
    per_payment, gateway_s = median(times), median(gateway)
    n_commits, n_syncs = int(median(commits)), int(median(syncs))
    baseline = n_commits * commit + n_syncs * sync + gateway_s
    ratio = per_payment / baseline
    return {"name": "qr_payment_vs_commits_and_gateway", "median_s": per_payment, "commits_per_payment": n_commits,
            "commit_median_s": commit, "witness_syncs_per_payment": n_syncs, "fdatasync_median_s": sync,
            "gateway_median_s": gateway_s, "overhead_over_gateway_s": per_payment - gateway_s,
            "baseline": "commits_per_payment x median synchronous=FULL commit + witness_syncs_per_payment x median"
                        " fdatasync of a small file + the gateway's own time",
            "ratio": ratio, "target_ratio": TARGET_RATIO, "within_target": ratio <= TARGET_RATIO,
            "commits_only_ratio": per_payment / (n_commits * commit + gateway_s)}
