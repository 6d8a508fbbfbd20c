"""The one paho-mqtt client set-up, shared by the kiosk's publisher and the staff monitor.

Both speak MQTT 3.1.1 with paho's version-2 callbacks, log in the same way (user name and
password, optional TLS with a CA, client certificate and key), back off the same way after a
lost connection, and recognise a refused login by the same CONNACK codes.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from installation.config import TlsConfig

# CONNACK reason codes: 134 bad user name or password, 135 not authorized (MQTT 3.1.1 return
# codes 4 and 5 map onto these in paho 2.x). Retrying at once cannot fix either: the publisher
# then retries slowly (AUTH_RETRY_*), the monitor stops.
AUTH_FAILURES = frozenset({134, 135})
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 8  # back within ~10 s of the broker's return
CALLBACKS = ("on_connect", "on_connect_fail", "on_disconnect", "on_message", "on_subscribe")

logger = logging.getLogger(__name__)


def is_auth_failure(reason: ReasonCode) -> bool:
    """Whether a CONNACK refused the credentials (as opposed to a broker that is busy or down)."""
    return reason.is_failure and reason.value in AUTH_FAILURES


def build_client(
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    tls: TlsConfig | None = None,
    will: tuple[str, str] | None = None,
) -> mqtt.Client:
    """A configured, unconnected client; callbacks and `connect_async` are the caller's.

    `will` is (topic, payload) of a retained QoS 1 last will.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    if username:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set(
            ca_certs=str(tls.ca_file),
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
        )
        client.tls_insecure_set(tls.insecure)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
    return client


def guard_callbacks(client: mqtt.Client, on_error: Callable[[str], None] | None = None) -> None:
    """Wrap every callback set on `client` so that an exception in it is logged with its
    traceback (and reported to `on_error` with the callback's name) instead of reaching paho.

    paho re-raises a callback's exception in its network thread (suppress_exceptions is off, and
    turning it on would hide the error): the thread died, `connected` stayed true and nothing was
    sent again. Call after the callbacks are set."""
    for name in CALLBACKS:
        fn = getattr(client, name)
        if fn is not None:
            setattr(client, name, _guarded(name, fn, on_error))


def _guarded(
    name: str, fn: Callable[..., None], on_error: Callable[[str], None] | None
) -> Callable[..., None]:
    @functools.wraps(fn)
    def call(*args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            logger.exception("MQTT %s failed; the connection carries on", name)
            if on_error is not None:
                try:
                    on_error(name)
                except Exception:  # the report of an error must not raise into paho either
                    logger.exception("MQTT: reporting a failed %s failed too", name)

    return call
