"""The one way a test waits: on a predicate, with a timeout. Never a fixed sleep: a sleep is
either too short on a busy machine (a flaky failure) or longer than needed everywhere else."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, poll: float = 0.02) -> bool:
    """True as soon as `predicate()` is; False if it still is not after `timeout` seconds (it
    is asked once more at the deadline). Use as `assert wait_until(lambda: ..., 5)`."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
