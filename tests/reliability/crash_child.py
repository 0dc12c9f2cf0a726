"""The victim of the crash-kill loop (tests/reliability/test_crash_kill.py): a till selling.

Started ahead of time, it imports everything and waits for a `GO` line on stdin (EOF: it exits
without touching the var dir), so the parent can overlap a child's start-up with its predecessor's
run. On `GO` it prints `START`, boots a till on the var dir against the parent's acquirer
simulator (emulated card reader and printer in process, the real SystemClock) — a kill can land
in the boot's own recovery too — prints `READY`, then runs sales with the `approved` card back
to back. After each sale returns it prints `ACK <txn_id> <amount_minor> <outcome>` and flushes:
a sale is *acknowledged* once its APPROVED line has left the process. The parent SIGKILLs it
at a random moment; nothing here cleans up on purpose, since a power cut would not either.

`--wallet-url URL --qr-share P` (a QR round, tests/reliability/test_crash_kill_qr.py): that share
of the sales is paid by a test payment code at the parent's wallet gateway; each one that returns
prints `QRACK <txn_id> <amount_minor> <outcome> <order_no> <payer>`.

`--signature-share P` (a 电签 round, tests/reliability/test_crash_kill_sig.py): that share of the
sales is by the `signature-required` card; the cardholder signs on an emulated pad that sends its
pen packets at once (not paced to its baud: a signature then takes milliseconds, not seconds)
and presses OK, or now and then Cancel (the paper line). Each one that returns prints
`SIGACK <txn_id> <amount_minor> <outcome> <signed 0|1>`; the upload (0820) goes at the next idle
round, before the next sale.

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

from emulator.signature_pad.emulator import SignaturePadEmulator
from emulator.signature_pad.signers import Strokes, strokes_from_name
from emulator.wallet.payers import payment_code
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.app import device_profiles, load_terminal_profile
from terminal.checkout.base import Sale
from terminal.checkout.table import CheckoutState
from tests.support.full_disk import FullDisk

__all__ = ["CARD", "JOURNAL_CAPACITY", "MAX_AMOUNT_MINOR", "QR_PAYERS", "SIGNATURE_CARD", "main", "overrides"]

CARD = "approved"
MAX_AMOUNT_MINOR = 999_999  # under the profile's per-sale limit; chip, so no contactless cap
JOURNAL_CAPACITY = 1_000_000  # hundreds of kills must never meet "journal full, settle first"


# QR rounds: payers whose outcome the timings below decide in well under a second (emulator/wallet/
# payers.py): pays at once, not enough balance, the pay's answer lost, a system error though paid,
# never pays (reversed), pays at the reverse (refunded).
QR_PAYERS = ("00", "00", "04", "06", "10", "03", "07")
QR_MAX_AMOUNT_MINOR = 99_999  # above ¥1000 the "pays at once" payer is asked for a password (pays 10 s later)
QR_TIMINGS = {"wallet.timeout_s": 0.5, "wallet.query_first_s": 0.05, "wallet.query_every_s": 0.1,
              "wallet.give_up_s": 1.0, "wallet.reverse_not_before_s": 0.2, "wallet.reverse_retry_s": 0.05,
              "wallet.resolve_every_s": 1.0}


# 电签 rounds: an upload whose answer the host loses (its fault "silent") waits this long, not 60 s.
SIGNATURE_CARD = "signature-required"
SIGNATURE_TIMINGS = {"host.timeout_s": 1.0}
SIGNATURE_CANCEL = 0.1  # this share of the signers press Cancel: the paper line instead
SIGNERS = ("张三", "J. SMITH")


def overrides(port: int, wallet_url: str = "", *, signature: bool = False) -> dict[str, object]:
    """What the parent's recovery till and every child share: the one host (and, in QR rounds,
    the one wallet gateway, on fast timings; in 电签 rounds a short host timeout), a roomy journal."""
    out: dict[str, object] = {"host.url": f"tcp://127.0.0.1:{port}", "limits.journal_capacity": JOURNAL_CAPACITY,
                              "wallet.url": wallet_url}
    if wallet_url:
        out.update(QR_TIMINGS)
    if signature:
        out.update(SIGNATURE_TIMINGS)
    return out


class _InstantPad(SignaturePadEmulator):
    """The pad sends what is signed at once (never advanced by the till's clock)."""

    follows_till_clock = False


def _signature_sale(till: EmulatedTill, pad: _InstantPad, amount: int, strokes: Strokes, cancel: bool) -> Sale:
    till.emulators.card_reader.present(SIGNATURE_CARD)
    sale = till.sale(amount)
    if till.flow.state is not CheckoutState.SIGNATURE_REQUIRED:
        return sale  # declined, or no answer: nothing to sign
    if cancel:
        pad.press("cancel")
    else:
        pad.sign(strokes)
        # The ink first (the key would overtake the pen packets on the line), then OK.
        till.runtime.run_until(lambda: not pad.line_busy and till.flow.signature_inked, io_wait=1.0)
        pad.press("ok")
    till.wait()
    return sale


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
    parser.add_argument("--wallet-url", default="", help="QR rounds: the parent's wallet gateway")
    parser.add_argument("--qr-share", type=float, default=0.0, help="the share of sales paid by QR code")
    parser.add_argument("--signature-share", type=float, default=0.0, help="the share of sales signed on the pad")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    signing = args.signature_share > 0
    settings = overrides(args.port, args.wallet_url, signature=signing)
    pad, names = None, {}
    if signing:  # the pad and the signers' strokes before GO: fonts load slowly
        pad = _InstantPad(device_profiles(load_terminal_profile("emulated-counter", settings))["signature_pad"])
        names = {name: strokes_from_name(name, seed=args.seed) for name in SIGNERS}

    if sys.stdin.readline().strip() != "GO":
        return 0  # the parent did not need this one
    _say("START")
    till = build_emulated_till(var_dir=args.var_dir, overrides=settings,
                               peers={"signature_pad": pad} if pad is not None else None)
    reader = till.emulators.card_reader
    assert reader is not None, "the profile's card reader is emulated (emu://)"
    _say("READY")
    for number in range(args.max_sales):
        if number == args.disk_full_after:
            FullDisk(till.journal, full_from=args.disk_full_at)
        amount = rng.randint(1, MAX_AMOUNT_MINOR)
        if rng.random() < args.qr_share:
            payer = rng.choice(QR_PAYERS)
            sale = till.sale(amount % QR_MAX_AMOUNT_MINOR + 1, tender="qr")
            till.enter_code(payment_code(payer))
            order = sale.qr_order.order_no if sale.qr_order else "-"
            _say(f"QRACK {sale.txn_id} {sale.amount_minor} {sale.outcome} {order} {payer}")
            continue
        if pad is not None and rng.random() < args.signature_share:
            strokes = names[rng.choice(SIGNERS)]
            sale = _signature_sale(till, pad, amount, strokes, cancel=rng.random() < SIGNATURE_CANCEL)
            _say(f"SIGACK {sale.txn_id} {sale.amount_minor} {sale.outcome} {int(sale.signed)}")
            continue
        reader.present(CARD)
        sale = till.sale(amount)
        _say(f"ACK {sale.txn_id} {sale.amount_minor} {sale.outcome}")
    till.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
