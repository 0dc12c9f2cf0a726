"""`till host` as an operator drives it (issue 10): control lines on stdin like `till emulate`,
`--require-sign-on`, and `--log-traffic` with card data masked."""

from __future__ import annotations

import socket
from datetime import datetime

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.driver import parse_host_url
from drivers.acquirer.events import HostMessage
from drivers.events import Role
from drivers.sensitive import Secret
from emulator.card_reader.cards import get_card
from terminal.host.messages import sale_request, sign_on_request
from tests.support.processes import served

WHEN = datetime(2025, 1, 15, 14, 30, 15)
TID, MID = "TERM0001", "MERCHANT0000001"
_BOUND = 20.0  # seconds: a bound on a hang, not a wait


def _sale(stan: int) -> HostMessage:
    card = get_card("approved-swipe")
    return sale_request(stan=stan, amount_minor=1000, pan=Secret(card.pan), entry_mode="swipe", expiry=None,
                        track2=Secret(card.track2), icc_data=None, pan_sequence=None, currency="156", batch=1,
                        when=WHEN, terminal_id=TID, merchant_id=MID)


class _Client:
    def __init__(self, url: str) -> None:
        self.sock = socket.create_connection(parse_host_url(url), timeout=_BOUND)
        self.codec = AcquirerCodec(Role.HOST)

    def ask(self, request: HostMessage) -> HostMessage:
        self.sock.sendall(self.codec.send(request))
        while (answer := self.codec.next_event()) is None:
            data = self.sock.recv(4096)
            assert data, "the host closed the connection"
            self.codec.receive_data(data)
        return answer


def test_control_lines_change_the_answers() -> None:
    with served("host", "--listen", "127.0.0.1:0") as child:
        client = _Client(child.endpoint)
        assert child.control("decline 51").startswith("ok:")
        assert client.ask(_sale(1)).response_code == "51"
        assert client.ask(_sale(2)).response_code == "00"
        assert child.control("require-sign-on").startswith("ok:")
        assert client.ask(_sale(3)).response_code == "A0"
        sign_on = sign_on_request(stan=4, batch=1, when=WHEN, terminal_id=TID, merchant_id=MID)
        assert client.ask(sign_on).response_code == "00"
        assert client.ask(_sale(5)).response_code == "00"
        assert child.control("refuse-mac").startswith("ok:")
        assert client.ask(_sale(6)).response_code == "A0"
        assert child.control("latency 0.01").startswith("ok:")
        status = child.control("status")
        assert status.startswith("ok: tcp://") and "sign-on=required" in status
        assert "refuse-mac" in status and "latency=0.01s" in status
        assert child.control("clear") == "ok: faults cleared"
        assert "faults=none" in child.control("status")
        assert client.ask(_sale(7)).response_code == "00"
        for line in ("latency -1", "decline 00", "decline 1234", "drop x", "frobnicate 4761739001010010"):
            reply = child.control(line)
            assert reply.startswith("error:") and "4761739001010010" not in reply and "1234" not in reply
        client.sock.close()


def test_require_sign_on_option_and_masked_traffic_log() -> None:
    with served("host", "--listen", "127.0.0.1:0", "--require-sign-on", "--log-traffic") as child:
        client = _Client(child.endpoint)
        assert client.ask(_sale(1)).response_code == "A0"
        client.sock.close()
        child.proc.send_signal(2)  # SIGINT: it stops, so stderr can be read whole
        assert child.proc.wait(_BOUND) == 0
        assert child.proc.stderr is not None
        log = child.proc.stderr.read()
    pan = get_card("approved-swipe").pan
    assert "<- HostMessage(mti='0200'" in log and "-> HostMessage(mti='0210'" in log
    assert pan not in log and pan[:6] not in log and pan[-4:] in log


def test_require_mac_option_refuses_an_unmaced_sale() -> None:
    """`--require-mac`: a sale without DE 64 is A0; without the option the same sale is served."""
    for argv, code in ((("--require-mac",), "A0"), ((), "00")):
        with served("host", "--listen", "127.0.0.1:0", *argv) as child:
            client = _Client(child.endpoint)
            assert client.ask(_sale(1)).response_code == code
            client.sock.close()
