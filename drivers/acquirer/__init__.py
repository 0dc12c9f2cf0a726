"""The acquirer host link (ISO 8583 over TCP): spec, sans-I/O codec and message event.

It lives in `drivers/` although the acquirer is not a peripheral, because the terminal
(terminal/host/) and the acquirer simulator (emulator/acquirer/simulator.py) must share one spec and one
framing, and the emulator may import only `drivers.*.codec` / `drivers.*.events`.
"""

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.events import HostMessage

__all__ = ["AcquirerCodec", "HostMessage"]
