"""Capture thread (Frigate style): reads continuously, keeps only the newest frame, counts the
frames no consumer took, and reopens a lost source with exponential backoff.

It never raises into the app: every failure becomes a `SourceStatus` the screen can show
("camera unavailable, retrying in 4 s") and a log line for staff.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from installation.faults import ThrottledLog
from installation.sources.base import FrameSource, SourceError
from installation.types import Frame, SourceState, SourceStatus

logger = logging.getLogger(__name__)

FPS_WINDOW = 30  # capture times kept for the measured rate (about 1 s at 30 fps)
# A camera unplugged overnight is retried every 30 s: the journal gets the first failure, each
# new kind of failure, and a reminder this often, not 2,880 identical lines a day.
REPEAT_WARN_S = 600.0


class Backoff:
    """Delays min, 2*min, 4*min, ... capped at max; `reset()` after the source worked again."""

    def __init__(self, min_s: float, max_s: float) -> None:
        if min_s <= 0 or max_s < min_s:
            raise ValueError(f"need 0 < reopen_min_s <= reopen_max_s, got {min_s}, {max_s}")
        self.min_s, self.max_s = min_s, max_s
        self._next = min_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.min_s


class LatestFrameGrabber(threading.Thread):
    """Owns the source on its own thread; consumers see only the newest frame.

    Frames are re-numbered here (`Frame.index` grows across reopens and loops), because each
    reopened source starts counting at 0 again. `dropped_frames` counts frames replaced before any
    `wait_next()` caller received them (the judging side); the live mirror's `latest()` does not
    count as taking a frame.
    """

    def __init__(
        self,
        open_fn: Callable[[], FrameSource],
        *,
        reopen_min_s: float = 0.5,
        reopen_max_s: float = 30.0,
        stop_event: threading.Event,
        name: str = "camera",
    ) -> None:
        super().__init__(name="capture", daemon=True)
        self._open_fn = open_fn
        self._backoff = Backoff(reopen_min_s, reopen_max_s)
        self._stop_event = stop_event
        self._what = name  # the word on screen: "camera unavailable, ..."
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken = -1  # index of the newest frame a wait_next() caller received
        self._seq = 0
        self._dropped = 0
        self._state = SourceState.CONNECTING
        self._message = f"connecting to the {name}"
        self._retry_at: float | None = None  # monotonic time of the next open attempt
        self._times: deque[float] = deque(maxlen=FPS_WINDOW)
        self.last_error: str | None = None  # for staff logs; may name the (masked) URI
        self.opens = 0
        self.reopens = 0
        self.failed_attempts = 0  # since the source last delivered a frame
        self._warned: tuple[str | None, float] | None = None  # (error, monotonic time) logged
        # A driver that raises at every open or read: its traceback as often as the warning.
        self._crashes = ThrottledLog(
            logger, level=logging.ERROR, every_s=REPEAT_WARN_S, traceback=True
        )

    # -- consumer side -------------------------------------------------------------------

    def latest(self) -> Frame | None:
        with self._cond:
            return self._latest

    def wait_next(self, after_index: int, timeout: float) -> Frame | None:
        """Block until a frame newer than `after_index` exists; None on timeout or stop.

        After a recording ended it waits the full timeout (a polling consumer must not spin).
        """
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    (self._latest is not None and self._latest.index > after_index)
                    or self._stop_event.is_set()
                ),
                timeout,
            )
            frame = self._latest
            if frame is None or frame.index <= after_index:
                return None
            self._taken = frame.index
            return frame

    def status(self) -> SourceStatus:
        with self._cond:
            message = self._message
            if self._state == SourceState.UNAVAILABLE and self._retry_at is not None:
                left = max(0.0, self._retry_at - time.monotonic())
                message = (
                    f"{self._what} unavailable, retrying in {math.ceil(left)} s"
                    if left >= 0.5
                    else f"{self._what} unavailable, retrying now"
                )
            return SourceStatus(self._state, message, self._dropped, round(self._fps(), 1))

    def stop(self, timeout: float = 5.0) -> None:
        """Set the stop event (the one shared with the app) and join the thread."""
        self._stop_event.set()
        with self._cond:
            self._cond.notify_all()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    # -- capture side --------------------------------------------------------------------

    def _fps(self) -> float:
        if self._state != SourceState.OK or len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def _set_state(self, state: SourceState, message: str, retry_at: float | None = None) -> None:
        with self._cond:
            self._state, self._message, self._retry_at = state, message, retry_at
            if state != SourceState.OK:
                self._times.clear()
            self._cond.notify_all()

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._latest is not None and self._latest.index > self._taken:
                self._dropped += 1  # the consumer was busy; the older frame is gone
            self._latest = Frame(self._seq, frame.t, frame.image)
            self._seq += 1
            self._times.append(frame.t)
            self._cond.notify_all()

    def run(self) -> None:
        try:
            self._run()
        except Exception:  # last line of defence: the kiosk keeps running, the screen says so
            logger.exception("capture thread failed")
            self._set_state(SourceState.UNAVAILABLE, f"{self._what} unavailable")
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop_event.is_set():
            source = self._try_open()
            if source is not None:
                self.opens += 1
                self.reopens += self.opens > 1
                logger.info("source opened: %s", source.description)
                self._set_state(SourceState.OK, source.description)
                try:
                    frames, ended = self._read_loop(source)
                finally:
                    source.close()
                if ended:
                    self._set_state(SourceState.ENDED, f"{source.description}: end of recording")
                    logger.info("source ended: %s", source.description)
                    return
                if self._stop_event.is_set():
                    return
                if frames > 0:
                    # It worked for a while: the next attempt comes quickly again. A source that
                    # opens but never delivers keeps backing off instead of spinning.
                    self._backoff.reset()
                    self.failed_attempts = 0
                    self._warned = None
            delay = self._backoff.next()
            self.failed_attempts += 1
            self._log_retry(delay)
            self._set_state(
                SourceState.UNAVAILABLE,
                f"{self._what} unavailable",
                retry_at=time.monotonic() + delay,
            )
            if self._stop_event.wait(delay):
                return

    def _log_retry(self, delay: float) -> None:
        """Warn at the first failure of an outage, when the error changes, and every
        REPEAT_WARN_S while it lasts; the retries between go to debug."""
        now = time.monotonic()
        if (
            self._warned is None
            or self._warned[0] != self.last_error
            or now - self._warned[1] >= REPEAT_WARN_S
        ):
            more = (
                f" (attempt {self.failed_attempts}; repeats are logged every "
                f"{REPEAT_WARN_S / 60:.0f} min)"
                if self.failed_attempts > 1
                else ""
            )
            logger.warning("%s; retrying in %.1f s%s", self.last_error, delay, more)
            self._warned = (self.last_error, now)
        else:
            logger.debug("%s; retrying in %.1f s", self.last_error, delay)

    def _try_open(self) -> FrameSource | None:
        try:
            return self._open_fn()
        except SourceError as exc:
            self.last_error = str(exc)
        except Exception as exc:  # a driver or bug: its traceback, every REPEAT_WARN_S at most
            self._crashes.event("opening the source failed")
            self.last_error = f"opening the source failed: {exc!r}"
        return None

    def _read_loop(self, source: FrameSource) -> tuple[int, bool]:
        """Read until stop or failure -> (frames read, True when a recording ended normally)."""
        frames = 0
        while not self._stop_event.is_set():
            try:
                frame = source.read()
            except SourceError as exc:
                self.last_error = str(exc)
                return frames, False
            except Exception as exc:  # a driver hiccup must not kill the capture thread
                self._crashes.event("reading %s failed", source.description)
                self.last_error = f"{source.description}: read failed: {exc!r}"
                return frames, False
            if frame is None:
                if source.is_live:
                    self.last_error = f"{source.description}: the stream ended"
                    return frames, False
                return frames, True
            frames += 1
            self._publish(frame)
        return frames, False
