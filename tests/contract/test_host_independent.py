"""The acquirer simulator as an independent client sees it (issue 10, "Proof").

A `till host` child is driven over TCP with pyiso8583 and a field spec written here from
docs/host-link.md's table alone — the project's own spec (drivers/acquirer/spec.py), codec and
message builders are not used. Each test has its own terminal id, so its books are its own.
Covered: approvals, every format-error (30) case of the doc's "What the host checks", the content
declines and the ledger rules. Test cards come from emulator/card_reader/cards.toml (read as TOML);
a chip card's ICC data from the card emulator's EMV module (the card's side, not the host's).
"""

from __future__ import annotations

import itertools
import socket
import tomllib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import iso8583
import pytest

from drivers.card_reader.events import EntryMode, StartRead
from emulator.card_reader.cards import get_card
from emulator.card_reader.emv import field_55, first_ac
from tests.support.processes import Served, served

_ROOT = Path(__file__).resolve().parents[2]
CARDS = tomllib.loads((_ROOT / "emulator/card_reader/cards.toml").read_text(encoding="utf-8"))
_BOUND = 20.0  # seconds: a bound on a hang, never waited for when all is well


# -- the field spec, from docs/host-link.md's table ------------------------------------------------
def _f(data_enc: str, max_len: int, len_type: int = 0) -> dict[str, Any]:
    return {"data_enc": data_enc, "len_enc": "ascii", "len_type": len_type, "max_len": max_len, "desc": ""}


SPEC: dict[str, dict[str, Any]] = {
    "h": _f("ascii", 0), "t": _f("ascii", 4), "p": _f("b", 8), "1": _f("b", 8),
    "2": _f("ascii", 19, 2), "3": _f("ascii", 6), "4": _f("ascii", 12), "11": _f("ascii", 6),
    "12": _f("ascii", 6), "13": _f("ascii", 4), "14": _f("ascii", 4), "22": _f("ascii", 3),
    "23": _f("ascii", 3), "25": _f("ascii", 2), "35": _f("ascii", 37, 2), "37": _f("ascii", 12),
    "38": _f("ascii", 6), "39": _f("ascii", 2), "41": _f("ascii", 8), "42": _f("ascii", 15),
    "48": _f("ascii", 999, 3), "49": _f("ascii", 3), "52": _f("b", 8), "55": _f("b", 255, 3),
    "60": _f("ascii", 999, 3), "61": _f("ascii", 16), "62": _f("ascii", 999, 3), "63": _f("ascii", 999, 3),
    "64": _f("b", 8),
}
MID = "MERCHANT0000001"
TIME, DATE = "143015", "0115"
_tids = (f"IND{n:05d}" for n in itertools.count(1))


class Link:
    """One TCP connection: 2-byte big-endian length + the ISO 8583 message."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("tcp://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=_BOUND)
        self.buffer = b""

    def send(self, doc: dict[str, str]) -> None:
        raw, _ = iso8583.encode(dict(doc), SPEC)
        self.sock.sendall(len(raw).to_bytes(2, "big") + bytes(raw))

    def receive(self) -> dict[str, str]:
        while len(self.buffer) < 2 or len(self.buffer) < 2 + int.from_bytes(self.buffer[:2], "big"):
            data = self.sock.recv(4096)
            assert data, "the host closed the connection"
            self.buffer += data
        size = int.from_bytes(self.buffer[:2], "big")
        body, self.buffer = self.buffer[2:2 + size], self.buffer[2 + size:]
        doc, _ = iso8583.decode(body, SPEC)
        return doc

    def ask(self, doc: dict[str, str]) -> dict[str, str]:
        self.send(doc)
        answer = self.receive()
        assert (answer["t"], answer.get("41"), answer.get("11")) == (_pair(doc["t"]), doc["41"], doc["11"])
        return answer


def _pair(mti: str) -> str:
    return mti[:2] + str(int(mti[2]) + 1) + "0"


@pytest.fixture(scope="module")
def host() -> Iterator[Served]:
    with served("host", "--listen", "127.0.0.1:0") as child:
        yield child


@pytest.fixture
def link(host: Served) -> Iterator[Link]:
    client = Link(host.endpoint)
    yield client
    client.sock.close()


@pytest.fixture
def tid() -> str:
    return next(_tids)


# -- requests, as docs/host-link.md's "Messages" describe them -------------------------------------
def _base(tid: str, stan: int, code: str) -> dict[str, str]:
    return {"3": code, "11": f"{stan:06d}", "12": TIME, "13": DATE, "41": tid, "42": MID}


def swipe(tid: str, stan: int, amount: int = 1000, card: str = "approved-swipe", batch: int = 1) -> dict[str, str]:
    c = CARDS[card]
    track2 = f"{c['pan']}={c['expiry']}{c['service_code']}"
    return {"t": "0200", **_base(tid, stan, "000000"), "2": c["pan"], "4": f"{amount:012d}", "14": c["expiry"],
            "22": "021", "25": "00", "35": track2, "49": "156", "60": f"{batch:06d}"}


def chip(tid: str, stan: int, amount: int = 12500, atc: int | None = None) -> dict[str, str]:
    card = get_card("approved")
    read = StartRead(amount_minor=amount, currency="156", modes=frozenset({EntryMode.CHIP}), timeout_s=30)
    icc = field_55(first_ac(card, read, country="156", today=date(2025, 1, 15), atc=atc or stan), contactless=False)
    return {"t": "0200", **_base(tid, stan, "000000"), "2": card.pan, "4": f"{amount:012d}", "14": card.expiry,
            "22": "051", "23": "001", "25": "00", "49": "156", "55": icc.hex().upper(), "60": "000001"}


def reversal(sale: dict[str, str], reason: str = "98") -> dict[str, str]:
    keep = ("3", "4", "11", "12", "13", "41", "42", "49", "60")
    return {"t": "0400", **{k: sale[k] for k in keep}, "25": "00", "39": reason}


def advice(tid: str, stan: int) -> dict[str, str]:
    return {"t": "0220", **_base(tid, stan, "000000"), "4": "000000003000", "22": "051", "25": "00", "38": "Y10001",
            "49": "156", "60": "000001"}


def echo(tid: str, stan: int) -> dict[str, str]:
    return {"t": "0800", **_base(tid, stan, "990000")}


def settle(tid: str, stan: int, sales: int, amount: int) -> dict[str, str]:
    totals = f"{sales:04d}{amount:012d}" + "0" * 32
    return {"t": "0500", **_base(tid, stan, "920000"), "49": "156", "60": "000001", "63": totals}


def without(doc: dict[str, str], *keys: str, **changes: str) -> dict[str, str]:
    return {**{k: v for k, v in doc.items() if k not in keys}, **changes}


def _tlv(items: list[tuple[str, bytes]]) -> str:
    return b"".join(bytes.fromhex(tag) + bytes([len(v)]) + v for tag, v in items).hex().upper()


def _icc(doc: dict[str, str]) -> dict[str, bytes]:
    """A flat BER-TLV walk, enough for the issuer data in a 0210's DE 55."""
    data, items, i = bytes.fromhex(doc["55"]), {}, 0
    while i < len(data):
        tag_len = 2 if data[i] & 0x1F == 0x1F else 1
        tag = data[i:i + tag_len].hex().upper()
        size = data[i + tag_len]
        items[tag] = data[i + tag_len + 1:i + tag_len + 1 + size]
        i += tag_len + 1 + size
    return items


# -- approvals -------------------------------------------------------------------------------------
def test_approvals(link: Link, tid: str) -> None:
    sale = link.ask(swipe(tid, 1))
    assert sale["39"] == "00" and len(sale["37"]) == 12 and len(sale["38"]) == 6
    assert "2" not in sale and "35" not in sale
    echoed = ("3", "4", "42", "49", "60")
    assert {k: sale[k] for k in echoed} == {k: swipe(tid, 1)[k] for k in echoed}
    answer = link.ask(chip(tid, 2))
    assert answer["39"] == "00"
    issuer = _icc(answer)  # DE 55 of the 0210: 8A ARC and 91 ARPC || ARC, as the doc's table says
    assert issuer["8A"] == b"00" and len(issuer["91"]) == 10 and issuer["91"][8:] == b"00"
    assert link.ask(echo(tid, 3))["39"] == "00"
    signon = link.ask({**echo(tid, 4), "3": "920000", "60": "000001"})
    assert signon["39"] == "00" and len(signon["62"]) == 80
    assert link.ask(advice(tid, 5))["39"] == "00"
    assert link.ask(reversal(chip(tid, 2)))["39"] == "00"
    assert link.ask(settle(tid, 6, 2, 1000 + 3000))["39"] == "00"


# -- every format error ----------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["2", "3", "4", "12", "13", "22", "25", "41", "42", "49", "60"])
def test_a_sale_without_a_mandatory_field_is_30(link: Link, tid: str, field: str) -> None:
    request = without(swipe(tid, 1), field)
    if field == "41":  # cannot be matched: not answered; the next request's answer comes first
        link.send(request)
        assert link.ask(echo(tid, 2))["39"] == "00"
        return
    assert link.ask(request)["39"] == "30"


@pytest.mark.parametrize(
    ("changes", "drop"),
    [
        ({"11": "000000"}, ()), ({"12": "256199"}, ()), ({"13": "1340"}, ()), ({"14": "3013"}, ()),
        ({"22": "999"}, ()), ({"25": "99"}, ()), ({"60": "1"}, ()), ({"49": "000"}, ()),
        ({"35": f"{CARDS['approved']['pan']}=3012201"}, ()),  # DE 2 and DE 35 name different cards
        ({"22": "022", "52": "0123456789ABCDEF"}, ()),  # a PIN block from a terminal without a pad
        ({}, ("35",)),  # a swipe without its track 2
    ],
)
def test_malformed_sale_content_is_30(link: Link, tid: str, changes: dict[str, str], drop: tuple[str, ...]) -> None:
    assert link.ask(without(swipe(tid, 1), *drop, **changes))["39"] == "30"


def test_a_chip_sale_without_its_icc_data_or_with_a_short_arqc_is_30(link: Link, tid: str) -> None:
    assert link.ask(without(chip(tid, 1), "55"))["39"] == "30"
    short = _tlv([("9F26", bytes(7)), ("9F36", b"\x00\x02"), ("9F02", bytes.fromhex("000000012500"))])
    assert link.ask(chip(tid, 2) | {"55": short})["39"] == "30"
    assert link.ask(echo(tid, 3))["39"] == "00"  # the connection is still served


@pytest.mark.parametrize(("drop", "changes"), [(("39",), {}), (("4",), {}), ((), {"39": "ZZ"})])
def test_a_malformed_reversal_is_30(link: Link, tid: str, drop: tuple[str, ...], changes: dict[str, str]) -> None:
    sale = swipe(tid, 1)
    assert link.ask(sale)["39"] == "00"
    assert link.ask(without(reversal(sale), *drop, **changes))["39"] == "30"
    assert link.ask(settle(tid, 2, 1, 1000))["39"] == "00"  # the sale still stands


def test_an_advice_without_its_auth_code_is_30(link: Link, tid: str) -> None:
    assert link.ask(without(advice(tid, 1), "38"))["39"] == "30"


def test_an_0800_without_a_stan_is_not_answered(link: Link, tid: str) -> None:
    link.send(without(echo(tid, 1), "11"))
    assert link.ask(echo(tid, 2))["39"] == "00"  # the first answer on the link is the second echo's
    assert link.ask(without(echo(tid, 3), "42"))["39"] == "30"


# -- content a real acquirer refuses ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "code"),
    [({"4": "000000000000"}, "13"), ({"49": "840"}, "58"), ({"14": "2401"}, "54")],
)
def test_content_declines(link: Link, tid: str, changes: dict[str, str], code: str) -> None:
    answer = link.ask(swipe(tid, 1) | changes)
    assert answer["39"] == code and "38" not in answer


def test_the_amount_is_the_one_the_card_signed(link: Link, tid: str) -> None:
    assert link.ask(chip(tid, 1, amount=12500) | {"4": "000000000999"})["39"] == "13"


# -- the ledger ------------------------------------------------------------------------------------
def test_another_card_on_a_booked_key_is_94(link: Link, tid: str) -> None:
    assert link.ask(swipe(tid, 1))["39"] == "00"
    c = CARDS["approved"]
    other = swipe(tid, 1) | {"2": c["pan"], "35": f"{c['pan']}={c['expiry']}{c['service_code']}"}
    assert link.ask(other)["39"] == "94"
    first = link.ask(swipe(tid, 1))  # the real retry: the first answer again
    assert first["39"] == "00"


def test_the_original_resent_after_its_reversal_is_refused(link: Link, tid: str) -> None:
    sale = swipe(tid, 1)
    assert link.ask(sale)["39"] == "00"
    assert link.ask(reversal(sale))["39"] == "00"
    assert link.ask(sale)["39"] == "12"
    assert link.ask(settle(tid, 2, 0, 0))["39"] == "00"  # nothing stands


def test_a_sale_for_a_settled_batch_is_refused(link: Link, tid: str) -> None:
    assert link.ask(swipe(tid, 1))["39"] == "00"
    assert link.ask(settle(tid, 2, 1, 1000))["39"] == "00"
    assert link.ask(swipe(tid, 3))["39"] == "12"
    assert link.ask(swipe(tid, 4, batch=2))["39"] == "00"


def test_a_replayed_cryptogram_is_refused(link: Link, tid: str) -> None:
    first = chip(tid, 1)
    assert link.ask(first)["39"] == "00"
    assert link.ask(chip(tid, 2) | {"55": first["55"]})["39"] == "05"
    assert link.ask(chip(tid, 3))["39"] == "00"


@pytest.mark.parametrize("frame", [b"\x00\x00", None], ids=["zero-length", "response-mti"])
def test_a_zero_length_frame_or_a_response_closes_that_connection_only(host: Served, tid: str,
                                                                       frame: bytes | None) -> None:
    """Documented (docs/host-link.md, Framing): not a keep-alive, and a host takes no responses."""
    victim, other = Link(host.endpoint), Link(host.endpoint)
    try:
        if frame is None:
            victim.send(echo(tid, 9) | {"t": "0810", "39": "00"})  # 08xx goes both ways: ignored, no answer
            assert victim.ask(echo(tid, 1))["39"] == "00"
            victim.send(swipe(tid, 1) | {"t": "0210", "39": "00"})
        else:
            victim.sock.sendall(frame)
        assert victim.sock.recv(4096) == b""  # closed by the host
        assert other.ask(echo(tid, 2))["39"] == "00"
    finally:
        victim.sock.close()
        other.sock.close()
