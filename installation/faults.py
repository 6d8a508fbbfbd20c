"""One way a worker loop reports a failure it survives: logged with its traceback the first time
(and again once a minute at most, with the count in between), and counted for staff.

A loop that fails on every frame (a model that raises on each crop, a broken heatmap) logged a
traceback ten times a second for as long as it lasted; now the journal gets one per minute.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

LOG_EVERY_S = 60.0


class FaultLog:
    """`failed(message, *args)` from inside an `except` block: logs or counts, then tells
    `count(kind)` (the stats aggregator's `count_error`: staff see `errors[kind]`)."""

    def __init__(
        self,
        logger: logging.Logger,
        kind: str,
        count: Callable[[str], None] | None = None,
        every_s: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger, self.kind, self._count = logger, kind, count
        self._every_s, self._clock = every_s, clock
        self._lock = threading.Lock()
        self._logged_at = -math.inf
        self._quiet = 0  # failures since the last line
        self.total = 0

    def failed(self, message: str, *args: object) -> None:
        with self._lock:
            self.total += 1
            now = self._clock()
            log = now - self._logged_at >= self._every_s
            if log:
                quiet, self._quiet, self._logged_at = self._quiet, 0, now
            else:
                self._quiet += 1
        if log:
            more = f" ({quiet} more since the last line)" if quiet else ""
            self._logger.exception(message + "%s", *args, more)
        if self._count is not None:
            self._count(self.kind)
