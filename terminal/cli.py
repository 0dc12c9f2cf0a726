"""The `till` command. Heavy modules are imported inside each command, so `till --help` starts fast.

Commands of the emulated world (demo, cards, payers, emulate, host, scenario, escpos, and one
command per served link simulator) import `sim/` inside their own function: a real till's commands
never load an emulator. Device families come from the registry (terminal/devices.py), so this module
names none: a link whose simulator serves on its own port (the registry rows `sim.services.served_links`
finds, e.g. the QR-payment gateway) gets a command named after its row, `till NAME --listen HOST:PORT`.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, cast

__all__ = ["main"]

EXIT_USAGE = 2
MAX_ESCPOS_BYTES = 4 * 1024 * 1024  # `escpos render` input: a receipt is a few KiB, a logo-heavy one ~100 KiB
MAX_PNG_PAGES = 200  # `escpos render --png`: pictures written for one stream (a cut-bomb is not 1 M files)
MAX_CONTROL_LINE = 4096  # `till emulate` stdin: a control line is a few words
MAX_MESSAGE = 300  # characters of an error line: a hostile argument is not echoed whole


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="till", description="OpenTill: a payment terminal runtime.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from terminal.service.arguments import add_parsers as service_parsers

    service_parsers(sub)
    demo = sub.add_parser("demo", help="run one card sale with every device and the host emulated")
    demo.add_argument("--card", default="approved", help="test card name (see `till cards`)")
    demo.add_argument("--amount", help="amount, e.g. 12.34 (default: 12.34, or the card's own demo amount)")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--profile", default="emulated-counter", help="terminal profile")
    demo.add_argument("--var", default="var", help="data folder (journal, keys, receipts)")
    demo.add_argument("--save-bytes", metavar="DIR", help="keep the ESC/POS bytes sent, one page-NNNN.bin per copy")
    demo.add_argument("--tender", default="card", choices=("card", "qr", "qr-merchant"),
                      help="card; qr: the customer's payment code is scanned (付款码); qr-merchant: the terminal "
                           "shows its code and the customer pays (主扫)")
    demo.add_argument("--payer", default="00", help="QR: the test payer, by suffix, name or a whole test code "
                                                    "(see `till payers`; default 00, pays at once)")

    sub.add_parser("cards", help="list the emulated reader's test cards")
    sub.add_parser("payers", help="list the emulated QR gateway's test payment codes (付款码) and their payers")

    emu = sub.add_parser("emulate", help="serve one device emulator on a pty or a TCP port")
    families = emu.add_subparsers(dest="device", required=True, metavar="FAMILY")
    if argv[:1] == ["emulate"]:  # reading the registry costs time `till --help` need not pay
        _emulate_parsers(families, want_help=any(a in ("-h", "--help") for a in argv), chosen=list(argv[1:2]))

    escpos = sub.add_parser("escpos", help="ESC/POS tools")
    escpos_sub = escpos.add_subparsers(dest="escpos_command", required=True, metavar="TOOL")
    render = escpos_sub.add_parser("render", help="render a captured ESC/POS byte stream to text and PNG")
    render.add_argument("file", type=Path, help="the byte stream (.bin)")
    render.add_argument("--profile", help="device profile (default: the emulated-counter terminal's)")
    render.add_argument("--png", type=Path, help="write the picture here (OUT-1.png, OUT-2.png... for several)")

    host = sub.add_parser("host", help="serve the ISO 8583 host simulator on TCP")
    host.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to serve on (port 0 picks one)")
    host.add_argument("--require-sign-on", action="store_true",
                      help="answer A0 to financial requests until the terminal signs on")
    host.add_argument("--require-mac", action="store_true",
                      help="answer A0 to financial requests without a DE 64 MAC (a MAC present is always checked)")
    host.add_argument("--log-traffic", action="store_true",
                      help="one line per message in (<-) and out (->) on stderr, card data masked")
    host.add_argument("--state", type=Path, metavar="DIR",
                      help="keep the host's books in DIR (an append-only file), so a restart is the same host "
                           "(auth codes, open batches, reversals, repeated requests)")
    host.epilog = ("Lines on stdin are control commands, one reply line each: latency SECONDS, "
                   "silent [on|off], drop [N], late [N [SECONDS]], release, decline CODE [N], out-of-balance, "
                   "require-sign-on [on|off], refuse-mac [TID], disconnect, clear, status, help.")

    scenario = sub.add_parser("scenario", help="scripted, replayable sessions (see docs/scenarios.md)")
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True, metavar="SUBCOMMAND")
    run = scenario_sub.add_parser("run", help="run one scenario file against every emulator and the host")
    run.add_argument("file", type=Path, help="scenario TOML, e.g. sim/scenarios/01-host-timeout.toml")
    run.add_argument("--seed", type=int, help="seed for steps that draw at random (default: the file's)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    doctor = sub.add_parser("doctor", help="check every device, the host, the journal, disk and clock (exit 0 all ok, "
                                           "1 something needs a person)")
    doctor.add_argument("--profile", default="emulated-counter", help="terminal profile (a name or a path)")
    doctor.add_argument("--var", default="var", help="data folder (journal, keys, receipts)")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    _access_parsers(sub)
    if not argv or argv[0] not in sub.choices:  # help, or a served link's command: read the registry
        # `till --help` lists the built-in simulators without scanning the installed packages'
        # entry points (~15 ms); a plugin's own command (any other word) is looked up in full.
        helping = not argv or argv[0] in ("-h", "--help")
        _served_link_parsers(sub, chosen=list(argv[:1]), plugins=not helping)
        if helping:
            p.epilog = "Device plugins (entry points opentill.devices) add their families to `till emulate`."
    return p


def _served_link_parsers(sub: Any, *, chosen: list[str], plugins: bool) -> None:
    from sim.services import control_help_of, served_links

    for kind, row in served_links(plugins=plugins).items():
        # Its control vocabulary is its simulator's module docstring: imported only for its own
        # command (`till wallet --help`), not for `till --help`.
        epilog = control_help_of(row) if [kind] == chosen else None
        link = sub.add_parser(kind, help=f"simulator of the {row.description}", epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        link.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to serve on (port 0 picks one)")
        link.add_argument("--cert", metavar="PEM", help="serve HTTPS with this certificate chain")
        link.add_argument("--key", metavar="PEM", help="the certificate's private key (with --cert)")


def _emulate_parsers(families: Any, *, want_help: bool, chosen: list[str]) -> None:
    from sim.services import control_help, emulated_families, folder_option

    for kind, row in emulated_families().items():
        epilog = control_help(kind) if want_help else None
        emu = families.add_parser(kind, help=row.description, epilog=epilog,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        where = emu.add_mutually_exclusive_group(required=True)
        where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
        where.add_argument("--listen", metavar="HOST:PORT", help="serve on TCP (socket:// URL)")
        emu.add_argument("--profile", help="device profile (default: the emulated-counter terminal's)")
        emu.add_argument("--fault", action="append", default=[], metavar="FAULT",
                         help="start with a fault (a `fault ...` control line, e.g. paper-out; repeatable)")
        emu.add_argument("--baud", type=int, help="line rate to pace to (default: the profile's)")
        folder = folder_option(kind) if want_help or [kind] == chosen else None  # --out, --state
        if folder is not None:
            emu.add_argument(folder[0], dest="folder", metavar="DIR", help=folder[1])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(argv).parse_args(argv)
    from firmware_profiles import ProfileError
    from terminal.errors import TerminalError

    stdout, sys.stdout = sys.stdout, cast(TextIO, _Output(sys.stdout))
    try:
        code = _run(args)
        sys.stdout.flush()  # a full disk or a closed pipe is reported here, not at exit
        return code
    except (TerminalError, ProfileError) as exc:
        print(f"till: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except _OutputError as exc:
        _drop_stdout(stdout)
        if isinstance(exc.error, BrokenPipeError):  # `till cards | head -1`: the reader has what it wanted
            return 1
        print(f"till: cannot write the output: {exc.error.strerror or exc.error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        sys.stdout = stdout


class _OutputError(Exception):
    """Writing stdout failed (a full disk, /dev/full, a closed pipe): not a bug, one line."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _Output:
    """stdout while a command runs: a failed write raises _OutputError, so main() tells it apart
    from any other OSError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise _OutputError(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise _OutputError(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _run(args: argparse.Namespace) -> int:
    from terminal.service.arguments import COMMANDS
    from terminal.service.commands import run_command

    if args.command in COMMANDS:
        return run_command(args, _read_pin, _emulated_world)
    if args.command == "demo":
        from sim.demo import run_demo

        return run_demo(card=args.card, amount=args.amount, as_json=args.json, profile=args.profile,
                        var_dir=_var_dir(args.var), save_bytes=Path(args.save_bytes) if args.save_bytes else None,
                        tender=args.tender, payer=args.payer)
    if args.command == "cards":
        return _cards()
    if args.command == "payers":
        return _payers()
    if args.command == "host":
        return _host(args.listen, require_sign_on=args.require_sign_on, require_mac=args.require_mac,
                     log_traffic=args.log_traffic, state=args.state)
    if args.command == "scenario":
        from sim.scenario.runner import run_scenario

        return run_scenario(args.file, seed=args.seed, as_json=args.json)
    if args.command == "doctor":
        return _doctor(args)
    if args.command in ("operators", "operator", "audit", "journal", "receipt"):
        return _access_command(args)
    if args.command == "escpos":
        return _render(args.file, profile=args.profile, png=args.png)
    if args.command != "emulate":
        return _serve_link(args.command, args.listen, certfile=args.cert, keyfile=args.key)
    faults = [f"fault {f}" for f in args.fault]
    return _emulate(args.device, profile=args.profile, pty=args.pty, listen=args.listen, baud=args.baud,
                    faults=faults, folder=getattr(args, "folder", None))


def _emulated_world(profile: str, **kwargs: Any) -> Any:
    """`till run` (and the operator commands without one) of an emulated profile: sim/run.py."""
    from sim.run import build_service_till

    return build_service_till(profile, **kwargs)


def _one_line(text: str) -> str:
    """An error as one line of bounded length (a 5000-character argument is not echoed whole)."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _drop_stdout(stream: TextIO) -> None:
    """Point stdout at /dev/null, so the interpreter's flush at exit does not fail again."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _var_dir(text: str) -> Path:
    """--var: refused when empty (Path("") would be the working directory)."""
    from terminal.errors import InputError

    if not text.strip():
        raise InputError("--var is empty: give the data folder, e.g. --var var")
    return Path(text)


def _doctor(args: argparse.Namespace) -> int:
    """`till doctor`: one row a component; exit 0 all ok, 1 when a row needs a person (warn or fail)."""
    import json

    from terminal.app import load_terminal_profile
    from terminal.journal import JournalLocked
    from terminal.service.doctor import diagnose, needs_emulated_world

    var_dir = _usable_var(_var_dir(args.var))
    build = None
    if needs_emulated_world(load_terminal_profile(args.profile)):
        from sim.wiring import build_emulated_till

        build = build_emulated_till
    try:
        report = diagnose(args.profile, var_dir, build=build)
    except JournalLocked as locked:
        return _doctor_locked(var_dir, args, locked)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2, default=str))
    else:
        sys.stdout.write(report.render())
    return 1 if report.needs_person else 0


def _usable_var(var_dir: Path) -> Path:
    """--var as a folder this process can write (bad input otherwise, one line, exit 2)."""
    import os

    from terminal.errors import InputError

    try:
        var_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"--var {_one_line(str(var_dir))[:80]} is not a folder") from None
    except OSError as exc:
        raise InputError(f"--var: cannot create the data folder: {exc.strerror or exc}") from None
    if not os.access(var_dir, os.W_OK | os.X_OK):
        raise InputError(f"--var {_one_line(str(var_dir))[:80]}: the folder is not writable")
    return var_dir


def _doctor_locked(var_dir: Path, args: argparse.Namespace, locked: Exception) -> int:
    """A till runs on `var_dir` (its journal is locked): the running service is asked for its
    health (`GET /v1/health`); a till that serves no API gets the lock's one line, exit 2."""
    import json

    from terminal.service.client import find_service
    from terminal.service.doctor import Report

    client = find_service(var_dir)
    if client is None:
        raise locked
    answer = client.get("/v1/health")
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2, default=str))
        return 1 if answer["needs_person"] else 0
    report = Report.from_json(answer)
    sys.stdout.write(report.render())
    return 1 if report.needs_person else 0


def _cards() -> int:
    from sim.services import test_cards

    for name, modes, description in test_cards():
        print(f"{name:24} {modes:16} {description}")
    return 0


def _payers() -> int:
    from sim.services import test_payers

    print("The last two digits of any WeChat (18 digits, 10-15...), Alipay (16-24, 25-30...) or UnionPay "
          "(19, 62...) code choose the payer; other endings pay at once.")
    for suffix, code, description in test_payers():
        print(f"{suffix}  {code}  {description}")
    return 0


def _serve_link(kind: str, listen: str, *, certfile: str | None, keyfile: str | None) -> int:
    """Serve a link simulator until SIGINT/SIGTERM; its URL is the first line, and lines on stdin
    are its control commands, one reply line each (as for `till host`)."""
    from sim.services import control_link, serve_link

    server = serve_link(kind, listen, certfile=certfile, keyfile=keyfile)
    return _serve_until_signal(server.url, lambda line: control_link(server, line), server.stop)


def _render(path: Path, *, profile: str | None, png: Path | None) -> int:
    """Text to stdout (`--- cut ---` between receipts), unknown commands to stderr, PNGs on request.
    Exit 0 when every command was understood, 1 when some were skipped."""
    from sim.services import render_escpos, save_page_png
    from terminal.errors import InputError

    try:
        with path.open("rb") as f:
            data = f.read(MAX_ESCPOS_BYTES + 1)  # bounded: /dev/zero or a 200 MB file is refused, not read
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_ESCPOS_BYTES:
        raise InputError(f"{path} is larger than {MAX_ESCPOS_BYTES // 2**20} MiB: `till escpos render` reads "
                         "at most that much (a receipt is a few KiB)")
    result = render_escpos(data, profile=profile)
    sys.stdout.write("\n--- cut ---\n".join(page.text.rstrip("\n") for page in result.pages) + "\n")
    if png is not None:
        if len(result.pages) > MAX_PNG_PAGES:
            raise InputError(f"--png: the stream cuts {len(result.pages)} pages; at most {MAX_PNG_PAGES} pictures "
                             "are written (one a page)")
        many = len(result.pages) > 1
        for number, page in enumerate(result.pages, 1):
            out = png.with_name(f"{png.stem}-{number}{png.suffix or '.png'}") if many else png
            save_page_png(page, out)
    for command in result.unknown:
        print(f"unknown command: {command.hex(' ')}", file=sys.stderr)
    return 0 if result.understood else 1


def _emulate(device: str, *, profile: str | None, pty: bool, listen: str | None, baud: int | None = None,
             faults: list[str] | None = None, folder: str | None = None) -> int:
    """Serve until SIGINT/SIGTERM; lines on stdin are control commands for the emulator."""
    from sim.services import control_emulator, serve_emulator

    link = serve_emulator(device, profile=profile, pty=pty, listen=listen, baud=baud, faults=faults,
                          folder=Path(folder) if folder else None)
    return _serve_until_signal(link.endpoint, lambda line: control_emulator(link, line), link.stop)


def _host(listen: str, *, require_sign_on: bool = False, require_mac: bool = False, log_traffic: bool = False,
          state: Path | None = None) -> int:
    """Serve the acquirer simulator until SIGINT/SIGTERM; its tcp:// URL is the first line, and
    lines on stdin are control commands (emulator/acquirer/control.py), as for `till emulate`."""
    from emulator.control import apply
    from sim.services import serve_acquirer

    simulator = serve_acquirer(listen, state=state)
    simulator.require_sign_on = require_sign_on
    simulator.keys.require_mac = require_mac
    if log_traffic:
        simulator.traffic = _traffic_line
    return _serve_until_signal(simulator.url, lambda line: apply(simulator, line), simulator.stop)


def _serve_until_signal(first_line: str, control: Callable[[str], str], stop: Callable[[], None]) -> int:
    """Print where we serve, then answer control lines from stdin (one reply line each) until
    SIGINT or SIGTERM; stdin closing keeps us serving. `stop` always runs."""
    import os
    import select

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in signals}
    old_fd = signal.set_wakeup_fd(wake_w)  # a signal writes a byte here and wakes select()
    watch = [wake_r]
    if sys.stdin is not None and not sys.stdin.closed:
        watch.append(sys.stdin.fileno())
    try:
        print(first_line, flush=True)
        while True:
            readable, _, _ = select.select(watch, [], [])
            if wake_r in readable:
                return 0
            line = _control_line()
            if line is None:  # stdin closed: keep serving, only a signal stops us now
                watch.remove(sys.stdin.fileno())
            elif line.strip():
                print(control(line), flush=True)
    finally:
        signal.set_wakeup_fd(old_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop()
        os.close(wake_r)
        os.close(wake_w)


def _control_line() -> str | None:
    """One control line from stdin, bounded; None at its end. An overlong line is read to its end
    and answered with one error line (returned as "")."""
    line = sys.stdin.readline(MAX_CONTROL_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_CONTROL_LINE:
        rest = line
        while rest and not rest.endswith("\n"):
            rest = sys.stdin.readline(MAX_CONTROL_LINE)
        print(f"error: a control line has at most {MAX_CONTROL_LINE} characters", flush=True)
        return ""
    return line


def _traffic_line(line: str) -> None:
    # stderr: stdout carries the URL and the control replies. Already masked by the simulator.
    print(line, file=sys.stderr, flush=True)


# -- operators and the audit trail (`till operators ...`, `till audit verify`) ----------------------
# A real till's commands: they read and write var/ only, never the emulated world. PINs are read
# from the terminal without echo (or one line of stdin when it is not a terminal), never argv.

def _access_parsers(sub: Any) -> None:
    # `operators` as issue 13 names it; `operator` (and its `set-pin`) stay, as scripts use them.
    operator = sub.add_parser("operators", aliases=["operator"],
                              help="manage the till's operators (var/operators.json, 0600)")
    op_sub = operator.add_subparsers(dest="operator_command", required=True, metavar="SUBCOMMAND")
    for name, aliases, what in (
        ("add", [], "add an operator; the PIN is asked for"),
        ("list", [], "list operators, lockouts and who is disabled"),
        ("disable", [], "the operator can no longer sign in or approve (kept for the audit trail; "
                        "not the last enabled supervisor)"),
        ("enable", [], "undo disable"),
        ("reset-pin", ["set-pin"], "set a new PIN, asked for (also lifts a lockout)"),
        ("remove", [], "remove an operator (disable keeps them for the audit trail)"),
    ):
        cmd = op_sub.add_parser(name, aliases=aliases, help=what)
        if name != "list":
            cmd.add_argument("id", help="operator id, e.g. supervisor-1")
        if name == "add":
            cmd.add_argument("--role", required=True, choices=["cashier", "supervisor", "technician"])
        cmd.add_argument("--var", default="var", type=Path, help="data folder")
    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    verify = audit_sub.add_parser("verify", help="check the chain and its anchor (exit 0 ok, 1 broken)")
    verify.add_argument("--var", default="var", type=Path, help="data folder")
    ack = audit_sub.add_parser("ack", help="a supervisor acknowledges a broken trail (PIN asked for); money "
                                           "operations go on")
    journal = sub.add_parser("journal", help="the open batch's transactions (or --batch N); `check` and `accept`: "
                                             "its integrity and witness (docs/reliability.md)")
    from terminal.service.arguments import journal_options

    journal_options(journal)  # no subcommand: the transactions, as `till transactions`
    journal_sub = journal.add_subparsers(dest="journal_command", required=False, metavar="SUBCOMMAND")
    check = journal_sub.add_parser("check", help="read only: integrity and the witness (exit 0 ok, 1 damaged or "
                                                 "mismatch)")
    check.add_argument("--var", default="var", type=Path, help="data folder")
    accept = journal_sub.add_parser("accept", help="a supervisor accepts a journal that does not match its witness "
                                                   "(PIN asked for)")
    receipt = sub.add_parser("receipt", help="receipts and their e-signatures (电签)")
    receipt_sub = receipt.add_subparsers(dest="receipt_command", required=True, metavar="SUBCOMMAND")
    bound = receipt_sub.add_parser("verify", help="read only: recompute a signed sale's signature binding from "
                                                  "the journal, or a settled sale's from its batch archive (exit 0 "
                                                  "bound, 1 broken or none)")
    bound.add_argument("txn", metavar="TXN_ID|TRACE", help="the transaction id, or its 6-digit trace number")
    bound.add_argument("--var", default="var", type=Path, help="data folder")
    bound.add_argument("--archive", default=None, type=Path, metavar="DIR",
                       help="settled batches' archives (the profile's archive_dir; default: VAR/batches)")
    for cmd in (ack, accept):
        cmd.add_argument("--var", default="var", type=Path, help="data folder")
        cmd.add_argument("--supervisor", required=True, metavar="ID", help="the supervisor's own operator id")
        cmd.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the audit trail)")


def _access_command(args: argparse.Namespace) -> int:
    if args.command == "receipt":
        return _receipt_verify(args.var, args.txn, args.archive)
    if args.command == "journal" and args.journal_command is None:
        from terminal.service.commands import run_command

        args.command = "transactions"
        return run_command(args, _read_pin, _emulated_world)
    if args.command == "journal":
        return _journal_check(args.var) if args.journal_command == "check" else _journal_accept(args)
    if args.command == "audit":
        return _audit_verify(args.var) if args.audit_command == "verify" else _audit_ack(args)
    import time

    from terminal.security.operators import OperatorStore

    command = args.operator_command
    store = OperatorStore(args.var / "operators.json", create=command == "add")
    if command == "list":
        now = time.time()
        for op in store.operators().values():
            count, until = store.failures(op.id)
            state = f"locked {int(until - now) + 1} s" if until > now else f"{count} wrong PIN(s)" if count else "ok"
            print(f"{op.id:24} {op.role:12} {'disabled' if op.disabled else state}")
    elif command == "add":
        store.add(args.id, args.role, _read_pin())
        print(f"added {args.id} ({args.role})")
    elif command == "remove":
        store.remove(args.id)
        print(f"removed {args.id}")
    elif command == "disable":
        store.disable(args.id)
        print(f"disabled {args.id}: 已停用，不能再登录或授权 / can no longer sign in or approve")
    elif command == "enable":
        store.enable(args.id)
        print(f"enabled {args.id}")
    else:  # reset-pin (set-pin)
        store.set_pin(args.id, _read_pin())
        print(f"PIN set for {args.id}")
    return 0


def _read_pin() -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass("PIN: ")
    return (sys.stdin.readline() if sys.stdin is not None else "").strip()


def _audit_verify(var: Path) -> int:
    """Read only: the journal is opened read-only, so this runs beside a working till."""
    import sqlite3

    from terminal.errors import InputError
    from terminal.security.audit import check_audit

    journal = var / "journal.sqlite3"
    if not journal.is_file():
        raise InputError(f"no journal at {journal}")
    try:
        key = (var / "keys" / "audit.key").read_bytes()
    except OSError:
        print("audit trail BROKEN: the audit key var/keys/audit.key is missing")
        return 1
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        result = check_audit(db, key, var / "audit.head")
    except sqlite3.Error as exc:
        raise InputError(f"cannot read {journal}: {exc}") from exc
    finally:
        db.close()
    if result.reason:
        print(f"audit trail BROKEN: {result.reason}")
        return 1
    print(f"audit trail ok: {result.count} entries, head {result.head}")
    return 0


MAX_REASON = 200  # characters of a --reason (it goes into the audit trail and the journal)


def _supervisor_args(args: argparse.Namespace) -> tuple[str, str, str]:
    """(supervisor, PIN, reason): the reason bounded, the PIN read after the arguments are known good."""
    from terminal.errors import InputError

    reason = " ".join(str(args.reason).split())
    if not reason:
        raise InputError("--reason is empty: say why (it is kept in the audit trail)")
    if len(reason) > MAX_REASON:
        raise InputError(f"--reason has at most {MAX_REASON} characters")
    return str(args.supervisor), _read_pin(), reason


def _open_journal(var: Path) -> Any:
    """The journal of `var` for a supervisor's command (locked: not beside a running till)."""
    from terminal.errors import InputError
    from terminal.journal import Journal

    path = var / "journal.sqlite3"
    if not path.is_file():
        raise InputError(f"no journal at {path}")
    return Journal(path)


def _audit_ack(args: argparse.Namespace) -> int:
    """`till audit ack`: Till.acknowledge_audit without the devices (the journal is locked meanwhile)."""
    from terminal.clock import SystemClock
    from terminal.security.acceptance import access_for, acknowledge_audit

    supervisor, pin, reason = _supervisor_args(args)
    journal = _open_journal(args.var)
    try:
        access = access_for(journal, args.var, SystemClock())
        broken = acknowledge_audit(access, supervisor=supervisor, pin=pin, reason=reason)
    finally:
        journal.close()
    print(f"audit trail break acknowledged by {supervisor}: {broken}")
    return 0


def _journal_accept(args: argparse.Namespace) -> int:
    """`till journal accept`: the journal as it is, under the supervisor's own PIN (acceptance.py)."""
    from terminal.clock import SystemClock
    from terminal.errors import InputError
    from terminal.journal import Journal
    from terminal.security.acceptance import JournalAcceptance

    var: Path = args.var
    path = var / "journal.sqlite3"
    if not path.is_file() and not path.with_suffix(".witness").is_file():
        raise InputError(f"no journal at {path}")
    supervisor, pin, reason = _supervisor_args(args)
    acceptance = JournalAcceptance(var_dir=var, clock=SystemClock(), supervisor=supervisor, pin=pin, reason=reason)
    journal = Journal(path, accept=acceptance)
    try:
        journal_id = journal.identity()
    finally:
        journal.close()
    if acceptance.problem is None:
        raise InputError(f"the journal at {path} matches its witness: nothing to accept")
    print(f"journal {journal_id} accepted by {supervisor}: {acceptance.problem}")
    if acceptance.audit_broken:
        print(f"audit trail broken too: {acceptance.audit_broken} (`till audit ack` once it is understood)")
    return 0


def _receipt_verify(var: Path, txn: str, archive: Path | None = None) -> int:
    """Read only (beside a working till too): the stored signature's binding, recomputed — from
    the live journal, or for a settled sale from its batch archive (batch-NNNNNN-signatures.json)."""
    import sqlite3

    from terminal.errors import InputError
    from terminal.journal.signatures import binding_of

    path = var / "journal.sqlite3"
    folder = archive if archive is not None else var / "batches"
    row = None
    if path.is_file():
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'signatures'").fetchone() is not None:
                by_trace = txn.isdigit() and len(txn) <= 6
                where = "t.stan = ? ORDER BY t.created_at DESC LIMIT 1" if by_trace else "t.txn_id = ?"
                row = db.execute("SELECT t.txn_id, t.stan, t.amount_minor, s.feature_code, s.strokes, s.binding FROM"
                                 f" transactions t LEFT JOIN signatures s USING (txn_id) WHERE {where}",
                                 (int(txn) if by_trace else txn,)).fetchone()
        except sqlite3.Error as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
        finally:
            db.close()
    elif not folder.is_dir():
        raise InputError(f"no journal at {path} and no batch archive at {folder}")
    where_from = "the live journal"
    if row is None:
        row = _archived_signature(folder, txn)
        if row is None:
            print(f"no transaction {_one_line(txn)[:40]} in the live journal or the batch archives at {folder}")
            return 1
        where_from = "its batch archive"
    txn_id, stan, amount, feature_code, strokes, binding = row
    if binding is None:
        print(f"{txn_id} (trace {stan:06d}): not e-signed")
        return 1
    if binding_of(txn_id, int(amount), feature_code, bytes(strokes)) != binding:
        print(f"{txn_id} (trace {stan:06d}): signature binding BROKEN: the stored signature is not the one made "
              f"for this sale ({where_from})")
        return 1
    print(f"{txn_id} (trace {stan:06d}): signature bound to its sale (feature code {feature_code}, "
          f"{len(strokes)} bytes of strokes, sha256 {binding[:16]}..., from {where_from})")
    return 0


def _archived_signature(folder: Path, txn: str) -> tuple[str, int, int, str, bytes, str] | None:
    """A settled sale's signature from the archives, as the live journal's row would read."""
    import base64
    import binascii

    from terminal.host.settlement import Archive

    found = Archive(folder).signature(txn)
    if found is None:
        return None
    _, item = found
    try:
        return (str(item["txn_id"]), int(item["stan"]), int(item["amount_minor"]), str(item["feature_code"]),
                base64.b64decode(str(item["strokes"]), validate=True), str(item["binding"]))
    except (KeyError, ValueError, TypeError, binascii.Error):
        return None


def _journal_check(var: Path) -> int:
    """Read only (beside a working till too): the file's integrity, then the journal against its witness."""
    import sqlite3

    from terminal.errors import InputError
    from terminal.journal import JournalDamaged, JournalMismatch
    from terminal.journal.integrity import check_integrity
    from terminal.journal.witness import WitnessFile, compare, journal_state

    path = var / "journal.sqlite3"
    witness_file = WitnessFile(path.with_suffix(".witness"))
    if not path.is_file() and not witness_file.path.is_file():
        raise InputError(f"no journal at {path}")
    state = None
    try:
        witness = witness_file.read()
        if path.is_file():
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                check_integrity(db, path)
                tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                state = journal_state(db) if {"journal_meta", "counters"} <= tables else None
            except sqlite3.Error as exc:
                raise InputError(f"cannot read {path}: {exc}") from exc
            finally:
                db.close()
        problem = compare(state, witness, where=path)
    except JournalDamaged as exc:
        print(f"journal DAMAGED: {' '.join(str(exc).split())}")
        return 1
    except JournalMismatch as exc:
        problem = str(exc)
    if problem is not None:
        print(f"journal MISMATCH: {problem} (a supervisor decides: `till journal accept`)")
        return 1
    if state is None:
        print(f"journal ok: {path} is new (no sale recorded yet)")
    else:
        print(f"journal ok: {state.journal_id}, change {state.seq}, STAN {state.stan:06d}"
              + (f" (witness at change {witness.seq})" if witness is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
