"""The resampling-lever sweep (model_export.diagnostics.lever) on synthetic latents."""

from __future__ import annotations

import numpy as np

from model_export.diagnostics.lever import faces_for_90_percent, sweep


def test_faces_for_90_percent() -> None:
    assert faces_for_90_percent(np.full(10, 0.1)) == 9
    assert faces_for_90_percent(np.array([0.95, 0.05])) == 1


def test_sweep_sharper_settings_draw_the_rare_cluster_more() -> None:
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 1, (400, 4)), rng.normal(3.5, 0.3, (20, 4))])
    groups = np.array(["common"] * 400 + ["rare"] * 20)
    rows = sweep(z, groups)
    by = {(r["rule"], r["temperature"], r["cap"]): r for r in rows}
    assert len(rows) == 3 * 4 * 2
    share = {k: float(r["shares"]["rare"]) for k, r in by.items()}  # type: ignore[index]
    n90 = {k: int(r["faces_for_90pct"]) for k, r in by.items()}  # type: ignore[call-overload]
    # At temperature 1 every rule up-weights the rare cluster (5 % of the faces).
    assert all(share[(rule, 1.0, None)] > 0.05 for rule in ("max", "mean_log", "product"))
    assert share[("mean_log", 0.5, None)] > share[("mean_log", 1.0, None)]  # sharper: more
    # The product concentrates on few faces; max at a low temperature collapses onto the
    # outliers of single dimensions; the cap spreads both again.
    assert n90[("product", 1.0, None)] < n90[("max", 1.0, None)]
    assert n90[("max", 0.1, None)] <= 2 < n90[("max", 0.1, 20.0)]
    assert n90[("product", 0.1, None)] < n90[("product", 0.1, 20.0)]
