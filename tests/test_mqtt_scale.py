"""Many kiosks on one real broker, and the staff monitor (model and `--once`) keeping up."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from installation.monitor_model import KioskBoard
from installation.mqtt import MqttPublisher
from tests.mqtt_fixtures import Recorder, feed_visitors, make_publisher, run_broker
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
N_KIOSKS = 50


def test_fifty_kiosks_and_the_monitor_model(tmp_path: Path) -> None:
    with run_broker(tmp_path / "broker") as broker:
        board = KioskBoard()
        mon = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="monitor-test")
        mon.on_connect = lambda c, u, f, r, p: c.subscribe(
            [(f"bias-mirror/+/{k}", 1) for k in ("available", "stats", "state")]
        )
        mon.on_message = lambda c, u, m: board.feed(m.topic, bytes(m.payload), m.retain)
        mon.connect("127.0.0.1", broker.port)
        mon.loop_start()
        pubs: list[MqttPublisher] = []
        try:
            for i in range(N_KIOSKS):
                pub, agg = make_publisher(broker.port, iid=f"room-{i:02d}", discovery=False)
                feed_visitors(agg, 2 + i % 3)
                pub.start()
                pubs.append(pub)
            today = dt.date.today()

            def caught_up() -> bool:
                rows = board.snapshot()
                return len(rows) == N_KIOSKS and all(
                    r.online and r.visitors_today(today)[0] == 2 + int(r.installation_id[-2:]) % 3
                    for r in rows
                )

            assert wait_until(caught_up, 20), [
                (r.installation_id, r.online, r.visitors_today(today)) for r in board.snapshot()
            ]
            assert board.bad_messages == 0
            assert all(r.language == "en" and r.fps_process is not None for r in board.snapshot())
            pubs[7].stop()
            assert wait_until(lambda: board.rows["room-07"].online is False, 5)
            assert sum(r.online is True for r in board.snapshot()) == N_KIOSKS - 1
        finally:
            for p in pubs:
                p.stop(timeout=1)
            mon.disconnect()
            mon.loop_stop()


def test_monitor_once_shows_the_kiosks(tmp_path: Path) -> None:
    with run_broker(tmp_path / "broker") as broker:
        on, _ = make_publisher(broker.port, iid="hall-3")
        off, agg = make_publisher(broker.port, iid="foyer-9")
        on.start()
        off.start()
        try:
            assert on.ready.wait(10) and off.ready.wait(10)
            feed_visitors(agg, 2)
            # The next stats interval (1 s) carries both visitors to the broker.
            rec = Recorder(broker.port)
            try:
                assert rec.wait(lambda: rec.has_stats("bias-mirror/foyer-9", 2))
            finally:
                rec.close()
            off.stop()
            cmd = ["monitor", "--port", str(broker.port), "--once", "--stale-s", "60"]
            res = subprocess.run(
                [sys.executable, "-m", "installation", *cmd],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                env={**os.environ, "COLUMNS": "160"},
            )
        finally:
            on.stop()
            off.stop()
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "2 kiosk(s), 1 offline, 0 stale" in res.stdout
    foyer = next(line for line in lines if "foyer-9" in line)
    hall = next(line for line in lines if "hall-3" in line)
    assert "offline" in foyer and " 2 " in foyer  # two visitors today (kiosk started today)
    assert "online" in hall
