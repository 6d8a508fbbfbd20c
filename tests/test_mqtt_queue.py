"""The bounded stats queue, command validation and the command gate, without a broker."""

from __future__ import annotations

import logging

import pytest

from installation.mqtt.commands import CommandGate, parse_command
from installation.mqtt.queue import StatsQueue


class Delivery:
    """Stands in for paho's MQTTMessageInfo (acked when the broker's PUBACK arrived)."""

    def __init__(self) -> None:
        self.acked = False

    def is_published(self) -> bool:
        return self.acked

    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None


def test_oldest_pending_intervals_are_dropped_and_counted() -> None:
    q = StatsQueue(3)
    for i in range(5):
        q.put(f"s{i}")
    assert len(q) == 3 and q.dropped == 2 and q.peek() == "s2"
    d = Delivery()
    q.handed(d)  # s2 given to paho, not yet acked: still counts against the bound
    assert q.peek() == "s3" and len(q) == 3
    q.put("s5")
    assert q.dropped == 3 and q.peek() == "s4"
    d.acked = True
    assert len(q) == 2 and q.unacked == []
    assert q.make_room() == 3  # room for one more without dropping


def test_handed_intervals_are_never_dropped() -> None:
    q = StatsQueue(2)
    held = [Delivery(), Delivery()]
    for i, d in enumerate(held):
        q.put(f"s{i}")
        q.handed(d)
    q.put("s2")  # nothing pending to drop: paho holds the two unacked ones
    assert len(q) == 3 and q.dropped == 0


def test_queue_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"mqtt\.queue_max"):
        StatsQueue(0)


@pytest.mark.parametrize(
    ("name", "payload", "value"),
    [
        ("language", b" de\n", "de"),
        ("language", b'"fr"', "fr"),
        ("language", b'{"language": "en", "extra": 1}', "en"),
        ("pause", b"{}", None),
        ("resume", b'{"reason": "cleaning"}', None),
    ],
)
def test_valid_commands(name: str, payload: bytes, value: object) -> None:
    assert parse_command(name, payload) == (True, value, "")


@pytest.mark.parametrize(
    ("name", "payload", "hint"),
    [
        ("language", b"DE", "must be one of en, de, fr"),
        ("language", b"null", "must be one of"),
        ("language", b'{"language": null}', "must be one of"),
        ("language", b'"de', "not valid JSON"),
        ("language", b"\x80\x81", "not UTF-8"),
        ("language", b"d" * 257, "too long"),
        ("pause", b"true", "takes a JSON object"),
        ("resume", b'"now"', "takes a JSON object"),
        ("pause", b'{"for": 10}', "has no option 'for'"),
        ("pause", b"", "an empty message clears a retained command"),
        ("resume", b"  \n", "an empty message clears a retained command"),
        ("language", b"", 'send de, "de"'),
        ("reboot", b"", "unknown command"),
        ("x" * 500, b"", "unknown command"),
    ],
)
def test_invalid_commands_say_what_is_valid(name: str, payload: bytes, hint: str) -> None:
    ok, value, message = parse_command(name, payload)
    assert not ok and value is None
    assert hint in message and len(message) < 200


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_gate_takes_a_burst_then_the_rate() -> None:
    clock = Clock()
    gate = CommandGate(rate=2.0, burst=4, clock=clock)
    assert [gate.admit() for _ in range(6)] == [True] * 4 + [False] * 2
    clock.t += 0.4  # 0.8 of a command refilled: not yet one
    assert not gate.admit()
    clock.t += 0.1
    assert gate.admit() and not gate.admit()
    clock.t += 3600  # an idle hour refills the burst, no more
    assert gate.budget() == 4 and [gate.admit() for _ in range(5)] == [True] * 4 + [False]
    assert gate.dropped == 5


def test_rejections_are_logged_once_per_window_and_the_rest_counted_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    gate = CommandGate(log_every_s=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="installation.mqtt.commands"):
        assert gate.rejected("reboot", "unknown command")
        assert not any(gate.rejected("reboot", "unknown command") for _ in range(7))
        gate.flush()  # still inside the window: nothing yet
        assert len(caplog.records) == 1
        clock.t += 10  # the flood stopped; no next rejection will come to tell the count
        gate.flush()
        gate.flush()
    assert [r.getMessage() for r in caplog.records] == [
        "MQTT command reboot rejected: unknown command",
        "MQTT: 7 more commands rejected since the last line",
    ]
