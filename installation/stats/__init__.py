"""Anonymous aggregate statistics of a kiosk (what may leave the device)."""

from installation.stats.aggregator import SCHEMA, StatsAggregator
from installation.stats.histogram import LatencyHistogram
from installation.stats.sessions import SessionTracker

__all__ = ["SCHEMA", "LatencyHistogram", "SessionTracker", "StatsAggregator"]
