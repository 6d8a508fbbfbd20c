"""Anonymous stats, state and staff commands over MQTT."""

from installation.mqtt.publisher import MqttPublisher
from installation.mqtt.topics import Topics

__all__ = ["MqttPublisher", "Topics"]
