"""Publishes the kiosk's anonymous stats and state, and takes staff commands (paho-mqtt 2.x).

Threads: paho's network thread (connect_async + loop_start) runs the callbacks; one worker
thread ("mqtt-stats") closes a stats interval every `stats_interval_s`, publishes state when
asked and hands queued intervals to paho. Callers (the render loop included) only set a flag and
an event, so nothing on the kiosk's side ever waits on the network.

On connect: subscribe to commands, then birth `online` (retained), state (retained), discovery
(retained), and the queued stats intervals in order. A failed CONNACK never marks the client
connected; refused credentials are retried on a long backoff (60 s doubling to 10 min, so a
brief broker auth outage heals by itself without hammering the broker), logged once per change
and counted as `mqtt_auth` in stats.errors; any other loss reconnects with backoff (1 s doubling
to 8 s, so <= ~10 s after the broker returns). Rejected commands are answered on cmd/result with
the name cut to a few dozen characters, and logged at most once per REJECT_LOG_S.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from installation.config import MqttConfig, PrivacyConfig
from installation.config_check import mqtt_file_problems
from installation.faults import ThrottledLog
from installation.mqtt.client import (
    RECONNECT_MAX_S,
    RECONNECT_MIN_S,
    build_client,
    guard_callbacks,
    is_auth_failure,
)
from installation.mqtt.commands import (
    COMMAND_BURST,
    COMMAND_RATE,
    MAX_SHOWN,
    CommandGate,
    parse_command,
)
from installation.mqtt.discovery import discovery_messages
from installation.mqtt.queue import StatsQueue
from installation.mqtt.topics import Topics
from installation.stats.aggregator import StatsAggregator
from installation.stats.system import cpu_temperature_c, rss_mb

logger = logging.getLogger(__name__)

AUTH_RETRY_MIN_S, AUTH_RETRY_MAX_S = 60, 600  # after refused credentials
# Connections that the broker closes within SHORT_SESSION_S, SHORT_SESSIONS_SAID times in a row:
# the broker hands the client id to another client each time (a second kiosk with the same
# installation_id, a config copied unchanged), and the two take it from each other every second.
SHORT_SESSION_S, SHORT_SESSIONS_SAID = 10.0, 3


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
        if privacy.k_min_sessions != aggregator.k_min:
            # The aggregator enforces k; a mismatch means the two were built from different
            # settings, and the aggregator's (the one that decides) wins.
            logger.warning(
                "privacy.k_min_sessions is %d but the stats aggregator uses %d; using %d",
                privacy.k_min_sessions,
                aggregator.k_min,
                aggregator.k_min,
            )
        self.cfg = cfg
        self.topics = Topics(cfg.topic_prefix, installation_id)
        self._agg = aggregator
        self._state = state
        self._on_command = on_command
        self._stop = threading.Event()
        self._wake = threading.Event()  # wakes the worker early: connect, state, stop
        self._state_due = False
        self._last_state: str | None = None  # the retained state as last sent
        self.queue = StatsQueue(cfg.queue_max)
        self.connected = False
        self.auth_failed = False
        self.connects = 0
        self.ready = threading.Event()  # connected and the command subscription acknowledged
        self._down_since: float | None = None
        self._fail_logged = False
        self._got_connack = False  # on this connection, any CONNACK (accepted or refused)
        self.auth_retry_s = (AUTH_RETRY_MIN_S, AUTH_RETRY_MAX_S)  # (first, cap) in seconds
        self._connected_at: float | None = None  # monotonic time of the last accepted connect
        self.short_sessions = 0  # connections in a row the broker closed within short_session_s
        self.short_session_s = SHORT_SESSION_S
        self._lost = ThrottledLog(
            logger, quiet_message="MQTT connection lost %d more times since the last line"
        )
        self.commands = CommandGate()
        self.commands_seen = 0  # command messages received (not counting empty ones)
        self._worker: threading.Thread | None = None
        self.client = self._make_client(installation_id)

    # -- set-up --------------------------------------------------------------------------

    def _make_client(self, installation_id: str) -> mqtt.Client:
        # The client id is the installation id, so a second kiosk with the same id (a config
        # copied without changing it) shows up as the broker kicking the older one.
        # The same check as `validate-config` and startup, for a config built in code.
        missing = mqtt_file_problems(self.cfg)
        if missing:
            raise ValueError("; ".join(f"mqtt.{'.'.join(loc)}: {msg}" for loc, _, msg in missing))
        self.client_id = f"bias-mirror-{installation_id}"
        client = build_client(
            self.client_id,
            username=self.cfg.username,
            password=self.cfg.password() if self.cfg.username else None,
            tls=self.cfg.tls,
            will=(self.topics.available, "offline"),
        )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        guard_callbacks(client, lambda _name: self._agg.count_error("mqtt_callback"))
        return client

    def start(self) -> None:
        logger.info(
            "MQTT: %s:%d%s as %s (stats every %.0f s)",
            self.cfg.host,
            self.cfg.port,
            " (TLS)" if self.cfg.tls else "",
            self.topics.base,
            self.cfg.stats_interval_s,
        )
        self._down_since = time.monotonic()
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self._worker = threading.Thread(target=self._run, name="mqtt-stats", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Final interval, retained `offline`, disconnect; returns within about `timeout` s."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout)
        if self.connected:
            self.queue.put(self._stats_payload())
            self._flush()
            for info in self.queue.unacked:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            info = self.client.publish(self.topics.available, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()
        self.commands.flush(force=True)  # the count of a flood's tail is not lost at a stop

    @property
    def problem(self) -> str | None:
        """A one-line MQTT problem for the kiosk's status line (systemd STATUS=), or None."""
        if self.auth_failed:
            return f"MQTT: broker refused user {self.cfg.username!r}, retrying slowly"
        if self.taken_over:
            return "MQTT: connection taken over again and again (installation_id used twice?)"
        return None

    @property
    def taken_over(self) -> bool:
        """The broker keeps closing fresh connections, and the current one (if any) has not yet
        lasted `short_session_s`."""
        if self.short_sessions < SHORT_SESSIONS_SAID:
            return False
        at = self._connected_at
        lasting = at is not None and time.monotonic() - at >= self.short_session_s
        return not (self.connected and lasting)

    @property
    def queued(self) -> int:
        """Stats intervals not yet acknowledged by the broker."""
        return len(self.queue)

    @property
    def queue_dropped(self) -> int:
        return self.queue.dropped

    # -- callbacks (paho's thread) -------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._got_connack = True
        if reason.is_failure:
            self.connected = False
            if is_auth_failure(reason):
                self._reload_password(client)  # the next retry uses a password fixed meanwhile
                if not self.auth_failed:  # once per change; the retries stay quiet
                    self.auth_failed = True
                    self._agg.count_error("mqtt_auth")
                    first, cap = self.auth_retry_s
                    # paho waits `first`, doubling up to `cap`, until a CONNACK succeeds.
                    client.reconnect_delay_set(min_delay=first, max_delay=cap)
                    who = (
                        f"user {self.cfg.username!r}"
                        if self.cfg.username
                        else "an anonymous login (set mqtt.username)"
                    )
                    logger.error(
                        "MQTT broker %s:%d refused %s (%s); retrying in %d s, then less "
                        "often, up to every %d s. Fix mqtt.username / mqtt.password_file (or the "
                        "mqtt_password credential), or the broker's password file.",
                        self.cfg.host,
                        self.cfg.port,
                        who,
                        reason,
                        first,
                        cap,
                    )
                else:
                    logger.debug("MQTT broker still refuses user %r", self.cfg.username)
            else:
                logger.warning("MQTT broker refused the connection (%s); retrying", reason)
            return
        if self.auth_failed:
            self.auth_failed = False
            client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
            logger.info("MQTT broker accepted user %r again", self.cfg.username)
        self.connected = True
        self.connects += 1
        self._connected_at = time.monotonic()
        self._fail_logged = False
        down = time.monotonic() - self._down_since if self._down_since is not None else 0.0
        self._down_since = None
        logger.log(
            # Said once already (the error above) while another client takes it over each second.
            logging.DEBUG if self.short_sessions >= SHORT_SESSIONS_SAID else logging.INFO,
            "MQTT connected to %s:%d after %.1f s; %d stats interval(s) queued",
            self.cfg.host,
            self.cfg.port,
            down,
            len(self.queue),
        )
        client.subscribe(self.topics.commands, qos=1)
        client.publish(self.topics.available, "online", qos=1, retain=True)
        self._publish_state_now(force=True)
        if self.cfg.discovery:
            expire = math.ceil(3 * self.cfg.stats_interval_s)
            for topic, payload in discovery_messages(
                self.topics, self.cfg.discovery_prefix, expire
            ):
                client.publish(topic, payload, qos=1, retain=True)
        self._wake.set()  # the worker sends the queued intervals, in order

    def _reload_password(self, client: mqtt.Client) -> None:
        """Read the password file (or credential) again: a technician who fixes it after a
        refused login must not also have to restart the kiosk."""
        if not self.cfg.username:
            return
        try:
            client.username_pw_set(self.cfg.username, self.cfg.password())
        except (OSError, UnicodeDecodeError) as exc:
            logger.debug("MQTT password could not be read again (%s); keeping the old one", exc)

    def _log_outage(self, message: str, *args: Any) -> None:
        """A connect problem: at warning level once per outage (reset by the next successful
        connect), at debug level on every retry after it."""
        level = logging.DEBUG if self._fail_logged else logging.WARNING
        self._fail_logged = True
        logger.log(level, message, *args)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # Wrong host, broker down, TLS not trusted.
        self._log_outage(
            "MQTT broker %s:%d unreachable (down, wrong host/port, or TLS not trusted); "
            "retrying every <= %d s, stats are queued",
            self.cfg.host,
            self.cfg.port,
            RECONNECT_MAX_S,
        )

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        if all(not r.is_failure for r in reasons):
            self.ready.set()
        else:
            logger.error(
                "MQTT broker refused the subscription to %s; the broker ACL must let user %r "
                "read it (see systemd/mosquitto/bias-mirror.acl)",
                self.topics.commands,
                self.cfg.username,
            )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        was, answered = self.connected, self._got_connack
        self._got_connack = False
        self.connected = False
        self.ready.clear()
        if was and not self._stop.is_set():
            self._down_since = now = time.monotonic()
            lasted = now - self._connected_at if self._connected_at is not None else math.inf
            self.short_sessions = self.short_sessions + 1 if lasted < self.short_session_s else 0
            if self.short_sessions == SHORT_SESSIONS_SAID:
                self._agg.count_error("mqtt_id_conflict")
                logger.error(
                    "MQTT: the broker closed the connection %d times in a row within %.0f s of "
                    "accepting it: another client is probably logged in as %s (a second kiosk "
                    "with installation_id %r?). Give each kiosk its own installation_id.",
                    self.short_sessions,
                    self.short_session_s,
                    self.client_id,
                    self.topics.installation_id,
                )
            # Once a minute at most: two kiosks with one id lose it to each other every second.
            self._lost.event("MQTT connection lost (%s); reconnecting with backoff", reason)
        elif not answered and not self._stop.is_set():
            # Closed before any CONNACK: the TCP connect worked, so paho reports no connect
            # failure, and without this line a port that speaks TLS or no MQTT at all (port 8883
            # without `tls:`) retried for ever in silence. Once per outage, as unreachable is.
            self._log_outage(
                "MQTT %s:%d closed the connection before accepting it (%s): is that port an MQTT "
                "broker, and does it need TLS (mqtt.tls, usually port 8883)? Retrying every "
                "<= %d s, stats are queued",
                self.cfg.host,
                self.cfg.port,
                reason,
                RECONNECT_MAX_S,
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        name = self.topics.command_name(msg.topic)
        if name is None:
            return
        if not msg.payload:
            # Deleting a retained command (the fix the answer below gives) reaches subscribers
            # as a live zero-length message: it is no command, and is not answered.
            logger.debug("MQTT: empty message on %s ignored", msg.topic[:120])
            return
        self.commands_seen += 1
        shown = name[:MAX_SHOWN]  # the topic level is the sender's input: never echo it whole
        if not self.commands.admit():
            message = (
                f"too many commands (more than {COMMAND_BURST} at once or {COMMAND_RATE:g} a "
                "second); dropped, send it again in a few seconds"
            )
            if self.commands.rejected(shown, message):  # answered once per log line, not each
                result = {"command": shown, "ok": False, "message": message}
                client.publish(self.topics.result, json.dumps(result), qos=1)
            return
        if msg.retain:
            # A retained command would be replayed on every reconnect; staff must not send them.
            ok, value = False, None
            message = (
                f"retained commands are ignored; send without retain, and clear this one with an "
                f"empty retained message: mosquitto_pub -r -n -t {msg.topic[:120]}"
            )
        else:
            ok, value, message = parse_command(name, bytes(msg.payload))
        if ok:
            try:
                ok, message = self._on_command(name, value)
            except Exception:  # a handler bug must not take the network thread down
                logger.exception("MQTT command %s failed in the kiosk", name[:MAX_SHOWN])
                ok, message = False, "internal error"
        message = message[:200]
        if not ok:
            self.commands.rejected(shown, message)
        result = {"command": shown, "ok": ok, "message": message}
        client.publish(self.topics.result, json.dumps(result), qos=1)
        if ok:
            self.publish_state()

    # -- publishing ----------------------------------------------------------------------

    def publish_state(self) -> None:
        """Ask for a retained state update; returns at once, callable from any thread."""
        self._state_due = True
        self._wake.set()

    def _publish_state_now(self, force: bool = False) -> None:
        """Send the retained state once per change (and always after a connect)."""
        self._state_due = False
        try:
            payload = json.dumps(self._state(), separators=(",", ":"))
        except Exception:  # the kiosk's state callback: its bug must not stop the connect
            logger.exception("MQTT: the kiosk's state could not be read; not sent")
            self._agg.count_error("mqtt_state")
            return
        if payload == self._last_state and not force:
            return
        self.client.publish(self.topics.state, payload, qos=1, retain=True)
        self._last_state = payload

    def _stats_payload(self) -> str:
        payload = self._agg.snapshot(
            cpu_temp_c=cpu_temperature_c(),
            rss_mb=rss_mb(),
            queue_dropped=self.queue.make_room(),
        )
        return payload.to_json()

    def _flush(self) -> None:
        """Hand pending intervals to paho, oldest first, while connected."""
        while self.connected:
            payload = self.queue.peek()
            if payload is None:
                return
            # Retained, so a monitor or dashboard started later sees every kiosk's latest figures.
            info = self.client.publish(self.topics.stats, payload, qos=1, retain=True)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                return  # not taken (paho's queue full); try again on the next wake
            # Taken, even with NO_CONN (a race with a disconnect): paho keeps QoS 1 messages
            # and sends them after the reconnect, so re-queuing here would duplicate them.
            self.queue.handed(info)

    def _run(self) -> None:
        interval = self.cfg.stats_interval_s
        due = time.monotonic() + interval
        while True:
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                now = time.monotonic()
                if now >= due:
                    self.queue.put(self._stats_payload())
                    # Skip ticks missed while suspended instead of firing a burst.
                    due += interval * (1 + math.floor((now - due) / interval))
                if self._state_due and self.connected:
                    self._publish_state_now()
                self._flush()
                self.commands.flush()
            except Exception:  # one bad interval must not end the stats for the day
                logger.exception("MQTT stats worker")
