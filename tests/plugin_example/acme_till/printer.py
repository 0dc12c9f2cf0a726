"""The ACME printer's driver: the ESC/POS printer driver, plus the vendor's init sequence sent
on open (ACME firmware wants it before the first job) and a count of the jobs it printed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drivers.base import DeviceFault
from drivers.printer import events as ev
from drivers.printer.driver import PrinterDriver

from .vendor import VENDOR_INIT

__all__ = ["AcmePrinterDriver"]


class AcmePrinterDriver(PrinterDriver):
    def __init__(self, url: str, profile: Mapping[str, Any], *, timeout: float = 1.0) -> None:
        super().__init__(url, profile, timeout=timeout)
        self.jobs = 0  # print jobs sent, whatever their outcome

    def open(self) -> None:
        was_open = self._port is not None
        super().open()
        if not was_open:
            self._write(VENDOR_INIT)

    def start_job(self, commands: Sequence[ev.PrinterCommand]) -> DeviceFault | None:
        self.jobs += 1  # print_job() (blocking, for tools) goes through here too
        return super().start_job(commands)
