"""Stats, state, discovery and commands over MQTT against a real Mosquitto on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installation.mqtt.client import build_client, guard_callbacks
from installation.mqtt.commands import COMMAND_BURST, COMMAND_RATE, CommandGate
from installation.mqtt.topics import Topics
from tests.mqtt_fixtures import (
    Broker,
    Kiosk,
    Recorder,
    feed_visitors,
    make_publisher,
    run_broker,
)
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
BASE = "bias-mirror/foyer-1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with run_broker(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def recorder(broker: Broker) -> Iterator[Recorder]:
    rec = Recorder(broker.port)
    yield rec
    rec.close()


# render_ms_p95 and latency_ms_p95: absent without a display, and withheld below k.
STATS_KEYS = {
    "schema", "seq", "interval", "k_min_sessions", "sessions", "sessions_ended", "frames",
    "present_frames", "fps", "dropped_frames", "inference_ms",
    "backend", "errors", "uptime_s", "cpu_temp_c", "rss_mb", "queue_dropped", "cumulative",
}  # fmt: skip


def test_birth_state_discovery_and_stats_schema(broker: Broker, recorder: Recorder) -> None:
    kiosk = Kiosk()
    pub, agg = make_publisher(broker.port, kiosk)
    agg.set_backend("litert-cpu")
    pub.start()
    try:
        assert recorder.wait(lambda: recorder.on(f"{BASE}/available") == [b"online"])
        assert pub.ready.wait(5)
        feed_visitors(agg, 3)
        assert recorder.wait(lambda: recorder.has_stats(BASE, 3))
    finally:
        pub.stop()
    stats = [json.loads(p) for p in recorder.on(f"{BASE}/stats")]
    first = next(s for s in stats if s["sessions"] == 3)
    assert set(first) >= STATS_KEYS, STATS_KEYS - set(first)
    assert first["schema"] == 1 and first["backend"] == "litert-cpu"
    assert first["models"]["right"]["face_rate"] == 1.0
    assert first["models"]["left"]["face_rate"] == 0.0
    assert first["disagreement_rate"] == 1.0
    assert [s["seq"] for s in stats] == list(range(1, len(stats) + 1))
    # The order on connect: birth, then state, then discovery.
    topics = [t for t, _, _ in recorder.messages]
    i_birth, i_state = topics.index(f"{BASE}/available"), topics.index(f"{BASE}/state")
    disc = [t for t in topics if t.startswith("homeassistant/sensor/foyer-1/")]
    assert i_birth < i_state < topics.index(disc[0]) and len(disc) >= 8
    cfg = json.loads(recorder.on(disc[0])[0])
    assert cfg["availability_topic"] == f"{BASE}/available"
    assert cfg["state_topic"] == f"{BASE}/stats"
    assert cfg["device"]["identifiers"] == ["bias_mirror_foyer-1"] and cfg["expire_after"] == 3
    configs = {t.split("/")[3]: json.loads(recorder.on(t)[0]) for t in disc}
    for metric, c in configs.items():
        # Current Home Assistant: default_entity_id (object_id is gone since 2026.4), an origin.
        assert "object_id" not in c and c["default_entity_id"] == f"sensor.{c['unique_id']}"
        assert c["origin"]["name"] == "Bias Mirror", metric
    assert configs["uptime"]["device_class"] == "duration"
    assert configs["dropped"]["state_class"] == "measurement"
    assert configs["rss"]["entity_category"] == "diagnostic"
    assert "entity_category" not in configs["sessions"]  # the exhibit's own figures stay primary
    assert "missed_by_both_rate" in configs["missed_by_both"]["value_template"]
    # The camera as a problem binary sensor on the retained state (camera: ok | lost).
    problem_topic = "homeassistant/binary_sensor/foyer-1/camera/config"
    camera = json.loads(recorder.on(problem_topic)[0])
    assert camera["device_class"] == "problem" and camera["state_topic"] == f"{BASE}/state"
    assert camera["entity_category"] == "diagnostic"
    assert camera["default_entity_id"] == f"binary_sensor.{camera['unique_id']}"
    assert camera["device"] == configs["uptime"]["device"]  # the same device as the sensors
    # The clean stop says goodbye; the broker forwards it to this subscriber asynchronously.
    assert recorder.wait(lambda: recorder.on(f"{BASE}/available")[-1:] == [b"offline"])
    # Retained: a late subscriber gets state, discovery and `offline` at once.
    late = Recorder(broker.port)
    try:
        topics_wanted = (f"{BASE}/state", disc[-1], f"{BASE}/available", f"{BASE}/stats")
        assert late.wait(lambda: all(late.on(t) for t in topics_wanted))
        state = json.loads(late.on(f"{BASE}/state")[0])
        assert state["language"] == "en" and state["models"]["right"]["sha256"] == "cd" * 32
        assert late.on(f"{BASE}/available") == [b"offline"]
        assert all(r for t, _, r in late.messages)  # only retained ones ...
        assert len(late.on(f"{BASE}/stats")) == 1  # ... among them the newest interval
    finally:
        late.close()


def test_k_anonymity_on_the_wire(broker: Broker, recorder: Recorder) -> None:
    pub, agg = make_publisher(broker.port, k=3)
    pub.start()
    try:
        assert pub.ready.wait(5)
        feed_visitors(agg, 2)  # two visitors, below k = 3

        def fed() -> bool:  # the interval holding those frames went out
            return any(json.loads(p)["frames"] > 0 for p in recorder.on(f"{BASE}/stats"))

        assert recorder.wait(fed)
    finally:
        pub.stop()
    stats = [json.loads(p) for p in recorder.on(f"{BASE}/stats")]
    assert all(s["k_min_sessions"] == 3 for s in stats)
    for s in stats:
        # Held back below k: no count that could time the two visits, not even in the totals.
        assert s["sessions"] == 0 and s["present_frames"] == 0 and s["sessions_ended"] == 0
        assert s["cumulative"]["sessions"] == 0
        assert "models" not in s and "disagreement_rate" not in s and "mean_dwell_s" not in s
        assert s["cumulative"]["released"]["faces"] == {"left": 0, "right": 0}


def test_last_will_when_the_kiosk_is_killed(broker: Broker, recorder: Recorder) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "kiosk_publisher.py"), str(broker.port), "killed-1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        topic = "bias-mirror/killed-1/available"
        assert recorder.wait(lambda: recorder.on(topic) == [b"online"], 15)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        # keepalive 5 s: the broker notices within 1.5 x keepalive and sends the will.
        assert recorder.wait(lambda: recorder.on(topic)[-1:] == [b"offline"], 15)
        assert "killed-1" in broker.log and "will" in broker.log.lower()
    finally:
        proc.kill()


# (command, payload, accepted)
COMMANDS = [
    ("language", b"de", True),
    ("language", b'"fr"', True),
    ("language", b'{"language": "en"}', True),
    ("language", b"klingon", False),
    ("language", b"\xff\xfe\x00binary", False),
    ("language", b"x" * 100_000, False),
    ("language", b"{not json", False),
    ("language", b'{"language": ["de"]}', False),
    ("language", b"[" * 5000, False),
    ("pause", b"{}", True),
    ("pause", b"[1, 2]", False),
    ("pause", b'{"for": 10}', False),  # no option but a note: never a silent pause for good
    ("pause", b"now", False),
    ("resume", b'{"reason": "staff"}', True),
    ("selfdestruct", b"now", False),
    ("n" * 60_000, b"now", False),  # a 60 KB command name is not echoed back
]


def test_commands_are_validated_and_answered(broker: Broker, recorder: Recorder) -> None:
    kiosk = Kiosk()
    pub, _ = make_publisher(broker.port, kiosk)
    # This test sends every case back to back, faster than staff would: a budget for all of
    # them (the budget itself: test_a_flood_of_valid_commands_is_limited_then_taken_again).
    pub.commands = CommandGate(burst=len(COMMANDS) + 5)
    pub.start()
    try:
        assert pub.ready.wait(10)
        for i, (name, payload, ok) in enumerate(COMMANDS):
            calls = len(kiosk.calls)
            recorder.client.publish(f"{BASE}/cmd/{name}", payload, qos=1)
            assert recorder.wait(lambda n=i: len(recorder.on(f"{BASE}/cmd/result")) > n, 5), name
            raw = recorder.on(f"{BASE}/cmd/result")[i]
            assert len(raw) < 400  # never an echo of unbounded input
            answer = json.loads(raw)
            assert answer["command"] == name[:40] and answer["ok"] is ok, (payload[:30], answer)
            assert answer["message"] and len(answer["message"]) < 200
            assert len(kiosk.calls) == calls + ok  # bad payloads never reach the kiosk
        assert kiosk.calls == [
            ("language", "de"),
            ("language", "fr"),
            ("language", "en"),
            ("pause", None),
            ("resume", None),
        ]
        assert not kiosk.paused and pub.connected  # garbage did not break the client
        # Accepted commands republish the retained state.
        states = [json.loads(p) for p in recorder.on(f"{BASE}/state")]
        assert [s["language"] for s in states][:1] == ["en"] and len(states) >= 3
        # A retained command is applied live, but would replay on every reconnect: refused then.
        recorder.client.publish(f"{BASE}/cmd/pause", b"{}", qos=1, retain=True)
        n = len(COMMANDS)
        assert recorder.wait(lambda: len(recorder.on(f"{BASE}/cmd/result")) > n)
        assert kiosk.paused
    finally:
        pub.stop()
    again = Kiosk()
    pub, _ = make_publisher(broker.port, again)
    pub.start()
    try:
        assert recorder.wait(lambda: len(recorder.on(f"{BASE}/cmd/result")) > n + 1)
        assert "retain" in json.loads(recorder.on(f"{BASE}/cmd/result")[n + 1])["message"]
        assert not again.calls
        # The fix the answer gives, an empty retained message, deletes the retained one; the
        # broker forwards it live as well, and it must not pause (or resume) the exhibit.
        recorder.client.publish(f"{BASE}/cmd/pause", b"", qos=1, retain=True).wait_for_publish(5)
        recorder.client.publish(f"{BASE}/cmd/language", b"fr", qos=1).wait_for_publish(5)
        assert recorder.wait(lambda: len(recorder.on(f"{BASE}/cmd/result")) > n + 2)
        answers = [json.loads(p) for p in recorder.on(f"{BASE}/cmd/result")[n + 2 :]]
        assert [a["command"] for a in answers] == ["language"]  # the empty one is not answered
        assert again.calls == [("language", "fr")] and not again.paused
    finally:
        pub.stop()


def test_state_is_published_once_per_change(broker: Broker, recorder: Recorder) -> None:
    """A command that changes nothing, or a second request for the same state, sends no second
    retained state; each change sends exactly one, already holding the change."""
    kiosk = Kiosk()
    pub, _ = make_publisher(broker.port, kiosk)
    pub.start()
    try:
        assert pub.ready.wait(10)

        def states() -> list[dict[str, Any]]:
            return [json.loads(p) for p in recorder.on(f"{BASE}/state")]

        assert recorder.wait(lambda: len(states()) == 1)
        recorder.client.publish(f"{BASE}/cmd/language", b"de", qos=1)
        assert recorder.wait(lambda: len(states()) == 2)
        pub.publish_state()  # nothing changed since
        pub.publish_state()
        recorder.client.publish(f"{BASE}/cmd/language", b"de", qos=1)  # the same language again
        recorder.client.publish(f"{BASE}/cmd/pause", b"{}", qos=1)  # then a real change
        assert recorder.wait(lambda: any(s["paused"] for s in states()))
        assert [(s["language"], s["paused"]) for s in states()] == [
            ("en", False),
            ("de", False),
            ("de", True),
        ]
    finally:
        pub.stop()


def test_a_failing_command_handler_is_answered(broker: Broker, recorder: Recorder) -> None:
    def broken(name: str, value: object) -> tuple[bool, str]:
        raise RuntimeError("kiosk bug")

    pub, agg = make_publisher(broker.port)
    pub._on_command = broken
    pub.start()
    try:
        assert pub.ready.wait(10)
        recorder.client.publish(f"{BASE}/cmd/resume", b"{}", qos=1)
        assert recorder.wait(lambda: bool(recorder.on(f"{BASE}/cmd/result")))
        assert json.loads(recorder.on(f"{BASE}/cmd/result")[0])["ok"] is False
        feed_visitors(agg, 2)  # k = 2
        assert recorder.wait(lambda: recorder.has_stats(BASE, 2))
    finally:
        pub.stop()


def test_topics() -> None:
    t = Topics("bias-mirror", "foyer-1")
    assert t.command_name("bias-mirror/foyer-1/cmd/pause") == "pause"
    assert t.command_name("bias-mirror/foyer-1/cmd/result") is None
    assert t.command_name("bias-mirror/foyer-2/cmd/pause") is None
    assert wait_until(lambda: True)


def _no_lists(v: object) -> bool:
    """Aggregates are scalars; a list would be a per-frame or per-visitor series."""
    if isinstance(v, list):
        return False
    return all(_no_lists(x) for x in v.values()) if isinstance(v, dict) else True


def test_every_published_payload_is_anonymous(broker: Broker, recorder: Recorder) -> None:
    """Scans everything the kiosk sent during a session with visitors, commands and a stop."""
    pub, agg = make_publisher(broker.port, k=2)
    pub.start()
    try:
        assert pub.ready.wait(10)
        feed_visitors(agg, 4)
        agg.on_render(5.0, 30.0)
        recorder.client.publish(f"{BASE}/cmd/language", b"de", qos=1)
        assert recorder.wait(lambda: recorder.has_stats(BASE, 4))
        feed_visitors(agg, 1)
    finally:
        pub.stop()
    sent = [(t, p) for t, p, _ in recorder.messages if "/cmd/" not in t or t.endswith("/result")]
    assert {t.split("/")[0] for t, _ in sent} == {"bias-mirror", "homeassistant"}
    assert any("models" in json.loads(p) for t, p in sent if t.endswith("/stats"))
    for topic, payload in sent:
        assert len(payload) < 2000, topic  # no image, crop or latent fits in here
        text = payload.decode("utf-8")  # all text: no binary image data
        for word in ("latent", "rarity", "region", "frame_index", "t_capture", "crop", "image"):
            assert word not in text, (topic, word)
        if text.startswith("{") and not topic.startswith("homeassistant/"):
            assert _no_lists(json.loads(text)), topic
        # Timestamps only as whole-second interval boundaries: no fractions of a second.
        assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", text), topic
        assert not re.search(r"\b1[6-9]\d{8}(\.\d+)?\b", text), topic  # no epoch times
    for p in recorder.on(f"{BASE}/stats"):
        s = json.loads(p)
        for key in ("start", "end"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["interval"][key])
        if s["sessions"] < 2:
            assert "models" not in s and "disagreement_rate" not in s


def test_stats_publish_cost_while_the_broker_is_down(benchmark) -> None:  # type: ignore[no-untyped-def]
    """What one stats interval costs the worker thread (snapshot, JSON, queue, flush) and so,
    through the GIL, at most the render loop; with the broker down (port 1 refuses at once)."""
    pub, agg = make_publisher(1)
    pub.start()
    try:
        feed_visitors(agg, 3)

        def one_interval() -> None:
            pub.queue.put(pub._stats_payload())
            pub._flush()

        benchmark(one_interval)
        assert not pub.connected and pub.queued >= 1
    finally:
        pub.stop(timeout=0.2)


def test_rejected_commands_are_logged_at_a_limited_rate(
    broker: Broker, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    pub, _ = make_publisher(broker.port)
    pub.start()
    try:
        assert pub.ready.wait(10)
        with caplog.at_level(logging.INFO, logger="installation.mqtt"):
            for _ in range(50):  # a flood of garbage from a misbehaving client
                recorder.client.publish(f"{BASE}/cmd/{'x' * 5000}", b"now", qos=1)
            assert wait_until(lambda: pub.commands_seen == 50)
        rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
        assert 1 <= len(rejected) <= 3, rejected
        assert all(len(m) < 400 for m in rejected)  # the name is cut in the log too
        # Answered up to the budget, not 50 times: the flood does not echo back as a flood.
        assert len(recorder.on(f"{BASE}/cmd/result")) <= COMMAND_BURST + 3
    finally:
        pub.stop()
    # The stop logs the count of the flood's tail, which no later rejection would have told.
    assert "more commands rejected" in caplog.records[-1].getMessage()


def test_a_flood_of_valid_commands_is_limited_then_taken_again(
    broker: Broker, recorder: Recorder
) -> None:
    # A script stuck in a loop flipping the language: the screen must not flicker through it.
    # The gate's clock stands still while the flood arrives, so the count does not depend on
    # how fast this machine delivers 100 messages.
    kiosk = Kiosk()
    pub, _ = make_publisher(broker.port, kiosk)
    t = [0.0]
    pub.commands = CommandGate(clock=lambda: t[0])
    pub.start()

    def results() -> list[dict[str, Any]]:
        return [json.loads(p) for p in recorder.on(f"{BASE}/cmd/result")]

    try:
        assert pub.ready.wait(10)
        for i in range(100):
            recorder.client.publish(f"{BASE}/cmd/language", b"de" if i % 2 else b"fr", qos=1)
        assert wait_until(lambda: pub.commands_seen == 100)
        assert len(kiosk.calls) == COMMAND_BURST and pub.commands.dropped == 100 - COMMAND_BURST
        # Each taken one answered, the dropped ones once (with the log line), not 90 times.
        assert recorder.wait(lambda: len(results()) == COMMAND_BURST + 1)
        refused = [r["message"] for r in results() if not r["ok"]]
        assert len(refused) == 1 and refused[0].startswith("too many commands")
        # Half a second later the budget has one command again: staff's next one works.
        t[0] += 1 / COMMAND_RATE
        recorder.client.publish(f"{BASE}/cmd/language", b"en", qos=1)
        assert wait_until(lambda: len(kiosk.calls) == COMMAND_BURST + 1)
        assert kiosk.language == "en"
    finally:
        pub.stop()


def test_an_exception_in_a_callback_does_not_kill_the_network_thread(
    broker: Broker, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    # paho re-raises a callback's exception in its network thread: without the guard, the
    # thread died in on_connect and no message ever arrived, while the caller thought it was up.
    client = build_client(f"guard-{time.time_ns()}")
    subscribed = threading.Event()
    got: list[bytes] = []

    def on_connect(c: Any, u: Any, f: Any, r: Any, p: Any) -> None:
        c.subscribe("guard/#", qos=1)
        raise RuntimeError("a bug in on_connect")

    def on_message(c: Any, u: Any, m: Any) -> None:
        got.append(bytes(m.payload))
        raise ValueError("a bug in on_message")

    client.on_connect = on_connect
    client.on_subscribe = lambda c, u, m, r, p: subscribed.set()
    client.on_message = on_message
    errors: list[str] = []
    guard_callbacks(client, errors.append)
    with caplog.at_level(logging.ERROR, logger="installation.mqtt.client"):
        client.connect_async("127.0.0.1", broker.port)
        client.loop_start()
        try:
            assert subscribed.wait(10)
            for payload in (b"one", b"two"):
                recorder.client.publish("guard/x", payload, qos=1)
            assert wait_until(lambda: got == [b"one", b"two"])
        finally:
            client.disconnect()
            client.loop_stop()
    assert errors == ["on_connect", "on_message", "on_message"]
    assert "a bug in on_connect" in caplog.text  # with its traceback, for the developer


def test_a_failing_state_callback_costs_the_state_not_the_stats(
    broker: Broker, recorder: Recorder
) -> None:
    kiosk = Kiosk()

    def broken_state() -> dict[str, Any]:
        raise KeyError("models")

    kiosk.state = broken_state  # type: ignore[method-assign]
    pub, agg = make_publisher(broker.port, kiosk)
    pub.start()
    try:
        assert pub.ready.wait(10)
        feed_visitors(agg, 3)
        assert recorder.wait(lambda: recorder.has_stats(BASE, 3))
    finally:
        pub.stop()
    assert recorder.on(f"{BASE}/state") == []
    errors = [json.loads(p)["errors"] for p in recorder.on(f"{BASE}/stats")]
    assert any(e.get("mqtt_state") for e in errors)
