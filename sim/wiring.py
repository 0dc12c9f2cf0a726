"""The emulated world's wiring: emulators for the devices a terminal profile marks `emu://`, the
acquirer simulator for `host.url = "emulated"`, then `terminal.app.build_till` with their URLs.

The emulated host is the TCP simulator by default (a thread, with every network fault on tap);
`host_transport="emu"` (or `host.url = "emu://acquirer"`) serves the same decisions as an
in-process synchronous peer instead (emulator/acquirer/peer.py): faster, no network faults.

Everything is read from the device registry (terminal/devices.py): a family is emulated here
because its row names an emulator, not because this module knows it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from drivers.acquirer.driver import AcquirerDriver
from drivers.transport import attach_peer, detach_peer, register_peer_factory, set_peer_factory_finder
from sim.operators import seed_test_operators
from terminal import devices
from terminal.app import BOOT_IO_WAIT_S, Till, device_profiles, load_terminal_profile, till_parts
from terminal.clock import Clock, SystemClock
from terminal.errors import ConfigError
from terminal.host.link import HostLink

if TYPE_CHECKING:
    from emulator.acquirer.core import Acquirer
    from emulator.acquirer.simulator import AcquirerSimulator
    from emulator.wallet.peer import WalletPeer

HostTransport = Literal["tcp", "emu"]
EMU_HOST_URL = "emu://acquirer"
EMU_WALLET_URL = "emu://wallet"

__all__ = ["EmulatedTill", "EmulatorTime", "Emulators", "build_emulated_till", "register_emulator_factories"]


class Emulators:
    """The in-process peers of an emulated till by device slot (`emulators.card_reader`), and the
    acquirer simulator (`emulators.host`), so a demo or test can act on them. A slot that is not
    emulated here reads as None. `emulators.acquirer` is the emulated host's decisions (the
    simulator itself over TCP, the peer's Acquirer over emu://); `host` is only the TCP simulator."""

    def __init__(self) -> None:
        self.devices: dict[str, Any] = {}
        self.host: AcquirerSimulator | None = None
        self.acquirer: Acquirer | None = None
        self.wallet: WalletPeer | None = None  # the wallet gateway simulator (`[wallet] url` emulated)
        self.urls: list[str] = []

    def __getattr__(self, slot: str) -> Any:
        if slot.startswith("_"):
            raise AttributeError(slot)
        return self.__dict__.get("devices", {}).get(slot)


class EmulatedTill(Till):
    """A Till whose devices and host are emulated in this process."""

    def __init__(self, *, emulators: Emulators, **parts: Any) -> None:
        self.emulators = emulators
        super().__init__(**parts)


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


def _factory_for(kind: str) -> Callable[[Mapping[str, str]], Any] | None:
    """`emu://<kind>?profile=NAME` builds a fresh emulator of the registry's family `kind`."""
    try:
        row = devices.family(kind)
    except ConfigError:
        return None
    if row.emulator is None or row.family == devices.HOST_LINK:
        return None

    def make(query: Mapping[str, str]) -> Any:
        profile = devices.load_device_profile(row, query.get("profile", row.default_profile))
        return row.emulator_class()(profile)

    return make


def register_emulator_factories() -> None:
    """Let `emu://<family>?profile=NAME` build an emulator of any registered family, looked up
    when first asked (reading every plugin's entry point at each start would cost ~35 ms)."""
    set_peer_factory_finder(_factory_for)
    register_peer_factory(devices.family(devices.WALLET_LINK).url_kind, _wallet_peer)


def _wallet_peer(query: Mapping[str, str]) -> Any:
    """`emu://wallet` without an instance id: a gateway simulator of its own (imported when first asked)."""
    from emulator.wallet.peer import make_peer

    return make_peer(query)


def build_emulated_till(
    profile: str = "emulated-counter", *, clock: Clock | None = None, var_dir: Path | str = "var",
    overrides: Mapping[str, Any] | None = None, device_urls: Mapping[str, str] | None = None,
    peers: Mapping[str, Any] | None = None,
    display: Callable[[str], None] = lambda line: None, host: HostLink | None = None,
    host_transport: HostTransport | None = None, wallet_peer: WalletPeer | None = None,
    persist_emulated_books: bool = False, **parts: Any,
) -> EmulatedTill:
    """A terminal whose `emu://` devices and "emulated" host run in this process; any slot given
    in `device_urls` is opened as given (a pty, a socket), a slot in `peers` talks to that ready-made
    peer over emu:// (a test's own emulator or a hostile one; `emulators.<slot>` is it), and a `host` link
    given is used as it is. Other `parts` go to build_till (journal, boot_io_wait...).

    The emulated host (`host.url` "emulated" or "emu://acquirer") is served over `host_transport`:
    "tcp", the acquirer simulator on a loopback thread with its network faults (the default for
    "emulated"), or "emu", an in-process synchronous peer (the default for "emu://acquirer").

    `persist_emulated_books` (`till run`): the emulated host and wallet gateway built here keep
    their books under var/emulated/acquirer and var/emulated/wallet, so they survive a restart and
    reconcile with the journal; off, each build starts a fresh host (tests, the demo)."""
    register_emulator_factories()
    clock = clock or SystemClock()
    terminal = load_terminal_profile(profile, overrides)
    profiles = device_profiles(terminal)
    emulators = Emulators()
    urls = dict(device_urls or {})
    sources: list[Any] = []
    closers: list[Callable[[], None]] = []
    try:
        for slot, settings in devices.fitted(terminal).items():
            given = (peers or {}).get(slot)
            if given is None and (slot in urls or not str(settings["url"]).startswith("emu://")):
                continue
            row = devices.resolve(slot, settings)
            peer = given if given is not None else row.emulator_class()(profiles[slot])
            if given is None and getattr(peer, "STATE_IN_VAR", False):  # e.g. the card reader's ATCs
                peer.use_folder(Path(var_dir) / "emulated" / row.url_kind)
            emulators.devices[slot] = peer
            url = attach_peer(row.url_kind, peer)
            emulators.urls.append(url)
            closers.append(partial(detach_peer, url))
            urls[slot] = url
            if getattr(peer, "follows_till_clock", False):
                sources.append(EmulatorTime(clock, peer))
        host_url = str(terminal["host"]["url"])
        if host is None and host_url in ("emulated", EMU_HOST_URL):
            transport = host_transport or ("emu" if host_url == EMU_HOST_URL else "tcp")
            if transport == "emu":
                from emulator.acquirer.peer import AcquirerPeer

                peer = AcquirerPeer()
                if persist_emulated_books:
                    peer.use_folder(Path(var_dir) / "emulated" / "acquirer")
                emulators.acquirer = peer.acquirer
                url = attach_peer("acquirer", peer)
                closers.append(partial(detach_peer, url))
            elif transport == "tcp":
                simulator = devices.family(devices.HOST_LINK).emulator_class()()
                if persist_emulated_books:
                    simulator.use_folder(Path(var_dir) / "emulated" / "acquirer")
                simulator.start()
                emulators.host = emulators.acquirer = simulator
                closers.append(simulator.stop)
                url = simulator.url
            else:
                raise ConfigError(f"host_transport is 'tcp' or 'emu', not {transport!r}")
            link = AcquirerDriver(url, connect_timeout=float(terminal["host"]["connect_timeout_s"]))
            link.connect()
            host = link
        wallet = terminal.get("wallet") or {}
        if str(wallet.get("url", "")) in ("emulated", EMU_WALLET_URL):
            # The gateway simulator in process, on the till's clock; the profile is pointed at it,
            # so whatever opens `[wallet] url` reaches this gateway (emulators.wallet).
            from emulator.wallet.gateway import WalletGateway
            from emulator.wallet.peer import WalletPeer

            # On the till's clock (its wall time too), so the statement of the till's day holds its payments.
            # `wallet_peer`: a gateway that outlives this till (a power cut in a test).
            gateway_peer = wallet_peer or WalletPeer(WalletGateway(
                key=str(wallet.get("key", "")), mch_id=str(wallet.get("mch_id", "")), start=clock.wall()))
            if persist_emulated_books and wallet_peer is None:
                gateway_peer.use_folder(Path(var_dir) / "emulated" / "wallet")
            emulators.wallet = gateway_peer
            url = attach_peer(devices.family(devices.WALLET_LINK).url_kind, gateway_peer)
            closers.append(partial(detach_peer, url))
            terminal["wallet"] = {**wallet, "url": url}
            sources.append(EmulatorTime(clock, gateway_peer))
    except BaseException:
        for close in reversed(closers):
            close()
        raise
    boot_io_wait = parts.pop("boot_io_wait", BOOT_IO_WAIT_S)
    seed_test_operators(Path(var_dir))  # the documented test operators, on a new var/ only
    return EmulatedTill(
        emulators=emulators, display=display, boot_io_wait=boot_io_wait,
        **till_parts(terminal, clock=clock, var_dir=var_dir, device_urls=urls, host=host, sources=sources,
                     closers=closers, **parts),
    )
