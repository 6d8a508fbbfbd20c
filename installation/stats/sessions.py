"""Visitor sessions from presence in the crop (never from identity).

A session starts once someone has been in the box for `presence_min_s`, and ends after nobody
was there for `presence_gap_s`. Only counts and dwell times come out; nothing per frame is kept.
"""

from __future__ import annotations


class SessionTracker:
    def __init__(self, presence_min_s: float, presence_gap_s: float) -> None:
        self._min = presence_min_s
        self._gap = presence_gap_s
        self._since: float | None = None  # start of the current presence streak
        self._last_seen: float | None = None
        self._in_session = False
        self.started = 0  # sessions started since the last `take()`
        self.dwell_sum_s = 0.0  # of sessions ended since the last `take()`
        self.ended = 0

    def update(self, t: float, present: bool) -> None:
        if present:
            if self._since is None or (
                self._last_seen is not None and t - self._last_seen > self._gap
            ):
                if self._in_session:
                    self._end()
                self._since = t
            self._last_seen = t
            if not self._in_session and t - self._since >= self._min:
                self._in_session = True
                self.started += 1
        elif self._last_seen is not None and t - self._last_seen > self._gap:
            if self._in_session:
                self._end()
            self._since = None
            self._last_seen = None

    def _end(self) -> None:
        assert self._since is not None and self._last_seen is not None
        self.dwell_sum_s += self._last_seen - self._since
        self.ended += 1
        self._in_session = False

    @property
    def active(self) -> bool:
        return self._in_session

    def take(self) -> tuple[int, int, float]:
        """(sessions started, sessions ended, their total dwell) since the last call."""
        out = (self.started, self.ended, self.dwell_sum_s)
        self.started, self.ended, self.dwell_sum_s = 0, 0, 0.0
        return out
