"""Barcode / QR scanner family: `events` (commands, replies, `Scanned`), `codec` (sans-I/O, the
serial line mode, GM65 frames and Zebra SSI, both roles) and `driver` (the host end over a port).

Import the submodules directly; this package imports nothing so that the emulator can use the
codec without pulling in the driver (and pyserial) behind it.
"""

__all__: list[str] = []
