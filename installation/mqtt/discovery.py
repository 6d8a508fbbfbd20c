"""Home Assistant MQTT discovery: one retained sensor config per figure, all on one device.

Topics are `<prefix>/sensor/<installation_id>/<metric>/config` (Home Assistant's optional
node_id level), so a broker ACL can confine each kiosk to its own discovery topics
(`pattern write homeassistant/sensor/%u/+/config`).
"""

from __future__ import annotations

import json
from typing import Any

from installation import __version__
from installation.mqtt.topics import Topics

# metric id, name, value template on the stats JSON, unit, state_class
SENSORS: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    ("sessions", "Visitors (interval)", "{{ value_json.sessions }}", None, "measurement"),
    (
        "sessions_total",
        "Visitors (since start)",
        "{{ value_json.cumulative.sessions }}",
        None,
        "total_increasing",
    ),
    ("process_fps", "Processing fps", "{{ value_json.fps.process }}", "fps", "measurement"),
    ("render_fps", "Render fps", "{{ value_json.fps.render }}", "fps", "measurement"),
    ("dropped", "Dropped frames (interval)", "{{ value_json.dropped_frames }}", None, None),
    (
        "disagreement",
        "Model disagreement",
        # Withheld below k sessions: the template renders None, which HA shows as unknown.
        "{{ value_json.disagreement_rate | default(none) }}",
        None,
        "measurement",
    ),
    ("uptime", "Uptime", "{{ value_json.uptime_s }}", "s", None),
    (
        "cpu_temp",
        "CPU temperature",
        "{{ value_json.cpu_temp_c }}",  # null where unreadable: unknown in HA
        "°C",
        "measurement",
    ),
    ("rss", "Memory (RSS)", "{{ value_json.rss_mb }}", "MiB", "measurement"),
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
    for metric, name, template, unit, state_class in SENSORS:
        uid = f"bias_mirror_{iid}_{metric}".replace("-", "_")
        config: dict[str, Any] = {
            "name": name,
            "unique_id": uid,
            "object_id": uid,
            "state_topic": topics.stats,
            "value_template": template,
            "availability_topic": topics.available,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        if unit:
            config["unit_of_measurement"] = unit
        if state_class:
            config["state_class"] = state_class
        if metric == "cpu_temp":
            config["device_class"] = "temperature"
        if expire_after_s:
            # A kiosk that stops sending stats (hung, cable pulled) turns "unavailable" in HA.
            config["expire_after"] = expire_after_s
        out.append((f"{discovery_prefix}/sensor/{iid}/{metric}/config", json.dumps(config)))
    return out
