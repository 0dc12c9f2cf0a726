"""`till run`: one terminal, all day. The loop owns the till; everything else asks it.

One thread — this loop — touches the checkout machine, the drivers and the journal. The
payment API's threads hand it commands (`call`), woken through a socketpair the runtime
selects on beside the devices, and read what it publishes: a status snapshot after every step
and the event bus. A payment only *starts* in a command: the sale then runs in the loop like
any other, so a status call or a cancel is answered while a card is read or the host is slow.

Orders (terminal/journal/orders.py) make a payment idempotent on the register's `order_id`.
At start, every order left OPEN by a stop or a crash is decided from the journal once boot
recovery has run (an unanswered sale has been reversed by then).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from drivers.events import DeviceFault, FaultKind
from terminal.checkout.table import CANCELLABLE, RESTING, CheckoutState
from terminal.errors import InputError, TerminalError
from terminal.journal.orders import EcrOrder
from terminal.runtime import SourceFailed
from terminal.service.events import EventBus
from terminal.service.reconnect import DeviceWatch

__all__ = ["Notify", "Service", "ServiceStopped"]

log = logging.getLogger(__name__)
T = TypeVar("T")
S = CheckoutState
# A payment is over for the register once its money is decided: at rest, or with only paper missing.
SALE_OVER = frozenset({*RESTING, S.PRINTER_PAUSED})
IO_WAIT_S = 1.0  # the longest one wait for I/O: the loop looks at its commands and the watchdog this often


class ServiceStopped(TerminalError):
    """The service is stopping: no new command is taken."""


class Notify(Protocol):
    """The supervisor's side channel (systemd's sd_notify: terminal/service/notify.py)."""

    def ready(self, status: str = "") -> None: ...
    def watchdog(self) -> None: ...
    def stopping(self) -> None: ...
    def watchdog_interval(self) -> float | None: ...


class _Unsupervised:
    def ready(self, status: str = "") -> None:
        pass

    def watchdog(self) -> None:
        pass

    def stopping(self) -> None:
        pass

    def watchdog_interval(self) -> float | None:
        return None


class _Waker:
    """A source the runtime selects on: a byte written from another thread wakes the loop."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)

    def poll(self) -> list[object]:
        try:
            while self._r.recv(4096):
                pass
        except BlockingIOError:
            pass
        return []

    def fileno(self) -> int:
        return self._r.fileno()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full (BlockingIOError): the loop is awake anyway
            self._w.send(b"\0")

    def close(self) -> None:
        self._r.close()
        self._w.close()


class _Watching:
    """The runtime's handler: every fact goes to the checkout; device faults are also kept
    (`Service.device_health`) and published, so status and the event stream show them."""

    def __init__(self, service: Service, flow: Any) -> None:
        self.service, self.flow = service, flow

    def handle(self, event: object) -> None:
        if isinstance(event, DeviceFault):
            self.service.device_fault(event)
        elif isinstance(event, SourceFailed):
            device = str(getattr(event.source, "family", type(event.source).__name__))
            self.service.device_fault(DeviceFault(device=device, kind=FaultKind.DISCONNECTED, detail=event.error))
        self.flow.handle(event)


class _Payment:
    def __init__(self, order: EcrOrder, sale: Any) -> None:
        self.order, self.sale = order, sale


class Service:
    def __init__(self, till: Any, *, bus: EventBus | None = None, notifier: Notify | None = None,
                 controls: Mapping[str, Callable[[str], str]] | None = None) -> None:
        self.till = till
        self.bus = bus or EventBus()
        self.notifier: Notify = notifier or _Unsupervised()
        self.controls = dict(controls or {})  # emulated devices' control lines, by slot (emulator mode)
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._waker = _Waker()
        till.runtime.sources.insert(0, self._waker)
        till.runtime.handler = _Watching(self, till.flow)
        self.device_health: dict[str, dict[str, Any]] = {}
        self.watch = DeviceWatch(till, on_change=self._device_changed)
        self._print_owed = False  # the printer is back: owed copies print when the till is at rest
        self._stopping = threading.Event()
        self._payment: _Payment | None = None
        self._last_state: CheckoutState | None = None
        self._last_published: CheckoutState | None = None  # the snapshot is remade when these change
        self._payment_seen: str | None = None
        self.snapshot: dict[str, Any] = {}
        self._interval = self.notifier.watchdog_interval()
        self._pinged = 0.0
        self._settle_orders()
        self._publish_state()

    # -- from any thread ------------------------------------------------------------------------
    def call(self, fn: Callable[[], T], *, timeout: float = 120.0) -> T:
        """Run `fn` on the loop's thread and return what it returns (or raise what it raised)."""
        if self._stopping.is_set():
            raise ServiceStopped("终端正在关闭 / the terminal is stopping")
        future: Future[T] = Future()
        self._commands.put((fn, future))
        self._waker.wake()
        return future.result(timeout=timeout)

    def stop(self) -> None:
        """Stop after the step in hand (safe from a signal handler)."""
        self._stopping.set()
        self._waker.wake()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- the loop -------------------------------------------------------------------------------
    def run(self, *, ready: Callable[[], None] = lambda: None) -> None:
        """Until `stop()`: commands, devices, host answers, deadlines. A stop never cuts a sale
        in half: it waits until the money of the sale in hand is decided (the journal has what is
        owed either way; SIGKILL at any moment loses nothing either)."""
        self.notifier.ready(f"ready: {self.till.flow.state.name}")
        ready()
        try:
            while True:
                self._run_commands()
                if self._stopping.is_set():
                    if self._idle():
                        break
                    self._cancel_for_stop()
                self.till.runtime.run_until(self._wanted, io_wait=IO_WAIT_S)
                self._after_step()
        finally:
            self.notifier.stopping()
            self._fail_pending()
            self.bus.publish("service", state="stopped")
            self.bus.close()

    def _wanted(self) -> bool:
        """run_until's stop condition: something for the loop itself to do."""
        self._after_step()
        return not self._commands.empty() or self._stopping.is_set()

    def _cancel_for_stop(self) -> None:
        """A sale still waiting for the customer (no money has moved) is cancelled by a stop; one
        whose money is in flight is left to finish (the host's answer or its deadline)."""
        flow = self.till.flow
        if self._payment is not None and (flow.state in CANCELLABLE or flow.state is S.QR_SHOWING):
            log.warning("stopping: the payment of order %s is cancelled", self._payment.order.order_id)
            flow.cancel_sale(reason="终端关闭 / the terminal is stopping", actor="service")
            self._watch_payment()

    def _idle(self) -> bool:
        flow = self.till.flow
        return self._payment is None and flow.state in RESTING

    def _run_commands(self) -> None:
        while True:
            try:
                fn, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # the caller's to report; the loop goes on
                future.set_exception(exc)
            self._after_step()

    def _fail_pending(self) -> None:
        while True:
            try:
                _, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(ServiceStopped("终端已关闭 / the terminal stopped"))

    def _after_step(self) -> None:
        self.watch.tick()
        self._watch_payment()
        self._owed_receipts()
        self._publish_state()
        now = self.till.clock.now()
        if self._interval is not None and now - self._pinged >= self._interval:
            self.notifier.watchdog()
            self._pinged = now

    # -- payments (on the loop's thread) ----------------------------------------------------
    def start_payment(self, *, order_id: str, amount_minor: int, currency: str, tender: str) -> tuple[EcrOrder, bool]:
        """The register's payment: (order, True) when it started now; (order, False) when that
        order exists (a retried request: the same payment, never a second one). What cannot start
        (journal full, an amount over the limit, a sale in hand) is refused with a typed error and
        leaves no order behind."""
        till, journal = self.till, self.till.journal
        existing = journal.order(order_id)
        if existing is not None:  # answered first: a retry must never be refused for being busy
            order, _ = journal.open_order(order_id=order_id, amount_minor=amount_minor, currency=currency,
                                          tender=tender, at=till.clock.wall())
            return order, False
        if (till.flow.state is S.PRINTER_PAUSED and "printer" in self.watch.down and self._payment is None
                and till.terminal["receipts"]["printer_missing"] == "owe"):
            till.flow.defer_receipts("打印机未连接，凭条稍后补打 / printer disconnected: copies print when it is back")
        if self._payment is not None or till.flow.state not in RESTING:
            raise InputError(f"终端忙 / the terminal is busy ({till.flow.state.name}): one payment at a time")
        if tender == "card" and "card_reader" in self.watch.down:
            raise InputError("读卡器未连接，可扫码支付 / the card reader is not connected: QR payments still work")
        till.check_sale(amount_minor, tender=tender)
        order, _ = journal.open_order(order_id=order_id, amount_minor=amount_minor, currency=currency,
                                      tender=tender, at=till.clock.wall())
        journal.bind_order(order_id)
        try:
            sale = till.flow.begin_sale(amount_minor, tender=tender)
        except BaseException:
            journal.bind_order(None)
            journal.drop_order(order_id)
            raise
        self._payment = _Payment(order, sale)
        self.bus.publish("payment", order_id=order_id, status="in_progress")
        self._watch_payment()
        return order, True

    def cancel_payment(self, order_id: str, *, actor: str) -> None:
        """The register (or cashier) cancels a payment still waiting for the customer."""
        payment = self._payment
        if payment is None or payment.order.order_id != order_id:
            raise InputError(f"order {order_id} is not in progress: nothing to cancel")
        self.till.flow.cancel_sale(reason="cancelled by the register / 收银机取消", actor=actor)
        self._watch_payment()

    def active_order(self) -> str | None:
        return None if self._payment is None else self._payment.order.order_id

    def _watch_payment(self) -> None:
        payment = self._payment
        if payment is None:
            return
        flow, sale = self.till.flow, payment.sale
        if sale.outcome is None or flow.state not in SALE_OVER:
            return
        self._payment = None
        journal = self.till.journal
        journal.bind_order(None)
        order = journal.finish_order(payment.order.order_id, outcome=str(sale.outcome),
                                     reason=str(sale.reason or ""), at=self.till.clock.wall())
        log.info("order %s: %s", order.order_id, order.outcome)
        self.bus.publish("payment", order_id=order.order_id, status="done", outcome=order.outcome)

    def _settle_orders(self) -> None:
        """Orders a stop or crash left OPEN: decided from the journal (boot has reversed what had
        no answer). An order with no transaction never reached the host: nothing was charged."""
        journal = self.till.journal
        for order in journal.open_orders():
            record = journal.get(order.txn_id) if order.txn_id else None
            if record is None:
                outcome, reason = "CANCELLED", "终端重启，未扣款 / restarted before the payment: not charged"
            elif record.state in ("APPROVED", "OFFLINE"):
                outcome, reason = "APPROVED", "approved before the terminal restarted"
            elif record.state == "DECLINED":
                outcome, reason = "DECLINED", f"declined ({record.response_code})"
            elif record.entry_mode == "qr" and record.state == "SENT":
                outcome, reason = "OUTCOME_UNKNOWN", "待确认 / the wallet has not decided yet"
            else:
                outcome, reason = "REVERSED", "冲正 / no answer before the restart: reversed, not charged"
            journal.finish_order(order.order_id, outcome=outcome, reason=reason, at=self.till.clock.wall())
            log.warning("order %s was open at the restart: %s", order.order_id, outcome)

    def device_fault(self, fault: DeviceFault) -> None:
        slot = self.watch.slot_of(fault) or fault.device
        self._device_changed(slot, fault.kind.value, fault.detail)
        self.watch.fault(fault)

    def _owed_receipts(self) -> None:
        """A printer that came back prints what is owed, once the till is at rest."""
        if self._print_owed and self.till.flow.state is S.IDLE and self._payment is None:
            self._print_owed = False
            owed = self.till.journal.receipts_owed()
            if owed:
                self.till.print_owed_receipts()
                left = len(self.till.journal.receipts_owed())
                self.bus.publish("receipts", owed=len(owed), printed=len(owed) - left)

    def _device_changed(self, slot: str, condition: str, detail: str) -> None:
        if slot == "printer" and condition == "up":
            self._print_owed = True
        if slot == "card_reader" and condition == "up":
            self.till.flow.pin_pad_back()
        condition = "ok" if condition == "up" else "disconnected" if condition == "down" else condition
        self.device_health = {**self.device_health, slot: {
            "condition": condition, "detail": detail, "at": self.till.clock.wall().isoformat()}}
        self.bus.publish("device", slot=slot, condition=condition, detail=detail)

    # -- what the API reads without the loop -----------------------------------------------
    def _publish_state(self) -> None:
        flow = self.till.flow
        state = flow.state
        if state is not self._last_state:
            self.bus.publish("state", state=state.name, previous=getattr(self._last_state, "name", None))
            self._last_state = state
        if state is self._last_published and self._payment_seen == self.active_order():
            return
        self._last_published, self._payment_seen = state, self.active_order()
        journal = self.till.journal
        capacity = journal.capacity_status()
        self.snapshot = {
            "state": state.name,
            "order_id": self.active_order(),
            "signed_on": bool(flow.signed_on),
            "journal": {"used": capacity.used, "capacity": capacity.limit, "full": capacity.full,
                        "warn": capacity.warn, "batch": journal.current_batch()},
            "pid": os.getpid(),
        }

    def close(self) -> None:
        self._waker.close()
