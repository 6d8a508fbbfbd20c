"""Visitor sessions from presence in the crop (never from identity).

A session starts once someone has been in the box for `presence_min_s` (a passer-by does not
count), and ends after nobody was there for `presence_gap_s` (a blink or a turned head does not
split it). A session in which neither model ever found the visitor's face is also counted as
"missed by both". Only counts and summed dwell times come out; no per-frame value is kept.
"""

from __future__ import annotations

from typing import NamedTuple


class SessionCounts(NamedTuple):
    started: int
    ended: int
    dwell_s: float  # total dwell of the ended sessions
    missed_by_both: int  # ended sessions in which neither model found the face


class SessionTracker:
    def __init__(self, presence_min_s: float, presence_gap_s: float) -> None:
        if presence_min_s < 0 or presence_gap_s < 0:
            raise ValueError(
                f"presence_min_s ({presence_min_s}) and presence_gap_s ({presence_gap_s}) must be "
                ">= 0; fix region.presence_min_s / region.presence_gap_s in the config"
            )
        self._min = presence_min_s
        self._gap = presence_gap_s
        self._since: float | None = None  # start of the current presence streak
        self._last_seen: float | None = None
        self._in_session = False
        self._found = False  # either model found the face during the current streak
        self.started = 0  # sessions started since the last `take()`
        self.ended = 0  # sessions ended since the last `take()`
        self.dwell_sum_s = 0.0  # total dwell of those ended sessions
        self.missed_by_both = 0  # of those ended sessions, the ones no model found a face in

    def update(self, t: float, present: bool, found: bool = True) -> None:
        """One observation at monotonic time `t` (seconds): someone in the box, and whether
        either model finds their face."""
        if present:
            if self._since is None or (
                self._last_seen is not None and t - self._last_seen > self._gap
            ):
                if self._in_session:
                    self._end()
                self._since = t
                self._found = False
            self._last_seen = t
            self._found = self._found or found
            if not self._in_session and t - self._since >= self._min:
                self._in_session = True
                self.started += 1
        else:
            self.expire(t)

    def expire(self, now: float) -> None:
        """End the streak if nobody was seen for longer than the gap (also when no frames come,
        e.g. while paused or while the camera is lost)."""
        if self._last_seen is not None and now - self._last_seen > self._gap:
            if self._in_session:
                self._end()
            self._since = None
            self._last_seen = None

    def _end(self) -> None:
        assert self._since is not None and self._last_seen is not None
        self.dwell_sum_s += self._last_seen - self._since
        self.ended += 1
        self.missed_by_both += not self._found
        self._in_session = False

    @property
    def active(self) -> bool:
        return self._in_session

    def take(self) -> SessionCounts:
        """Sessions started and ended since the last call, their dwell and how many of them
        neither model found a face in."""
        out = SessionCounts(self.started, self.ended, self.dwell_sum_s, self.missed_by_both)
        self.started, self.ended, self.dwell_sum_s, self.missed_by_both = 0, 0, 0.0, 0
        return out
