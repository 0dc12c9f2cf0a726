"""The acquirer simulator's key management: working keys per terminal, the MAC of requests and
answers, and the PIN key the issuer verifies a PIN block under (docs/host-link.md "Keys and MAC").

- Each sign-on issues new working keys for the terminal (derived from the terminal id and a
  serial, so a run can be replayed: TEST ONLY key material), sent in DE 62 under the TMK.
- A MACed request (drivers/acquirer/mac.py) that carries DE 64 is verified under the terminal's
  current MAC key; a wrong MAC, or a MAC from a terminal that never signed on, is A0. A request
  without DE 64 is A0 only when the simulator requires MACs (`require_mac`): clients of the
  unMACed test mode keep working.
- The answer to a request that carried a MAC is MACed with the same key (A0 answers are not).
- The PIN block of a MACed request is verified under the terminal's working PIN key (the PIN
  pad got it at sign-on); an unMACed request's under the pad's fixed TEST_PIN_KEY.
Nothing here is logged beyond MTI and terminal id; keys live in `Secret`.
"""

from __future__ import annotations

import hashlib
from typing import Final

from drivers.acquirer import mac
from drivers.acquirer.events import HostMessage
from drivers.acquirer.keys import TEST_TMK
from drivers.acquirer.spec import WorkingKeys
from drivers.sensitive import Secret
from emulator.card_reader.emv import TEST_PIN_KEY

__all__ = ["HostKeys"]

MAC_FIELD: Final = "64"


def _test_key(label: str, terminal_id: str, serial: int) -> Secret[str]:
    # Test key material: derived, not random, so a run can be replayed; never a production key.
    return Secret(hashlib.sha256(f"{label}:{terminal_id}:{serial}".encode()).hexdigest()[:32].upper())


class HostKeys:
    """Not thread-safe on its own: the simulator calls it under its lock."""

    def __init__(self, *, require_mac: bool = False, tmk: bytes = TEST_TMK) -> None:
        self.require_mac = require_mac
        self._tmk = tmk
        self._keys: dict[str, WorkingKeys] = {}
        self.serial = 0  # working keys issued so far: kept in the books, so no restart reissues a key

    def issue(self, terminal_id: str) -> str:
        """New working keys for `terminal_id` (the old ones stop working): DE 62 of the 0810."""
        self.serial += 1
        keys = WorkingKeys(pin_key=_test_key("PIN", terminal_id, self.serial),
                           mac_key=_test_key("MAC", terminal_id, self.serial))
        self._keys[terminal_id] = keys
        return keys.to_field(self._tmk)

    def forget(self, terminal_id: str) -> None:
        """Sign-off: the terminal's keys stop working."""
        self._keys.pop(terminal_id, None)

    def request_ok(self, request: HostMessage) -> bool:
        """May the host act on this request, as far as its MAC goes?"""
        if not mac.is_maced(request.mti):
            return True
        if request.get(MAC_FIELD) is None:
            return not self.require_mac
        keys = self._keys.get(request.terminal_id or "")
        return keys is not None and mac.verify(request, keys.mac_key_bytes.reveal())

    def answer(self, request: HostMessage, answer: HostMessage) -> HostMessage:
        """`answer`, MACed when the request was (and the answer is not A0)."""
        keys = self._keys.get(request.terminal_id or "")
        if (keys is None or request.get(MAC_FIELD) is None or not mac.is_maced(answer.mti)
                or answer.response_code == mac.MAC_ERROR):
            return answer
        return mac.sign(answer, keys.mac_key_bytes.reveal())

    def pin_key(self, request: HostMessage) -> bytes:
        """The key the PIN block of `request` is under: the working PIN key for a MACed request."""
        keys = self._keys.get(request.terminal_id or "")
        if keys is None or request.get(MAC_FIELD) is None:
            return TEST_PIN_KEY
        return keys.pin_key_bytes.reveal()
