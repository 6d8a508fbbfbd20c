"""Home Assistant MQTT discovery: one retained sensor config per figure, all on one device."""

from __future__ import annotations

import json

from installation import __version__
from installation.mqtt.topics import Topics

# metric id, name, value template on the stats JSON, unit
SENSORS = (
    ("sessions", "Visitors (interval)", "{{ value_json.sessions }}", None),
    ("sessions_total", "Visitors (since start)", "{{ value_json.cumulative.sessions }}", None),
    ("process_fps", "Processing fps", "{{ value_json.fps.process }}", "fps"),
    ("render_fps", "Render fps", "{{ value_json.fps.render }}", "fps"),
    ("dropped", "Dropped frames (interval)", "{{ value_json.dropped_frames }}", None),
    (
        "disagreement",
        "Model disagreement",
        "{{ value_json.disagreement_rate | default(none) }}",
        None,
    ),
    ("uptime", "Uptime", "{{ value_json.uptime_s }}", "s"),
    ("cpu_temp", "CPU temperature", "{{ value_json.cpu_temp_c | default(none) }}", "°C"),
)


def discovery_messages(topics: Topics, discovery_prefix: str) -> list[tuple[str, str]]:
    iid = topics.installation_id
    device = {
        "identifiers": [f"bias_mirror_{iid}"],
        "name": f"Bias Mirror {iid}",
        "manufacturer": "Bias Mirror",
        "model": "Kiosk",
        "sw_version": __version__,
    }
    out = []
    for metric, name, template, unit in SENSORS:
        uid = f"bias_mirror_{iid}_{metric}".replace("-", "_")
        config = {
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
        # <prefix>/<component>/<node_id>/<object_id>/config, node_id = installation id, so a
        # broker ACL can confine each kiosk to its own discovery topics.
        out.append((f"{discovery_prefix}/sensor/{iid}/{metric}/config", json.dumps(config)))
    return out
