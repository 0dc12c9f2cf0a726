"""The `till` command. Heavy modules are imported inside each command, so `till --help` starts fast."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="till", description="OpenTill: a payment terminal runtime.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run one card sale with every device and the host emulated")
    demo.add_argument("--card", default="approved", help="test card name (see `till cards`)")
    demo.add_argument("--amount", default="12.34", help="amount, e.g. 12.34")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--profile", default="emulated-counter", help="terminal profile")
    demo.add_argument("--var", default="var", type=Path, help="data folder (journal, keys, receipts)")

    sub.add_parser("cards", help="list the emulated reader's test cards")

    emu = sub.add_parser("emulate", help="serve one device emulator on a pty or a TCP port")
    emu.add_argument("device", choices=["printer", "card-reader"])
    where = emu.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    where.add_argument("--listen", metavar="HOST:PORT", help="serve on TCP (socket:// URL)")
    emu.add_argument("--profile", help="device profile (default: the emulated-counter terminal's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from firmware_profiles import ProfileError
    from terminal.errors import TerminalError

    try:
        if args.command == "demo":
            from terminal.demo import run_demo

            return run_demo(card=args.card, amount=args.amount, as_json=args.json, profile=args.profile,
                            var_dir=args.var)
        if args.command == "cards":
            return _cards()
        return _emulate(args.device, profile=args.profile, pty=args.pty, listen=args.listen)
    except (TerminalError, ProfileError) as exc:
        print(f"till: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _cards() -> int:
    from terminal.app import test_cards

    for name, modes, description in test_cards():
        print(f"{name:24} {modes:16} {description}")
    return 0


def _emulate(device: str, *, profile: str | None, pty: bool, listen: str | None) -> int:
    from terminal.app import serve_emulator

    # Block the signals first: the link thread inherits the mask, and sigwait() gets them here.
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    link = serve_emulator(device, profile=profile, pty=pty, listen=listen)
    try:
        print(link.endpoint, flush=True)
        signal.sigwait(stop)
    finally:
        link.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
