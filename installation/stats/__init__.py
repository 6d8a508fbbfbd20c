"""Anonymous aggregate statistics of a kiosk (what may leave the device)."""

from installation.stats.aggregator import SCHEMA, StatsAggregator
from installation.stats.sessions import SessionTracker

__all__ = ["SCHEMA", "SessionTracker", "StatsAggregator"]
