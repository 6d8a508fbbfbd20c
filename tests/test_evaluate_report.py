"""Report statistics: the gap that sampling noise alone produces, and paired per-seed effects."""

from __future__ import annotations

import pytest

from model_export.report import gap_noise_floor, paired_effects
from model_export.report_plot import wider_name
from model_export.report_text import status_line


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


def test_status_line_says_met_and_not_met_from_the_numbers() -> None:
    tg = {
        "mit6s191": {
            "worst_group_gain": 0.0444,
            "worst_group_gain_ok": False,
            "gap_reduction": 0.1765,
            "gap_reduction_ok": False,
            "overall_not_lower": True,
        },
        "camera_shift": {
            "worst_group_gain": 0.0611,
            "worst_group_gain_ok": True,
            "gap_reduction": 0.35,
            "gap_reduction_ok": True,
            "overall_not_lower": False,
        },
        "int8_max_drift": 0.0667,
        "int8_max_drift_by_set": {"mit6s191": 0.0667, "utkface": 0.0, "camera_shift": 0.0089},
        "int8_within_1_5_points": False,
    }
    line = status_line(tg, 3)
    assert line.startswith("seed 0 of 3 shipped")
    assert "mit6s191: worst group +4.4 points (+5: NOT met), gap -18 % (-30 %: NOT met)" in line
    assert "camera_shift: worst group +6.1 points (+5: met), gap -35 % (-30 %: met)" in line
    assert "overall not lower (NOT met)" in line
    assert "largest difference 6.7 points (1.5: NOT met)" in line
    assert "by set: mit6s191 6.7, utkface 0.0, camera_shift 0.9" in line


def _set(recalls: list[float]) -> dict[str, object]:
    """One evaluation set's metrics with two finest groups (race x gender) and their recalls."""
    groups = [
        {
            "key": f"race=R{i},gender=Female",
            "attrs": {"race": f"R{i}", "gender": "Female"},
            "recall": r,
        }
        for i, r in enumerate(recalls)
    ]
    return {
        "recall": sum(recalls) / len(recalls),
        "gap": max(recalls) - min(recalls),
        "groups": [*groups, {"key": "gender=Female", "attrs": {"gender": "Female"}, "recall": 0.0}],
    }


def _run(base: list[float], deb: list[float]) -> dict[str, object]:
    return {
        "baseline": {"int8": {"mit6s191": _set(base), "camera_shift": _set(base)}},
        "debiased": {"int8": {"mit6s191": _set(deb), "camera_shift": _set(deb)}},
    }


def test_paired_effects_per_seed_mean_and_interval() -> None:
    # Seed by seed the debiased worst group gains 0.10, 0.20 and 0.00; the one-attribute group
    # (recall 0) must not count as the worst.
    runs = [
        _run([0.5, 0.9], [0.6, 0.8]),
        _run([0.4, 0.8], [0.6, 0.8]),
        _run([0.6, 0.7], [0.6, 0.9]),
    ]
    e = paired_effects(runs)["mit6s191"]
    assert e["worst"]["per_seed"] == pytest.approx([0.1, 0.2, 0.0])
    assert e["worst"]["mean"] == pytest.approx(0.1)
    # t interval: 0.1 +- t(0.975, 2) * sd / sqrt(3) = 0.1 +- 4.303 * 0.1 / 1.732
    assert e["worst"]["ci95"] == pytest.approx([0.1 - 0.2484, 0.1 + 0.2484], abs=2e-4)
    assert e["worst"]["seeds_better"] == 2
    # Gap: 0.4 -> 0.2, 0.4 -> 0.2, 0.1 -> 0.3; better means smaller.
    assert e["gap"]["per_seed"] == pytest.approx([-0.2, -0.2, 0.2])
    assert e["gap"]["seeds_better"] == 2
    assert e["overall"]["mean"] == pytest.approx((0.0 + 0.1 + 0.1) / 3, abs=1e-4)


def test_paired_effects_constant_difference_has_no_spread() -> None:
    runs = [_run([0.5, 0.7], [0.55, 0.75]) for _ in range(4)]
    e = paired_effects(runs)["camera_shift"]["worst"]
    assert e["ci95"] == pytest.approx([0.05, 0.05])
    assert e["seeds_better"] == 4


def test_chart_names_half_b_when_half_a_was_trained_on() -> None:
    """The chart's in-the-wild panels say which faces they measured: all of wider-demog, or only
    half B's when `--wider-train` put half A in the training faces (the card's counts say so)."""
    assert wider_name({"faces": 10}) == "wider-demog"
    assert wider_name({"faces": 10, "wider_train": {"half": "A", "faces": 5}}) == (
        "wider-demog half B"
    )
    # Trained on half B (the re-check of model_export.diagnostics.crossfit): half A measured.
    assert wider_name({"faces": 10, "wider_train": {"half": "B", "faces": 5}}) == (
        "wider-demog half A"
    )
