"""What every codec test does: feed bytes whole or one at a time and collect the events."""

from __future__ import annotations

from typing import Any

__all__ = ["drain_junk", "feed", "h"]


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


def drain_junk(codec: Any, chunks: list[bytes]) -> None:
    """Feed junk chunk by chunk: decoding may raise only RemoteProtocolError, and every event or
    raise consumes input (a codec that produced without consuming would loop for ever)."""
    import pytest

    from drivers.errors import RemoteProtocolError

    for chunk in chunks:
        codec.receive_data(chunk)
        for _ in range(2 * codec.buffered + 2):  # every event and every raise consumes a byte
            try:
                if codec.next_event() is None:
                    break
            except RemoteProtocolError:
                pass
        else:
            pytest.fail("next_event() kept producing without consuming")
        codec.data_to_send()
