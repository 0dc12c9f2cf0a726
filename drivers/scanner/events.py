"""Scanner events, sans-I/O. The scanner helper owns this file and may add to it; `Scanned` is the
one fact the checkout consumes and its fields are fixed (the checkout's QR phase is built on them)."""

from __future__ import annotations

from drivers.events import DeviceEvent

__all__ = ["Scanned"]


class Scanned(DeviceEvent):
    """One decoded code, as the driver reports it to the checkout (prefix, AIM id, suffix and any
    protocol framing already stripped)."""

    data: str  # the decoded text (a payment code is ASCII digits)
    symbology: str = ""  # normalised name: "qr", "code128", "ean13", "datamatrix", ... ("" unknown)
    aim: str = ""  # the AIM identifier as sent ("]Q1"), "" when the profile sends none
