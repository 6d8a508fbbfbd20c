"""Logging what repeats without filling the journal, and failures a worker loop survives.

`ThrottledLog`: one line per window at most, the next line carrying the count of those kept
quiet, and `flush()` telling the count of a flood that stopped (the command gate's rejections,
the worker loops' failures). `FaultLog`: a ThrottledLog of tracebacks that also counts each
failure for staff (`stats.errors[kind]`). A loop that fails on every frame (a model that raises
on each crop, a broken heatmap) used to log a traceback ten times a second for as long as it
lasted; now the journal gets one a minute.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

LOG_EVERY_S = 60.0


class ThrottledLog:
    """Thread-safe. `event(message, *args)` logs, or counts while a line went out less than
    `every_s` ago; `flush()` logs `quiet_message % count` once the window has passed."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        level: int = logging.WARNING,
        every_s: float = LOG_EVERY_S,
        quiet_message: str = "%d more since the last line",
        traceback: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger, self._level, self._every_s = logger, level, every_s
        self._quiet_message, self._traceback, self._clock = quiet_message, traceback, clock
        self._lock = threading.Lock()
        self._logged_at = -math.inf
        self._quiet = 0  # events since the last line

    def event(self, message: str, *args: object) -> bool:
        """Log this event (True), or count it for the next line (False). With `traceback`,
        call it inside the `except` block."""
        with self._lock:
            now = self._clock()
            if now - self._logged_at < self._every_s:
                self._quiet += 1
                return False
            quiet, self._quiet, self._logged_at = self._quiet, 0, now
        more = f" ({quiet} more since the last line)" if quiet else ""
        self._logger.log(self._level, message + "%s", *args, more, exc_info=self._traceback)
        return True

    def flush(self, force: bool = False) -> None:
        """Log the count kept quiet once the window has passed (or now, with `force`)."""
        with self._lock:
            now = self._clock()
            if not self._quiet or (not force and now - self._logged_at < self._every_s):
                return
            quiet, self._quiet, self._logged_at = self._quiet, 0, now
        self._logger.log(self._level, self._quiet_message, quiet)


class FaultLog:
    """`failed(message, *args)` from inside an `except` block: the traceback logged at most
    once per `every_s` (ThrottledLog), and every failure told to `count(kind)` (the stats
    aggregator's `count_error`: staff see `errors[kind]`)."""

    def __init__(
        self,
        logger: logging.Logger,
        kind: str,
        count: Callable[[str], None] | None = None,
        every_s: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind, self._count = kind, count
        self._log = ThrottledLog(
            logger, level=logging.ERROR, every_s=every_s, traceback=True, clock=clock
        )
        self.total = 0

    def failed(self, message: str, *args: object) -> None:
        self.total += 1  # one thread per FaultLog (its worker loop)
        self._log.event(message, *args)
        if self._count is not None:
            self._count(self.kind)
