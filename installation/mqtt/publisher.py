"""Publishes the kiosk's anonymous stats and state, and takes staff commands (paho-mqtt 2.x).

The network runs on paho's own thread (connect_async + loop_start) and a stats timer thread;
the render loop only ever enqueues. On connect: subscribe to commands, then birth `online`
(retained), state, discovery, and the queued stats intervals. A failed CONNACK never marks the
client connected; bad credentials stop the retries with one clear log line. Stats intervals that
could not be delivered stay queued (bounded, oldest dropped and counted) until the broker acks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from installation.config import MqttConfig, PrivacyConfig
from installation.mqtt.commands import parse_command
from installation.mqtt.discovery import discovery_messages
from installation.mqtt.topics import Topics
from installation.stats.aggregator import StatsAggregator
from installation.stats.system import cpu_temperature_c, rss_mb

logger = logging.getLogger(__name__)

AUTH_FAILURES = {134, 135}  # Bad user name or password, Not authorized (v3 rc 4 / 5 map here)


class MqttPublisher:
    def __init__(
        self,
        cfg: MqttConfig,
        installation_id: str,
        aggregator: StatsAggregator,
        *,
        state: Callable[[], dict[str, Any]],
        on_command: Callable[[str, object], tuple[bool, str]],
        privacy: PrivacyConfig,
    ) -> None:
        self.cfg = cfg
        self.topics = Topics(cfg.topic_prefix, installation_id)
        self._agg = aggregator
        self._state = state
        self._on_command = on_command
        self._privacy = privacy
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._inflight: dict[int, str] = {}
        self.queue_dropped = 0
        self.connected = False
        self.auth_failed = False
        self.connects = 0
        self.ready = threading.Event()  # connected and the command subscription acknowledged
        self._timer: threading.Thread | None = None
        self.client = self._make_client(installation_id)

    # -- set-up --------------------------------------------------------------------------

    def _make_client(self, installation_id: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bias-mirror-{installation_id}",
            protocol=mqtt.MQTTv311,
        )
        password = self.cfg.password()
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, password)
        if self.cfg.tls is not None:
            tls = self.cfg.tls
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
            client.tls_insecure_set(tls.insecure)
        client.will_set(self.topics.available, "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=8)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        logger.info(
            "MQTT: %s:%d as %s (stats every %.0f s)",
            self.cfg.host,
            self.cfg.port,
            self.topics.base,
            self.cfg.stats_interval_s,
        )
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self._timer = threading.Thread(target=self._stats_loop, name="mqtt-stats", daemon=True)
        self._timer.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Final interval, retained `offline`, disconnect; never blocks longer than `timeout`."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout)
        if self.connected:
            self._enqueue(self._stats_payload())
            self._flush()
            info = self.client.publish(self.topics.available, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    # -- callbacks (paho's thread) -------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self.connected = False
            if reason.value in AUTH_FAILURES:
                self.auth_failed = True
                logger.error(
                    "MQTT broker %s:%d refused the credentials (%s); not retrying. Fix "
                    "mqtt.username / the password file and restart the kiosk.",
                    self.cfg.host,
                    self.cfg.port,
                    reason,
                )
                client.disconnect()  # ends paho's reconnect loop
            else:
                logger.warning("MQTT connect refused: %s; retrying", reason)
            return
        self.connected = True
        self.connects += 1
        logger.info("MQTT connected to %s:%d", self.cfg.host, self.cfg.port)
        client.subscribe(self.topics.commands, qos=1)
        client.publish(self.topics.available, "online", qos=1, retain=True)
        self.publish_state()
        if self.cfg.discovery:
            for topic, payload in discovery_messages(self.topics, self.cfg.discovery_prefix):
                client.publish(topic, payload, qos=1, retain=True)
        self._flush()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        if all(not r.is_failure for r in reasons):
            self.ready.set()
        else:
            logger.error("MQTT broker refused the command subscription (check the ACL)")

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        was = self.connected
        self.connected = False
        self.ready.clear()
        with self._lock:
            # Unacknowledged intervals go back to the front of the queue.
            for mid in sorted(self._inflight, reverse=True):
                self._queue.appendleft(self._inflight.pop(mid))
        if was and not self._stop.is_set():
            logger.warning("MQTT disconnected (%s); reconnecting with backoff", reason)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self._inflight.pop(mid, None)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        name = self.topics.command_name(msg.topic)
        if name is None:
            return
        ok, value, message = parse_command(name, bytes(msg.payload))
        if ok:
            try:
                ok, message = self._on_command(name, value)
            except Exception:  # a handler bug must not take the network thread down
                logger.exception("command %s failed", name)
                ok, message = False, "internal error"
        if not ok:
            logger.warning("MQTT command %s rejected: %s", name, message)
        result = {"command": name, "ok": ok, "message": message}
        client.publish(self.topics.result, json.dumps(result), qos=1)
        if ok:
            self.publish_state()

    # -- publishing ----------------------------------------------------------------------

    def publish_state(self) -> None:
        """Retained state; non-blocking, callable from any thread."""
        if not self.connected:
            return  # republished on every connect
        self.client.publish(self.topics.state, json.dumps(self._state()), qos=1, retain=True)

    def _stats_payload(self) -> str:
        extra = {
            "cpu_temp_c": cpu_temperature_c(),
            "rss_mb": rss_mb(),
            "queue_dropped": self.queue_dropped,
        }
        return json.dumps(self._agg.snapshot(extra), separators=(",", ":"))

    def _enqueue(self, payload: str) -> None:
        with self._lock:
            if len(self._queue) >= self.cfg.queue_max:
                self._queue.popleft()
                self.queue_dropped += 1
            self._queue.append(payload)

    def _flush(self) -> None:
        while self.connected:
            with self._lock:
                if not self._queue:
                    return
                payload = self._queue.popleft()
                info = self.client.publish(self.topics.stats, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    self._queue.appendleft(payload)
                    return
                self._inflight[info.mid] = payload

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._inflight)

    def _stats_loop(self) -> None:
        while not self._stop.wait(self.cfg.stats_interval_s):
            self._enqueue(self._stats_payload())
            self._flush()
