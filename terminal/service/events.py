"""What the terminal says, for anyone watching: display lines, state changes, payment updates.

Published by the service loop, read by server-sent-event streams on other threads. Every event
has a number; the last `keep` are held, so a stream that reconnects with `Last-Event-ID` gets
what it missed (a page reloaded mid-sale shows the sale where it is). A slow reader never slows
the till: its queue is bounded, and a reader that falls that far behind is dropped (it
reconnects and resumes from its last id).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from drivers.record import Record

__all__ = ["Event", "EventBus", "Subscription"]


class Event(Record):
    id: int
    kind: str  # "display", "state", "payment", "device", "service"
    data: dict[str, Any]

    def sse(self) -> bytes:
        """The event as one server-sent-events message."""
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.kind}\ndata: {body}\n\n".encode()


class Subscription:
    def __init__(self, bus: EventBus, backlog: list[Event], size: int) -> None:
        self._bus = bus
        self._queue: queue.Queue[Event | None] = queue.Queue(size)
        for event in backlog:
            self._queue.put_nowait(event)
        self.dropped = False

    def offer(self, event: Event | None) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:  # too far behind: end this stream (the reader resumes by id)
            self.dropped = True
            self._bus.unsubscribe(self)
            with contextlib.suppress(queue.Empty, queue.Full):  # make room for the end mark
                self._queue.get_nowait()
                self._queue.put_nowait(None)

    def next(self, timeout: float) -> Event | None:
        """The next event, or None after `timeout` s with nothing (time for a keep-alive) or at the end."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def closed(self) -> bool:
        return self.dropped or self._bus.closed

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self, *, keep: int = 500, queue_size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._recent: deque[Event] = deque(maxlen=keep)
        self._subscribers: list[Subscription] = []
        self._queue_size = queue_size
        self.closed = False

    def publish(self, kind: str, **data: Any) -> Event:
        with self._lock:
            event = Event(id=next(self._ids), kind=kind, data=data)
            self._recent.append(event)
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.offer(event)
        return event

    def display(self, line: str) -> None:
        """The till's display callback: each line the customer and cashier are shown."""
        self.publish("display", line=line)

    def subscribe(self, *, after: int | None = None) -> Subscription:
        """A stream of what comes next; with `after` (Last-Event-ID), what came since that id first."""
        with self._lock:
            backlog = [e for e in self._recent if after is not None and e.id > after]
            subscription = Subscription(self, backlog, max(self._queue_size, len(backlog) + 1))
            if not self.closed:
                self._subscribers.append(subscription)
            else:
                subscription.offer(None)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def recent(self, kind: str | None = None) -> Iterator[Event]:
        with self._lock:
            events = list(self._recent)
        return (e for e in events if kind is None or e.kind == kind)

    def close(self) -> None:
        """The service stops: every stream ends."""
        with self._lock:
            self.closed = True
            subscribers, self._subscribers = self._subscribers, []
        for subscription in subscribers:
            subscription.offer(None)
