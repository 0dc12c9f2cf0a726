"""`till run` and the operator commands (status, pay, settle, void, refund, reprint,
transactions, exceptions).

An operator command asks the service running on that var/ (its payment API) when there is one,
and otherwise opens the till itself for the one command, through the very same API handlers
(`Api.dispatch`) with the loop on a thread of its own — so a command does the same thing either
way. A supervisor's PIN is read from the terminal without echo (or one line of stdin), never argv.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from terminal.errors import ConfigError, InputError
from terminal.service.arguments import COMMANDS

if TYPE_CHECKING:
    from terminal.service.client import ServiceClient

__all__ = ["COMMANDS", "run_command"]

log = logging.getLogger(__name__)


# The emulated world's till for a profile (sim/run.py, handed in by the CLI: the one module of
# terminal/ that may reach sim/, and only inside a command).
EmulatedWorld = Callable[..., tuple[Any, dict[str, Callable[[str], str]]]]


def run_command(args: argparse.Namespace, read_pin: Callable[[], str], emulated: EmulatedWorld) -> int:
    args.emulated_world = emulated
    if args.command == "run":
        return run_service(args)
    from terminal.service.client import find_service

    method, path, body = _request(args, read_pin)
    client = find_service(args.var)
    if client is not None:
        answer = _ask(client, method, path, body)
    else:
        with local_api(args) as dispatch:
            answer = dispatch(method, path, body)
    return _print(args, answer)


def _request(args: argparse.Namespace, read_pin: Callable[[], str]) -> tuple[str, str, dict[str, Any] | None]:
    command = args.command
    if command == "status":
        return "GET", "/v1/status", None
    if command == "transactions":
        return "GET", "/v1/transactions" + (f"?batch={args.batch}" if args.batch is not None else ""), None
    if command == "exceptions":
        return "GET", "/v1/reports/exceptions", None
    if command == "pay":
        return "POST", f"/v1/payments?wait={args.wait}", {"order_id": args.order_id, "amount": args.amount,
                                                          "tender": args.tender}
    who = {"supervisor": args.supervisor, "pin": read_pin(), "reason": args.reason or f"till {command}"}
    if command == "settle":
        return "POST", "/v1/settlement", who
    ref = quote(args.trace or "", safe="")
    if command == "void":
        return "POST", f"/v1/transactions/{ref}/void", who
    if command == "refund":
        return "POST", f"/v1/transactions/{ref}/refund", {**who, "amount": args.amount}
    return "POST", f"/v1/transactions/{ref or 'last'}/reprint", {**who, "copy": args.copy}


def _ask(client: ServiceClient, method: str, path: str, body: dict[str, Any] | None) -> Any:
    return client.get(path) if method == "GET" else client.post(path, body or {})


def _print(args: argparse.Namespace, answer: Any) -> int:
    if getattr(args, "json", False):
        print(json.dumps(answer, ensure_ascii=False, indent=2))
        return 0
    if args.command == "transactions":
        print(f"batch {answer['batch']:06d} (open batch {answer['open_batch']:06d})")
        for t in answer["transactions"]:
            print(f"{t['trace']}  {t['kind']:6} {t['state']:10} {t['amount_minor'] / 100:>10.2f}  "
                  f"{t['entry_mode']:11} {t['masked_pan'] or '':10} {t['auth_code'] or '':6}  {t['created_at']}")
        return 0
    for key, value in answer.items():
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        print(f"{key}: {text}")
    if args.command == "pay":
        return 0 if answer.get("status") == "approved" else 1
    return 0


@contextlib.contextmanager
def local_api(args: argparse.Namespace) -> Iterator[Callable[[str, str, dict[str, Any] | None], Any]]:
    """No service runs on var/: the till opened for one command, its loop on a thread, asked
    through the same handlers as over HTTP."""
    from terminal.service.api import Api
    from terminal.service.client import ServiceError
    from terminal.service.events import EventBus
    from terminal.service.loop import Service
    from terminal.service.routes import ApiError, error_of

    bus = EventBus()
    till, controls = open_till(args, display=bus.display)
    service = Service(till, bus=bus, controls=controls)
    loop = threading.Thread(target=service.run, name="till-loop")
    loop.start()
    api = Api(service)

    def dispatch(method: str, path: str, body: dict[str, Any] | None) -> Any:
        try:
            return api.dispatch(method, path, body)[1]
        except ApiError as exc:
            raise ServiceError(exc.status, exc.code, exc.message) from None
        except Exception as exc:
            error = error_of(exc)
            raise ServiceError(error.status, error.code, error.message) from exc

    try:
        yield dispatch
    finally:
        service.stop()
        loop.join()
        service.close()
        till.close()


Controls = dict[str, Callable[[str], str]]


def open_till(args: argparse.Namespace, *, display: Callable[[str], None]) -> tuple[Any, Controls]:
    """The till of a profile: in emulator mode the emulated world (`args.emulated_world`),
    otherwise the real devices the profile names."""
    from terminal import devices
    from terminal.app import build_till, load_terminal_profile
    from terminal.service.reconnect import start_unplugged

    urls = _device_urls(args.device)
    terminal = load_terminal_profile(args.profile)
    if unknown := sorted(set(urls) - set(devices.fitted(terminal))):
        raise InputError(f"--device {unknown[0][:40]}: this profile has no such device slot"
                         f" (its slots: {', '.join(devices.fitted(terminal))})")
    if _emulated(terminal, urls):
        build: EmulatedWorld = args.emulated_world
        return build(args.profile, var_dir=args.var, display=display, device_urls=urls,
                     absent=start_unplugged if args.command == "run" else None)
    # `till run` starts without a device that is not there (and opens it when it is); a one-off
    # command needs its devices.
    absent = start_unplugged if args.command == "run" else None
    return build_till(terminal, var_dir=args.var, display=display, device_urls=urls, absent=absent), {}


def _emulated(terminal: Mapping[str, Any], urls: Mapping[str, str]) -> bool:
    from terminal import devices

    slots = [url for slot, s in devices.fitted(terminal).items() if (url := urls.get(slot, str(s["url"])))]
    links = [str(terminal["host"]["url"]),
             *(str((terminal.get(name) or {}).get("url", "")) for name in devices.SECTION_LINKS)]
    return any(u.startswith("emu://") for u in slots) or any(u == "emulated" or u.startswith("emu://") for u in links)


def _device_urls(pairs: list[str]) -> dict[str, str]:
    urls = {}
    for pair in pairs:
        slot, sep, url = pair.partition("=")
        if not sep or not slot or not url:
            raise InputError(f"--device {pair[:60]!r}: give SLOT=URL, e.g. printer=/dev/ttyUSB0")
        urls[slot] = url
    return urls


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise InputError(f"--listen {text[:60]!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def run_service(args: argparse.Namespace) -> int:
    """`till run`: open the till, serve the payment API, run until SIGTERM / SIGINT."""
    from terminal.service.api import Api
    from terminal.service.client import fingerprint_of, forget_service, publish_service
    from terminal.service.events import EventBus
    from terminal.service.loop import Service
    from terminal.service.notify import Notifier
    from terminal.service.server import ApiServer, load_or_create_token, tls_context

    host, port = _listen(args.listen)
    if args.key is not None and args.cert is None:
        raise InputError("--key goes with --cert (the certificate it is the key of)")
    # Before the till opens: fail first. The pin is of the certificate just loaded (not re-read later).
    tls = None if args.cert is None else tls_context(args.cert, args.key)
    pin = "" if args.cert is None else fingerprint_of(args.cert)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("the payment API listens on %s: every client there needs the token of var/api.token%s", host,
                    "" if tls else "; over plain HTTP the token, PINs and the web session travel in clear"
                                   " (give --cert and --key)")
    logging.getLogger("transitions").setLevel(logging.WARNING)  # every callback at INFO: not a till's log
    bus = EventBus()
    till, controls = open_till(args, display=bus.display)
    try:
        _log_health(till)
        token = load_or_create_token(args.var)
        service = Service(till, bus=bus, controls=controls, notifier=Notifier.from_env())
        try:
            server = ApiServer(Api(service), host=host, port=port, token=token, tls=tls)
        except OSError as exc:
            raise ConfigError(f"--listen {args.listen}: {exc.strerror or exc}") from None
        previous = {sig: signal.signal(sig, lambda *_: service.stop()) for sig in (signal.SIGTERM, signal.SIGINT)}
        server.start()
        try:
            publish_service(args.var, server.url, pin=pin)

            def ready() -> None:
                print(f"till run: ready at {server.url} (state {till.flow.state.name}; token in "
                      f"{args.var / 'api.token'})", flush=True)

            service.run(ready=ready)
        finally:
            forget_service(args.var)
            server.close()
            service.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        till.close()
    print("till run: stopped", flush=True)
    return 0


def _log_health(till: Any) -> None:
    """At start, what `till doctor` would say (a row that needs a person is a warning)."""
    from terminal.service.doctor import diagnose_till

    for check in diagnose_till(till, wait_s=2.0).checks:
        level = logging.INFO if check.status == "ok" else logging.WARNING
        log.log(level, "doctor: %-14s %-4s %s", check.component, check.status, check.detail)
