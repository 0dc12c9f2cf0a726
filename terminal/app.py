"""The composition root: a terminal profile and its parts -> drivers -> checkout -> runtime.

`build_till` takes its parts: anything not given (journal, host link, drivers, extra sources) is
made from the profile. Each device slot of the profile (`[devices.<slot>]`) is opened with the
driver the device registry (terminal/devices.py) names for it; this module names no device
family and never imports an emulator. The emulated world (sim/wiring.py) builds its emulators,
then calls `build_till` with their URLs, so the same wiring runs a real till.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from terminal import devices
from terminal.checkout.flow import TENDERS, Sale, SaleFlow
from terminal.checkout.table import HOUSEKEEPING, RESTING, CheckoutState
from terminal.clock import Clock, SystemClock
from terminal.errors import ConfigError, InputError
from terminal.host.link import HostLink
from terminal.journal import Acceptor, Journal
from terminal.profiles import load_terminal_profile
from terminal.receipts.layout import Copy
from terminal.receipts.spool import PrintJob
from terminal.runtime import Runtime, Source
from terminal.security.access import AccessControl, AccessDenied, Approval
from terminal.security.audit import AuditTrail
from terminal.security.operators import OperatorStore
from terminal.security.pan import PanTokenizer, load_or_create_key

__all__ = [
    "SETTLED_STATES", "Till", "build_till", "load_terminal_profile", "open_devices", "open_journal", "till_parts",
]

log = logging.getLogger(__name__)
AUDIT_BROKEN = ("审计记录异常，暂停收款业务，请主管确认 / audit trail broken: sales, voids, refunds and settlement "
                "wait for a supervisor (Till.acknowledge_audit; `till audit verify` shows why)")
BOOT_IO_WAIT_S = 5.0  # at boot, how long one wait for the host may take before the till gives up waiting
# Where `Till.sale` returns: at rest, or waiting for a person (paper, a signature, the customer's
# payment code: `Till.enter_code`, or a scan, goes on).
SETTLED_STATES = {*RESTING, CheckoutState.PRINTER_PAUSED, CheckoutState.SIGNATURE_REQUIRED, CheckoutState.SCANNING}


def device_profiles(terminal: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The firmware profile of every device slot the terminal profile names."""
    out = {}
    for slot, settings in devices.fitted(terminal).items():
        row = devices.resolve(slot, settings)
        out[slot] = devices.load_device_profile(row, str(settings["profile"] or row.default_profile))
    return out


def open_devices(
    terminal: Mapping[str, Any], profiles: Mapping[str, Mapping[str, Any]], urls: Mapping[str, str],
    *, absent: Callable[[str, Any, Exception], None] | None = None,
) -> dict[str, Any]:
    """Open a driver for every device slot (URL from `urls`, else the profile's), closing what
    was opened if one fails — or, with `absent`, handing a port that would not open to it and
    keeping its driver (`till run`: devices come and go, terminal/service/reconnect.py)."""
    opened: dict[str, Any] = {}
    try:
        for slot, settings in devices.fitted(terminal).items():
            url = urls.get(slot) or str(settings["url"])
            if url.startswith("emu://") and "instance=" not in url:
                if settings["optional"]:  # a device the till sells without: absent (the checkout checks)
                    log.info("devices.%s: %s is an emulator and no port was given; left out", slot, url)
                    continue
                raise ConfigError(f"devices.{slot}: {url} is an emulator; start the terminal through the emulated "
                                  "world (`till demo`, sim.wiring.build_emulated_till) or give a port")
            driver = devices.resolve(slot, settings).driver_class()(url, profiles[slot])
            try:
                driver.open()
            except OSError as exc:  # PortError: not there, not a tty, no permission
                if absent is None:
                    raise ConfigError(f"devices.{slot}: {exc}") from exc
                absent(slot, driver, exc)
            opened[slot] = driver
    except BaseException:
        for driver in opened.values():
            driver.close()
        raise
    return opened


class Till:
    """A whole terminal: drivers, host link, journal, the checkout flow and its runtime."""

    def __init__(
        self, *, terminal: Mapping[str, Any], clock: Clock, var_dir: Path, devices: Mapping[str, Any],
        profiles: Mapping[str, Mapping[str, Any]], host: HostLink, journal: Journal,
        sources: Iterable[Source] = (), closers: Iterable[Callable[[], None]] = (),
        display: Callable[[str], None] = lambda line: None, boot_io_wait: float = BOOT_IO_WAIT_S,
    ) -> None:
        self.terminal, self.clock, self.var_dir = terminal, clock, var_dir
        self.boot_io_wait = boot_io_wait
        self.devices, self.profiles, self.host, self.journal = dict(devices), dict(profiles), host, journal
        # Closed in reverse: what the caller brought (emulators) after the drivers that talk to them.
        self._closers: list[Callable[[], None]] = [
            *closers, journal.close, *(d.close for d in self.devices.values()), host.close]
        try:
            self._boot(list(sources), display)
        except BaseException:
            self.close()
            raise

    def _boot(self, sources: list[Source], display: Callable[[str], None]) -> None:
        tokenizer = PanTokenizer(load_or_create_key(self.var_dir / "keys" / "pan.key"))
        self._boot_access()
        recovered = self.journal.recover_unanswered(at=self.clock.wall())
        if recovered:
            log.warning("%d sale(s) had no answer before the restart; reversals queued", len(recovered))
        self.flow = SaleFlow(
            clock=self.clock, journal=self.journal, tokenizer=tokenizer, devices=self.devices,
            profiles=self.profiles, host=self.host, terminal=self.terminal, display=display, access=self.access,
        )
        # Extra sources first (an emulator's time), so what they release is read at once.
        self.runtime = Runtime(self.clock, self.flow, [*sources, *self.devices.values(), self.host])
        if unsigned := self.flow.recover_signatures():  # before the owed slips: a paper line, or a reversal
            log.warning("%d sale(s) were being signed before the restart; fallback applied", len(unsigned))
        self.print_owed_receipts()
        # Ready for sale: signed on, and what was owed from before the restart delivered.
        # A full journal rests in SETTLE_REQUIRED: boot is over there too (only settlement moves it).
        if self.flow.housekeeping():
            self.runtime.run_until(lambda: self.flow.state in RESTING, io_wait=self.boot_io_wait)

    def _boot_access(self) -> None:
        """Operators from var/ (seeded once from the profile), the audit trail held to its anchor
        (var/audit.head). A broken trail does not stop the till, it locks the money operations
        until a supervisor acknowledges it (RELIABILITY.md row 16)."""
        self.audit = AuditTrail(self.journal, load_or_create_key(self.var_dir / "keys" / "audit.key"),
                                anchor=self.var_dir / "audit.head")
        store = OperatorStore(self.var_dir / "operators.json", seed=self.terminal["operators"])
        self.access = AccessControl(store, self.audit, self.clock)
        self.cashier: str | None = None  # signed in (Till.sign_in), when the profile asks for it
        if (check := self.audit.check()).reason:
            log.error("%s: %s", AUDIT_BROKEN, check.reason)

    def print_owed_receipts(self) -> None:
        """Row 4 of the fault matrix: a sale approved just before a restart gets its receipts,
        marked REPRINT / 重打印 (part may have printed), and the audit trail says why. Also
        when a printer that was disconnected is back (`till run`)."""
        for record, copy in self.journal.receipts_owed():
            self.audit.record(operation="reprint", actor="terminal", approver=None, txn_id=record.txn_id,
                              reason=f"{copy} copy owed after a restart", result="granted", at=self.clock.wall())
            self.flow.spool.approved = True
            # The copy prints through the runtime like any job (its end is journalled by the flow);
            # boot waits for it, so the owed copies go out one after the other before any sale.
            end = self.flow.spool.start_copy(record, PrintJob(copy=Copy(copy), reprint=True), what="owed copy")
            if end is not None:
                self.flow.print_job_over(end)
            elif not self.runtime.run_until(lambda: not self.flow.spool.busy, io_wait=self.boot_io_wait):
                log.warning("owed %s copy of %s: not finished at boot", copy, record.txn_id)
                return

    # -- use ---------------------------------------------------------------------------------
    def sale(self, amount_minor: int, *, tender: str = "card", io_wait: float = 10.0) -> Sale:
        """Run one sale to its end (or until it needs outside help) and return it: one Sale with
        its outcome and reason. What cannot start is refused at once with a typed error: a full
        journal (JournalError, 交易流水已满，请先结算), an amount outside the rules (AmountRefused),
        a reversal or settlement the host still has not answered (InputError)."""
        self.check_sale(amount_minor, tender=tender, io_wait=io_wait)
        sale = self.flow.begin_sale(amount_minor, tender=tender)
        self.runtime.run_until(lambda: self.flow.state in SETTLED_STATES, io_wait=io_wait)
        return sale

    def check_sale(self, amount_minor: int, *, tender: str = "card", io_wait: float = 10.0) -> None:
        """What a sale needs before it starts, refused with a typed error (see `sale`); what the
        host is owed goes out first."""
        self._may_sell()
        self.flow.refuse_if_full()
        self.flow.check_amount(amount_minor)
        if tender not in TENDERS:
            raise InputError(f"unknown tender {tender!r} (one of {', '.join(TENDERS)})")
        self._deliver_owed(io_wait)

    def enter_code(self, code: str, *, io_wait: float = 10.0) -> Sale | None:
        """The customer's payment code, typed by the cashier (or as a scanner would send it) while
        the sale waits for it; runs the payment to its end. Returns the sale (None: there was none)."""
        sale = self.flow.sale
        self.flow.enter_code(code)
        self.wait(io_wait=io_wait)
        return sale

    def wait(self, *, io_wait: float = 10.0) -> None:
        """Run until the sale is over, or waits for a person again in another state (a scan
        awaited in SCANNING has come: the payment runs to its end)."""
        start = self.flow.state
        self.runtime.run_until(lambda: self.flow.state in RESTING
                               or (self.flow.state in SETTLED_STATES and self.flow.state is not start), io_wait=io_wait)

    def _deliver_owed(self, io_wait: float) -> None:
        """Before a transaction: what the host is owed goes out now, not after its backoff — an
        unfinished settlement first, then every unresolved reversal — and housekeeping ends."""
        busy = lambda: self.flow.state not in HOUSEKEEPING  # noqa: E731
        self.runtime.run_until(busy, io_wait=io_wait)
        if self.flow.resume_settlement():
            self.runtime.run_until(busy, io_wait=io_wait)
        if self.flow.recover_if_needed():
            self.runtime.run_until(busy, io_wait=io_wait)

    def approve(
        self, operation: str, *, operator_id: str, pin: str, reason: str, txn_id: str | None = None
    ) -> Approval:
        """A supervisor's own credentials for one privileged operation; audited granted or denied."""
        return self.access.approve(operation, operator_id=operator_id, pin=pin, reason=reason, txn_id=txn_id)

    # -- operators (approvals above; the cashier's sign-in where the profile asks for it) -------
    def sign_in(self, operator_id: str, pin: str) -> None:
        """A cashier signs in with their own PIN; sales are theirs until `sign_out`. Audited."""
        self.cashier = self.access.sign_in(operator_id, pin).id

    def sign_out(self) -> None:
        if self.cashier is not None:
            self.audit.record(operation="sign_out", actor=self.cashier, approver=None, txn_id=None,
                              reason="sign out", result="granted", at=self.clock.wall())
        self.cashier = None

    def acknowledge_audit(self, *, supervisor: str, pin: str, reason: str) -> str:
        """A supervisor saw that the audit trail is broken (and why); money operations go on.
        Returns what was broken. The break stays in the trail as an entry of its own."""
        from terminal.security.acceptance import acknowledge_audit

        return acknowledge_audit(self.access, supervisor=supervisor, pin=pin, reason=reason)

    def _may_sell(self) -> None:
        if self.audit.broken:
            raise AccessDenied(f"{AUDIT_BROKEN}: {self.audit.broken}")
        if self.terminal["cashier_sign_in"] and self.cashier is None:
            raise AccessDenied("请收银员先登录 / a cashier must sign in first (Till.sign_in)")

    def void(self, original_txn_id: str, *, supervisor: str, pin: str, reason: str, io_wait: float = 10.0) -> Sale:
        """撤销: void a sale of the open batch, under a supervisor's own PIN."""
        self.flow.refuse_if_full()
        original = self.journal.get(original_txn_id)
        approval = self.approve("void", operator_id=supervisor, pin=pin, reason=reason, txn_id=original_txn_id)
        return self._credit("void", original_txn_id, original.amount_minor if original else 0, approval, io_wait)

    def refund(self, original_txn_id: str, amount_minor: int, *, supervisor: str, pin: str, reason: str,
               io_wait: float = 10.0) -> Sale:
        """退货: refund part or all of an approved sale, under a supervisor's own PIN."""
        self.flow.refuse_if_full()
        self.flow.check_amount(amount_minor)
        approval = self.approve("refund", operator_id=supervisor, pin=pin, reason=reason, txn_id=original_txn_id)
        return self._credit("refund", original_txn_id, amount_minor, approval, io_wait)

    def _credit(self, kind: str, original: str, amount: int, approval: Approval, io_wait: float) -> Sale:
        self._deliver_owed(io_wait)
        sale = self.flow.begin_credit(kind, original, amount, approval=approval)
        self.runtime.run_until(lambda: self.flow.state in SETTLED_STATES, io_wait=io_wait)
        return sale

    def settle(self, *, supervisor: str, pin: str, reason: str = "end of day", io_wait: float = 10.0) -> Any:
        """Settle the open batch under a supervisor's own PIN (owed reversals and advices go out
        first; a reversal that stays unresolved is carried into the next batch); returns the
        SettlementResult. Possible with a full journal too."""
        approval = self.approve("settle", operator_id=supervisor, pin=pin, reason=reason)
        busy = lambda: self.flow.state not in HOUSEKEEPING  # noqa: E731
        self.runtime.run_until(busy, io_wait=io_wait)
        if self.flow.recover_if_needed():
            self.runtime.run_until(busy, io_wait=io_wait)
        if self.journal.pending_advices() and self.flow.state is CheckoutState.IDLE:
            self.flow.forward()
            self.runtime.run_until(busy, io_wait=io_wait)
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def till_parts(
    profile: str | Mapping[str, Any] = "emulated-counter", *, clock: Clock | None = None,
    var_dir: Path | str = "var", overrides: Mapping[str, Any] | None = None,
    device_urls: Mapping[str, str] | None = None, drivers: Mapping[str, Any] | None = None,
    host: HostLink | None = None, journal: Journal | None = None, sources: Iterable[Source] = (),
    closers: Iterable[Callable[[], None]] = (), absent: Callable[[str, Any, Exception], None] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of `Till` for a profile (a name, a path, or a loaded mapping): the
    parts the caller brings, the rest made from the profile. Everything given or made is owned
    from here on: if making a part fails, what exists is closed before the error goes up.
    `absent`: what to do with a device whose port will not open (see `open_devices`)."""
    owned: list[Callable[[], None]] = list(closers)
    owned += [d.close for d in (drivers or {}).values()]
    owned += [part.close for part in (host, journal) if part is not None]
    try:
        terminal = load_terminal_profile(profile, overrides) if isinstance(profile, str) else dict(profile)
        profiles = device_profiles(terminal)
        if journal is None:  # first: the journal's lock decides whether this process may run the till at all
            journal = open_journal(terminal, Path(var_dir))
            owned.append(journal.close)
        if drivers is None:
            drivers = open_devices(terminal, profiles, device_urls or {}, absent=absent)
            owned += [d.close for d in drivers.values()]
        if host is None:
            host = _host_link(terminal)
            owned.append(host.close)
        for slot, link in _section_links(terminal, skip=drivers).items():  # polled with the devices
            drivers = {**drivers, slot: link}
            owned.append(link.close)
    except BaseException:
        for close in reversed(owned):
            close()
        raise
    return {"terminal": terminal, "clock": clock or SystemClock(), "var_dir": Path(var_dir), "devices": drivers,
            "profiles": profiles, "host": host, "journal": journal, "sources": sources, "closers": closers}


def open_journal(terminal: Mapping[str, Any], var_dir: Path, *, accept: Acceptor | None = None) -> Journal:
    """The journal of `var_dir` with the profile's limits: locked for this process, checked
    against damage and against its witness (`accept`: a supervisor's decision to take it as it is,
    terminal.security.acceptance.JournalAcceptance)."""
    limits = terminal["limits"]
    return Journal(var_dir / "journal.sqlite3", capacity=int(limits["journal_capacity"]),
                   warn_ratio=float(limits["journal_warn_ratio"]),
                   disk_reserve_bytes=int(limits["disk_reserve_mb"]) * 1_000_000, accept=accept)


def build_till(
    profile: str | Mapping[str, Any] = "emulated-counter", *, display: Callable[[str], None] = lambda line: None,
    boot_io_wait: float = BOOT_IO_WAIT_S, **parts: Any,
) -> Till:
    """A running terminal (see `till_parts` for the parts a caller may bring); returns once boot
    housekeeping is over: signed on, nothing owed from before a restart."""
    return Till(**till_parts(profile, **parts), display=display, boot_io_wait=boot_io_wait)


def _section_links(terminal: Mapping[str, Any], *, skip: Mapping[str, Any]) -> dict[str, Any]:
    """Drivers of the payment links a terminal-profile section names besides the acquirer's
    `[host]` (devices.SECTION_LINKS: the QR wallet gateway's `[<row>] url`), by their family;
    a section without a url is no link. A family already given in `skip` is left as given."""
    links: dict[str, Any] = {}
    try:
        for name in devices.SECTION_LINKS:
            row = devices.family(name)
            settings = terminal.get(name) or {}
            url = str(settings.get("url", ""))
            if not url or row.family in skip:
                continue
            if url == "emulated":  # as an optional device slot: only the emulated world has one
                log.warning("%s url 'emulated' is served by the emulated world only (`till demo`, sim.wiring):"
                            " this till runs without it; a real till names its https:// address", name)
                continue
            try:
                links[row.family] = row.driver_class()(url, settings)
            except ValueError as exc:
                raise ConfigError(f"{name}.url: {exc}") from exc
    except BaseException:
        for link in links.values():
            link.close()
        raise
    return links


def _host_link(terminal: Mapping[str, Any]) -> HostLink:
    url = str(terminal["host"]["url"])
    if url == "emulated":
        raise ConfigError("host url 'emulated' needs the emulated world (`till demo`, sim.wiring); "
                          "a real till names tcp://HOST:PORT")
    try:
        link: HostLink = devices.family(devices.HOST_LINK).driver_class()(
            url, connect_timeout=float(terminal["host"]["connect_timeout_s"]))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if (fault := link.connect()) is not None:  # the flow connects again when a sale needs the host
        log.warning("host not reachable at start-up: %s", fault.detail)
    return link
