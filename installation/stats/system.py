"""Host figures for the stats: CPU temperature (when readable) and resident memory."""

from __future__ import annotations

import logging
import os
import resource
from pathlib import Path

logger = logging.getLogger(__name__)

THERMAL = Path("/sys/class/thermal")


def cpu_temperature_c(thermal: Path = THERMAL) -> float | None:
    """Hottest `*cpu*`/`*soc*`/`x86_pkg` zone, else the first zone, in degrees C; None if none.

    Raspberry Pi exposes `cpu-thermal`, Jetson `CPU-therm`, x86 `x86_pkg_temp`; containers and
    VMs often have no zone at all.
    """
    readings: list[tuple[bool, float]] = []
    for zone in sorted(thermal.glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip().lower()
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        if -40_000 < milli < 150_000:  # a disconnected sensor reads absurd values
            readings.append((any(k in kind for k in ("cpu", "soc", "x86_pkg")), milli / 1000.0))
    if not readings:
        return None
    cpu = [t for is_cpu, t in readings if is_cpu]
    return round(max(cpu) if cpu else readings[0][1], 1)


def rss_mb() -> float:
    """Resident memory of this process in MiB (current; peak where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
