"""Broker outages against a real Mosquitto: the kiosk queues intervals, reconnects within 10 s of
the broker's return, delivers every queued interval in order, and its counters stay continuous."""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from installation.mqtt.publisher import SHORT_SESSIONS_SAID
from tests.mqtt_fixtures import Recorder, feed_visitors, make_publisher, run_broker
from tests.waiting import wait_until

BASE = "bias-mirror/foyer-1"


def _dedup(payloads: list[bytes]) -> list[dict[str, Any]]:
    # At-least-once: an interval in flight at the outage may arrive twice; drop repeats.
    by_seq = {s["seq"]: s for s in (json.loads(p) for p in payloads)}
    return [by_seq[k] for k in sorted(by_seq)]


def _outage(tmp_path: Path, seconds: float, queue_max: int = 1440) -> list[dict[str, Any]]:
    """Run a publisher (1 s intervals) through an outage of `seconds`; return all intervals
    received before and after it, repeats removed."""
    with run_broker(tmp_path / "outage") as broker:
        rec = Recorder(broker.port)
        pub, agg = make_publisher(broker.port, queue_max=queue_max)
        pub.start()
        try:
            assert rec.wait(lambda: bool(rec.on(f"{BASE}/stats")), 5)
            rec.close()
            before = rec.on(f"{BASE}/stats")
            broker.stop()
            t_down = time.monotonic()
            while time.monotonic() - t_down < seconds:
                feed_visitors(agg, 1)  # the kiosk goes on; one visitor per 0.5 s
                time.sleep(0.5)
            assert not pub.connected
            assert pub.queued >= min(queue_max, int(seconds) - 1)
            broker.start()
            t_up = time.monotonic()
            rec = Recorder(broker.port)
            assert wait_until(lambda: pub.connected, 12)
            assert time.monotonic() - t_up <= 10  # reconnect target
            assert wait_until(lambda: pub.queued == 0, 10)
            # Retained birth and state again (the broker restarted without persistence).
            late = Recorder(broker.port)
            assert late.wait(lambda: late.on(f"{BASE}/available") == [b"online"])
            assert late.wait(lambda: bool(late.on(f"{BASE}/state")))
            late.close()
            n_queued = min(queue_max, int(seconds) - 1)
            assert rec.wait(lambda: len(_dedup(rec.on(f"{BASE}/stats"))) >= n_queued, 10)
            return _dedup(before + rec.on(f"{BASE}/stats"))
        finally:
            pub.stop()
            rec.close()


def _check_continuous(stats: list[dict[str, Any]]) -> None:
    seqs = [s["seq"] for s in stats]
    assert seqs == list(range(1, len(seqs) + 1))  # no interval lost, across the outage
    assert [s["interval"]["start"] for s in stats[1:]] == [s["interval"]["end"] for s in stats[:-1]]
    total = frames = 0
    for s in stats:
        total += s["sessions"]
        frames += s["frames"]
        assert s["cumulative"]["sessions"] == total
        assert s["cumulative"]["frames"] == frames
    assert len({s["cumulative"]["since"] for s in stats}) == 1


def test_broker_outage_queues_and_delivers(tmp_path: Path) -> None:
    stats = _outage(tmp_path, 5.0)
    _check_continuous(stats)
    assert sum(s["sessions"] for s in stats) >= 8  # the visitors during the outage arrived
    assert all(s["queue_dropped"] == 0 for s in stats)


def test_broker_outage_30s(tmp_path: Path) -> None:
    """The issue's scenario: 30 s without a broker."""
    stats = _outage(tmp_path, 30.0)
    _check_continuous(stats)
    assert len(stats) >= 30


def test_the_queue_is_bounded_and_counts_what_it_dropped(tmp_path: Path) -> None:
    stats = _outage(tmp_path, 6.0, queue_max=3)
    seqs = [s["seq"] for s in stats]
    assert seqs[0] == 1
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(seqs))
    assert gaps >= 2  # the oldest intervals were dropped ...
    assert stats[-1]["queue_dropped"] >= gaps  # ... and counted
    # The cumulative block still holds everything, so a dashboard loses nothing in sum.
    assert stats[-1]["cumulative"]["sessions"] >= 11


def test_two_kiosks_with_one_installation_id_are_named_once_not_logged_every_second(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A config copied to a second kiosk unchanged: the broker hands the client id to each in
    # turn, every second, for ever. It logged two lines a second and never said why.
    with (
        run_broker(tmp_path / "broker") as broker,
        caplog.at_level(logging.INFO, logger="installation.mqtt"),
    ):
        first, first_stats = make_publisher(broker.port)
        second, _ = make_publisher(broker.port)
        first.short_session_s = 2.5  # each lasts about 1 s; a lasting one clears it sooner
        first.start()
        assert first.ready.wait(10)
        second.start()
        try:
            assert wait_until(lambda: first.short_sessions >= 5, 20)
            assert first.problem is not None and "installation_id used twice" in first.problem
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert errors and all("installation_id 'foyer-1'" in e for e in errors)
            assert len(errors) <= 2  # once per kiosk
            said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
            # Connection lost once a minute at most; connected said until the error, then quiet.
            assert sum("connection lost" in m for m in said) <= 2, said
            connected = sum(m.startswith("MQTT connected") for m in said)
            assert connected <= 2 * (SHORT_SESSIONS_SAID + 1), said
        finally:
            second.stop()
        # The other kiosk is gone: once a connection lasts, the problem clears.
        assert wait_until(lambda: first.problem is None, 20)
        first.stop()
    assert first_stats.snapshot().cumulative.errors.get("mqtt_id_conflict") == 1
