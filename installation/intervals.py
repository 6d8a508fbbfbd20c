"""The 95 % Wilson score interval: one home for the kiosk's bars (installation.display.panels)
and the exporter's report (model_export.fairstats), so the screen and the report draw the same
interval around the same recall."""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_share(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Interval of a share `p` of `n` trials (a recall, or a mean of recalls over seeds on the
    same n faces); well behaved near 0 and 1 and for small n; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)
