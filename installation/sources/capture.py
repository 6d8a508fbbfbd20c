"""Capture thread (Frigate style): reads continuously, keeps only the newest frame, counts the
frames the consumer never took, and reopens a lost source with exponential backoff."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from installation.sources.base import FrameSource, SourceError
from installation.types import Frame, SourceState, SourceStatus

logger = logging.getLogger(__name__)


class LatestFrameGrabber(threading.Thread):
    def __init__(
        self,
        open_fn: Callable[[], FrameSource],
        *,
        reopen_min_s: float = 0.5,
        reopen_max_s: float = 30.0,
        stop_event: threading.Event,
    ) -> None:
        super().__init__(name="capture", daemon=True)
        self._open_fn = open_fn
        self._min, self._max = reopen_min_s, reopen_max_s
        self._stop_event = stop_event
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken = -1  # index of the newest frame a consumer has seen
        self._seq = 0  # our own frame counter: sources restart their index on reopen
        self._dropped = 0
        self._state = SourceState.CONNECTING
        self._message = "connecting to the camera"
        self._fps = 0.0
        self.reopens = 0

    # -- consumer side -------------------------------------------------------------------

    def latest(self) -> Frame | None:
        with self._cond:
            return self._latest

    def wait_next(self, after_index: int, timeout: float) -> Frame | None:
        """Block until a frame newer than `after_index` exists (or timeout / stop)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: (
                    (self._latest is not None and self._latest.index > after_index)
                    or self._stop_event.is_set()
                ),
                timeout,
            )
            if not ok or self._latest is None or self._latest.index <= after_index:
                return None
            self._taken = self._latest.index
            return self._latest

    def status(self) -> SourceStatus:
        with self._cond:
            return SourceStatus(self._state, self._message, self._dropped, round(self._fps, 1))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        with self._cond:
            self._cond.notify_all()
        if self.is_alive():
            self.join(timeout)

    # -- capture side --------------------------------------------------------------------

    def _set_state(self, state: SourceState, message: str) -> None:
        with self._cond:
            self._state, self._message = state, message
            self._cond.notify_all()

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._latest is not None and self._latest.index > self._taken:
                self._dropped += 1  # the consumer was busy; the older frame is gone
            self._latest = Frame(self._seq, frame.t, frame.image)
            self._seq += 1
            self._cond.notify_all()

    def run(self) -> None:
        delay = self._min
        while not self._stop_event.is_set():
            try:
                source = self._open_fn()
            except SourceError as exc:
                self._retry_message(str(exc), delay)
                if self._stop_event.wait(delay):
                    break
                delay = min(delay * 2, self._max)
                continue
            logger.info("source opened: %s", source.description)
            self._set_state(SourceState.OK, source.description)
            try:
                ended = self._read_loop(source)
            finally:
                source.close()
            if ended:
                self._set_state(SourceState.ENDED, f"{source.description}: end of recording")
                logger.info("source ended: %s", source.description)
                return
            if self._stop_event.is_set():
                break
            self.reopens += 1
            delay = self._min  # it worked once: start the backoff afresh
            self._retry_message(f"{source.description}: lost", delay)
            if self._stop_event.wait(delay):
                break
            delay = min(delay * 2, self._max)
        with self._cond:
            self._cond.notify_all()

    def _retry_message(self, reason: str, delay: float) -> None:
        logger.warning("%s; retrying in %.1f s", reason, delay)
        self._set_state(
            SourceState.UNAVAILABLE,
            f"camera unavailable, retrying in {delay:.0f} s"
            if delay >= 10
            else f"camera unavailable, retrying in {delay:.1f} s",
        )

    def _read_loop(self, source: FrameSource) -> bool:
        """Read until stop or failure. True when a non-live source ended normally."""
        t_prev = time.monotonic()
        while not self._stop_event.is_set():
            try:
                frame = source.read()
            except SourceError as exc:
                logger.warning("%s", exc)
                return False
            except Exception:  # a driver hiccup must not kill the capture thread
                logger.exception("reading %s failed", source.description)
                return False
            if frame is None:
                return not source.is_live
            now = time.monotonic()
            dt = now - t_prev
            t_prev = now
            if dt > 0:
                self._fps = 0.9 * self._fps + 0.1 * (1.0 / dt) if self._fps else 1.0 / dt
            self._publish(frame)
        return False
