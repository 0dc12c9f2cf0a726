"""The bench a scenario runs on: one terminal on virtual time, its emulated devices, and the
acquirer simulator, with power that can fail at a named point.

The simulator is started once and outlives every power cycle, so its ledger is the bank's view
of the whole session. A power loss closes the EmulatedTill's handles and nothing else — no flow action,
no goodbye to the host — and boots a new EmulatedTill on the same var dir, as a real terminal reboots
from its journal. The printer keeps what it printed and its roll; its buffer dies with the power.

Nothing here sleeps. The only thread is the simulator's. The host barrier and the power cycle
are the emulated world's own (sim/harness.py, shared with the stateful test): after each burst of
work the rig waits until the simulator has read every request the terminal sent and the terminal
has read every answer the simulator wrote, so an answer is never "late" because a machine was
busy, and a run replays exactly.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from drivers.acquirer.driver import AcquirerDriver
from drivers.transport import attach_peer, detach_peer, resolve_peer
from sim.harness import Harness, NotQuiet
from sim.scenario.format import Scenario, ScenarioError
from sim.scenario.host import ScenarioHost
from sim.wiring import EmulatedTill, build_emulated_till, register_emulator_factories
from terminal import devices
from terminal.app import load_terminal_profile
from terminal.checkout.flow import Sale
from terminal.clock import FakeClock
from terminal.errors import InputError, TerminalError

__all__ = ["PowerCut", "PrinterSocket", "Refused", "Rig", "Stuck"]

T = TypeVar("T")
MAX_STEPS = 10_000  # runtime steps before the rig calls a run stuck (a flow that never settles)
TITLES = {"merchant": b"MERCHANT COPY", "cardholder": b"CARDHOLDER COPY"}


class PowerCut(BaseException):
    """The power goes at a named point. A BaseException, so no `except Exception` in the
    terminal can survive it: what was not committed is lost, as on a real power failure."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


class Stuck(RuntimeError):
    """The terminal kept working without ever settling (a flow bug, or a scenario loop)."""


@dataclass(frozen=True)
class Refused:
    """The terminal said no to an action (a fact of the run, not a broken scenario)."""

    reason: str


class PrinterSocket:
    """The printer's end of the cable (a drivers.transport.Peer in front of the emulator): it
    can end the roll, or cut the power, as a copy's title line reaches the printer."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.paper_out_at: str | None = None
        self.cut_at: str | None = None
        self._tail = b""

    def arm(self, *, paper_out_at: str | None = None, cut_at: str | None = None) -> None:
        self.paper_out_at = paper_out_at or self.paper_out_at
        self.cut_at = cut_at or self.cut_at
        self._tail = b""  # a title printed before the arming does not count

    def receive(self, data: bytes) -> None:
        for copy, what in ((self.cut_at, "cut"), (self.paper_out_at, "paper")):
            end = self._title_end(data, copy) if copy else None
            if end is None:
                continue
            self.emulator.receive(data[:end])
            self._tail = b""
            if what == "cut":
                self.cut_at = None
                raise PowerCut(f"printing-{copy}")  # the rest of the copy never reaches the printer
            self.paper_out_at = None
            self.emulator.set_paper("out")  # the roll ends right after the copy's title
            data = data[end:]
        self._tail = (self._tail + data)[-32:]
        self.emulator.receive(data)

    def _title_end(self, data: bytes, copy: str) -> int | None:
        title = TITLES[copy]
        seen = self._tail + data
        at = seen.find(title)
        return None if at < 0 else max(0, at + len(title) - len(self._tail))

    def transmit(self) -> bytes:
        return bytes(self.emulator.transmit())

    def close(self) -> None:
        """The terminal closed its port; the printer itself stays on."""


class Rig:
    def __init__(self, scenario: Scenario, var_dir: Path, *, seed: int | None = None) -> None:
        self.scenario = scenario
        self.var_dir = var_dir
        # The terminal's unpredictable numbers (9F37), drawn from the seed: a replay signs the same.
        self._unpredictable = random.Random(f"9F37:{scenario.seed if seed is None else seed}")
        self.clock = FakeClock()  # a new one at every boot: the monotonic clock restarts with the CPU
        self.printers: list[Any] = []  # one emulator per boot; paper printed before stays printed
        self.shown: list[str] = []  # every line the terminal displayed
        self.cut_at: str | None = None  # an armed power loss at a checkout state
        self.cuts: list[str] = []  # where the power went, in order
        self.reachable = True
        self.done_before_cut: Any = None  # what the last action returned when the power went just after it
        self.sale_label: str | None = None  # the scenario's name for the sale in progress...
        self.sale: Sale | None = None  # ...and the sale (its txn_id changes on a PIN retry)
        self.txn_labels: dict[str, str] = {}  # txn_id -> sale label (a PIN retry adds a txn)
        self._printer_url: str | None = None
        self._socket: PrinterSocket | None = None
        # A bound socket that never listens: connecting to it is refused at once (host unreachable).
        self._dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._dead.bind(("127.0.0.1", 0))
            self.host = ScenarioHost(host="127.0.0.1", port=0, now=lambda: self.clock.wall())
            self.host.start()
        except BaseException:
            self._dead.close()
            raise
        self.harness = Harness(self.host, self._build, step=self._step, drain_steps=MAX_STEPS)
        # The wallet gateway outlives the terminal's power cycles, as the acquirer does; its time
        # is the terminal's (each boot's till drives it by advance()).
        from emulator.wallet.gateway import WalletGateway
        from emulator.wallet.peer import WalletPeer

        wallet = load_terminal_profile(scenario.profile, scenario.overrides).get("wallet") or {}
        self.wallet = WalletPeer(WalletGateway(key=str(wallet.get("key", "")), mch_id=str(wallet.get("mch_id", "")),
                                               start=self.clock.wall()))

    @property
    def till(self) -> EmulatedTill | None:
        return self.harness.till

    # -- power ------------------------------------------------------------------------------------
    def boot(self) -> EmulatedTill:
        register_emulator_factories()
        terminal_devices = self._devices()
        peer, _ = resolve_peer(f"emu://printer?profile={terminal_devices['printer']['profile']}")
        emulator: Any = peer
        if self.printers:  # the roll and the cover are as the power found them
            before = self.printers[-1]
            if before.paper != "ok":
                emulator.set_paper(before.paper)
            if before.cover_open:
                emulator.open_cover()
        self.printers.append(emulator)
        old, self._socket = self._socket, PrinterSocket(emulator)
        if old is not None:
            self._socket.paper_out_at, self._socket.cut_at = old.paper_out_at, old.cut_at
        self._printer_url = attach_peer("printer", self._socket)
        self.clock = FakeClock(start=self.clock.wall())
        try:
            return self.harness.boot()
        except (TerminalError, ValueError, TypeError, KeyError) as exc:
            self._unplug_printer()
            raise ScenarioError(f"the terminal cannot start with this scenario: {exc}") from exc

    def _build(self, harness: Harness) -> EmulatedTill:
        """The terminal as the scenario configures it, on the harness's counting host link."""
        assert self._printer_url is not None, "the printer is plugged in before the terminal boots"
        overrides = {**self.scenario.overrides, "host.url": self._host_url(), "devices": self._devices()}
        terminal = load_terminal_profile(self.scenario.profile, overrides)
        link = harness.link(str(terminal["host"]["url"]), connect_timeout=float(terminal["host"]["connect_timeout_s"]))
        link.connect()  # as build_till does; the flow connects again when a sale needs the host
        try:
            till = build_emulated_till(profile=self.scenario.profile, clock=self.clock, var_dir=self.var_dir,
                                       overrides=overrides, device_urls={"printer": self._printer_url},
                                       display=self.shown.append, host=link, wallet_peer=self.wallet)
            till.flow.unpredictable_number = lambda: self._unpredictable.randbytes(4)
            return till
        except BaseException:
            link.close()
            raise

    def power_off(self) -> None:
        """Drop the terminal: its handles close (journal, ports, socket); nothing else runs."""
        self.harness.power_off()
        self._unplug_printer()

    def power_cycle(self, where: str) -> None:
        """The power went at `where`; it comes back at once and the terminal boots again."""
        self.cuts.append(where)
        self.power_off()
        self.boot()

    def arm_cut(self, where: str) -> None:
        if where.startswith("printing-"):
            self._printer_socket().arm(cut_at=where.removeprefix("printing-"))
        else:
            self.cut_at = where

    def armed_cut(self) -> str | None:
        socket_cut = self._socket.cut_at if self._socket is not None else None
        return self.cut_at or (f"printing-{socket_cut}" if socket_cut else None)

    def close(self) -> None:
        try:
            self.power_off()
        finally:
            self.host.stop()
            self._dead.close()

    def _unplug_printer(self) -> None:
        if self._printer_url is not None:
            detach_peer(self._printer_url)
            self._printer_url = None

    def _devices(self) -> dict[str, dict[str, str]]:
        slots = devices.fitted(load_terminal_profile(self.scenario.profile))
        urls = {"printer": "emu://printer", "card_reader": "emu://card-reader"}
        # Every other slot the profile has (the scanner) is emulated in process too, by its row.
        urls.update({slot: f"emu://{devices.resolve(slot, settings).url_kind}"
                     for slot, settings in slots.items() if slot not in urls})
        out = {}
        for slot, url in urls.items():
            settings = slots[slot]  # an empty profile is the driving row's default, as in terminal/app.py
            profile = str(settings["profile"] or devices.resolve(slot, settings).default_profile)
            out[slot] = {"profile": profile, "driver": str(settings["driver"]), "url": url}
        return out

    # -- running the terminal -----------------------------------------------------------------------
    def on(self) -> EmulatedTill:
        if self.till is None:
            raise RuntimeError("the terminal is off")  # the parser refuses such scenarios
        return self.till

    def act(self, fn: Callable[[EmulatedTill], T]) -> T | Refused | None:
        """An operator's action on the till, then everything it sets going. None: the power went."""
        till = self.on()
        self.done_before_cut = None
        try:
            result = fn(till)
            self.done_before_cut = result
            self._check_cut(till)
        except PowerCut as cut:
            self.power_cycle(cut.where)
            self.run()
            return None
        except TerminalError as exc:  # InputError, JournalError: the terminal refused
            self.run()
            return Refused(str(exc))
        self.run()
        return result

    def run(self) -> None:
        """Let the terminal do everything it can before time passes or someone acts."""
        try:
            self.harness.settle()
        except NotQuiet as exc:
            raise Stuck(str(exc)) from exc

    def advance(self, seconds: float) -> None:
        """Move virtual time on, stopping at every deadline on the way so each one fires at its
        own time and what it sets going (a repeat, an answer) happens before the next."""
        remaining = seconds
        while remaining > 1e-9:
            dues = [self.clock.next_deadline() if self.till is not None else None, self._host_due()]
            due = min((d for d in dues if d is not None), default=None)
            hop = remaining if due is None else min(remaining, max(0.0, due - self.clock.now()))
            self.clock.advance(hop)
            remaining -= hop
            self.host.release_due()  # answers held by virtual latency whose time has come
            self.run()

    def _host_due(self) -> float | None:
        """The next delayed host answer, on the terminal's monotonic clock."""
        due = self.host.next_due()
        return None if due is None else self.clock.now() + (due - self.clock.wall()).total_seconds()

    def _step(self, till: EmulatedTill) -> bool:
        try:
            moved = till.runtime.step()
            self.note_sale()
            self._check_cut(till)
        except PowerCut as cut:
            self.power_cycle(cut.where)
            return True
        return moved

    def note_sale(self) -> None:
        """Name the sale's current transaction (each PIN retry is a new one) after the sale."""
        sale = self.sale
        if sale is not None and sale.record is not None and self.sale_label is not None:
            self.txn_labels.setdefault(sale.record.txn_id, self.sale_label)

    def _check_cut(self, till: EmulatedTill) -> None:
        if self.cut_at is not None and till.flow.state.name == self.cut_at:
            where, self.cut_at = self.cut_at, None
            raise PowerCut(where)

    # -- the network between terminal and host -------------------------------------------------------
    def set_reachable(self, reachable: bool) -> None:
        self.reachable = reachable
        till = self.till
        if till is not None:
            link = till.host
            assert isinstance(link, AcquirerDriver), "the rig's till talks to the simulator over TCP"
            link.address = self.host.address if reachable else self._dead.getsockname()[:2]
        if not reachable:
            self.host.drop_connections()  # the cable is pulled: the open link breaks too

    def _host_url(self) -> str:
        host, port = self.host.address if self.reachable else self._dead.getsockname()[:2]
        return f"tcp://{host}:{port}"

    # -- the devices -------------------------------------------------------------------------------------
    def printer(self) -> Any:
        return self.printers[-1]

    def _printer_socket(self) -> PrinterSocket:
        assert self._socket is not None, "the printer is set up at the first boot"
        return self._socket

    def arm_paper_out(self, copy: str) -> None:
        self._printer_socket().arm(paper_out_at=copy)

    def card_reader(self) -> Any:
        reader = self.on().emulators.card_reader
        assert reader is not None, "the rig always emulates the card reader"
        return reader

    def scanner(self) -> Any:
        scanner = self.on().emulators.scanner
        if scanner is None:
            raise InputError("this scenario's terminal has no emulated scanner")
        return scanner

    def wallet_gateway(self) -> Any:
        return self.wallet.gateway

