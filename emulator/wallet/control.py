"""Wallet gateway control lines (`till wallet`'s stdin; emulator/control.py's shape), one reply line each:

  pay ORDER [PAYER]        a customer pays the merchant-presented order ORDER (after a close: refunded)
  advance SECONDS          gateway time passes (waiting payers pay when their time is due)
  fault unsigned|badsign|error500 [COUNT]   the next COUNT answers unsigned / wrongly signed / HTTP 500
  fault clear              no more faults
  orders                   every order: number, state, amount, refunded
  status | help

Test payment codes (`till payers`): the last two digits of any WeChat/Alipay/UnionPay-shaped code
choose what the customer does (emulator/wallet/payers.py).
"""

from __future__ import annotations

from typing import Any

from emulator.control import BASE_COMMANDS, Handler, seconds_arg

__all__ = ["COMMANDS"]


def _gateway(target: Any) -> Any:
    return getattr(target, "gateway", target)


def _pay(target: Any, args: list[str]) -> str:
    if not 1 <= len(args) <= 2:
        raise ValueError("usage: pay ORDER [PAYER]")
    return f"ok: {_gateway(target).pay_order(args[0], args[1] if len(args) == 2 else '')}"


def _advance(target: Any, args: list[str]) -> str:
    seconds = seconds_arg(args)
    _gateway(target).advance(seconds)
    return f"ok: advanced {seconds:g} s"


def _fault(target: Any, args: list[str]) -> str:
    gateway = _gateway(target)
    if args == ["clear"]:
        gateway.faults.clear()
        return "ok: faults cleared"
    if not args or args[0] not in gateway.FAULTS or len(args) > 2 or (len(args) == 2 and not args[1].isdigit()):
        raise ValueError(f"usage: fault {'|'.join(gateway.FAULTS)} [COUNT] | fault clear")
    count = int(args[1]) if len(args) == 2 else 1
    gateway.faults[args[0]] = count
    return f"ok: fault {args[0]} for the next {count} answers"


def _orders(target: Any, args: list[str]) -> str:
    orders = _gateway(target).ledger.orders.values()
    listed = "; ".join(f"{o.order_no} {o.state.value} {o.amount_fen} fen refunded {o.refunded_fen}" for o in orders)
    return f"ok: {listed or 'no orders'}"


COMMANDS: dict[str, Handler] = {"pay": _pay, "advance": _advance, "fault": _fault, "orders": _orders, **BASE_COMMANDS}
