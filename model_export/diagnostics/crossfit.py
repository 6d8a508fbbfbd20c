"""Asked: does the recipe's narrowing of the gap hold on all of wider-demog, each face judged by
models that never saw its photo? (assets/models/README.md, "Re-check of 2026-12-07".)

From bundles alone (no checkpoints): the runs of the recipe trained on half A and those trained
on half B (`bias-mirror-export all --wider-train --wider-train-half B`), each judging the other
half's faces; model_export.crossfit says how and by which rule. `bias-mirror-export report
--cross-runs` puts the same numbers into the report and the cards (`make recheck`).

    python -m model_export.diagnostics.crossfit --data DIR --wider DIR \\
        --trained-on A WORK_A/runs/s0 WORK_A/runs/s1 WORK_A/runs/s2 \\
        --trained-on B WORK_B/runs/s0 WORK_B/runs/s1 WORK_B/runs/s2 [--out FILE.json]

(each run folder holds `baseline/` and `debiased/`, seeds in order; int8, thresholds at 2 % FPR
on the validation non-faces, as the kiosk scores them). It trains nothing and changes no bundle.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from model_export.cli import user_errors
from model_export.crossfit import Found, crossfit, judge_runs_of, table
from model_export.data import DataError


def main(argv: list[str] | None = None) -> int:
    from model_export.evaluate import fpr_arg
    from model_export.recipe import load_recipe
    from model_export.wider import HALVES, other_half

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
    p.add_argument("--fpr", type=fpr_arg, default=0.02, help="false-positive rate of the threshold")
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
        halves: dict[str, tuple[Found, list[str]]] = {}
        for half, folders in sorted(runs.items()):
            halves[other_half(half)] = judge_runs_of(
                half, folders, data=args.data, wider=args.wider, recipe=load_recipe(), fpr=args.fpr
            )
    except user_errors() as exc:  # a corrupt bundle too, not only a bad option
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results: dict[str, Any] = crossfit(halves)
    print("\n".join(table(results)))
    for label, res in results.items():
        if isinstance(res, dict):
            print(f"{label}: debiasing targets hold: {res['targets']['debiased_holds']}")
    print(
        f"the re-check's rule (pooled targets, and half A's gap change below zero): "
        f"{'holds' if results['holds'] else 'does not hold'}"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
