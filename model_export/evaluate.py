"""Fairness metrics: recall per group at a threshold fixed on validation non-faces.

Each model's threshold is set so that `fpr` (default 2 %) of the validation non-faces pass, so
the two models are compared at the same false-positive rate.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from model_export.fairstats import wilson

PLURAL = {"Female": "women", "Male": "men"}
FPR_RANGE = "a false-positive rate between 0 and 1 (exclusive), e.g. 0.02"


def valid_fpr(fpr: float) -> bool:
    """A share of the non-faces that may pass: finite and strictly between 0 and 1."""
    return math.isfinite(fpr) and 0 < fpr < 1


def fpr_arg(text: str) -> float:
    """argparse type of `--fpr`: refuses NaN, infinities and anything outside (0, 1) with a
    message that names the allowed range (0 would pass no non-face, 1 every one)."""
    try:
        fpr = float(text)
    except ValueError:
        fpr = math.nan
    if not valid_fpr(fpr):
        raise argparse.ArgumentTypeError(f"must be {FPR_RANGE}; got {text!r}")
    return fpr


def threshold_at_fpr(p_nonfaces: np.ndarray, fpr: float = 0.02) -> float:
    """Smallest threshold with at most `fpr` of the non-faces at or above it."""
    if not valid_fpr(fpr):
        raise ValueError(f"fpr {fpr}: the threshold needs {FPR_RANGE}")
    if len(p_nonfaces) == 0:
        raise ValueError("no validation non-faces to set the threshold on")
    s = np.sort(p_nonfaces)[::-1]
    k = int(np.floor(fpr * len(s)))  # at most k non-faces may pass
    t = float(s[k]) if k < len(s) else float(s[-1])
    t = float(np.nextafter(np.float32(t), np.float32(1.0)))  # strictly above the (k+1)-th
    return min(max(t, 1e-6), 1 - 1e-6)


def group_label(attrs: dict[str, str]) -> str:
    gender = attrs.get("gender")
    other = [v for k, v in attrs.items() if k != "gender"]
    if gender:
        return " ".join([*other, PLURAL.get(gender, gender)]).strip().capitalize()
    return " ".join(other)


def set_metrics(
    p: np.ndarray,
    attrs: Sequence[dict[str, str]],
    threshold: float,
    group_by: Sequence[Sequence[str]],
    fpr: float | None = None,
) -> dict[str, Any]:
    """Metrics of face probabilities `p` [N] (faces only) per group; `group_by` lists the
    attribute combinations to report, e.g. [("race", "gender"), ("race",), ("gender",)]."""
    detected = p >= threshold
    groups: list[dict[str, Any]] = []
    for combo in group_by:
        values = sorted({tuple(a.get(c, "") for c in combo) for a in attrs})
        for vals in values:
            if any(v == "" for v in vals):
                continue
            m = np.array([tuple(a.get(c, "") for c in combo) == vals for a in attrs])
            if not m.any():
                continue
            ga = dict(zip(combo, vals, strict=True))
            found, n = int(detected[m].sum()), int(m.sum())
            lo, hi = wilson(found, n)
            groups.append(
                {
                    "key": ",".join(f"{k}={v}" for k, v in ga.items()),
                    "label": group_label(ga),
                    "attrs": ga,
                    "recall": round(float(detected[m].mean()), 4),
                    "ci95": [round(lo, 4), round(hi, 4)],  # Wilson, this model's faces found
                    "mean_p": round(float(p[m].mean()), 4),
                    "count": int(m.sum()),
                }
            )
    finest = [g for g in groups if len(g["attrs"]) == len(group_by[0])] if group_by else []
    worst = min(finest, key=lambda g: g["recall"]) if finest else None
    best = max(finest, key=lambda g: g["recall"]) if finest else None
    return {
        "recall": round(float(detected.mean()), 4) if len(p) else 0.0,
        "fpr": fpr,
        "count": len(p),
        "groups": groups,
        "worst_group": worst["key"] if worst else None,
        "gap": round(best["recall"] - worst["recall"], 4) if worst and best else None,
    }


def all_combinations(columns: Sequence[str]) -> list[tuple[str, ...]]:
    """Finest combination first, then each attribute alone."""
    return [tuple(columns)] + [
        c for r in range(len(columns) - 1, 0, -1) for c in itertools.combinations(columns, r)
    ]
