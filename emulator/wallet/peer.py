"""`emu://wallet`: the gateway as a synchronous in-process peer (no socket, no thread).

The terminal's WalletDriver writes whole HTTP requests (the codec's HTTP/1.1 subset); the peer
decodes them with the shared codec in Role.DEVICE, asks its WalletGateway and queues the signed
answer for `transmit()` — inside the driver's own call, so a scenario on virtual time needs no
thread hop. A lost answer (payer 06) is simply never queued. Time passes only through
`advance()` (the emulated world calls it on the till's clock).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from drivers.errors import ProtocolError
from drivers.events import Role
from drivers.wallet.codec import GatewayCall, WalletCodec
from emulator.base import Emulator
from emulator.wallet.gateway import WalletGateway

__all__ = ["WalletPeer", "make_peer"]

log = logging.getLogger("emulator.wallet")


class WalletPeer(Emulator):
    CONTROL: ClassVar[str] = "emulator.wallet.control"
    FAULTS: ClassVar[tuple[str, ...]] = WalletGateway.FAULTS
    follows_till_clock: ClassVar[bool] = True

    def __init__(self, gateway: WalletGateway | None = None) -> None:
        self.gateway = gateway if gateway is not None else WalletGateway()
        self._codec = WalletCodec(Role.DEVICE, {"key": self.gateway.key, "mch_id": self.gateway.mch_id})
        self._outbox = bytearray()
        self.closed = False
        self.internal_errors: list[Exception] = []

    def use_folder(self, folder: Path, *, durable: bool = False) -> None:
        """The gateway's books in `folder` (WalletGateway.use_folder): it survives a restart."""
        self.gateway.use_folder(folder, durable=durable)

    def receive(self, data: bytes) -> None:
        self.closed = False
        self._codec.receive_data(data)
        try:
            while (call := self._codec.next_event()) is not None:
                assert isinstance(call, GatewayCall)
                reply = self.gateway.respond(call)
                if reply is not None:
                    self._outbox += self._codec.send(reply)
        except ProtocolError as exc:  # content-free by the codec's contract
            log.warning("dropping the in-process wallet stream: %s", exc)
            self._reset()
        except Exception as exc:  # a bug in the gateway: no answer (the terminal queries); tests see it
            log.error("wallet gateway internal error (%s); the request gets no answer", type(exc).__name__)
            self.internal_errors.append(exc)
            self._reset()

    def transmit(self) -> bytes:
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def advance(self, seconds: float) -> None:
        self.gateway.advance(seconds)

    def status(self) -> str:
        return self.gateway.status()

    def set_fault(self, name: str, /, *args: Any, **options: Any) -> None:
        if name not in self.FAULTS:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join(self.FAULTS)})")
        self.gateway.faults[name] = int(options.get("count", args[0] if args else 1))

    def clear_faults(self) -> None:
        self.gateway.faults.clear()

    def close(self) -> None:
        self.closed = True
        self._reset()

    def _reset(self) -> None:
        self._codec = WalletCodec(Role.DEVICE, {"key": self.gateway.key, "mch_id": self.gateway.mch_id})
        self._outbox.clear()


def make_peer(query: Mapping[str, str]) -> WalletPeer:
    """Peer factory for `emu://wallet` without an instance id: a gateway of its own."""
    return WalletPeer()
