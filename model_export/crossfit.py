"""The recipe re-checked on all of wider-demog: two-fold cross-fitting over its photos.

The shipped runs train on half A of wider-demog's photos and are measured on half B; the same
recipe trained on half B (`--wider-train-half B`, `make recheck`) is measured on half A. Every
face is then judged by the seed-k models of the run that did not see its photo, and seed k of
both runs is paired as one seed of the recipe. Per target set: the models issue's targets on
half A alone (new models, new faces: the replication) and on both halves pooled (the issue's
own set, 2,655 faces), with the report's statistics (model_export.paired).

The rule, written before the first re-check ran (assets/models/README.md, "Re-check of
2026-12-07"): the recipe measurably narrows the gap only if every debiasing target holds on the
pooled faces at each target fraction **and** the gap change is negative on half A alone at each.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from installation.paths import BUNDLE_FOLDERS
from model_export.data import DataError
from model_export.paired import TARGET_SETS, compare, wider_targets

logger = logging.getLogger(__name__)

# Detections of one half's faces: {side: {set: [bool [N] per seed]}}, and each face's cell.
Found = dict[str, dict[str, list[np.ndarray]]]
POOLED = "both halves"


def half_label(measured: str) -> str:
    from model_export.wider import other_half

    return f"half {measured} (trained on {other_half(measured)})"


def judge_runs_of(
    half: str,
    runs: list[Path],
    *,
    data: Path,
    wider: Path,
    recipe: Any,
    fpr: float,
    threshold_set: str = "objects",
) -> tuple[Found, list[str]]:
    """Runs trained on `half` of wider-demog's photos, judging the other half's faces: their
    detections and each face's skin group x gender cell."""
    from model_export.paired import cell_labels
    from model_export.sets import prepare

    other = prepare(
        data,
        recipe,
        with_train=False,
        wider=wider,
        wider_train=True,
        wider_train_half=half,
        lab_sets=False,  # only the in-the-wild sets are judged
        threshold_set=threshold_set,  # the same non-faces as the measured runs' thresholds
    )
    assert other.wider is not None  # the other half's faces only
    return judge_half(other, runs, fpr), cell_labels([r.attrs for r in other.wider.rows])


def judge_half(data: Any, runs: list[Path], fpr: float) -> Found:
    """Each run folder's bundles (seeds in order) on `data`'s evaluation sets: the in-the-wild
    ones of the half its runs did not train on (`judge_runs_of` decodes no others)."""
    from model_export.workflow import int8_metrics

    out: Found = {s: {} for s in BUNDLE_FOLDERS}
    for run in runs:
        for side in BUNDLE_FOLDERS:
            if not (run / side / "card.json").is_file():
                raise DataError(
                    f"{run / side}: no bundle (card.json); pass run folders that hold "
                    "baseline/ and debiased/ (bias-mirror-export all --work WORK writes "
                    "WORK/runs/s0, s1, ...)"
                )
            found: dict[str, np.ndarray] = {}
            int8_metrics(run / side, data, fpr, detections=found)
            for name, hits in found.items():
                out[side].setdefault(name, []).append(hits)
    return out


def summary(found: Found, cells: list[str]) -> dict[str, Any]:
    """The report's paired comparison and the models issue's targets on these faces."""
    paired = compare(found["baseline"], found["debiased"], cells)
    agg: dict[str, Any] = {side: {"int8": {}} for side in BUNDLE_FOLDERS}
    for name, res in paired.items():
        bt = res["bootstrap"]
        for side, key in (("baseline", "baseline"), ("debiased", "other")):
            agg[side]["int8"][name] = {
                "recall_mean": bt["overall"][key]["value"],
                "groups": {g: {"mean": v[key]["value"]} for g, v in bt["groups"].items()},
            }
    return {"paired": paired, "targets": wider_targets(agg, paired)}


def pooled(halves: dict[str, tuple[Found, list[str]]]) -> tuple[Found, list[str]]:
    """Both halves' faces in one set: seed k of each half's judges side by side."""
    parts = [halves[h] for h in sorted(halves)]
    seeds = {len(v) for found, _ in parts for per_set in found.values() for v in per_set.values()}
    if len(seeds) != 1:
        raise DataError(f"the runs have different numbers of seeds ({sorted(seeds)}); pass as many")
    out: Found = {s: {} for s in BUNDLE_FOLDERS}
    for side in BUNDLE_FOLDERS:
        for name in parts[0][0][side]:
            per_seed = zip(*(found[side][name] for found, _ in parts), strict=True)
            out[side][name] = [np.concatenate(hits) for hits in per_seed]
    return out, [c for _, cells in parts for c in cells]


def crossfit(halves: dict[str, tuple[Found, list[str]]]) -> dict[str, Any]:
    """{measured half: (detections, cells)} for halves A and B -> each half's summary, the
    pooled one, and whether the rule holds (`holds`)."""
    results: dict[str, Any] = {half_label(h): summary(*halves[h]) for h in sorted(halves)}
    results[POOLED] = summary(*pooled(halves))
    replication = results[half_label("A")]["targets"]
    results["holds"] = bool(results[POOLED]["targets"]["debiased_holds"]) and all(
        replication[name]["gap_change"]["value"] < 0 for name in TARGET_SETS if name in replication
    )
    return results


def table(results: dict[str, Any], names: dict[str, str] | None = None) -> list[str]:
    """Markdown: per measured faces and target set, both models' cells and the gap numbers."""
    names = names or {"baseline": "baseline", "debiased": "right-hand model"}
    lines = [
        f"| faces | set | n | {names['baseline']} all; DF / DM / LF / LM | "
        f"{names['debiased']} all; DF / DM / LF / LM | baseline gap | gap change | "
        "worst group | overall change |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = ("Darker women", "Darker men", "Lighter women", "Lighter men")

    def ci(v: dict[str, Any]) -> str:
        lo, hi = v["ci95"]
        return f"{100 * v['value']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"

    for label, res in results.items():
        if not isinstance(res, dict) or "paired" not in res:
            continue
        for name in TARGET_SETS:
            if name not in res["paired"]:
                continue
            bt, t = res["paired"][name]["bootstrap"], res["targets"][name]
            cells = {
                key: " / ".join(f"{bt['groups'][c][key]['value']:.2f}" for c in order)
                for key in ("baseline", "other")
            }
            lines.append(
                f"| {label} | {name} | {bt['faces']} | {bt['overall']['baseline']['value']:.2f}; "
                f"{cells['baseline']} | {bt['overall']['other']['value']:.2f}; {cells['other']} "
                f"| {ci(t['baseline_gap'])} | {ci(t['gap_change'])} "
                f"({-100 * t['gap_reduction']:+.0f} %) | {100 * t['worst_group_gain']:+.1f} | "
                f"{ci(t['overall_change'])} |"
            )
    return lines
