"""DE 64, the message authentication code, over a `HostMessage` (algorithm in drivers/acquirer/keys.py).

Which messages carry it: the financial and settlement requests (0200/0201, 0220/0221, 0320,
0400/0401, 0500) and their responses. Network management (0800/0810) does not: the sign-on is
what delivers the MAC key. One exception on the response side: an answer with DE 39 = A0 ("MAC
error, sign on again") is taken without a MAC check, since a host that no longer trusts our
key cannot MAC with it, and A0 can only make the terminal sign on again, never approve.

The MAC input is the message's canonical encoding (drivers/acquirer/codec.py `encode_body`) with
DE 64 present, less its last 8 bytes (DE 64 is the last field): MTI, bitmap with bit 64 set,
and every field before 64. Both ends compute it from the decoded message, so a peer whose
encoding differs from the canonical one (it cannot: the layout is fixed) would fail the check.
"""

from __future__ import annotations

import hmac
from typing import Final

from drivers.acquirer.codec import encode_fields, remember_body
from drivers.acquirer.events import HostMessage, response_mti
from drivers.acquirer.keys import MAC_SIZE, retail_mac

__all__ = ["MACED_MTIS", "MAC_ERROR", "is_maced", "mac_input", "sign", "verify"]

MAC_FIELD: Final = "64"
MAC_ERROR: Final = "A0"
_REQUESTS: Final = frozenset({"0200", "0201", "0220", "0221", "0320", "0400", "0401", "0500", "0820"})
MACED_MTIS: Final = _REQUESTS | {response_mti(mti) for mti in _REQUESTS}


def is_maced(mti: str) -> bool:
    """Does a message of this MTI carry DE 64 on this link?"""
    return mti in MACED_MTIS


def mac_input(message: HostMessage) -> bytes:
    """The bytes DE 64 authenticates (see the module docstring)."""
    return encode_fields(message.mti, {**message.fields, MAC_FIELD: bytes(MAC_SIZE)})[:-MAC_SIZE]


def sign(message: HostMessage, mac_key: bytes) -> HostMessage:
    """`message` with DE 64 computed under `mac_key` (any DE 64 it had is replaced)."""
    data = mac_input(message)
    mac = retail_mac(mac_key, data)
    signed = HostMessage(mti=message.mti, fields={**message.fields, MAC_FIELD: mac})
    # Its body is the MAC input and the MAC (DE 64 is the last field, 8 bytes as they are): the
    # frame need not encode the message a second time.
    remember_body(signed, data + mac)
    return signed


def verify(message: HostMessage, mac_key: bytes) -> bool:
    """Does `message` carry the right DE 64 under `mac_key`? False when it carries none."""
    given = message.get(MAC_FIELD)
    if not isinstance(given, bytes) or len(given) != MAC_SIZE:
        return False
    return hmac.compare_digest(given, retail_mac(mac_key, mac_input(message)))
