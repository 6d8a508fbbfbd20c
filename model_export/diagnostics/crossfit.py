"""Asked: does the recipe's narrowing of the gap hold on all of wider-demog, each face judged by
models that never saw its photo? (assets/models/README.md, "Re-check of 2026-12-07: the
recipe trained on half B, measured on half A".)

The shipped recipe trains on half A of wider-demog's photos and is measured on half B (1,260
faces, 34 of them Darker women), where the change in gap has intervals that cross zero at
f = 0.7 and 0.9. The same recipe trained on half B (`bias-mirror-export all --wider-train
--wider-train-half B`) is measured on half A. Each face of wider-demog is then judged by the
seed-k models of the run that did not train on its photo (two-fold cross-fitting); seed k of
both runs is paired as one seed of the recipe. Per face fraction: the models issue's targets on
half A alone (the replication) and on both halves pooled (2,655 faces), with the report's
statistics (model_export.paired: 3-seed means, paired bootstrap within skin group x gender,
McNemar per seed):

    python -m model_export.diagnostics.crossfit --data DIR --wider DIR \\
        --trained-on A WORK_A/runs/s0 WORK_A/runs/s1 WORK_A/runs/s2 \\
        --trained-on B WORK_B/runs/s0 WORK_B/runs/s1 WORK_B/runs/s2 [--out FILE.json]

(each run folder holds `baseline/` and `debiased/`, seeds in order). Every bundle is scored as
the kiosk scores it (int8, threshold at 2 % FPR on the validation non-faces). A diagnostic for
the models README: it trains nothing and changes no bundle.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from model_export.data import DataError
from model_export.paired import TARGET_SETS, cell_labels, compare, wider_targets

logger = logging.getLogger(__name__)

SIDES = ("baseline", "debiased")


def judge_half(data: Any, runs: list[Path], fpr: float) -> dict[str, dict[str, list[np.ndarray]]]:
    """{side: {set: [bool [N] per seed]}}: each run folder's bundles on `data`'s in-the-wild
    sets (the half its runs did not train on)."""
    from model_export.workflow import int8_metrics

    out: dict[str, dict[str, list[np.ndarray]]] = {s: {} for s in SIDES}
    for run in runs:
        for side in SIDES:
            if not (run / side / "card.json").is_file():
                raise DataError(
                    f"{run / side}: no bundle (card.json); pass run folders that hold "
                    "baseline/ and debiased/ (bias-mirror-export all --work WORK writes "
                    "WORK/runs/s0, s1, ...)"
                )
            found: dict[str, np.ndarray] = {}
            int8_metrics(run / side, data, fpr, detections=found)
            for name, hits in found.items():
                if name.startswith("wider_"):
                    out[side].setdefault(name, []).append(hits)
    return out


def summary(found: dict[str, dict[str, list[np.ndarray]]], cells: list[str]) -> dict[str, Any]:
    """The report's paired comparison and the models issue's targets on these faces."""
    paired = compare(found["baseline"], found["debiased"], cells)
    agg: dict[str, Any] = {side: {"int8": {}} for side in SIDES}
    for name, res in paired.items():
        bt = res["bootstrap"]
        for side, key in (("baseline", "baseline"), ("debiased", "other")):
            agg[side]["int8"][name] = {
                "recall_mean": bt["overall"][key]["value"],
                "groups": {g: {"mean": v[key]["value"]} for g, v in bt["groups"].items()},
            }
    return {"paired": paired, "targets": wider_targets(agg, paired)}


def pooled(
    halves: dict[str, tuple[dict[str, dict[str, list[np.ndarray]]], list[str]]],
) -> tuple[dict[str, dict[str, list[np.ndarray]]], list[str]]:
    """Both halves' faces in one set: seed k of each half's judges side by side."""
    parts = list(halves.values())
    seeds = {len(v) for found, _ in parts for per_set in found.values() for v in per_set.values()}
    if len(seeds) != 1:
        raise DataError(f"the runs have different numbers of seeds ({sorted(seeds)}); pass as many")
    out: dict[str, dict[str, list[np.ndarray]]] = {s: {} for s in SIDES}
    for side in SIDES:
        for name in parts[0][0][side]:
            per_seed = zip(*(found[side][name] for found, _ in parts), strict=True)
            out[side][name] = [np.concatenate(hits) for hits in per_seed]
    return out, [c for _, cells in parts for c in cells]


def table(label: str, res: dict[str, Any]) -> list[str]:
    """Markdown rows: per target set, both models' cells and the gap statistics."""
    rows = []
    for name in TARGET_SETS:
        if name not in res["paired"]:
            continue
        bt = res["paired"][name]["bootstrap"]
        t = res["targets"][name]

        def cells(key: str, bt: dict[str, Any] = bt) -> str:
            g = bt["groups"]
            order = ("Darker women", "Darker men", "Lighter women", "Lighter men")
            return " / ".join(f"{g[c][key]['value']:.2f}" for c in order if c in g)

        def ci(v: dict[str, Any]) -> str:
            lo, hi = v["ci95"]
            return f"{100 * v['value']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"

        rows.append(
            f"| {label} | {name} | {bt['faces']} | {bt['overall']['baseline']['value']:.2f}; "
            f"{cells('baseline')} | {bt['overall']['other']['value']:.2f}; {cells('other')} | "
            f"{ci(t['baseline_gap'])} | {ci(t['gap_change'])} ({-100 * t['gap_reduction']:+.0f} %) "
            f"| {100 * t['worst_group_gain']:+.1f} | {ci(t['overall_change'])} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    from model_export.recipe import load_recipe
    from model_export.wider import HALVES, other_half
    from model_export.workflow import prepare

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="faces64 folder")
    p.add_argument("--wider", type=Path, required=True, help="wider-demog folder")
    p.add_argument(
        "--trained-on",
        nargs="+",
        action="append",
        required=True,
        metavar=("HALF", "RUN"),
        help="a half (A or B) and the run folders, one per seed in order, of the recipe trained "
        "on it; give both halves",
    )
    p.add_argument("--fpr", type=float, default=0.02, help="false-positive rate of the threshold")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        runs: dict[str, list[Path]] = {}
        for half, *folders in args.trained_on:
            if half not in HALVES or not folders or half in runs:
                raise DataError(
                    f"--trained-on {half} {' '.join(folders)}: give each half (A, B) once, "
                    "then its run folders"
                )
            runs[half] = [Path(f) for f in folders]
        if set(runs) != set(HALVES):
            raise DataError("--trained-on: give both halves, A and B, each with its runs")
        if len({len(v) for v in runs.values()}) != 1:
            raise DataError(
                "the runs have different numbers of seeds "
                f"({', '.join(f'{h}: {len(v)}' for h, v in sorted(runs.items()))}); seed k of "
                "each half is paired, so pass as many for each"
            )
        halves: dict[str, tuple[dict[str, dict[str, list[np.ndarray]]], list[str]]] = {}
        for half, folders in sorted(runs.items()):
            data = prepare(
                args.data,
                load_recipe(),
                with_train=False,
                wider=args.wider,
                wider_train=True,
                wider_train_half=half,
            )
            assert data.wider is not None  # the other half's faces only
            cells = cell_labels([r.attrs for r in data.wider.rows])
            halves[other_half(half)] = (judge_half(data, folders, args.fpr), cells)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results: dict[str, Any] = {
        f"half {h} (trained on {other_half(h)})": summary(*halves[h]) for h in sorted(halves)
    }
    results["both halves"] = summary(*pooled(halves))
    print(
        "| faces | set | n | baseline all; DF / DM / LF / LM | right all; DF / DM / LF / LM | "
        "baseline gap | gap change | worst group | overall change |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, res in results.items():
        print("\n".join(table(label, res)))
    for label, res in results.items():
        print(f"{label}: debiasing targets hold: {res['targets']['debiased_holds']}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
