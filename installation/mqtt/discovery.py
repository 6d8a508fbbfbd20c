"""Home Assistant MQTT discovery: one retained sensor config per figure, all on one device,
and `problem` binary sensors for the camera and the model bundles (from the retained state's
`camera: ok|lost|ended` and `bundles: ok|failed`).

Topics are `<prefix>/<component>/<installation_id>/<metric>/config` (Home Assistant's optional
node_id level), so a broker ACL can confine each kiosk to its own discovery topics
(`pattern write homeassistant/sensor/%u/+/config`, the same for `binary_sensor`).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from installation import __version__
from installation.mqtt.topics import Topics
from installation.types import CAMERA_PROBLEMS


class Sensor(NamedTuple):
    metric: str  # id in the topic and the unique_id
    name: str
    template: str  # value template on the stats JSON
    unit: str | None = None
    state_class: str | None = "measurement"
    device_class: str | None = None
    diagnostic: bool = False  # the kiosk's health, not the exhibit's figures


SENSORS: tuple[Sensor, ...] = (
    Sensor("sessions", "Visitors (interval)", "{{ value_json.sessions }}"),
    Sensor(
        "sessions_total",
        "Visitors (since start)",
        "{{ value_json.cumulative.sessions }}",
        state_class="total_increasing",
    ),
    Sensor(
        "disagreement",
        "Model disagreement",
        # Withheld below k sessions: the template renders None, which HA shows as unknown.
        "{{ value_json.disagreement_rate | default(none) }}",
    ),
    Sensor(
        "missed_by_both",
        "Visitor frames missed by both models",
        "{{ value_json.missed_by_both_rate | default(none) }}",
    ),
    Sensor("process_fps", "Processing fps", "{{ value_json.fps.process }}", "fps", diagnostic=True),
    Sensor("render_fps", "Render fps", "{{ value_json.fps.render }}", "fps", diagnostic=True),
    Sensor(
        "dropped", "Dropped frames (interval)", "{{ value_json.dropped_frames }}", diagnostic=True
    ),
    Sensor(
        "uptime",
        "Uptime",
        "{{ value_json.uptime_s }}",
        "s",
        state_class="total_increasing",  # falls to 0 at a restart: HA reads that as a reset
        device_class="duration",
        diagnostic=True,
    ),
    Sensor(
        "cpu_temp",
        "CPU temperature",
        "{{ value_json.cpu_temp_c }}",  # null where unreadable: unknown in HA
        "°C",
        device_class="temperature",
        diagnostic=True,
    ),
    Sensor("rss", "Memory (RSS)", "{{ value_json.rss_mb }}", "MiB", diagnostic=True),
)
ORIGIN = {"name": "Bias Mirror", "sw_version": __version__}  # who published these configs


class Problem(NamedTuple):
    """A binary sensor with device_class problem, read from the retained `state`."""

    metric: str
    name: str
    template: str  # renders ON (a problem) or OFF


PROBLEMS: tuple[Problem, ...] = (
    Problem(
        "camera",
        "Camera",
        # A kiosk too old to send `camera` counts as fine rather than as a false alarm.
        "{{ 'ON' if (value_json.camera | default('ok')) in "
        + repr(list(CAMERA_PROBLEMS))
        + " else 'OFF' }}",
    ),
    Problem(
        "bundles",
        "Model bundles",
        "{{ 'ON' if (value_json.bundles | default('ok')) == 'failed' else 'OFF' }}",
    ),
)


def discovery_messages(
    topics: Topics, discovery_prefix: str, expire_after_s: int | None = None
) -> list[tuple[str, str]]:
    """(topic, JSON payload) per sensor; publish retained with QoS 1."""
    iid = topics.installation_id
    device = {
        "identifiers": [f"bias_mirror_{iid}"],
        "name": f"Bias Mirror {iid}",
        "manufacturer": "Bias Mirror",
        "model": "Kiosk",
        "sw_version": __version__,
    }
    out = []

    def _entity(kind: str, name: str, uid: str, state_topic: str, template: str) -> dict[str, Any]:
        """What every entity of this kiosk carries, sensor or binary sensor."""
        return {
            "name": name,
            "unique_id": uid,
            # Home Assistant 2025.10 deprecated object_id (gone in 2026.4) for this.
            "default_entity_id": f"{kind}.{uid}",
            "state_topic": state_topic,
            "value_template": template,
            "availability_topic": topics.available,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
            "origin": ORIGIN,
        }

    for sensor in SENSORS:
        uid = f"bias_mirror_{iid}_{sensor.metric}".replace("-", "_")
        config = _entity("sensor", sensor.name, uid, topics.stats, sensor.template)
        if sensor.unit:
            config["unit_of_measurement"] = sensor.unit
        if sensor.state_class:
            config["state_class"] = sensor.state_class
        if sensor.device_class:
            config["device_class"] = sensor.device_class
        if sensor.diagnostic:
            config["entity_category"] = "diagnostic"
        if expire_after_s:
            # A kiosk that stops sending stats (hung, cable pulled) turns "unavailable" in HA.
            config["expire_after"] = expire_after_s
        topic = f"{discovery_prefix}/sensor/{iid}/{sensor.metric}/config"
        out.append((topic, json.dumps(config)))
    for problem in PROBLEMS:
        uid = f"bias_mirror_{iid}_{problem.metric}_problem".replace("-", "_")
        # The retained state, sent once per change.
        problem_config = _entity("binary_sensor", problem.name, uid, topics.state, problem.template)
        problem_config |= {
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "problem",
            "entity_category": "diagnostic",
        }
        topic = f"{discovery_prefix}/binary_sensor/{iid}/{problem.metric}/config"
        out.append((topic, json.dumps(problem_config)))
    return out
