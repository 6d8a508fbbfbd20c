"""A real Mosquitto broker on a free loopback port, a recording subscriber, a test CA, and the
kiosk side of the publisher contract. Shared by tests/test_mqtt*.py and tests/test_monitor.py."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from installation.config import MqttConfig, PrivacyConfig
from installation.mqtt import MqttPublisher
from installation.stats import StatsAggregator
from installation.types import FrameResult, Prediction, Region
from tests.waiting import wait_until


def mosquitto_bin() -> str:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and os.path.exists(cand):
            return cand
    # Never skip: the MQTT tests run against a real broker or fail loudly (CI or not).
    pytest.fail("mosquitto not installed: apt-get install -y mosquitto (.ci/run does this)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    folder: Path
    port: int
    extra: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.folder / "broker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            # As root, mosquitto drops to user "mosquitto", who cannot read pytest's tmp dirs.
            f"user {getpass.getuser()}\nlistener {self.port} 127.0.0.1\npersistence false\n"
            f"log_dest file {self.folder / 'broker.log'}\nlog_type all\n{self.extra}\n"
        )
        proc = self.proc = subprocess.Popen([mosquitto_bin(), "-c", str(conf)])
        # Until it listens, or has exited (a bad config): no point waiting out the timeout then.
        wait_until(lambda: proc.poll() is not None or self.listening(), 10)
        if proc.poll() is not None or not self.listening():
            raise RuntimeError(f"mosquitto did not start:\n{self.log[-2000:]}")

    def listening(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
            return True
        return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@contextlib.contextmanager
def run_broker(folder: Path, extra: str = "allow_anonymous true") -> Iterator[Broker]:
    folder.mkdir(parents=True, exist_ok=True)
    broker = Broker(folder, free_port(), extra)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Recorder:
    """Subscribes to '#' (after the SUBACK it is ready) and keeps every message."""

    port: int
    username: str | None = None
    password: str | None = None
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rec-{time.time_ns()}")
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe("#", qos=1)
        self.client.on_subscribe = lambda c, u, m, r, p: self.ready.set()
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self.ready.wait(10), "recorder could not subscribe"

    def _on_message(self, c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait(self, pred: Callable[[], bool], timeout: float = 10.0) -> bool:
        return wait_until(pred, timeout)

    def has_stats(self, base: str, sessions: int) -> bool:
        """A stats interval with exactly this many sessions arrived on `base`/stats."""
        return any(b'"sessions":%d,' % sessions in p for p in self.on(f"{base}/stats"))

    def close(self) -> None:
        self.client.disconnect()  # first: wakes paho's select, so loop_stop returns at once
        self.client.loop_stop()


class Kiosk:
    """The kiosk side of the contract: state, and commands applied by the kiosk."""

    def __init__(self) -> None:
        self.language = "en"
        self.paused = False
        self.calls: list[tuple[str, object]] = []

    def state(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "paused": self.paused,
            "backend": "litert-cpu",
            "models": {
                "left": {"name": "baseline", "version": "1", "sha256": "ab" * 32},
                "right": {"name": "debiased", "version": "1", "sha256": "cd" * 32},
            },
        }

    def command(self, name: str, value: object) -> tuple[bool, str]:
        self.calls.append((name, value))
        if name == "language":
            self.language = str(value)
        elif name in ("pause", "resume"):
            self.paused = name == "pause"
        return True, f"{name} done"


def make_publisher(
    port: int, kiosk: Kiosk | None = None, iid: str = "foyer-1", k: int = 2, **cfg: Any
) -> tuple[MqttPublisher, StatsAggregator]:
    kiosk = kiosk or Kiosk()
    agg = StatsAggregator(k_min_sessions=k, presence_min_s=0.1, presence_gap_s=0.5)
    settings = {
        "port": port,
        "stats_interval_s": 1,
        "dev_short_interval": True,  # tests wait seconds, not minutes
        "keepalive_s": 5,
        **cfg,
    }
    pub = MqttPublisher(
        MqttConfig(**settings),
        iid,
        agg,
        state=kiosk.state,
        on_command=kiosk.command,
        privacy=PrivacyConfig(k_min_sessions=k),
    )
    return pub, agg


def result(t: float, left: bool, right: bool) -> FrameResult:
    """A judged frame as the pipeline delivers it, latent and image included (they must never
    leave the device)."""
    return FrameResult(
        frame_index=int(t * 10),
        t_capture=t,
        t_done=t + 0.004,
        region=Region(10, 20, 64, 64),
        predictions={
            "left": Prediction(0.8 if left else 0.2, left, 1.0, 0.3),
            "right": Prediction(0.9 if right else 0.1, right, 2.0, 0.4, np.ones(8, np.float32)),
        },
        rarity=0.42,
        frame=np.zeros((8, 8, 3), np.uint8),
    )


def feed_visitors(agg: StatsAggregator, n: int, left: bool = False) -> None:
    """n visitor sessions (0.25 s each in the box, then gone past the gap), seen by the right
    model always and by the left one only if `left`."""
    t = time.monotonic()
    for _ in range(n):
        for _ in range(6):
            agg.on_result(result(t, left, True))
            t += 0.05
        t += 2.0
        agg.on_result(result(t, False, False))


def make_ca(folder: Path, client: bool = False) -> dict[str, Path]:
    """A self-signed test CA and a broker certificate for 127.0.0.1 (and a client one)."""
    folder.mkdir(parents=True, exist_ok=True)

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ["-newkey", "rsa:2048", "-nodes", "-days", "1"]
    ca_subj = ["-subj", "/CN=bias-mirror test CA"]
    ssl("req", "-x509", *key, *ca_subj, "-keyout", "ca.key", "-out", "ca.crt")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    names = ["server", "client"] if client else ["server"]
    for name in names:
        cn = "127.0.0.1" if name == "server" else "foyer-1"
        ssl("req", *key[:3], "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        sign = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "san.cnf"]
        ssl("x509", "-req", "-days", "1", "-in", f"{name}.csr", *sign, "-out", f"{name}.crt")
    for f in folder.iterdir():
        f.chmod(0o644)  # mosquitto reads them as the test user
    out = {"ca": folder / "ca.crt"}
    for name in names:
        out[f"{name}_crt"], out[f"{name}_key"] = folder / f"{name}.crt", folder / f"{name}.key"
    return out
