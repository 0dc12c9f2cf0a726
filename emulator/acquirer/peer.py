"""`emu://acquirer`: the acquirer's decisions as a synchronous in-process peer (no socket, no thread).

`AcquirerPeer` is a drivers.transport `Peer`: the terminal's AcquirerDriver hands it whole
frames (`receive`), it decodes them with the shared codec in Role.DEVICE, asks its
`emulator.acquirer.core.Acquirer` for the answer and queues the answer's frame for `transmit()`.
Everything happens inside the terminal's own call, so a sale costs no thread hop and no
loopback round trip. The decision faults of the Acquirer (decline_next, decline_card,
refuse_mac, report_out_of_balance_once...) work as on the TCP simulator; the network faults
(latency, lost or late answers, dropped connections) need the simulator
(emulator/acquirer/simulator.py), which stays the default of the emulated world.

A stream that is not our protocol is dropped as the TCP host drops such a connection: its
pending answers are lost and the next frame starts a new stream.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from drivers.acquirer.codec import AcquirerCodec
from drivers.errors import ProtocolError
from drivers.events import Role
from emulator.acquirer.core import Acquirer

__all__ = ["AcquirerPeer", "make_peer"]

log = logging.getLogger("emulator.acquirer.simulator")


class AcquirerPeer:
    """One terminal's in-process link to an Acquirer (a fresh one unless given)."""

    def __init__(self, acquirer: Acquirer | None = None) -> None:
        self.acquirer = acquirer if acquirer is not None else Acquirer()
        self._codec = AcquirerCodec(Role.DEVICE)
        self._outbox = bytearray()
        self.closed = False
        self.requests = 0  # decoded requests, for tests

    def use_folder(self, folder: Path, *, durable: bool = False) -> None:
        """The host's books in `folder` (Acquirer.use_folder): it survives a restart of this process."""
        self.acquirer.use_folder(folder, durable=durable)

    def receive(self, data: bytes) -> None:
        self.closed = False  # a write after close() is a new connection
        self._codec.receive_data(data)
        try:
            while (request := self._codec.next_event()) is not None:
                self.requests += 1
                answer = self.acquirer.respond(request)
                if answer is not None:
                    self._outbox += self._codec.send(answer)
        except ProtocolError as exc:
            # Content-free by the codec's contract, so logging it is safe.
            log.warning("dropping the in-process terminal stream: %s", exc)
            self._reset()
        except Exception as exc:  # a bug in the host: let tests see it, as the TCP reactor does
            log.error("internal error (%s); dropping the in-process stream", type(exc).__name__)
            self.acquirer.internal_errors.append(exc)
            self._reset()

    def transmit(self) -> bytes:
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def close(self) -> None:
        """The terminal closed the link: what was not read is lost, the host's books stay."""
        self.closed = True
        self._reset()

    def _reset(self) -> None:
        self._codec = AcquirerCodec(Role.DEVICE)
        self._outbox.clear()


def make_peer(query: Mapping[str, str]) -> AcquirerPeer:
    """Peer factory for `emu://acquirer` without an instance id: a host of its own."""
    return AcquirerPeer(Acquirer(require_sign_on=query.get("require_sign_on", "") in ("1", "true", "yes")))
