"""Finding and asking the `till run` of a var/ folder: what the operator commands use.

A running service holds the journal's lock and has written var/service.json (its URL and pid,
0600; over HTTPS also its certificate's path). A leftover service.json of a service that died is
recognised by the lock being free. Over HTTPS the client trusts exactly that certificate (pinned:
the one the service on this var/ loaded), whatever the name it was issued to.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from terminal.errors import InputError, JournalError, TerminalError
from terminal.journal.lock import JournalLock, JournalLocked
from terminal.security.files import write_private

__all__ = ["ServiceClient", "ServiceError", "find_service", "forget_service", "publish_service"]

SERVICE_FILE = "service.json"


class ServiceError(TerminalError):
    """The service answered with an error (its message says why)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def publish_service(var_dir: Path, url: str, *, cert: Path | None = None) -> None:
    info: dict[str, Any] = {"url": url, "pid": os.getpid()}
    if cert is not None:
        info["cert"] = str(cert.resolve())
    write_private(var_dir / SERVICE_FILE, json.dumps(info).encode())


def forget_service(var_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (var_dir / SERVICE_FILE).unlink()


def find_service(var_dir: Path) -> ServiceClient | None:
    """The service running on `var_dir`, or None when nothing holds its journal. A journal held
    by a process that serves no API (a demo, a test) is refused: one journal, one writer."""
    if not (var_dir / "journal.sqlite3").exists():
        return None
    try:
        JournalLock(var_dir / "journal.lock").release()
        return None  # free: no till runs here
    except JournalLocked as exc:
        held = exc
    try:
        info = json.loads((var_dir / SERVICE_FILE).read_text(encoding="utf-8"))
        url, token = str(info["url"]), (var_dir / "api.token").read_text(encoding="ascii").strip()
        cert = Path(info["cert"]) if info.get("cert") else None
    except (OSError, ValueError, KeyError, TypeError):
        raise JournalError(f"{held} (it serves no payment API to ask)") from None
    return ServiceClient(url, token, cert=cert)


def pinned_context(cert: Path) -> ssl.SSLContext:
    """A client context that trusts `cert` itself and nothing else (self-signed or not): the
    name check adds nothing to a pin, and a till's certificate rarely names 127.0.0.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no system CAs: only the pin
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=cert)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself may be the anchor
    context.check_hostname = False
    return context


class ServiceClient:
    def __init__(self, url: str, token: str, *, timeout: float = 150.0, cert: Path | None = None) -> None:
        self.url, self._token, self.timeout = url.rstrip("/"), token, timeout
        self._context: ssl.SSLContext | None = None
        if cert is not None:
            try:
                self._context = pinned_context(cert)
            except (OSError, ssl.SSLError) as exc:
                raise InputError(f"the till service's certificate {cert} cannot be read: {exc}") from None

    def get(self, path: str) -> Any:
        return self._ask("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._ask("POST", path, body)

    def raw(self, path: str) -> bytes:
        return bytes(self._ask("GET", path, None, raw=True))

    def _ask(self, method: str, path: str, body: dict[str, Any] | None, *, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as answer:
                content = answer.read()
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())["error"]
                raise ServiceError(exc.code, str(error["code"]), str(error["message"])) from None
            except (ValueError, KeyError, TypeError):
                raise ServiceError(exc.code, "http", f"the service answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise InputError(f"the till service at {self.url} does not answer: {getattr(exc, 'reason', exc)}") from None
        return content if raw else json.loads(content)
