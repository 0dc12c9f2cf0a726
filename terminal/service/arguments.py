"""What `till run` and the operator commands take: their argparse definitions, apart from what
they do (terminal/service/commands.py), so `till --help` imports neither the till nor logging."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "DEFAULT_LISTEN", "add_parsers", "journal_options"]

COMMANDS = ("run", "status", "pay", "settle", "void", "refund", "reprint", "transactions", "exceptions")
DEFAULT_LISTEN = "127.0.0.1:8080"


def add_parsers(sub: Any) -> None:
    run = sub.add_parser("run", help="run the terminal as a service with its payment API (until SIGTERM)")
    _till_options(run)
    run.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                     help=f"where the payment API listens (default {DEFAULT_LISTEN}; port 0 picks a free one)")
    run.add_argument("--cert", type=Path, metavar="PEM",
                     help="serve HTTPS with this certificate chain (a register or tablet on the shop's network)")
    run.add_argument("--key", type=Path, metavar="PEM", help="the certificate's private key (with --cert)")
    status = sub.add_parser("status", help="the running terminal: state, payment in hand, journal, devices")
    pay = sub.add_parser("pay", help="take a payment as a cash register would (through the payment API)")
    pay.add_argument("amount", help="e.g. 12.34")
    pay.add_argument("--order-id", required=True, help="the register's order id (the same id is the same payment)")
    pay.add_argument("--tender", default="card", choices=["card", "qr", "qr-merchant"])
    pay.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the outcome (default 60)")
    settle = sub.add_parser("settle", help="settle (结算) the open batch; the supervisor's PIN is asked for")
    void = sub.add_parser("void", help="void (撤销) a sale of the open batch by its trace number")
    void.add_argument("trace", metavar="TRACE", help="6-digit trace number (or txn_id)")
    refund = sub.add_parser("refund", help="refund (退货) part or all of a sale by its trace number")
    refund.add_argument("trace", metavar="TRACE", help="6-digit trace number (or txn_id)")
    refund.add_argument("amount", help="e.g. 5.00")
    reprint = sub.add_parser("reprint", help="reprint a copy (marked 重打印); the last sale without TRACE")
    reprint.add_argument("trace", metavar="TRACE", nargs="?", help="6-digit trace number (default: the last sale)")
    reprint.add_argument("--copy", default="cardholder", choices=["merchant", "cardholder"])
    transactions = sub.add_parser("transactions", help="the transactions of the open batch (or --batch N)")
    transactions.add_argument("--batch", type=int, help="batch number (of the live journal)")
    exceptions = sub.add_parser("exceptions", help="the exception report: incidents, unresolved reversals")
    for cmd in (status, pay, settle, void, refund, reprint, transactions, exceptions):
        _till_options(cmd)
        cmd.add_argument("--json", action="store_true", help="print the answer as JSON")
    for cmd in (settle, void, refund, reprint):
        cmd.add_argument("--supervisor", required=True, metavar="ID", help="the supervisor's own operator id")
        cmd.add_argument("--reason", default="", metavar="TEXT", help="why (kept in the audit trail)")


def journal_options(cmd: argparse.ArgumentParser) -> None:
    """`till journal [--batch N] [--json]`: the same as `till transactions`."""
    _till_options(cmd)
    cmd.add_argument("--batch", type=int, help="batch number (of the live journal)")
    cmd.add_argument("--json", action="store_true", help="print the answer as JSON")


def _till_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--profile", default="emulated-counter", metavar="NAME|PATH",
                     help="terminal profile (default emulated-counter: every device and host emulated)")
    cmd.add_argument("--var", default="var", type=Path, help="data folder (journal, keys, receipts)")
    cmd.add_argument("--device", action="append", default=[], metavar="SLOT=URL",
                     help="open a device slot on this port instead of the profile's (repeatable)")
