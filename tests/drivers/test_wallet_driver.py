"""The WalletDriver against the gateway simulator: in process over `emu://wallet` (virtual time),
and over real HTTP and HTTPS on loopback (a self-signed certificate made here). Every test payer's
answers, 202 taken as "in progress", unsigned answers and timeouts as UNKNOWN."""

from __future__ import annotations

import datetime
import ipaddress
import select
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.events import DeviceFault
from drivers.transport import attach_peer, detach_peer
from drivers.wallet.codec import AnyRequest
from drivers.wallet.driver import WalletDriver
from drivers.wallet.events import CloseOrder, CreateOrder, Pay, Query, Refund, Reverse, Statement, TradeState
from drivers.wallet.events import WalletAnswer as Answer
from drivers.wallet.statement import parse_statement
from emulator.wallet.gateway import WalletGateway
from emulator.wallet.payers import PAYERS, payment_code
from emulator.wallet.peer import WalletPeer
from emulator.wallet.server import WalletServer

S = TradeState


@pytest.fixture
def peer() -> WalletPeer:
    return WalletPeer()


@pytest.fixture
def emu(peer: WalletPeer) -> Iterator[WalletDriver]:
    url = attach_peer("wallet", peer)
    driver = WalletDriver(url)
    yield driver
    driver.close()
    detach_peer(url)


def ask(driver: WalletDriver, request: AnyRequest) -> Answer:
    assert driver.send(request) is None
    answers = wait_answers(driver, 1)
    assert len(answers) == 1 and isinstance(answers[0], Answer)
    return answers[0]


def wait_answers(driver: WalletDriver, count: int) -> list[Answer | DeviceFault]:
    """Poll, selecting on fileno() between polls (the runtime's way); bounded, so a bug fails."""
    got: list[Answer | DeviceFault] = []
    for _ in range(200):
        got += driver.poll()
        if len(got) >= count:
            return got
        fd = driver.fileno()
        assert fd is not None, "an emu:// answer is there at once"
        select.select([fd], [], [], 0.1)
    raise AssertionError(f"{count} answers expected, {len(got)} came")


def pay(driver: WalletDriver, suffix: str, order_no: str | None = None, fen: int = 1234) -> Answer:
    return ask(driver, Pay(order_no=order_no or f"T{suffix}", auth_code=payment_code(suffix), amount_fen=fen))


# -- every payer over emu:// on virtual time ------------------------------------------------------------
def test_pays_at_once(emu: WalletDriver) -> None:
    a = pay(emu, "00")
    assert (a.state, a.clear, a.channel, a.amount_fen) == (S.SUCCESS, True, "wechat", 1234)
    assert a.wallet_order_no and a.payer.startswith("oUpF****") and a.paid_at.endswith("+08:00")


@pytest.mark.parametrize(("suffix", "seconds"), [("01", 10), ("02", 25)])
def test_password_then_pays(emu: WalletDriver, peer: WalletPeer, suffix: str, seconds: int) -> None:
    a = pay(emu, suffix)
    assert (a.state, a.clear, a.err_code) == (S.USERPAYING, False, "USERPAYING")
    peer.advance(seconds - 1)
    assert ask(emu, Query(order_no=f"T{suffix}")).state is S.USERPAYING
    peer.advance(1)
    q = ask(emu, Query(order_no=f"T{suffix}"))
    assert (q.state, q.clear) == (S.SUCCESS, True)


def test_never_pays_until_reversed(emu: WalletDriver, peer: WalletPeer) -> None:
    assert pay(emu, "03").state is S.USERPAYING
    peer.advance(30)
    assert ask(emu, Query(order_no="T03")).state is S.USERPAYING
    r = ask(emu, Reverse(order_no="T03"))
    assert (r.state, r.clear, r.action, r.recall) == (S.REVOKED, True, "close", False)


@pytest.mark.parametrize(("suffix", "code"), [("04", "NOTENOUGH"), ("05", "AUTH_CODE_EXPIRED")])
def test_definite_failures(emu: WalletDriver, suffix: str, code: str) -> None:
    a = pay(emu, suffix)
    assert (a.state, a.clear, a.err_code) == (S.PAYERROR, True, code) and a.message


def test_lost_answer_is_unknown_and_the_query_finds_it_paid(emu: WalletDriver, peer: WalletPeer) -> None:
    a = pay(emu, "06")
    assert (a.state, a.clear, a.op, a.order_no) == (S.UNKNOWN, False, "pay", "T06")
    assert peer.gateway.ledger.charged_fen == 1234  # booked although no answer left
    assert ask(emu, Query(order_no="T06")).state is S.SUCCESS


def test_pays_between_the_last_query_and_the_reverse(emu: WalletDriver) -> None:
    assert pay(emu, "07").state is S.USERPAYING
    assert ask(emu, Query(order_no="T07")).state is S.USERPAYING
    r = ask(emu, Reverse(order_no="T07"))
    assert (r.state, r.action, r.clear) == (S.REFUND, "refund", True)  # paid, and the money went back


def test_reverse_asks_to_be_retried_twice(emu: WalletDriver) -> None:
    pay(emu, "08")
    first, second, third = (ask(emu, Reverse(order_no="T08")) for _ in range(3))
    assert [(x.state, x.recall, x.clear) for x in (first, second)] == [(S.UNKNOWN, True, False)] * 2
    assert (third.state, third.recall, third.action) == (S.REVOKED, False, "close")


def test_202_is_in_progress_not_an_error(emu: WalletDriver, peer: WalletPeer) -> None:
    a = pay(emu, "09")
    assert (a.http_status, a.state, a.clear) == (202, S.USERPAYING, False)
    peer.advance(10)
    assert ask(emu, Query(order_no="T09")).state is S.SUCCESS


def test_system_error_is_unknown(emu: WalletDriver) -> None:
    a = pay(emu, "10")
    assert (a.state, a.clear, a.err_code) == (S.UNKNOWN, False, "SYSTEMERROR")
    assert ask(emu, Query(order_no="T10")).state is S.SUCCESS


def test_every_payer_in_the_table_is_tested_here() -> None:
    tested = {"00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10"}
    assert set(PAYERS) == tested


@pytest.mark.parametrize("fault", ["unsigned", "badsign"])
def test_an_unsigned_or_wrongly_signed_answer_is_unknown(emu: WalletDriver, peer: WalletPeer, fault: str) -> None:
    peer.set_fault(fault)
    a = pay(emu, "00")
    assert (a.state, a.clear) == (S.UNKNOWN, False) and "signature" in a.message
    assert ask(emu, Query(order_no="T00")).state is S.SUCCESS  # the fault was for one answer


def test_http_500_is_unknown(emu: WalletDriver, peer: WalletPeer) -> None:
    peer.set_fault("error500")
    a = pay(emu, "00")
    assert (a.state, a.clear, a.http_status) == (S.UNKNOWN, False, 500)
    assert ask(emu, Query(order_no="T00")).err_code == "ORDERNOTEXIST"  # a 500 here was not booked


def test_refund_create_close_and_statement(emu: WalletDriver, peer: WalletPeer) -> None:
    pay(emu, "00")
    r = ask(emu, Refund(order_no="T00", refund_no="R1", amount_fen=234))
    assert (r.state, r.refund_no) == (S.REFUND, "R1")
    assert ask(emu, Refund(order_no="T00", refund_no="R2", amount_fen=1001)).err_code == "REFUND_EXCEEDED"
    c = ask(emu, CreateOrder(order_no="M1", amount_fen=500))
    assert c.state is S.NOTPAY and c.code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert ask(emu, Query(order_no="M1")).state is S.NOTPAY
    peer.gateway.pay_order("M1")
    assert ask(emu, CloseOrder(order_no="M1")).state is S.SUCCESS  # ORDERPAID: it is paid
    peer.advance(86400)
    bill = parse_statement(ask(emu, Statement(bill_date="20261201", encoding="gbk")).statement)
    assert [row["商户订单号"] for row in bill.rows] == ["T00", "T00", "M1"]


def test_no_gateway_there_is_a_fault() -> None:
    driver = WalletDriver("emu://wallet?instance=nobody")
    fault = driver.send(Query(order_no="T1"))
    assert isinstance(fault, DeviceFault) and fault.device == "wallet"
    driver.close()


def test_a_bad_url_is_refused() -> None:
    with pytest.raises(ValueError, match="wallet url"):
        WalletDriver("tcp://127.0.0.1:1")


# -- real HTTP on loopback --------------------------------------------------------------------------------
@pytest.fixture
def server() -> Iterator[WalletServer]:
    with WalletServer("127.0.0.1:0", hold_s=5.0) as running:
        yield running


@pytest.fixture
def http(server: WalletServer) -> Iterator[WalletDriver]:
    driver = WalletDriver(server.url, {"timeout_s": 5.0})
    yield driver
    driver.close()


def test_http_every_kind_of_answer(http: WalletDriver, server: WalletServer) -> None:
    assert pay(http, "00").state is S.SUCCESS
    assert pay(http, "04").err_code == "NOTENOUGH"
    a = pay(http, "09")
    assert (a.http_status, a.state, a.clear) == (202, S.USERPAYING, False)
    server.control(lambda gateway: gateway.advance(10))
    assert ask(http, Query(order_no="T09")).state is S.SUCCESS
    pay(http, "08")
    assert [ask(http, Reverse(order_no="T08")).recall for _ in range(3)] == [True, True, False]
    assert ask(http, CreateOrder(order_no="M1", amount_fen=1)).code_url


def test_http_requests_queue_and_answer_in_order(http: WalletDriver) -> None:
    for suffix in ("00", "01", "04"):
        assert http.send(Pay(order_no=f"T{suffix}", auth_code=payment_code(suffix), amount_fen=5)) is None
    assert http.expecting()
    answers = wait_answers(http, 3)
    assert [(a.order_no, a.state) for a in answers if isinstance(a, Answer)] == [
        ("T00", S.SUCCESS), ("T01", S.USERPAYING), ("T04", S.PAYERROR)]
    assert not http.expecting()


def test_http_unsigned_answer_is_unknown(http: WalletDriver, server: WalletServer) -> None:
    server.control(lambda gateway: gateway.faults.update(unsigned=1))
    assert pay(http, "00").state is S.UNKNOWN


def test_http_timeout_is_unknown(server: WalletServer) -> None:
    driver = WalletDriver(server.url, {"timeout_s": 0.2})
    try:
        a = pay(driver, "06")  # booked, the answer held back: the client's timeout ends it
        assert (a.state, a.clear) == (S.UNKNOWN, False) and "0.2 s" in a.message
    finally:
        server.released.set()
        driver.close()


def test_http_nobody_listening_is_unknown() -> None:
    with WalletServer("127.0.0.1:0") as gone:
        url = gone.url
    driver = WalletDriver(url, {"timeout_s": 2.0})
    try:
        a = ask(driver, Query(order_no="T1"))
        assert (a.state, a.clear) == (S.UNKNOWN, False) and "unreachable" in a.message
    finally:
        driver.close()


def test_http_gateway_with_another_key_refuses_and_is_unknown() -> None:
    with WalletServer("127.0.0.1:0", gateway=WalletGateway(key="another-merchant-key")) as other:
        driver = WalletDriver(other.url)
        try:
            a = pay(driver, "00")
            assert a.state is S.UNKNOWN and not a.clear
            assert other.gateway.refused == 1 and not other.gateway.ledger.orders
        finally:
            driver.close()


# -- HTTPS with a self-signed certificate --------------------------------------------------------------------
@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wallet gateway test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "gateway.pem", tmp_path / "gateway.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_https_with_the_ca_file(certificate: tuple[Path, Path]) -> None:
    cert_file, key_file = certificate
    with WalletServer("127.0.0.1:0", certfile=str(cert_file), keyfile=str(key_file)) as tls:
        assert tls.url.startswith("https://")
        driver = WalletDriver(tls.url, {"ca_file": str(cert_file)})
        try:
            assert pay(driver, "00").state is S.SUCCESS
        finally:
            driver.close()


def test_https_without_the_ca_is_unknown_not_trusted(certificate: tuple[Path, Path]) -> None:
    cert_file, key_file = certificate
    with WalletServer("127.0.0.1:0", certfile=str(cert_file), keyfile=str(key_file)) as tls:
        driver = WalletDriver(tls.url, {"timeout_s": 5.0})
        try:
            a = ask(driver, Query(order_no="T1"))
            assert (a.state, a.clear) == (S.UNKNOWN, False) and "unreachable" in a.message
            assert not tls.gateway.requests  # the handshake failed: nothing reached the gateway
        finally:
            driver.close()


def test_stopping_the_server_with_a_kept_alive_connection_does_not_hang() -> None:
    server = WalletServer("127.0.0.1:0").start()
    driver = WalletDriver(server.url)
    try:
        assert pay(driver, "00").state is S.SUCCESS  # httpx keeps the connection open afterwards
        server.stop()  # returns: the idle connection is shut, not waited for
        assert ask(driver, Query(order_no="T00")).state is S.UNKNOWN
    finally:
        driver.close()
        server.stop()


def test_a_missing_ca_file_makes_every_request_unknown(tmp_path: Path) -> None:
    driver = WalletDriver("https://127.0.0.1:9", {"ca_file": str(tmp_path / "absent.pem")})
    try:
        a = ask(driver, Query(order_no="T1"))
        assert (a.state, a.clear) == (S.UNKNOWN, False) and "HTTP client" in a.message
    finally:
        driver.close()


def test_a_gateway_bug_is_no_answer_not_a_crash(emu: WalletDriver, peer: WalletPeer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(call: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(peer.gateway, "respond", broken)
    assert pay(emu, "00").state is S.UNKNOWN
    assert [type(e) for e in peer.internal_errors] == [RuntimeError]
