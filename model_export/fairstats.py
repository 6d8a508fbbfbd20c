"""Intervals and paired tests for recall per group: a gap between groups is called a gap only
when its interval excludes zero (how they are reported: README "Evaluation at kiosk conditions").

- `wilson`: 95 % Wilson score interval of one group's recall (k of n faces found).
- `mcnemar`: exact McNemar test of two models on the same faces (faces only one model finds).
- `paired_bootstrap`: faces resampled within each group, the same draw for both models and every
  training seed, for the worst group, the gap between two fixed groups and overall recall, and
  for the change from the baseline to the other model.

A spread over training seeds is not one of these: it says how much training varies, not how
sure a recall on these faces is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from installation.intervals import Z95, wilson_share


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion k / n; (0, 1) when n is 0."""
    if n > 0 and not 0 <= k <= n:
        raise ValueError(f"k must be in 0..n, got k={k}, n={n}")
    return wilson_share(k / n if n > 0 else 0.0, n, z)


def mcnemar(found_a: np.ndarray, found_b: np.ndarray) -> dict[str, Any]:
    """Exact two-sided McNemar test on bool [N] detections of the same N faces:
    `only_a`, `only_b` (faces just one model finds) and the binomial p-value of that split."""
    from scipy.stats import binomtest

    a, b = np.asarray(found_a, bool), np.asarray(found_b, bool)
    if a.shape != b.shape:
        raise ValueError(f"detections of different faces: {a.shape} vs {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p_value": p}


def _cell_means(found: np.ndarray, cells: list[np.ndarray], draws: list[np.ndarray]) -> np.ndarray:
    """found float [N] (share of seeds that find each face) -> recall per cell per draw [B, C]."""
    return np.stack([found[idx][d].mean(axis=1) for idx, d in zip(cells, draws, strict=True)], 1)


def paired_bootstrap(
    base: np.ndarray,
    other: np.ndarray,
    groups: Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Detections bool [S, N] of two models (S training seeds each, the same N faces) and each
    face's group -> point values and 95 % percentile intervals.

    A face counts as found in the share of seeds that find it, so every number is the mean over
    seeds; only the faces are resampled (within their group, so group sizes stay fixed). The gap
    is recall(best) - recall(worst) for the two groups that are best and worst for the baseline
    on all faces: a fixed pair, so the interval can cross zero (a best-minus-worst recomputed
    on every draw never can)."""
    b, o = np.atleast_2d(base).astype(float), np.atleast_2d(other).astype(float)
    if b.shape[1] != len(groups) or o.shape[1] != len(groups):
        raise ValueError(f"{len(groups)} groups for {b.shape[1]} / {o.shape[1]} faces")
    fb, fo = b.mean(axis=0), o.mean(axis=0)  # [N]
    names = sorted(set(groups))
    g = np.asarray(groups)
    cells = [np.flatnonzero(g == name) for name in names]
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(c), size=(n_boot, len(c))) for c in cells]
    point = [np.arange(len(c))[None, :] for c in cells]
    rb, ro = _cell_means(fb, cells, point)[0], _cell_means(fo, cells, point)[0]  # [C]
    worst_i, best_i = int(np.argmin(rb)), int(np.argmax(rb))
    bb, bo = _cell_means(fb, cells, draws), _cell_means(fo, cells, draws)  # [B, C]
    counts = np.array([len(c) for c in cells], float)

    def stats(r: np.ndarray) -> dict[str, np.ndarray]:
        r = np.atleast_2d(r)
        return {
            "worst": r.min(axis=1),
            "gap": r[:, best_i] - r[:, worst_i],
            "overall": (r * counts).sum(axis=1) / counts.sum(),
        }

    pb, po, sb, so = stats(rb), stats(ro), stats(bb), stats(bo)
    out: dict[str, Any] = {
        "seeds": int(b.shape[0]),
        "faces": int(b.shape[1]),
        "boot": n_boot,
        "gap_groups": {"best": names[best_i], "worst": names[worst_i]},
        "groups": {
            n: {
                "count": len(cells[i]),
                "baseline": _summary(float(rb[i]), bb[:, i]),
                "other": _summary(float(ro[i]), bo[:, i]),
                "change": _summary(float(ro[i] - rb[i]), bo[:, i] - bb[:, i]),
            }
            for i, n in enumerate(names)
        },
    }
    for key in ("worst", "gap", "overall"):
        out[key] = {
            "baseline": _summary(float(pb[key][0]), sb[key]),
            "other": _summary(float(po[key][0]), so[key]),
            "change": _summary(float(po[key][0] - pb[key][0]), so[key] - sb[key]),
        }
    # Each model's own gap: its own best minus its own worst group on all faces (a fixed pair
    # again), the gap its panel names. For the baseline it is `gap`'s; the other model's own
    # pair can differ from the baseline's.
    out["own_gap"] = {}
    for side, point, boot in (("baseline", rb, bb), ("other", ro, bo)):
        hi_i, lo_i = int(np.argmax(point)), int(np.argmin(point))
        out["own_gap"][side] = {
            "best": names[hi_i],
            "worst": names[lo_i],
            **_summary(float(point[hi_i] - point[lo_i]), boot[:, hi_i] - boot[:, lo_i]),
        }
    return out


def _summary(point: float, draws: np.ndarray) -> dict[str, Any]:
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return {"value": round(point, 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}
