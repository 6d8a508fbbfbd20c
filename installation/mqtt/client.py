"""The one paho-mqtt client set-up, shared by the kiosk's publisher and the staff monitor.

Both speak MQTT 3.1.1 with paho's version-2 callbacks, log in the same way (user name and
password, optional TLS with a CA, client certificate and key), back off the same way after a
lost connection, and recognise a refused login by the same CONNACK codes.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from installation.config import TlsConfig

# CONNACK reason codes: 134 bad user name or password, 135 not authorized (MQTT 3.1.1 return
# codes 4 and 5 map onto these in paho 2.x). Retrying at once cannot fix either: the publisher
# then retries slowly (AUTH_RETRY_*), the monitor stops.
AUTH_FAILURES = frozenset({134, 135})
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 8  # back within ~10 s of the broker's return


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
