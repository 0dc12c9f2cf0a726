"""Finding and asking the `till run` of a var/ folder: what the operator commands use.

A running service holds the journal's lock and has written var/service.json (its URL and pid,
0600). A leftover service.json of a service that died is recognised by the lock being free. Over
HTTPS service.json also holds the SHA-256 of the certificate the service loaded, and the client
trusts exactly that certificate (pinned by its fingerprint, not by a CA: a shop-wide CA's other
certificates do not pass), whatever name it was issued to.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from terminal.errors import InputError, JournalError, TerminalError
from terminal.journal.lock import JournalLock, JournalLocked
from terminal.security.files import write_private

__all__ = ["ServiceClient", "ServiceError", "find_service", "fingerprint_of", "forget_service", "publish_service"]

SERVICE_FILE = "service.json"


class ServiceError(TerminalError):
    """The service answered with an error (its message says why)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def publish_service(var_dir: Path, url: str, *, pin: str = "") -> None:
    """var/service.json: where the service on `var_dir` answers (and, over HTTPS, `pin`: the
    fingerprint of its certificate, `fingerprint_of`)."""
    info: dict[str, Any] = {"url": url, "pid": os.getpid()}
    if pin:
        info["cert_sha256"] = pin
    write_private(var_dir / SERVICE_FILE, json.dumps(info).encode())


def fingerprint_of(cert: Path) -> str:
    """SHA-256 (hex) of the DER of the first certificate in a PEM file (a chain starts with its leaf)."""
    text = cert.read_text(encoding="ascii", errors="replace")
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        raise InputError(f"{cert}: no PEM certificate in it")
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(text[start:stop + len(end)])).hexdigest()


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
        pin = str(info.get("cert_sha256") or "")
    except (OSError, ValueError, KeyError, TypeError):
        raise JournalError(f"{held} (it serves no payment API to ask)") from None
    return ServiceClient(url, token, pin=pin)


class ServiceClient:
    """Asks one service. `pin`: over HTTPS, the SHA-256 of the certificate it must show (the chain
    is not checked against any CA and the name not against the URL: the pin is the whole trust)."""

    def __init__(self, url: str, token: str, *, timeout: float = 150.0, pin: str = "") -> None:
        self.url, self._token, self.timeout, self._pin = url.rstrip("/"), token, timeout, pin.lower()
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"the till service's address {url!r} is not http(s)://HOST:PORT")
        if parts.scheme == "https" and not self._pin:
            raise InputError(f"the till service at {url} serves HTTPS but var/{SERVICE_FILE} pins no certificate")
        self._host, self._port, self._tls = parts.hostname, parts.port, parts.scheme == "https"

    def get(self, path: str) -> Any:
        return self._ask("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._ask("POST", path, body)

    def raw(self, path: str) -> bytes:
        return bytes(self._ask("GET", path, None, raw=True))

    def _ask(self, method: str, path: str, body: dict[str, Any] | None, *, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        connection = self._connection()
        try:
            connection.connect()
            if self._tls:
                self._check_pin(connection)
            connection.request(method, path, body=data, headers={
                "Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
            answer = connection.getresponse()
            content = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            raise InputError(f"the till service at {self.url} does not answer: {exc}") from None
        finally:
            connection.close()
        if answer.status >= 400:
            try:
                error = json.loads(content)["error"]
                raise ServiceError(answer.status, str(error["code"]), str(error["message"])) from None
            except (ValueError, KeyError, TypeError):
                raise ServiceError(answer.status, "http", f"the service answered {answer.status}") from None
        return content if raw else json.loads(content)

    def _connection(self) -> http.client.HTTPConnection:
        if not self._tls:
            return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False  # the pin is checked instead, right after the handshake
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=context)

    def _check_pin(self, connection: http.client.HTTPConnection) -> None:
        """Before a byte of the request (the token, a PIN) leaves: the certificate shown is the pinned one."""
        sock = connection.sock
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        if der is None or not hmac.compare_digest(hashlib.sha256(der).hexdigest(), self._pin):
            raise ssl.SSLCertVerificationError(
                f"it showed a certificate other than the one var/{SERVICE_FILE} pins (nothing was sent)")
