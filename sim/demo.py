"""`till demo`: one scripted card sale with every device and the host emulated."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from sim.services import check_test_card
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.app import load_terminal_profile
from terminal.checkout.table import RESTING, CheckoutState
from terminal.errors import InputError
from terminal.money import format_amount, parse_amount

__all__ = ["prepare_var_dir", "run_demo"]

VAR_FOLDERS = ("keys", "receipts", "batches")  # what the till keeps under var/ besides the journal

log = logging.getLogger(__name__)


def run_demo(*, card: str, amount: str | None, as_json: bool, profile: str, var_dir: Path,
             save_bytes: Path | None = None, tender: str = "card", payer: str = "00") -> int:
    demo_amount = check_test_card(card)  # refuse bad input before anything starts
    code = payer_code(payer) if tender != "card" else ""
    terminal = load_terminal_profile(profile)
    reader = str(((terminal.get("devices") or {}).get("card_reader") or {}).get("url", ""))
    if tender == "card" and not reader.startswith("emu://"):
        raise InputError(f"`till demo` plays an emulated card, and this profile's card reader is {reader[:60]!r}: "
                         "a till with real devices runs with `till run --profile ...` (docs/payment-api.md)")
    limit = int(terminal["limits"]["max_amount_minor"])
    if amount is None:  # a card whose behaviour needs a particular amount brings its own
        amount = format_amount(demo_amount) if demo_amount else "12.34"
    amount_minor = parse_amount(amount, max_minor=limit)
    prepare_var_dir(var_dir)  # before a card is charged: a receipt that cannot be written is no outcome
    lines: list[str] = []
    # The in-process host (emu://acquirer): a demo needs no network faults, nor a thread.
    with build_emulated_till(profile=profile, var_dir=var_dir, display=lines.append, host_transport="emu") as till:
        assert till.emulators.card_reader is not None, "the demo needs an emulated card reader"
        if save_bytes is not None and till.emulators.printer is not None:  # each copy as cut: .bin .txt .png
            try:
                till.emulators.printer.use_folder(save_bytes)
            except OSError as exc:
                raise InputError(f"--save-bytes {_short(save_bytes)}: cannot use it: {exc.strerror or exc}") from None
        if tender == "card":
            till.emulators.card_reader.present(card)
            sale = till.sale(amount_minor)
        else:
            sale = _qr_sale(till, amount_minor, tender, code, lines)
        if till.flow.state is CheckoutState.SIGNATURE_REQUIRED:
            _sign(till, lines)
        receipts = _receipts(till, sale.txn_id, var_dir)
        result: dict[str, Any] = {
            "tender": tender,
            "outcome": sale.outcome,
            "txn_id": sale.txn_id,
            "amount": format_amount(sale.amount_minor),
            "response_code": sale.response_code,
            "receipts": receipts,
            "journal_path": str(till.journal.path.resolve()),
        }
        if sale.reason:
            result["reason"] = sale.reason
        if sale.qr_order is not None:
            order = till.journal.qr_order(sale.txn_id) or sale.qr_order
            result["qr"] = {"order_no": order.order_no, "channel": order.channel, "status": order.status,
                            "wallet_order_no": order.wallet_order_no,
                            "code_png": str(sale.qr_image) if sale.qr_image else None}
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print_text(result, lines)
    return 0


def _sign(till: EmulatedTill, lines: list[str]) -> None:
    """The cardholder signs: on the emulated pad (电签: a name from the installed fonts, then OK),
    or, with no pad, on the merchant copy while the cashier confirms."""
    pad = till.emulators.signature_pad
    if pad is None:
        lines.append("(demo: the cardholder signs the merchant copy; the cashier confirms)")
        till.flow.confirm_signature(actor="demo-cashier")
    else:
        from emulator.control import apply

        lines.append(f"(demo: the cardholder signs on the pad: {apply(pad, 'sign J. SMITH')})")
        till.wait()  # the pen lifts; the capture ends when it has been away long enough
    till.runtime.run_until(lambda: till.flow.state in RESTING)


def payer_code(payer: str) -> str:
    """The test payment code a `--payer` names: a suffix ("01"), a behaviour ("password") or a whole
    test code; InputError listing the payers otherwise."""
    from emulator.wallet.payers import PAYERS, payment_code
    from terminal.checkout.qr import payment_channel

    text = payer.strip()
    if text in PAYERS:
        return payment_code(text)
    named = [p for p in PAYERS.values() if p.behaviour.value == text.lower()]
    if named:
        return payment_code(named[0].suffix)
    if payment_channel(text) is not None:
        return text
    known = ", ".join(f"{p.suffix} ({p.behaviour.value})" for p in PAYERS.values())
    raise InputError(f"--payer {text[:40]!r} is no test payer; one of: {known}, or a whole payment code")


def _qr_sale(till: EmulatedTill, amount_minor: int, tender: str, code: str, lines: list[str]) -> Any:
    """A QR demo: the customer's code goes through the emulated scanner (被扫), or the customer
    pays the code the terminal shows from their phone (主扫)."""
    if till.emulators.wallet is None:
        raise InputError("this profile has no emulated wallet gateway ([wallet] url = \"emulated\")")
    if tender == "qr":
        sale = till.sale(amount_minor, tender="qr")
        scanner = till.emulators.scanner
        if scanner is not None and scanner.scan(code, "qr"):
            lines.append(f"(demo: the customer shows payment code {code[:4]}…{code[-4:]}; the scanner reads it)")
            till.wait()
        else:
            till.enter_code(code)
        till.runtime.run_until(lambda: till.flow.state in RESTING)
        return sale
    sale = till.flow.begin_sale(amount_minor, tender="qr-merchant")
    till.runtime.run_until(lambda: bool(sale.qr_order and sale.qr_order.code_url) or till.flow.state in RESTING)
    if sale.qr_order is not None and sale.qr_order.code_url:
        lines.append(f"(demo: the customer scans {sale.qr_image or sale.qr_order.code_url} and pays)")
        till.emulators.wallet.gateway.pay_order(sale.qr_order.order_no, code)
    till.runtime.run_until(lambda: till.flow.state in RESTING)
    return sale


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 60 else f"{text[:28]}...{text[-28:]}"


def prepare_var_dir(var_dir: Path) -> None:
    """Create the data folder, or refuse one the till cannot use (a file, /dev/null, a path too
    long, keys/ or receipts/ that are files), with one InputError naming what is wrong."""
    try:
        var_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"--var {_short(var_dir)} is not a folder") from None
    except OSError as exc:
        what = "the path is too long" if exc.errno == errno.ENAMETOOLONG else exc.strerror or str(exc)
        raise InputError(f"--var: cannot create the data folder: {what} ({_short(var_dir)})") from None
    if not os.access(var_dir, os.W_OK | os.X_OK):
        raise InputError(f"--var {_short(var_dir)}: the folder is not writable")
    for name in VAR_FOLDERS:
        folder = var_dir / name
        if folder.exists() and not folder.is_dir():
            raise InputError(f"--var {_short(var_dir)}: {name} is not a folder (move the file {name} away)")


def _receipts(till: EmulatedTill, txn_id: str, var_dir: Path) -> list[dict[str, Any]]:
    printer = till.emulators.printer
    sale = till.flow.completed[-1] if till.flow.completed else None
    if sale is None:
        return []
    if printer is None:  # paperless (电签): the e-receipts the terminal wrote
        out = []
        for copy in sale.printed:
            stem = var_dir / "receipts" / f"{txn_id}-{copy.copy.value}"
            doc = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
            text = "\n".join(" ".join(str(v) for v in (ln.get("zh"), ln.get("en"), ln.get("value")) if v)
                             for ln in doc["lines"])
            out.append({"copy": copy.copy.value, "text": text + "\n", "png": str(stem.with_suffix(".png").resolve()),
                        "json": str(stem.with_suffix(".json").resolve()), "bytes": 0})
        return out
    out_dir = var_dir / "receipts"
    pages = printer.pages[-len(sale.printed):] if sale.printed else []
    saved = printer.saved_pages()[-len(sale.printed):] if sale.printed else []
    receipts = []
    for i, (copy, page) in enumerate(zip(sale.printed, pages, strict=True)):
        png = out_dir / f"{txn_id}-{copy.copy.value}.png"
        receipt: dict[str, Any] = {"copy": copy.copy.value, "text": page.text, "png": str(png.resolve()),
                                   "bytes": copy.bytes_sent}
        if len(saved) == len(pages):  # --save-bytes: what the terminal sent for this copy
            receipt["bytes_file"] = str(saved[i].with_suffix(".bin").resolve())
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            page.save_png(png)
        except OSError as exc:  # the sale is decided and printed: a picture that cannot be saved changes nothing
            log.warning("receipt picture %s not saved: %s", png, exc)
            receipt["png"], receipt["png_error"] = None, f"picture not saved / 图片未保存: {exc}"
        receipts.append(receipt)
    return receipts


def _print_text(result: dict[str, Any], lines: list[str]) -> None:
    out = sys.stdout
    for line in lines:
        out.write(f"  display: {line}\n")
    out.write(f"\noutcome: {result['outcome']}  amount: {result['amount']}  "
              f"response code: {result['response_code']}  txn: {result['txn_id']}\n")
    if "reason" in result:
        out.write(f"because: {result['reason']}\n")
    for receipt in result["receipts"]:
        out.write(f"\n===== {receipt['copy']} copy ({receipt['bytes']} bytes, {receipt['png'] or receipt['png_error']})"
                  " =====\n")
        out.write(receipt["text"].rstrip("\n") + "\n")
    out.write(f"\njournal: {result['journal_path']}\n")
