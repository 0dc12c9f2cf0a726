"""The test payers: what the simulated customer does is chosen by the payment code's last two digits.

Any payment code of the right shape works (drivers/wallet/codec.py `channel_of`); its last two
digits pick the behaviour below, so a WeChat, an Alipay and a UnionPay code ending `07` behave
alike. A suffix not in the table pays at once. As at WeChat, a payment over ¥1000 (100000 fen)
by an "at once" payer needs the password: it pays 10 s later.
"""

from __future__ import annotations

import enum
from typing import Final

from drivers.record import Record

__all__ = ["BIG_PAYMENT_FEN", "PAYERS", "TEST_CODE_PREFIX", "Behaviour", "Payer", "payer_of", "payment_code"]

BIG_PAYMENT_FEN: Final = 100_000  # ¥1000: above it WeChat asks for the password
TEST_CODE_PREFIX: Final = {"wechat": "1300000000000000", "alipay": "2800000000000000",
                           "unionpay": "62000000000000000"}


class Behaviour(enum.Enum):
    PAYS = "pays"
    PASSWORD = "password"
    NEVER = "never"
    NOTENOUGH = "notenough"
    EXPIRED = "expired"
    LOST_ANSWER = "lost-answer"
    PAYS_AT_REVERSE = "pays-at-reverse"
    RECALL_TWICE = "recall-twice"
    ACCEPTED_202 = "accepted-202"
    SYSTEMERROR = "systemerror"


class Payer(Record):
    suffix: str
    behaviour: Behaviour
    delay_s: float = 0.0  # PASSWORD, ACCEPTED_202: seconds after the pay until the customer has paid
    description: str = ""


PAYERS: Final = {p.suffix: p for p in (
    Payer(suffix="00", behaviour=Behaviour.PAYS, description="pays at once (over ¥1000: password, pays after 10 s)"),
    Payer(suffix="01", behaviour=Behaviour.PASSWORD, delay_s=10.0,
          description="enters a password: USERPAYING, pays 10 s after the pay"),
    Payer(suffix="02", behaviour=Behaviour.PASSWORD, delay_s=25.0,
          description="slow password: USERPAYING, pays 25 s after the pay"),
    Payer(suffix="03", behaviour=Behaviour.NEVER, description="never pays: USERPAYING until reversed or closed"),
    Payer(suffix="04", behaviour=Behaviour.NOTENOUGH, description="not enough balance: PAYERROR NOTENOUGH"),
    Payer(suffix="05", behaviour=Behaviour.EXPIRED, description="code expired: PAYERROR AUTH_CODE_EXPIRED"),
    Payer(suffix="06", behaviour=Behaviour.LOST_ANSWER,
          description="pays at once, but the answer to the first pay is lost (booked, no answer sent)"),
    Payer(suffix="07", behaviour=Behaviour.PAYS_AT_REVERSE,
          description="USERPAYING to every query, pays just before the reverse lands: the reverse refunds"),
    Payer(suffix="08", behaviour=Behaviour.RECALL_TWICE,
          description="never pays; the first two reverses answer SYSTEMERROR recall=Y, the third closes"),
    Payer(suffix="09", behaviour=Behaviour.ACCEPTED_202, delay_s=10.0,
          description="the pay is answered HTTP 202 USERPAYING (in progress); pays 10 s after"),
    Payer(suffix="10", behaviour=Behaviour.SYSTEMERROR,
          description="the pay is answered SYSTEMERROR (unclear) though it was paid at once"),
)}


def payer_of(code: str) -> Payer:
    return PAYERS.get(code[-2:], PAYERS["00"])


def payment_code(suffix: str, channel: str = "wechat") -> str:
    """The documented test payment code of a behaviour, e.g. payment_code("07") = 130000000000000007."""
    return TEST_CODE_PREFIX[channel] + suffix
