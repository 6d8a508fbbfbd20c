"""Anonymous aggregate statistics of a kiosk (what may leave the device)."""

from installation.stats.aggregator import StatsAggregator
from installation.stats.histogram import LatencyHistogram
from installation.stats.payload import STATS_SCHEMA, StatsPayload
from installation.stats.sessions import SessionTracker

__all__ = ["STATS_SCHEMA", "LatencyHistogram", "SessionTracker", "StatsAggregator", "StatsPayload"]
