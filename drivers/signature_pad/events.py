"""Signature pad events, sans-I/O. The signature-pad helper owns this file and may add to it; the
records below are the interface the checkout builds on (fields fixed)."""

from __future__ import annotations

from drivers.events import DeviceEvent
from drivers.record import Record

__all__ = ["InkAdded", "PadKey", "Signature"]


class Signature(Record):
    """A captured signature: strokes of pen-down points in the pad's raw coordinates."""

    strokes: tuple[tuple[tuple[int, int], ...], ...]  # each stroke: (x, y) points while the pen was down
    width: int  # the pad's coordinate range (x 0..width-1, y 0..height-1), per model
    height: int
    dpi: int


class PadKey(DeviceEvent):
    """A key on an LCD pad: "ok", "clear" or "cancel"."""

    key: str


class InkAdded(DeviceEvent):
    """Pen-down points arrived since the last poll (the checkout re-arms its pen-away wait)."""

    points: int
