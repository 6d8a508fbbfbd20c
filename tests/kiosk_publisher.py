"""A kiosk's publisher in its own process, for the last-will test (SIGKILL leaves no goodbye)."""

from __future__ import annotations

import sys
import time

from installation.config import MqttConfig, PrivacyConfig
from installation.mqtt import MqttPublisher
from installation.stats import StatsAggregator

if __name__ == "__main__":
    port, iid = int(sys.argv[1]), sys.argv[2]
    agg = StatsAggregator(k_min_sessions=5, presence_min_s=0.4, presence_gap_s=2)
    pub = MqttPublisher(
        MqttConfig(
            port=port, stats_interval_s=1, dev_short_interval=True, discovery=False, keepalive_s=5
        ),
        iid,
        agg,
        state=lambda: {"language": "en", "paused": False},
        on_command=lambda n, v: (True, "ok"),
        privacy=PrivacyConfig(),
    )
    pub.start()
    print("started", flush=True)
    time.sleep(120)
