"""Baseline vs the right-hand model on the same in-the-wild faces (`wider_*` sets).

Both models judge the same faces, so the comparison is paired: McNemar counts the faces only one
of them finds, and the bootstrap resamples faces (within skin group x gender) for both models
and every training seed at once (model_export.fairstats). Targets of the models issue are read
off these numbers in `wider_targets`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from installation.paths import BUNDLE_FOLDERS
from model_export.evaluate import group_label
from model_export.fairstats import mcnemar, paired_bootstrap

CELL = ("skin_group", "gender")
RECALL_TARGET = 0.85
TARGET_SETS = ("wider_f050", "wider_f070", "wider_f090")
STUDIO_SET = "wider_f100"


def wider_sets(names: list[str]) -> list[str]:
    return [n for n in names if n.startswith("wider_")]


def cell_labels(rows_attrs: list[dict[str, str]]) -> list[str]:
    """'Darker women', ... per face (skin group x gender)."""
    return [group_label({c: a.get(c, "") for c in CELL}) for a in rows_attrs]


def compare(
    base: dict[str, list[np.ndarray]],
    other: dict[str, list[np.ndarray]],
    cells: list[str],
    *,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """Per set: bool detections [N] per seed of each model (seed i of both paired) -> paired
    bootstrap over faces (means over seeds) and one exact McNemar test per seed."""
    out: dict[str, Any] = {}
    for name, per_seed in base.items():
        b, o = np.stack(per_seed), np.stack(other[name])  # [S, N] each
        if b.shape != o.shape:
            raise ValueError(f"{name}: {b.shape} baseline vs {o.shape} detections")
        out[name] = {
            "bootstrap": paired_bootstrap(b, o, cells, n_boot=n_boot),
            "mcnemar": [mcnemar(b[s], o[s]) for s in range(len(b))],
        }
    return out


def photo_halves(sources: list[str], salt: str = "wider-half") -> np.ndarray:
    """bool [N]: True for faces in half A. The split is by source photo (a hash of its name),
    so faces of one photo stay together: each half stands in for "other faces of the same
    kind", on which every claim is re-checked."""
    import hashlib

    return np.array(
        [hashlib.sha256(f"{salt}:{s}".encode()).digest()[0] < 128 for s in sources], bool
    )


def recheck(
    base: dict[str, list[np.ndarray]],
    other: dict[str, list[np.ndarray]],
    cells: list[str],
    sources: list[str],
    *,
    n_boot: int = 2000,
) -> dict[str, Any]:
    """The paired comparison on each half of the photos separately (target sets only). Faces
    that are all of one half (half B, when half A was trained on: `--wider-train`) are split in
    two by a second hash of their photos."""
    half_a = photo_halves(sources)
    if half_a.all() or not half_a.any():
        half_a = photo_halves(sources, salt="wider-half-2")
    out: dict[str, Any] = {}
    for label, mask in (("A", half_a), ("B", ~half_a)):
        sub = [c for c, m in zip(cells, mask, strict=True) if m]
        pick = {n: [d[mask] for d in v] for n, v in base.items() if n in TARGET_SETS}
        pick_o = {n: [d[mask] for d in v] for n, v in other.items() if n in TARGET_SETS}
        res = compare(pick, pick_o, sub, n_boot=n_boot)
        out[label] = {
            name: {k: r["bootstrap"][k] for k in ("faces", "worst", "gap", "overall")}
            for name, r in res.items()
        }
    return out


def wider_targets(agg: dict[str, Any], paired: dict[str, Any]) -> dict[str, Any]:
    """The models issue's targets on seed means (int8, equal FPR), each with its numbers."""
    b_sets, d_sets = agg["baseline"]["int8"], agg["debiased"]["int8"]
    res: dict[str, Any] = {}
    recall_ok = True
    for name in (*TARGET_SETS, STUDIO_SET):
        if name not in b_sets:
            continue
        lows = {
            folder: min(g["mean"] for g in agg[folder]["int8"][name]["groups"].values())
            for folder in BUNDLE_FOLDERS
        }
        ok = all(v >= RECALL_TARGET for v in lows.values())
        recall_ok = recall_ok and ok
        res[f"{name}_lowest_cell"] = {k: round(v, 4) for k, v in lows.items()} | {"ok": ok}
    res["recall_085_everywhere"] = recall_ok
    for name in TARGET_SETS:
        if name not in paired:
            continue
        bt = paired[name]["bootstrap"]
        base_gap, change = bt["gap"]["baseline"], bt["gap"]["change"]
        cut = 1 - bt["gap"]["other"]["value"] / base_gap["value"] if base_gap["value"] else 0.0
        worst_gain = bt["worst"]["change"]["value"]
        res[name] = {
            "baseline_gap": base_gap,
            "baseline_gap_real": base_gap["ci95"][0] > 0,
            "gap_change": change,
            "gap_reduction": round(cut, 4),
            "gap_reduction_ok": cut >= 0.30 and change["ci95"][1] < 0,
            "worst_group_gain": round(worst_gain, 4),
            "worst_group_gain_ok": worst_gain >= 0.05,
            "overall_change": bt["overall"]["change"],
            "overall_not_lower": b_sets[name]["recall_mean"] <= d_sets[name]["recall_mean"],
        }
    keys = [k for k in TARGET_SETS if k in res]
    res["baseline_gap_real_everywhere"] = bool(keys) and all(
        res[k]["baseline_gap_real"] for k in keys
    )
    # "Debiased" is only true when there is a real gap and the right-hand model narrows it.
    res["debiased_holds"] = res["baseline_gap_real_everywhere"] and all(
        res[k]["gap_reduction_ok"] and res[k]["worst_group_gain_ok"] and res[k]["overall_not_lower"]
        for k in keys
    )
    return res
