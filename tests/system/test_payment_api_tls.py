"""`till run --cert PEM --key PEM`: the payment API over HTTPS. The operator commands trust the
service's own certificate (its fingerprint pinned in var/service.json), whatever name it was
issued to and whoever issued it; the web session cookie is Secure; a plain-HTTP client, a silent
one or a failed handshake costs the others nothing and does not hold up a stop; a certificate
that will not load (or an encrypted key) is refused before the till opens."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sim.run import InProcessService
from terminal.cli import main
from terminal.errors import ConfigError, InputError
from terminal.service.client import ServiceClient, find_service, fingerprint_of, publish_service
from terminal.service.server import _Handler, tls_context
from terminal.service.sessions import COOKIE
from tests.support.certs import ShopCa, self_signed

TOKEN = "t" * 32


@pytest.fixture
def certs(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path, "till.local")


@pytest.fixture
def served(var_dir: Path, certs: tuple[Path, Path]) -> Iterator[InProcessService]:
    s = InProcessService(var_dir, token=TOKEN, tls=tls_context(*certs))
    try:
        yield s
    finally:
        s.close()


def test_the_commands_trust_the_services_own_certificate(served: InProcessService, certs: tuple[Path, Path],
                                                         var_dir: Path) -> None:
    assert served.url.startswith("https://127.0.0.1:")
    (var_dir / "api.token").write_text(TOKEN + "\n")  # as `till run --cert` leaves var/ behind it
    publish_service(var_dir, served.url, pin=fingerprint_of(certs[0]))
    client = find_service(var_dir)
    assert client is not None
    assert client.get("/v1/status")["state"] == "IDLE"


def test_another_certificate_is_not_trusted(served: InProcessService, tmp_path: Path) -> None:
    other, _ = self_signed(tmp_path, "elsewhere.local")
    with pytest.raises(InputError, match="does not answer"):
        ServiceClient(served.url, TOKEN, pin=fingerprint_of(other)).get("/v1/status")


def test_the_web_session_cookie_is_secure(served: InProcessService, certs: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(cafile=str(certs[0]))
    context.check_hostname = False  # the test's browser reaches it as 127.0.0.1
    with httpx.Client(base_url=served.url, verify=context, timeout=30) as browser:
        answer = browser.post("/ui/login", json={"operator": "cashier-1", "pin": "1111"})
        assert answer.status_code == 200, answer.text
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "; Secure" in cookie and "HttpOnly" in cookie
        out = browser.post("/ui/logout", headers={"X-CSRF-Token": answer.json()["csrf"]})
        assert out.status_code == 200 and "; Secure" in out.headers["set-cookie"]


def test_plain_http_to_the_https_port_gets_nothing_and_harms_nobody(served: InProcessService,
                                                                    certs: tuple[Path, Path]) -> None:
    host, port = served.server.httpd.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=30) as plain:
        plain.sendall(f"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        plain.shutdown(socket.SHUT_WR)
        assert b"IDLE" not in plain.recv(4096)  # no answer in clear: the handshake failed, the connection closed
    assert ServiceClient(served.url, TOKEN, pin=fingerprint_of(certs[0])).get("/v1/status")["state"] == "IDLE"


def test_a_certificate_that_will_not_load_is_a_clear_error(tmp_path: Path, certs: tuple[Path, Path]) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"broken\.pem"):
        tls_context(broken, certs[1])
    with pytest.raises(ConfigError, match="cannot load"):
        tls_context(certs[0], tmp_path / "missing.key")
    locked_cert, locked_key = self_signed(tmp_path, "locked.local", password=b"secret")
    with pytest.raises(ConfigError, match="unencrypted"):  # refused, never a pass-phrase prompt on the tty
        tls_context(locked_cert, locked_key)


def test_a_shop_ca_chain_pins_this_tills_certificate_not_the_cas(var_dir: Path, tmp_path: Path) -> None:
    shop = ShopCa(tmp_path)
    chain, key = shop.issue("till-1.shop")
    other_chain, other_key = shop.issue("till-2.shop")  # the same CA's certificate for another till
    pin = fingerprint_of(chain)  # the chain's first certificate: this till's
    assert pin != fingerprint_of(other_chain)
    served = InProcessService(var_dir, token=TOKEN, tls=tls_context(chain, key))
    try:
        assert ServiceClient(served.url, TOKEN, pin=pin).get("/v1/status")["state"] == "IDLE"
    finally:
        served.close()
    impostor = InProcessService(tmp_path / "other-var", token=TOKEN, tls=tls_context(other_chain, other_key))
    try:
        with pytest.raises(InputError, match="other than the one"):
            ServiceClient(impostor.url, TOKEN, pin=pin).get("/v1/status")
    finally:
        impostor.close()


class _Handshaking(_Handler):
    """Says when a connection's handshake starts (it is registered by then)."""

    started = threading.Event()

    def _handshake(self) -> None:
        type(self).started.set()
        super()._handshake()


def test_a_silent_client_in_its_handshake_does_not_hold_up_a_stop(var_dir: Path, certs: tuple[Path, Path]) -> None:
    served = InProcessService(var_dir, token=TOKEN, tls=tls_context(*certs), handler=_Handshaking)
    host, port = served.server.httpd.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=30):  # connects, never says hello
        assert _Handshaking.started.wait(30)
        assert len(served.server.connections) == 1  # known to close(), handshake or not
        stopping = threading.Thread(target=served.close)
        stopping.start()
        stopping.join(30)  # the handshake would wait 60 s (the handler's timeout) for a hello
        assert not stopping.is_alive()


def test_till_run_refuses_a_key_without_its_certificate(tmp_path: Path, certs: tuple[Path, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--var", str(tmp_path / "var"), "--key", str(certs[1])]) != 0
    assert "--key goes with --cert" in capsys.readouterr().err
    assert not (tmp_path / "var" / "journal.sqlite3").exists()  # refused before the till opened
