"""Host figures for the stats: CPU temperature (when readable) and resident memory."""

from __future__ import annotations

import resource
from pathlib import Path

THERMAL = Path("/sys/class/thermal")


def cpu_temperature_c() -> float | None:
    """First thermal zone in degrees Celsius (Raspberry Pi, Jetson, most PCs), else None."""
    try:
        zones = sorted(THERMAL.glob("thermal_zone*/temp"))
        if zones:
            return round(int(zones[0].read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        pass
    return None


def rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        import os

        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
