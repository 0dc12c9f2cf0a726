"""The ACME printer's emulator: the ESC/POS printer emulator, plus ACME's vendor init sequence.

ACME firmware takes `VENDOR_INIT` as the first bytes after power-on and answers it by nothing; a
stream that starts otherwise is printed as any ESC/POS printer would. The control vocabulary is
the printer family's (`emulator.printer.control`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from emulator.printer.emulator import PrinterEmulator

from .vendor import VENDOR_INIT

__all__ = ["AcmePrinterEmulator"]


class AcmePrinterEmulator(PrinterEmulator):
    def __init__(self, profile: Mapping[str, Any], *, faults: Iterable[str] = ()) -> None:
        super().__init__(profile, faults=faults)
        self.vendor_init_seen = False
        self._head = b""  # the first bytes, until they are known to be (or not be) the vendor init
        self._judged = False

    def receive(self, data: bytes) -> None:
        if not self._judged and data:
            self._head += data
            if VENDOR_INIT.startswith(self._head):
                if len(self._head) < len(VENDOR_INIT):
                    return  # the sequence may still arrive byte by byte
                self.vendor_init_seen, data = True, b""
            elif self._head.startswith(VENDOR_INIT):
                self.vendor_init_seen, data = True, self._head[len(VENDOR_INIT):]
            else:
                data = self._head
            self._judged, self._head = True, b""
            if not data:
                return
        super().receive(data)

    def status(self) -> str:
        return f"{super().status()} vendor-init={'seen' if self.vendor_init_seen else 'no'}"
