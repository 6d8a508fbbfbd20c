"""The bounded stats queue and command validation, without a broker."""

from __future__ import annotations

import pytest

from installation.mqtt.commands import parse_command
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
