"""Faults under a running kiosk reach staff: the whole kiosk (real capture from an image folder,
real pipeline, real Pygame display under the dummy driver) publishing to a real Mosquitto."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from installation.kiosk import run_with_runtime
from installation.runtime import build_runtime
from tests.mqtt_fixtures import Broker, Recorder, run_broker
from tests.video_fixtures import write_folder

BASE = "bias-mirror/hall"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with run_broker(tmp_path / "broker") as b:
        yield b


def _kiosk_config(
    tmp_path: Path, tiny_bundles: Path, folder: Path, port: int, loop: bool = True
) -> Path:
    shutil.copytree(tiny_bundles / "tiny_baseline", tmp_path / "baseline")
    shutil.copytree(tiny_bundles / "tiny_dbvae", tmp_path / "debiased")
    cfg = tmp_path / "kiosk.yaml"
    cfg.write_text(
        "installation_id: hall\n"
        f"source: {{uri: {folder}, width: 160, height: 120, fps: 30, reopen_min_s: 0.1, "
        f"reopen_max_s: 0.3, loop: {str(loop).lower()}}}\n"
        "models: {left: baseline, right: debiased}\n"
        "display: {fullscreen: false, width: 640, height: 360}\n"
        f"mqtt: {{host: 127.0.0.1, port: {port}, dev_short_interval: true, stats_interval_s: 1, "
        "discovery: false, keepalive_s: 5}\n",
        encoding="utf-8",
    )
    return cfg


def test_an_unplugged_source_reaches_staff_and_its_return_too(
    tmp_path: Path, tiny_bundles: Path, broker: Broker
) -> None:
    folder = write_folder(tmp_path / "camera", frames=6)
    away = tmp_path / "unplugged"
    rt = build_runtime(_kiosk_config(tmp_path, tiny_bundles, folder, broker.port), keep_frame=True)
    rec = Recorder(broker.port)
    stop = threading.Event()
    seen: dict[str, Any] = {}

    def states() -> list[dict[str, Any]]:
        return [json.loads(p) for p in rec.on(f"{BASE}/state")]

    def camera_lost_counted() -> bool:
        return any(json.loads(p)["errors"].get("camera_lost") for p in rec.on(f"{BASE}/stats"))

    def staff() -> None:
        # What a technician does, and what staff see on the broker.
        try:
            seen["ok_first"] = rec.wait(
                lambda: states()[-1:] != [] and states()[-1]["camera"] == "ok"
            )
            folder.rename(away)  # the camera is unplugged
            seen["lost"] = rec.wait(lambda: states()[-1]["camera"] == "lost", 5)
            seen["error"] = rec.wait(camera_lost_counted, 5)
            away.rename(folder)  # and plugged back in
            seen["back"] = rec.wait(lambda: states()[-1]["camera"] == "ok", 5)
        finally:
            stop.set()

    helper = threading.Thread(target=staff)
    helper.start()
    try:
        run_with_runtime(rt, stop)  # the display loop on this (main) thread
    finally:
        stop.set()
        helper.join(10)
        rec.close()
    assert seen == {"ok_first": True, "lost": True, "error": True, "back": True}
    cameras = [s["camera"] for s in states()]
    # Retained state once per change: ok -> lost -> ok, no repeats in between.
    assert [c for i, c in enumerate(cameras) if i == 0 or c != cameras[i - 1]] == [
        "ok",
        "lost",
        "ok",
    ]


def test_a_recording_that_ends_is_a_problem_staff_see(
    tmp_path: Path, tiny_bundles: Path, broker: Broker
) -> None:
    # A recording without loop plays once; the screen then says it has ended. Staff used to see
    # "camera: ok" for good and no problem sensor.
    folder = write_folder(tmp_path / "recording", frames=4)
    cfg = _kiosk_config(tmp_path, tiny_bundles, folder, broker.port, loop=False)
    rt = build_runtime(cfg, keep_frame=True)
    rec = Recorder(broker.port)
    stop = threading.Event()
    seen: dict[str, bool] = {}

    def staff() -> None:
        try:
            seen["ended"] = rec.wait(
                lambda: any(json.loads(p)["camera"] == "ended" for p in rec.on(f"{BASE}/state")), 10
            )
        finally:
            stop.set()

    helper = threading.Thread(target=staff)
    helper.start()
    try:
        run_with_runtime(rt, stop)
    finally:
        stop.set()
        helper.join(15)
        rec.close()
    assert seen == {"ended": True}
