"""Stats intervals waiting for the broker: bounded, oldest dropped first, counted.

An interval is in one of two places: `pending` (not yet handed to paho, e.g. while the broker is
down) or `handed` (given to paho with QoS 1; paho keeps it and resends it after a reconnect until
the broker acks it). Handing over only while connected keeps paho's own, unbounded store small.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol


class Delivery(Protocol):
    """What paho's `MQTTMessageInfo` offers (a fake in tests needs only this)."""

    def is_published(self) -> bool: ...

    def wait_for_publish(self, timeout: float | None = None) -> None: ...


class StatsQueue:
    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError(f"queue length must be >= 1, got {maxlen}; fix mqtt.queue_max")
        self.maxlen = maxlen
        self._lock = threading.Lock()
        self._pending: deque[str] = deque()
        self._handed: deque[Delivery] = deque()
        self.dropped = 0  # intervals lost to the bound, since start

    def make_room(self) -> int:
        """Drop the oldest pending intervals until one more fits; returns `dropped` so far.
        Called before building the next payload, so that payload carries an exact count."""
        with self._lock:
            self._prune()
            while self._pending and len(self._pending) + len(self._handed) >= self.maxlen:
                self._pending.popleft()
                self.dropped += 1
            return self.dropped

    def put(self, payload: str) -> None:
        self.make_room()
        with self._lock:
            self._pending.append(payload)

    def peek(self) -> str | None:
        with self._lock:
            return self._pending[0] if self._pending else None

    def handed(self, delivery: Delivery) -> None:
        """The oldest pending payload was given to paho; track it until the broker acks it."""
        with self._lock:
            self._pending.popleft()
            self._handed.append(delivery)

    def _prune(self) -> None:
        while self._handed and self._handed[0].is_published():
            self._handed.popleft()

    def __len__(self) -> int:
        """Intervals not yet acknowledged by the broker."""
        with self._lock:
            self._prune()
            return len(self._pending) + sum(not d.is_published() for d in self._handed)

    @property
    def unacked(self) -> list[Delivery]:
        with self._lock:
            self._prune()
            return [d for d in self._handed if not d.is_published()]
