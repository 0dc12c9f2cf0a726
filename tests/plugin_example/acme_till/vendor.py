"""ACME's additions to ESC/POS, sans-I/O: shared by the driver (host side) and the emulator."""

from __future__ import annotations

__all__ = ["VENDOR_INIT"]

# ESC @ (initialize), then ACME's private `FS } A` with a version byte: host mode 1. ACME firmware
# wants it before the first job after power-on.
VENDOR_INIT = b"\x1b\x40\x1c\x7d\x41\x01"
