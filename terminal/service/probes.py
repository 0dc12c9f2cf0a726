"""How `till doctor` asks each device and link whether it is there: one probe a family.

A probe talks through the till's own driver, never a second port. The answers of a request that
is answered through `poll()` (a scanner's heartbeat, a pad's identity, the gateway's answer, the
host's 0810) reach the doctor through a tap on the till's runtime (`Tap`): the doctor's own answer
is taken out of the stream, everything else goes on to the checkout as before. Every wait is
bounded (`Probe.pump`): by the till's clock (a test moves it), by real time, and by a stall (an
in-process emu:// peer with nothing to say will say nothing more). A request form that blocks by
itself (the printer's DLE EOT status, the PIN pad's device info) is bounded by its driver's own
timeouts. A family without a probe here (a plugin's) is reported by what its driver shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from drivers.events import DeviceFault, FaultKind
from drivers.record import Record
from terminal.checkout.table import RESTING

__all__ = ["PROBES", "Finding", "Probe", "Tap", "fault_finding", "tapped"]

MAX_STEPS = 10_000  # runtime steps one wait may take: a chattering device cannot keep the doctor busy


class Finding(Record):
    """What one probe found (the doctor turns it into a row of its report)."""

    status: str  # "ok" | "warn" | "fail"
    detail: str
    data: Mapping[str, object]


class Tap:
    """The runtime's handler while the doctor runs: its own answers are kept, the rest goes on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.want: Callable[[object], bool] | None = None
        self.taken: list[object] = []
        self.faults: list[DeviceFault] = []

    def handle(self, event: object) -> None:
        if self.want is not None and self.want(event):
            self.taken.append(event)
            return
        if isinstance(event, DeviceFault):
            self.faults.append(event)  # seen by the doctor, and by the checkout as always
        self.inner.handle(event)


@contextmanager
def tapped(runtime: Any) -> Iterator[Tap]:
    tap = Tap(runtime.handler)
    runtime.handler = tap
    try:
        yield tap
    finally:
        runtime.handler = tap.inner


class Probe:
    """The till as a probe sees it, and the bounded wait every probe uses."""

    def __init__(self, till: Any, tap: Tap, wait_s: float) -> None:
        self.till, self.tap, self.wait_s = till, tap, wait_s
        self.waited = 0.0  # how long the last request waited (the longer of real and till time)

    @property
    def at_rest(self) -> bool:
        return self.till.flow.state in RESTING

    def pump(self, done: Callable[[], bool], wait_s: float | None = None) -> bool:
        """Run the till until `done()`, for at most `wait_s` on the till's clock and in real time."""
        wait = self.wait_s if wait_s is None else wait_s
        clock = self.till.clock
        start, real_start, steps = clock.now(), time.monotonic(), 0
        until, real_until = start + wait, real_start + wait

        def over() -> bool:
            nonlocal steps
            steps += 1
            return done() or clock.now() >= until or time.monotonic() >= real_until or steps > MAX_STEPS

        self.till.runtime.run_until(over, io_wait=wait)
        self.waited = max(clock.now() - start, time.monotonic() - real_start)
        return done()

    def timed(self, call: Callable[[], Any]) -> Any:
        """A request form that blocks by itself (bounded by its driver), timed."""
        start = time.monotonic()
        try:
            return call()
        finally:
            self.waited = time.monotonic() - start

    def ask(self, send: Callable[[], DeviceFault | None], want: Callable[[object], bool], *, family: str,
            wait_s: float | None = None) -> object | DeviceFault | None:
        """Send a request answered through poll(); its answer, the family's fault, or None (no answer)."""
        self.tap.taken.clear()
        self.waited = 0.0
        faults = len(self.tap.faults)
        self.tap.want = want
        try:
            fault = send()
            if fault is not None:
                return fault

            def new_fault() -> DeviceFault | None:
                return next((f for f in self.tap.faults[faults:] if f.device == family), None)

            self.pump(lambda: bool(self.tap.taken) or new_fault() is not None, wait_s)
            return self.tap.taken[0] if self.tap.taken else new_fault()
        finally:
            self.tap.want = None


def fault_finding(fault: DeviceFault, waited: float, data: Mapping[str, object]) -> Finding:
    if fault.kind is FaultKind.NO_ANSWER:
        detail = f"无应答 / no answer in {waited:.1f} s ({fault.detail})"
    elif fault.kind is FaultKind.DISCONNECTED:
        detail = f"连接中断 / disconnected: {fault.detail}"
    else:
        detail = f"{fault.kind.value}: {fault.detail}"
    return Finding(status="fail", detail=detail, data={**data, "fault": fault.kind.value})


def _no_answer(waited: float, data: Mapping[str, object]) -> Finding:
    return Finding(status="fail", detail=f"无应答 / no answer in {waited:.1f} s", data=data)


def _busy(probe: Probe, data: Mapping[str, object]) -> Finding:
    state = probe.till.flow.state.name
    return Finding(status="ok", detail=f"交易中，未询问 / not asked: the till is busy ({state})",
                   data={**data, "probed": False})


def _identity(profile: Mapping[str, Any], driver: Any) -> dict[str, object]:
    return {"url": str(getattr(driver, "url", "")), "model": str(profile.get("model", "")),
            "profile": str(profile.get("name", ""))}


# -- one probe a family ----------------------------------------------------------------------
def printer(probe: Probe, driver: Any, profile: Mapping[str, Any]) -> Finding:
    """DLE EOT 1..4 (blocking, bounded by the driver's timeout); paper near end warns."""
    from drivers.printer import events as ev
    from drivers.printer.driver import condition_events

    data = _identity(profile, driver)
    if driver.busy:
        return Finding(status="ok", detail="打印中 / printing: its own status checks follow the job",
                       data={**data, "probed": False})
    status = probe.timed(driver.status)  # bounded by the driver's timeout
    if isinstance(status, DeviceFault):
        return fault_finding(status, probe.waited, data)
    data |= {"online": status.online, "cover_open": status.cover_open, "paper_near_end": status.paper_near_end,
             "paper_out": status.paper_out, "error": status.error, "job_bytes": driver.last_job_bytes}
    if not status.printable:
        causes = next((e.cause for e in condition_events(status) if isinstance(e, ev.PrinterOffline)), "offline")
        return Finding(status="fail", detail=f"打印机不可用 / cannot print: {causes}", data=data)
    if status.paper_near_end:
        return Finding(status="warn", detail="纸将用完，请换纸 / paper near end: load a new roll", data=data)
    return Finding(status="ok", detail="就绪 / ready", data=data)


def card_reader(probe: Probe, driver: Any, profile: Mapping[str, Any]) -> Finding:
    """Device info (model, serial, firmware), bounded by the link's ACK timeouts; link counters."""
    data = _identity(profile, driver)
    if not probe.at_rest:
        return _busy(probe, data)
    info = probe.timed(driver.device_info)  # bounded by link.ack_timeout_s x link.max_naks, then its timeout
    stats = driver.link_stats
    data |= {"link": {name: getattr(stats, name) for name in stats.__match_args__}}
    if isinstance(info, DeviceFault):
        return fault_finding(info, probe.waited, data)
    data |= {"model": info.model, "serial_number": info.serial_number, "firmware": info.firmware}
    return Finding(status="ok", detail=f"就绪 / ready: {info.model}, firmware {info.firmware}", data=data)


def scanner(probe: Probe, driver: Any, profile: Mapping[str, Any]) -> Finding:
    """GM65: heartbeat; SSI: scan enable (acked); a line-mode scanner answers no request."""
    from drivers.scanner import events as ev

    data = _identity(profile, driver) | {"protocol": driver.protocol, "garbled": driver.garbled,
                                         "duplicates": driver.duplicates}
    if driver.protocol == "serial":
        return Finding(status="ok", detail="端口已打开 / port open (line mode answers no status request)", data=data)
    if not probe.at_rest or driver.busy:
        return _busy(probe, data)
    wait = float(profile["command"]["timeout_s"]) * int(profile["command"]["max_attempts"])
    if driver.protocol == "gm65":
        answer = probe.ask(driver.heartbeat, lambda e: isinstance(e, ev.HeartbeatReply), family=driver.family,
                           wait_s=max(probe.wait_s, wait))
    else:  # SSI answers every packet with CMD_ACK, which the driver takes without an event
        faults, probe.waited = len(probe.tap.faults), 0.0
        sent = driver.enable(True)
        probe.pump(lambda: not driver.busy or len(probe.tap.faults) > faults, max(probe.wait_s, wait))
        late = next((f for f in probe.tap.faults[faults:] if f.device == driver.family), None)
        answer = sent or late or (None if driver.busy else ev.Ack())
    if isinstance(answer, DeviceFault):
        return fault_finding(answer, probe.waited, data)
    if answer is None:
        return _no_answer(probe.waited, data)
    return Finding(status="ok", detail="就绪 / ready (answered)", data=data)


def signature_pad(probe: Probe, driver: Any, profile: Mapping[str, Any]) -> Finding:
    """An LCD pad: its model/serial packet; a pen-only pad has no request to answer."""
    from drivers.signature_pad import events as ev

    data = _identity(profile, driver) | {"lcd": driver.lcd, "garbled": driver.garbled}
    if not driver.lcd:
        return Finding(status="ok", detail="端口已打开 / port open (this model answers no identity request)",
                       data=data)
    if not probe.at_rest or driver.capturing:
        return _busy(probe, data)
    wait = float(profile["command"]["timeout_s"]) * int(profile["command"]["max_attempts"])
    answer = probe.ask(driver.identify, lambda e: isinstance(e, ev.PadIdentity), family=driver.family,
                       wait_s=max(probe.wait_s, wait))
    if isinstance(answer, DeviceFault):
        return fault_finding(answer, probe.waited, data)
    if not isinstance(answer, ev.PadIdentity):
        return _no_answer(probe.waited, data)
    data |= {"model_code": answer.model, "serial_number": answer.serial}
    return Finding(status="ok", detail=f"就绪 / ready: model {answer.model}, serial {answer.serial}", data=data)


def wallet(probe: Probe, driver: Any, profile: Mapping[str, Any]) -> Finding:
    """A query of an order that does not exist: a signed answer (no such order) shows the gateway
    is there, the key right and the clock close enough; nothing is booked."""
    from drivers.wallet import events as ev

    data: dict[str, object] = {"url": str(driver.url)}
    if not probe.at_rest:
        return _busy(probe, data)
    till = probe.till
    order_no = f"DR{till.terminal['terminal_id']}{till.clock.wall():%Y%m%d%H%M%S}"[:32]
    wait = min(max(probe.wait_s, float(driver.timeout)), 30.0)
    answer = probe.ask(lambda: driver.send(ev.Query(order_no=order_no)),
                       lambda e: isinstance(e, ev.WalletAnswer) and e.order_no == order_no,
                       family=driver.family, wait_s=wait)
    if isinstance(answer, DeviceFault):
        return fault_finding(answer, probe.waited, data)
    if not isinstance(answer, ev.WalletAnswer):
        return _no_answer(probe.waited, data)
    data |= {"http_status": answer.http_status, "err_code": answer.err_code}
    if not answer.clear:
        return Finding(status="fail", detail=f"网关无明确应答 / no clear answer: {answer.message or 'unknown'}",
                       data=data)
    return Finding(status="ok", detail="网关应答 / gateway answered (signed)", data=data)


# Family -> probe(probe, driver, device profile). The families are the registry's rows
# (terminal/devices.py); a family without a row here is shown by what its driver says.
PROBES: dict[str, Callable[[Probe, Any, Mapping[str, Any]], Finding]] = {
    "printer": printer, "card_reader": card_reader, "scanner": scanner, "signature_pad": signature_pad,
    "wallet": wallet,
}
