"""Report statistics: the gap that sampling noise alone produces."""

from __future__ import annotations

import pytest

from model_export.report import gap_noise_floor


def test_gap_noise_floor_matches_the_range_of_normals() -> None:
    # 10 groups of 100 at p = 0.5: sigma = 0.05 per group; the expected range of 10 normal draws
    # is 3.078 sigma (tables of the studentized range), i.e. 0.154.
    mean, p95 = gap_noise_floor(0.5, [100] * 10)
    assert mean == pytest.approx(3.078 * 0.05, rel=0.05)
    assert p95 > mean
    # More faces per group: a smaller floor (scales with 1 / sqrt(n)).
    assert gap_noise_floor(0.5, [400] * 10)[0] == pytest.approx(mean / 2, rel=0.1)
    # A perfect or hopeless model has no noise.
    assert gap_noise_floor(1.0, [15] * 4) == (0.0, 0.0)
