"""The Home Assistant discovery templates rendered with Jinja2 (Home Assistant's template engine)
on what the kiosk really publishes: the stats example of docs/mqtt.md and the retained states
that `kiosk._state` builds from real runtimes, one healthy and one with a broken bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest

from installation.kiosk import KioskControl, _state
from installation.mqtt.discovery import PROBLEMS, SENSORS
from installation.runtime import build_runtime
from installation.stats.payload import WITHHELD
from tests.kiosk_fixtures import write_kiosk_config
from tests.test_stats_payload import doc_example

# Where each sensor's figure sits in the stats payload, written out here, not read from the code.
PATHS = {
    "sessions": ("sessions",),
    "sessions_total": ("cumulative", "sessions"),
    "disagreement": ("disagreement_rate",),
    "missed_by_both": ("missed_by_both_rate",),
    "process_fps": ("fps", "process"),
    "render_fps": ("fps", "render"),
    "dropped": ("dropped_frames",),
    "uptime": ("uptime_s",),
    "cpu_temp": ("cpu_temp_c",),
    "rss": ("rss_mb",),
}


def render(template: str, payload: dict[str, Any]) -> str:
    # Home Assistant renders value templates with `value_json` bound to the parsed payload.
    return jinja2.Environment().from_string(template).render(value_json=payload)


def test_every_sensor_reads_its_figure_from_the_stats() -> None:
    full: dict[str, Any] = json.loads(doc_example())
    assert {s.metric for s in SENSORS} == set(PATHS)
    for sensor in SENSORS:
        value: Any = full
        for key in PATHS[sensor.metric]:
            value = value[key]
        assert render(sensor.template, full) == str(value), sensor.metric
    # Below k the rates are absent: Home Assistant gets None (shown as unknown), not an error.
    below_k = {k: v for k, v in full.items() if k not in WITHHELD}
    for sensor in SENSORS:
        if sensor.metric in ("disagreement", "missed_by_both"):
            assert render(sensor.template, below_k) == "None", sensor.metric


@pytest.fixture
def config(tmp_path: Path, tiny_bundles: Path) -> Path:
    return write_kiosk_config(tmp_path, tiny_bundles)


def problems(state: dict[str, Any]) -> dict[str, str]:
    return {p.metric: render(p.template, state) for p in PROBLEMS}


def test_problem_sensors_turn_on_for_a_lost_camera_and_a_broken_bundle(config: Path) -> None:
    control = KioskControl("en")
    healthy = build_runtime(config, keep_frame=False)
    assert problems(_state(healthy, control)) == {"camera": "OFF", "bundles": "OFF"}
    assert problems(_state(healthy, control, camera="lost")) == {"camera": "ON", "bundles": "OFF"}
    assert problems(_state(healthy, control, camera="ended")) == {"camera": "ON", "bundles": "OFF"}
    card = config.parent / "debiased" / "card.json"
    card.write_text("{", encoding="utf-8")  # a truncated card: that bundle does not load
    broken = build_runtime(config, keep_frame=False, allow_one_failed=True)
    state = _state(broken, control)
    assert "error" in state["models"]["right"]
    assert problems(state) == {"camera": "OFF", "bundles": "ON"}
    # A kiosk too old to send these keys is not reported as broken.
    assert problems({"language": "en"}) == {"camera": "OFF", "bundles": "OFF"}
