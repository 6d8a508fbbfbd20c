"""FaultLog: a failure a worker loop survives is logged with its traceback at most once a
minute, the rest counted in the next line, and every one counted for staff."""

from __future__ import annotations

import logging

import pytest

from installation.faults import FaultLog


def test_a_failure_on_every_frame_is_one_line_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    t = [0.0]
    kinds: list[str] = []
    log = FaultLog(logging.getLogger("test.faults"), "pipeline", kinds.append, clock=lambda: t[0])
    with caplog.at_level(logging.ERROR, logger="test.faults"):
        for i in range(600):  # a minute of failures at 10 a second
            t[0] = i / 10
            try:
                raise RuntimeError(f"bad frame {i}")
            except RuntimeError:
                log.failed("pipeline failed on frame %d", i)
        t[0] = 60.0
        try:
            raise RuntimeError("bad frame 600")
        except RuntimeError:
            log.failed("pipeline failed on frame %d", 600)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "pipeline failed on frame 0",
        "pipeline failed on frame 600 (599 more since the last line)",
    ]
    assert all(r.exc_info is not None for r in caplog.records)  # each with its traceback
    assert kinds == ["pipeline"] * 601 and log.total == 601
