"""`till run` in emulator mode: the emulated world of a profile, kept under var/, and a control
line for each emulated device, host and wallet (the payment API's `/v1/emulators/{slot}`).

The devices are the emulators `sim.wiring` builds for the profile's emu:// slots (a slot given
a port is opened as given); the acquirer simulator serves on a loopback thread with its network
faults on tap; the QR wallet gateway runs in process. Their books live in var/emulated/, so the
host remembers what it approved across a restart and the batch settles in balance.

Beyond each family's own words, two for the web terminal's device panels (the API sees only
control lines, so terminal/ never imports an emulator):
    printer:        page-count | page-png N|current   the roll's pages, a page as base64 PNG
    signature pad:  strokes [[[x, y], ...], ...]       a signature drawn in the browser, fed to
                                                      the pad as its pen packets
    wallet:         pay-shown [PAYER]                  the customer scans the code the till shows
                                                      now (the newest unpaid merchant order) and pays
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sim.wiring import build_emulated_till

__all__ = ["InProcessService", "build_service_till", "web_words"]


def build_service_till(profile: str, *, var_dir: Path, display: Callable[[str], None],
                       device_urls: Mapping[str, str] | None = None,
                       absent: Callable[[str, Any, Exception], None] | None = None,
                       overrides: Mapping[str, Any] | None = None,
                       ) -> tuple[Any, dict[str, Callable[[str], str]]]:
    """(the till, control line -> reply by slot) for `till run` of an emulated profile (`overrides`:
    profile settings by dotted key, for a test that wants the wallet's timings short)."""
    till = build_emulated_till(profile, var_dir=var_dir, display=display, device_urls=device_urls,
                               host_transport="tcp", persist_emulated_books=True, absent=absent,
                               overrides=overrides)
    return till, controls_of(till)


class InProcessService:
    """`till run` of an emulated profile inside this process, for tests and benches: the service
    loop on a thread of its own, the payment API on a free loopback port (`url`), until `close()`.
    `handler`: a subclass of the server's request handler to serve with (a test that keeps every
    byte it sent); `bus`: the event bus to publish on; `tls`: serve HTTPS with this context."""

    def __init__(self, var_dir: Path, *, token: str, profile: str = "emulated-counter",
                 overrides: Mapping[str, Any] | None = None, bus: Any = None, handler: Any = None,
                 tls: Any = None) -> None:
        from terminal.service.api import Api
        from terminal.service.events import EventBus
        from terminal.service.loop import Service
        from terminal.service.server import ApiServer

        self.bus = bus or EventBus()
        self.till, self.controls = build_service_till(profile, var_dir=var_dir, display=self.bus.display,
                                                      overrides=overrides)
        try:
            self.service = Service(self.till, bus=self.bus, controls=self.controls)
            self.server = ApiServer(Api(self.service), host="127.0.0.1", port=0, token=token, tls=tls)
        except BaseException:
            self.till.close()
            raise
        if handler is not None:
            handler.server_api = self.server
            self.server.httpd.RequestHandlerClass = handler
        self.loop = threading.Thread(target=self.service.run, name="till-loop")
        self.loop.start()
        self.server.start()
        self.url = self.server.url

    def control(self, slot: str, line: str) -> str:
        """A control line to an emulated device, on the loop's thread; it must answer ok."""
        reply = self.service.call(lambda: self.controls[slot](line))
        assert reply.startswith("ok"), reply
        return reply

    def close(self) -> None:
        self.service.stop()
        self.loop.join()
        self.server.close()
        self.service.close()
        self.till.close()


def controls_of(till: Any) -> dict[str, Callable[[str], str]]:
    """A control line for every emulated device of the till, its host and its wallet."""
    emulators = till.emulators
    controls: dict[str, Callable[[str], str]] = {}
    for slot, peer in emulators.devices.items():
        controls[slot] = _control(peer)
    if emulators.host is not None:
        controls["host"] = _control(emulators.host)
    if emulators.wallet is not None:
        controls["wallet"] = _control(emulators.wallet)
    return controls


def _control(peer: Any) -> Callable[[str], str]:
    from emulator.control import apply

    return lambda line: web_words(peer, line) or apply(peer, line)


def web_words(peer: Any, line: str) -> str | None:
    """The web terminal's words for a printer or signature pad emulator, or None for any other line."""
    from emulator.printer.emulator import PrinterEmulator
    from emulator.signature_pad.emulator import SignaturePadEmulator

    word, _, rest = line.strip().partition(" ")
    try:
        if isinstance(peer, PrinterEmulator) and word == "page-count":
            return f"ok: {len(peer.pages)}"
        if isinstance(peer, PrinterEmulator) and word == "page-png":
            page = peer.current_page() if rest == "current" else _page(peer, rest)
            out = io.BytesIO()
            page.image().save(out, format="PNG")
            return "ok: " + base64.b64encode(out.getvalue()).decode("ascii")
        if isinstance(peer, SignaturePadEmulator) and word == "strokes":
            from emulator.signature_pad.signers import strokes_from_json

            points = peer.sign(strokes_from_json(rest))
            return f"ok: signing a drawing: {points} pen-down point(s)"
        gateway = getattr(peer, "gateway", None)
        if gateway is not None and word == "pay-shown":
            shown = [o for o in gateway.ledger.orders.values() if o.kind == "native" and not o.paid]
            if not shown:
                return "error: no merchant code is shown"
            return f"ok: {gateway.pay_order(shown[-1].order_no, rest.strip())}"
    except ValueError as exc:
        return f"error: {exc}"
    except Exception as exc:  # a control line never takes the till down
        return f"error: {type(exc).__name__}"
    return None


def _page(peer: Any, text: str) -> Any:
    pages = peer.pages
    if not text.isdigit() or not 1 <= int(text) <= len(pages):
        raise ValueError(f"usage: page-png N (1..{len(pages)}) | page-png current")
    return pages[int(text) - 1]
