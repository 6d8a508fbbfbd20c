"""Stats, state and commands over MQTT against a real Mosquitto on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from installation.config import MqttConfig, PrivacyConfig, TlsConfig
from installation.monitor import KioskBoard
from installation.mqtt import MqttPublisher
from installation.stats import StatsAggregator
from installation.types import FrameResult, Prediction, Region
from tests.mqtt_fixtures import Broker, Recorder, run_broker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with run_broker(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def recorder(broker: Broker) -> Iterator[Recorder]:
    rec = Recorder(broker.port)
    yield rec
    rec.close()


class Kiosk:
    """The kiosk side of the contract: state, and commands applied by the kiosk."""

    def __init__(self) -> None:
        self.language = "en"
        self.paused = False
        self.calls: list[tuple[str, object]] = []

    def state(self) -> dict[str, Any]:
        return {"language": self.language, "paused": self.paused, "backend": "litert-cpu"}

    def command(self, name: str, value: object) -> tuple[bool, str]:
        self.calls.append((name, value))
        if name == "language":
            self.language = str(value)
        self.paused = name == "pause" if name in ("pause", "resume") else self.paused
        return True, f"{name} done"


def make_publisher(
    port: int, kiosk: Kiosk, iid: str = "foyer-1", **cfg: Any
) -> tuple[MqttPublisher, StatsAggregator]:
    agg = StatsAggregator(k_min_sessions=2, presence_min_s=0.1, presence_gap_s=0.5)
    settings = {"port": port, "stats_interval_s": 1, "keepalive_s": 5, **cfg}
    pub = MqttPublisher(
        MqttConfig(**settings),
        iid,
        agg,
        state=kiosk.state,
        on_command=kiosk.command,
        privacy=PrivacyConfig(k_min_sessions=2),
    )
    return pub, agg


def feed_visitors(agg: StatsAggregator, n: int) -> None:
    t = time.monotonic()
    for _ in range(n):
        for _ in range(5):
            agg.on_result(
                FrameResult(
                    0,
                    t,
                    t,
                    Region(0, 0, 1, 1),
                    {
                        "left": Prediction(0.2, False, 0.0, 0.3),
                        "right": Prediction(0.9, True, 0.0, 0.4, latent=np.ones(4, np.float32)),
                    },
                )
            )
            t += 0.05
        t += 2.0
        agg.on_result(
            FrameResult(
                0,
                t,
                t,
                Region(0, 0, 1, 1),
                {
                    "left": Prediction(0.1, False, 0.0, 0.3),
                    "right": Prediction(0.1, False, 0.0, 0.3),
                },
            )
        )


def test_birth_state_discovery_and_stats(broker: Broker, recorder: Recorder) -> None:
    kiosk = Kiosk()
    pub, agg = make_publisher(broker.port, kiosk)
    pub.start()
    try:
        assert recorder.wait(lambda: recorder.on("bias-mirror/foyer-1/available") == [b"online"])
        feed_visitors(agg, 3)
        assert recorder.wait(lambda: len(recorder.on("bias-mirror/foyer-1/stats")) >= 1, 5)
        stats = [json.loads(p) for p in recorder.on("bias-mirror/foyer-1/stats")]
        first = next(s for s in stats if s["sessions"] > 0)
        assert first["schema"] == 1
        assert first["sessions"] == 3
        assert first["models"]["right"]["face_rate"] > first["models"]["left"]["face_rate"]
        assert first["backend"] == "unknown" and "rss_mb" in first and "uptime_s" in first
        disc = [
            t
            for t, _, r in recorder.messages
            if t.startswith("homeassistant/sensor/") and r is False
        ]
        assert len(disc) >= 5
        cfg = json.loads(recorder.on(disc[0])[0])
        assert cfg["availability_topic"] == "bias-mirror/foyer-1/available"
        assert cfg["device"]["identifiers"] == ["bias_mirror_foyer-1"]
    finally:
        pub.stop()
    assert recorder.wait(lambda: recorder.on("bias-mirror/foyer-1/available")[-1:] == [b"offline"])
    # Retained: a late subscriber gets state and offline at once.
    late = Recorder(broker.port)
    try:
        assert late.wait(lambda: bool(late.on("bias-mirror/foyer-1/state")))
        assert json.loads(late.on("bias-mirror/foyer-1/state")[0])["language"] == "en"
        assert late.on("bias-mirror/foyer-1/available") == [b"offline"]
    finally:
        late.close()


def test_k_anonymity_on_the_wire(broker: Broker, recorder: Recorder) -> None:
    pub, agg = make_publisher(broker.port, Kiosk())
    pub.start()
    try:
        feed_visitors(agg, 1)  # one visitor, below k = 2
        assert recorder.wait(lambda: len(recorder.on("bias-mirror/foyer-1/stats")) >= 1, 5)
    finally:
        pub.stop()
    stats = [json.loads(p) for p in recorder.on("bias-mirror/foyer-1/stats")]
    lone = next(s for s in stats if s["sessions"] == 1)
    assert "models" not in lone and "disagreement_rate" not in lone


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
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("topic", "payload", "ok"),
    [
        ("language", b"de", True),
        ("language", b'{"language": "fr"}', True),
        ("language", b"klingon", False),
        ("language", b"\xff\xfe\x00binary", False),
        ("language", b"x" * 10_000, False),
        ("language", b"{not json", False),
        ("pause", b"", True),
        ("pause", b"[1, 2]", False),
        ("resume", b"{}", True),
        ("selfdestruct", b"now", False),
    ],
)
def test_commands_are_validated(
    broker: Broker, recorder: Recorder, topic: str, payload: bytes, ok: bool
) -> None:
    kiosk = Kiosk()
    pub, _ = make_publisher(broker.port, kiosk)
    pub.start()
    try:
        assert pub.ready.wait(10)
        recorder.client.publish(f"bias-mirror/foyer-1/cmd/{topic}", payload, qos=1)
        assert recorder.wait(lambda: bool(recorder.on("bias-mirror/foyer-1/cmd/result")))
        result = json.loads(recorder.on("bias-mirror/foyer-1/cmd/result")[0])
        assert result["ok"] is ok, result
        assert result["message"]
        assert bool(kiosk.calls) is ok  # bad payloads never reach the kiosk
        if ok and topic == "language":
            assert recorder.wait(
                lambda: any(
                    json.loads(p)["language"] != "en"
                    for p in recorder.on("bias-mirror/foyer-1/state")
                )
            )
        assert pub.connected  # garbage did not break the client
    finally:
        pub.stop()


def test_bad_credentials_stop_retrying(tmp_path: Path) -> None:
    folder = tmp_path / "auth"
    folder.mkdir()
    pw = folder / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "kiosk", "right"], check=True)
    pw.chmod(0o644)
    secret = tmp_path / "secret"
    secret.write_text("wrong\n")
    with run_broker(folder, f"allow_anonymous false\npassword_file {pw}") as broker:
        pub, _ = make_publisher(broker.port, Kiosk(), username="kiosk", password_file=secret)
        pub.start()
        try:
            deadline = time.monotonic() + 10
            while not pub.auth_failed and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pub.auth_failed and not pub.connected
            time.sleep(3)  # would be several reconnects with a 1 s backoff
            log = (folder / "broker.log").read_text()
            assert log.count("not authorised") + log.count("not authorized") <= 1
        finally:
            pub.stop()
        secret.write_text("right\n")
        pub, _ = make_publisher(broker.port, Kiosk(), username="kiosk", password_file=secret)
        pub.start()
        try:
            deadline = time.monotonic() + 10
            while not pub.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pub.connected
        finally:
            pub.stop()


def test_tls_with_a_self_signed_ca(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    d.mkdir()

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    )
    for f in d.iterdir():
        f.chmod(0o644)
    extra = (
        f"allow_anonymous true\ncafile {d / 'ca.crt'}\ncertfile {d / 'server.crt'}\n"
        f"keyfile {d / 'server.key'}\n"
    )
    with run_broker(d, extra) as broker:
        pub, _ = make_publisher(broker.port, Kiosk(), tls=TlsConfig(ca_file=d / "ca.crt"))
        pub.start()
        try:
            deadline = time.monotonic() + 10
            while not pub.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pub.connected
        finally:
            pub.stop()


def _outage(tmp_path: Path, seconds: float) -> None:
    folder = tmp_path / "outage"
    with run_broker(folder) as broker:
        rec = Recorder(broker.port)
        pub, agg = make_publisher(broker.port, Kiosk())
        pub.start()
        try:
            assert rec.wait(lambda: len(rec.on("bias-mirror/foyer-1/stats")) >= 1, 5)
            rec.close()
            broker.stop()
            t_down = time.monotonic()
            while time.monotonic() - t_down < seconds:
                feed_visitors(agg, 1)
                time.sleep(0.5)
            assert not pub.connected and pub.queued >= int(seconds) - 1
            broker.start()
            t_up = time.monotonic()
            rec = Recorder(broker.port)
            assert rec.wait(lambda: pub.connected, 12)
            assert time.monotonic() - t_up <= 10  # reconnect target
            assert rec.wait(lambda: pub.queued == 0, 10)
            assert rec.wait(
                lambda: len(rec.on("bias-mirror/foyer-1/stats")) >= int(seconds) - 1, 10
            )
            received = [json.loads(p) for p in rec.on("bias-mirror/foyer-1/stats")]
            # At-least-once: an interval in flight at the outage may arrive twice; drop repeats.
            by_seq = {s["seq"]: s for s in received}
            stats = [by_seq[k] for k in sorted(by_seq)]
            seqs = [s["seq"] for s in stats]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no interval lost
            total = stats[0]["cumulative"]["sessions"] - stats[0]["sessions"]
            for s in stats:
                total += s["sessions"]
                assert s["cumulative"]["sessions"] == total
        finally:
            pub.stop()
            rec.close()


def test_broker_outage_queues_and_delivers(tmp_path: Path) -> None:
    _outage(tmp_path, 5.0)


def test_broker_outage_30s(tmp_path: Path) -> None:
    _outage(tmp_path, 30.0)


def test_fifty_kiosks_and_the_monitor_model(broker: Broker) -> None:
    board = KioskBoard()
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    mon = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="monitor-test")
    mon.on_connect = lambda c, u, f, r, p: [
        c.subscribe(f"bias-mirror/+/{k}", qos=1) for k in ("available", "stats", "state")
    ]
    mon.on_message = lambda c, u, m: board.feed(m.topic, bytes(m.payload))
    mon.connect("127.0.0.1", broker.port)
    mon.loop_start()
    pubs = []
    try:
        for i in range(50):
            pub, agg = make_publisher(broker.port, Kiosk(), iid=f"room-{i:02d}", discovery=False)
            feed_visitors(agg, 2)
            pub.start()
            pubs.append(pub)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = board.snapshot()
            if len(rows) == 50 and all(r.online and r.visitors_today >= 2 for r in rows):
                break
            time.sleep(0.1)
        rows = board.snapshot()
        assert len(rows) == 50
        assert all(r.online for r in rows)
        assert all(r.visitors_today == 2 for r in rows)
        assert board.bad_messages == 0
        pubs[7].stop()
        assert_eventually(lambda: board.rows["room-07"].online is False)
    finally:
        for p in pubs:
            p.stop()
        mon.loop_stop()


def assert_eventually(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not pred():
        time.sleep(0.05)
    assert pred()


def assert_no_lists(v: object, allow: bool) -> None:
    """Aggregates are scalars; a list would be a per-frame or per-visitor series."""
    assert allow or not isinstance(v, list)
    if isinstance(v, dict):
        for x in v.values():
            assert_no_lists(x, allow)


def test_every_payload_is_anonymous(broker: Broker, recorder: Recorder) -> None:
    kiosk = Kiosk()
    pub, agg = make_publisher(broker.port, kiosk)
    pub.start()
    try:
        feed_visitors(agg, 4)
        assert pub.ready.wait(10)
        recorder.client.publish("bias-mirror/foyer-1/cmd/language", b"de", qos=1)
        assert recorder.wait(lambda: len(recorder.on("bias-mirror/foyer-1/stats")) >= 2, 6)
    finally:
        pub.stop()
    own = [(t, p) for t, p, _ in recorder.messages if not t.endswith("/cmd/language")]
    assert own
    for topic, payload in own:
        assert len(payload) < 4000, topic  # no image, crop or latent fits in here anyway
        text = payload.decode("utf-8")  # all text: no binary image data
        for word in ("latent", "rarity", "region", "frame_index", "t_capture", "crop", "image"):
            assert word not in text, (topic, word)
        if text.startswith("{"):
            assert_no_lists(json.loads(text), allow=topic.startswith("homeassistant/"))
    for p in recorder.on("bias-mirror/foyer-1/stats"):
        s = json.loads(p)
        for key in ("start", "end"):
            assert s["interval"][key].endswith("Z") and len(s["interval"][key]) == 20


def test_publish_state_cost_on_the_render_thread(benchmark, broker: Broker) -> None:  # type: ignore[no-untyped-def]
    pub, _ = make_publisher(broker.port, Kiosk())
    pub.start()
    try:
        assert_eventually(lambda: pub.connected)
        benchmark(pub.publish_state)
    finally:
        pub.stop()


def test_monitor_once_shows_the_kiosks(broker: Broker) -> None:
    pub, agg = make_publisher(broker.port, Kiosk(), iid="hall-3")
    pub.start()
    try:
        assert pub.ready.wait(10)
        feed_visitors(agg, 2)
        time.sleep(1.5)  # one stats interval
        pub.stop()
        res = subprocess.run(
            [sys.executable, "-m", "installation", "monitor", "--port", str(broker.port), "--once"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"COLUMNS": "140", "PATH": "/usr/bin:/bin"},
        )
    finally:
        pub.stop()
    assert res.returncode == 0, res.stderr
    assert "hall-3" in res.stdout and "offline" in res.stdout


def test_sample_acl_confines_each_kiosk(tmp_path: Path) -> None:
    """The shipped ACL: a kiosk writes only its own subtree; staff read but cannot command."""
    folder = tmp_path / "acl"
    folder.mkdir()
    pw = folder / "passwd"
    for user in ("foyer-1", "staff"):
        flag = ["-c"] if user == "foyer-1" else []
        subprocess.run(["mosquitto_passwd", "-b", *flag, str(pw), user, "pw"], check=True)
    pw.chmod(0o644)
    acl = (ROOT / "systemd" / "mosquitto" / "bias-mirror.acl").read_text()
    (folder / "acl").write_text(acl)
    extra = f"allow_anonymous false\npassword_file {pw}\nacl_file {folder / 'acl'}"
    with run_broker(folder, extra) as broker:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        got: list[str] = []
        staff = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="staff")
        staff.username_pw_set("staff", "pw")
        staff.on_connect = lambda c, u, f, r, p: c.subscribe("bias-mirror/#", qos=1)
        staff.on_message = lambda c, u, m: got.append(m.topic)
        staff.connect("127.0.0.1", broker.port)
        staff.loop_start()
        kiosk = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="foyer-1")
        kiosk.username_pw_set("foyer-1", "pw")
        kiosk.connect("127.0.0.1", broker.port)
        kiosk.loop_start()
        try:
            time.sleep(0.5)
            kiosk.publish("bias-mirror/foyer-1/stats", "{}", qos=1).wait_for_publish(5)
            kiosk.publish("bias-mirror/other-kiosk/stats", "{}", qos=1).wait_for_publish(5)
            staff.publish("bias-mirror/foyer-1/cmd/pause", "", qos=1).wait_for_publish(5)
            assert_eventually(lambda: "bias-mirror/foyer-1/stats" in got)
            time.sleep(0.5)
            assert "bias-mirror/other-kiosk/stats" not in got
            assert "bias-mirror/foyer-1/cmd/pause" not in got
        finally:
            for c in (staff, kiosk):
                c.loop_stop()
                c.disconnect()
