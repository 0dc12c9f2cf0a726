"""The composition root: profiles -> emulators (when asked) -> drivers -> flow -> runtime.

This is the only module of terminal/ that may import emulator/. A device whose profile URL is
`emu://<kind>` gets an in-process emulator attached to the transport; any other URL (a serial
device, a pty, `socket://`) is opened as it is, so the same wiring runs a real till.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.card_reader.driver import CardReaderDriver
from drivers.printer.driver import PrinterDriver
from drivers.transport import attach_peer, detach_peer, register_peer_factory
from emulator.card_reader import CardReaderEmulator
from emulator.host import AcquirerSimulator
from emulator.printer import PrinterEmulator
from firmware_profiles import ProfileError, load_profile
from terminal.access import AccessControl, Approval
from terminal.audit import AuditTrail
from terminal.checkout import CheckoutState
from terminal.clock import Clock, SystemClock
from terminal.errors import ConfigError
from terminal.flow import Sale, SaleFlow
from terminal.host.client import HostClient, HostLinkError
from terminal.journal import Journal
from terminal.printing import PrintJob
from terminal.receipts import Copy
from terminal.runtime import Runtime
from terminal.security import PanTokenizer, load_or_create_key

__all__ = ["Emulators", "Till", "build_till", "load_terminal_profile"]

log = logging.getLogger(__name__)
BOOT_IO_WAIT_S = 5.0  # at boot, how long one wait for the host may take before the till gives up waiting
# Where `Till.sale` hands back: done, or waiting for a person (paper, a signature).
SETTLED_STATES = {CheckoutState.IDLE, CheckoutState.PRINTER_PAUSED, CheckoutState.SIGNATURE_REQUIRED}


@dataclass
class Emulators:
    """The in-process peers of an emulated till, so a demo or test can act on them."""

    printer: PrinterEmulator | None = None
    card_reader: CardReaderEmulator | None = None
    host: AcquirerSimulator | None = None
    urls: list[str] = field(default_factory=list)


def register_emulator_factories() -> None:
    """Let `emu://printer?profile=NAME` and `emu://card-reader?profile=NAME` build fresh emulators."""
    register_peer_factory("printer", lambda q: PrinterEmulator(_device_profile("printer", q.get("profile", "cn-80mm"))))
    register_peer_factory(
        "card-reader", lambda q: CardReaderEmulator(_device_profile("card_reader", q.get("profile", "generic-pinpad")))
    )


def load_terminal_profile(name: str) -> dict[str, Any]:
    try:
        return load_profile("terminal", name)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from exc


def _device_profile(kind: str, name: str) -> dict[str, Any]:
    try:
        return load_profile(kind, name)
    except ProfileError as exc:
        raise ConfigError(str(exc)) from exc


class EmulatorTime:
    """Gives an in-process emulator the till's time, so a slow card answers after its delay on
    a FakeClock (when the test moves time) and on a real clock (polled every WAKE_S)."""

    WAKE_S = 0.05

    def __init__(self, clock: Clock, emulator: Any) -> None:
        self.clock, self.emulator, self._last = clock, emulator, clock.now()

    def poll(self) -> list[object]:
        now = self.clock.now()
        if now > self._last:
            self.emulator.advance(now - self._last)
            self._last = now
        return []

    def fileno(self) -> int | None:
        return None

    def wake_in(self) -> float | None:
        return self.WAKE_S


class Till:
    """A whole terminal: drivers, host link, journal, the checkout flow and its runtime."""

    def __init__(
        self,
        *,
        terminal: Mapping[str, Any],
        clock: Clock,
        var_dir: Path,
        device_urls: Mapping[str, str] | None = None,
        host_address: tuple[str, int] | None = None,
        display: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.terminal = terminal
        self.clock = clock
        self.var_dir = var_dir
        self.emulators = Emulators()
        self._closers: list[Callable[[], None]] = []
        try:
            self._build(dict(device_urls or {}), host_address, display)
        except BaseException:
            self.close()
            raise

    def _build(
        self, urls: dict[str, str], host_address: tuple[str, int] | None, display: Callable[[str], None]
    ) -> None:
        register_emulator_factories()
        devices = self.terminal["devices"]
        self.printer_profile = _device_profile("printer", devices["printer"]["profile"])
        self.card_reader_profile = _device_profile("card_reader", devices["card_reader"]["profile"])

        printer_url = urls.get("printer") or self._emulate_if_asked(
            devices["printer"]["url"], "printer", lambda: PrinterEmulator(self.printer_profile))
        reader_url = urls.get("card_reader") or self._emulate_if_asked(
            devices["card_reader"]["url"], "card-reader", lambda: CardReaderEmulator(self.card_reader_profile))

        self.journal = Journal(self.var_dir / "journal.sqlite3",
                               capacity=int(self.terminal["limits"]["journal_capacity"]),
                               warn_ratio=float(self.terminal["limits"]["journal_warn_ratio"]))
        self._closers.append(self.journal.close)
        tokenizer = PanTokenizer(load_or_create_key(self.var_dir / "keys" / "pan.key"))
        self.audit = AuditTrail(self.journal, load_or_create_key(self.var_dir / "keys" / "audit.key"))
        self.access = AccessControl(self.terminal, self.audit, self.clock)

        self.printer = PrinterDriver(printer_url, self.printer_profile)
        self.card_reader = CardReaderDriver(reader_url, self.card_reader_profile)
        for driver in (self.printer, self.card_reader):
            driver.open()
            self._closers.append(driver.close)

        if host_address is None:
            host_address = self._host_address(str(self.terminal["host"]["url"]))
        self.host = HostClient(host_address, connect_timeout=float(self.terminal["host"]["connect_timeout_s"]))
        self._closers.append(self.host.close)
        try:
            self.host.connect()
        except HostLinkError as exc:  # the flow connects again when a sale needs the host
            log.warning("acquirer not reachable at start-up: %s", exc)

        recovered = self.journal.recover_unanswered(at=self.clock.wall())
        if recovered:
            log.warning("%d sale(s) had no answer before the restart; reversals queued", len(recovered))
        self.flow = SaleFlow(
            clock=self.clock, journal=self.journal, tokenizer=tokenizer, card_reader=self.card_reader,
            printer=self.printer, host=self.host, terminal=self.terminal, printer_profile=self.printer_profile,
            display=display,
        )
        sources: list[Any] = [self.card_reader, self.printer, self.host]
        if self.emulators.card_reader is not None:  # first, so what time released is read at once
            sources.insert(0, EmulatorTime(self.clock, self.emulators.card_reader))
        self.runtime = Runtime(self.clock, self.flow, sources)
        self._print_owed_receipts()
        # Ready for sale: signed on, and what was owed from before the restart delivered.
        if self.flow.housekeeping():
            self.runtime.run_until(lambda: self.flow.state is CheckoutState.IDLE, io_wait=BOOT_IO_WAIT_S)

    def _print_owed_receipts(self) -> None:
        """Row 4 of the fault matrix: a sale approved just before a restart gets its receipts,
        marked REPRINT / 重打印 (part may have printed), and the audit trail says why."""
        for record, copy in self.journal.receipts_owed():
            self.audit.record(operation="reprint", actor="terminal", approver=None, txn_id=record.txn_id,
                              reason=f"{copy} copy owed after a restart", result="granted", at=self.clock.wall())
            self.flow.spool.approved = True
            problems = self.flow.spool.print_one(record, PrintJob(copy=Copy(copy), reprint=True))
            if problems:
                log.warning("owed %s copy of %s not printed: %s", copy, record.txn_id, problems)

    def _emulate_if_asked(self, url: str, kind: str, make: Callable[[], Any]) -> str:
        if not url.startswith("emu://"):
            return url
        peer = make()
        setattr(self.emulators, kind.replace("-", "_"), peer)
        attached = attach_peer(kind, peer)
        self.emulators.urls.append(attached)
        self._closers.append(lambda: detach_peer(attached))
        return attached

    def _host_address(self, url: str) -> tuple[str, int]:
        if url == "emulated":
            sim = AcquirerSimulator()
            sim.start()
            self.emulators.host = sim
            self._closers.append(sim.stop)
            return sim.address
        if url.startswith("tcp://"):
            host, _, port = url.removeprefix("tcp://").rpartition(":")
            if host and port.isdigit():
                return host, int(port)
        raise ConfigError(f"host url {url!r} is neither 'emulated' nor tcp://HOST:PORT")

    # -- use ---------------------------------------------------------------------------------
    def sale(self, amount_minor: int, *, io_wait: float = 10.0) -> Sale:
        """Run one sale to its end (or until it needs outside help) and return it."""
        # Owed reversals go out before any other online message: escalated ones get another try.
        self.flow.recover_if_needed()
        if self.flow.state is CheckoutState.OUTCOME_UNKNOWN:
            self.runtime.run_until(lambda: self.flow.state is not CheckoutState.OUTCOME_UNKNOWN, io_wait=io_wait)
        sale = self.flow.begin_sale(amount_minor)
        self.runtime.run_until(lambda: self.flow.state in SETTLED_STATES, io_wait=io_wait)
        return sale

    def approve(
        self, operation: str, *, operator_id: str, pin: str, reason: str, txn_id: str | None = None
    ) -> Approval:
        """A supervisor's own credentials for one privileged operation; audited granted or denied."""
        return self.access.approve(operation, operator_id=operator_id, pin=pin, reason=reason, txn_id=txn_id)

    def void(self, original_txn_id: str, *, supervisor: str, pin: str, reason: str, io_wait: float = 10.0) -> Sale:
        """撤销: void a sale of the open batch, under a supervisor's own PIN."""
        original = self.journal.get(original_txn_id)
        approval = self.approve("void", operator_id=supervisor, pin=pin, reason=reason, txn_id=original_txn_id)
        return self._credit("void", original_txn_id, original.amount_minor if original else 0, approval, io_wait)

    def refund(self, original_txn_id: str, amount_minor: int, *, supervisor: str, pin: str, reason: str,
               io_wait: float = 10.0) -> Sale:
        """退货: refund part or all of an approved sale, under a supervisor's own PIN."""
        approval = self.approve("refund", operator_id=supervisor, pin=pin, reason=reason, txn_id=original_txn_id)
        return self._credit("refund", original_txn_id, amount_minor, approval, io_wait)

    def _credit(self, kind: str, original: str, amount: int, approval: Approval, io_wait: float) -> Sale:
        self.flow.recover_if_needed()
        self.runtime.run_until(lambda: self.flow.state is CheckoutState.IDLE, io_wait=io_wait)
        sale = self.flow.begin_credit(kind, original, amount, approval=approval)
        self.runtime.run_until(lambda: self.flow.state in SETTLED_STATES, io_wait=io_wait)
        return sale

    def settle(self, *, supervisor: str, pin: str, reason: str = "end of day", io_wait: float = 10.0) -> Any:
        """Settle the open batch under a supervisor's own PIN (owed reversals and advices go out
        first); returns the SettlementResult."""
        approval = self.approve("settle", operator_id=supervisor, pin=pin, reason=reason)
        self.flow.recover_if_needed()
        self.runtime.run_until(lambda: self.flow.state is CheckoutState.IDLE, io_wait=io_wait)
        if self.journal.pending_advices() and self.flow.state is CheckoutState.IDLE:
            self.flow.forward()
            self.runtime.run_until(lambda: self.flow.state is not CheckoutState.FORWARDING, io_wait=io_wait)
        self.flow.start_settlement(approval=approval)
        self.runtime.run_until(lambda: self.flow.state is not CheckoutState.SETTLING, io_wait=io_wait)
        return self.flow.last_settlement

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:  # closing must go on whatever one part says
                log.exception("error while closing the till")

    def __enter__(self) -> Till:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_till(
    *, profile: str = "emulated-counter", clock: Clock | None = None, var_dir: Path | str = "var",
    overrides: Mapping[str, Any] | None = None, **kwargs: Any,
) -> Till:
    terminal = load_terminal_profile(profile)
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if name:
            terminal.setdefault(section, {})[name] = value
        else:
            terminal[section] = value
    return Till(terminal=terminal, clock=clock or SystemClock(), var_dir=Path(var_dir), **kwargs)


# -- emulator services for the CLI (emulator/ is reachable only through this module) ---------------

def test_cards() -> list[tuple[str, str, str]]:
    """(name, entry modes, description) of every test card the emulated reader knows."""
    from emulator.cards import load_catalogue

    return [(c.name, "/".join(c.entry_modes), c.description) for c in load_catalogue().values()]


def check_test_card(name: str) -> int | None:
    """Refuse an unknown card; returns the amount that shows the card's behaviour, if it has one."""
    from emulator.cards import UnknownCardError, get_card

    try:
        return get_card(name).demo_amount_minor
    except UnknownCardError as exc:
        raise ConfigError(str(exc)) from exc


EMULATOR_KINDS = {"printer": "printer", "card-reader": "card_reader"}


def serve_emulator(
    kind: str, *, profile: str | None, pty: bool, listen: str | None, baud: int | None = None,
    faults: list[str] | None = None,
) -> Any:
    """Start one emulator on a pty or a TCP socket; returns the running link (call .stop()).
    `faults` are control lines applied before serving (e.g. "fault paper-out")."""
    from emulator.control import apply
    from emulator.link import PtyLink, TcpLink

    if kind not in EMULATOR_KINDS:
        raise ConfigError(f"unknown emulator {kind!r} (known: {', '.join(EMULATOR_KINDS)})")
    profile_kind = EMULATOR_KINDS[kind]
    name = profile or load_terminal_profile("emulated-counter")["devices"][profile_kind]["profile"]
    device = _device_profile(profile_kind, name)
    peer: Any = PrinterEmulator(device) if kind == "printer" else CardReaderEmulator(device)
    for line in faults or []:
        reply = apply(peer, line)
        if reply.startswith("error"):
            raise ConfigError(f"{line!r}: {reply}")
    serial = device.get("serial", {})
    if baud is not None and not 50 <= baud <= 4_000_000:
        raise ConfigError(f"--baud {baud} is not a serial line speed")
    settings = {"baud": baud or int(serial.get("baud", 9600)), "framing": str(serial.get("framing", "8N1"))}
    if pty:
        return PtyLink(peer, **settings).start()
    host, _, port = (listen or "").rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen wants HOST:PORT, got {listen!r}")
    try:
        return TcpLink(peer, host=host, port=int(port), **settings).start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc


def render_escpos(data: bytes, *, profile: str | None) -> Any:
    """What a printer of this profile makes of an ESC/POS byte stream (pages, unknown commands)."""
    from emulator.printer import render_stream

    name = profile or load_terminal_profile("emulated-counter")["devices"]["printer"]["profile"]
    return render_stream(data, _device_profile("printer", name))


def control_emulator(link: Any, line: str) -> str:
    """Apply one operator control line (`fault paper-out`, `present approved chip`, ...) to a
    served emulator; returns the one-line reply."""
    try:
        from emulator.control import apply
    except ImportError:  # pragma: no cover - control verbs arrive with the device issues
        return "error: this emulator takes no control commands yet"
    reply: str = link.control(lambda peer: apply(peer, line))
    return reply


def serve_acquirer(listen: str, *, now: Callable[[], Any] | None = None) -> AcquirerSimulator:
    """Start the acquirer simulator on "HOST:PORT" (port 0 picks one) and return it running; the
    caller stops it. `now` is the host's wall clock (a scenario passes its virtual one).
    ConfigError for a malformed address or one that cannot be bound."""
    from datetime import datetime

    from emulator.host import serve_forever_main

    try:
        return serve_forever_main(listen, now=now or datetime.now)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
