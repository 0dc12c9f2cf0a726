"""What every codec test does: feed bytes whole or one at a time and collect the events."""

from __future__ import annotations

from typing import Any

__all__ = ["feed", "h"]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def feed(codec: Any, data: bytes, *, one_by_one: bool) -> list[object]:
    """Every event `data` decodes to (RemoteProtocolErrors propagate)."""
    out: list[object] = []
    for chunk in ([data[i : i + 1] for i in range(len(data))] if one_by_one else [data]):
        codec.receive_data(chunk)
        while (event := codec.next_event()) is not None:
            out.append(event)
    return out
