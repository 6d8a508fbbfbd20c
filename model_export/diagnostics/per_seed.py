"""Two runs of the same recipe side by side, seed by seed, from their bundles' cards.

Runs with the same seed start from the same weights and draw the same images and augmentation,
so where a setting changes only how training steps (its learning rate, say), seed k of one run
against seed k of the other is a paired comparison: the per-seed tables of the sweeps of
2026-12-07 in assets/models/README.md. Read from each bundle's `card.json` (int8, the card's
threshold): overall recall and the lowest skin group x gender cell on each in-the-wild set.

    python -m model_export.diagnostics.per_seed \\
        --run shipped assets/models WORK_SHIPPED/runs/s1 \\
        --run cosine WORK_COSINE/runs/s0 WORK_COSINE/runs/s1

Each folder holds `baseline/` and `debiased/` bundles (`bias-mirror-export all --work WORK`
exports seed k's to WORK/runs/sk; `--out` holds seed 0's), or only those named by `--sides`;
the folders of one run are its seeds in order. Nothing is trained or evaluated again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from installation.inference.card import Card, CardError, SetMetrics, load_card
from installation.paths import BUNDLE_FOLDERS
from model_export.data import DataError
from model_export.sets import wider_set_name
from model_export.wider import ATTRS, FRACTIONS, STUDIO_FRACTION

# The in-the-wild sets `all --wider` evaluates, with the row label each gets here.
LABELS = {
    wider_set_name(f): "kiosk" if f is None else f"f = {f:.1f}"
    for f in (*FRACTIONS, STUDIO_FRACTION, None)
}
SETS = tuple(LABELS)


def read_card(folder: Path) -> Card:
    try:
        return load_card(folder / "card.json")
    except CardError as exc:
        raise DataError(
            f"cannot read the bundle's card ({exc}); pass folders that hold baseline/ and "
            "debiased/ bundles"
        ) from None


def recall_and_lowest(m: SetMetrics) -> tuple[float, float]:
    """(overall recall, lowest recall among the skin group x gender cells)."""
    cells = [g.recall for g in m.groups if set(g.attrs) == set(ATTRS)]
    if not cells:
        raise DataError("no skin group x gender cells in the card's metrics")
    return m.recall, min(cells)


def table(runs: list[tuple[str, list[Path]]], side: str) -> list[str]:
    """Markdown rows: one per set, one column per run and seed ("recall (lowest cell)")."""
    cols: list[tuple[str, dict[str, SetMetrics]]] = []
    for name, folders in runs:
        for k, folder in enumerate(folders):
            int8 = read_card(folder / side).metrics.get("int8", {})
            missing = [s for s in SETS if s not in int8]
            if missing:
                raise DataError(
                    f"{folder / side}: no int8 metrics for {', '.join(missing)}; export it with "
                    "--wider"
                )
            cols.append((f"{name} seed {k}", int8))
    rows = [
        "| " + side + " | " + " | ".join(c for c, _ in cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for s in SETS:
        cells = [recall_and_lowest(m[s]) for _, m in cols]
        rows.append(
            f"| {LABELS[s]} | " + " | ".join(f"{r:.3f} ({lo:.2f})" for r, lo in cells) + " |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--run",
        nargs="+",
        action="append",
        required=True,
        metavar=("NAME", "FOLDER"),
        help="a run's name, then its seeds' folders in order (each with baseline/, debiased/)",
    )
    p.add_argument(
        "--sides",
        nargs="+",
        choices=BUNDLE_FOLDERS,
        default=list(BUNDLE_FOLDERS),
        help="the bundles to compare (default both; `train --method baseline` runs hold one)",
    )
    args = p.parse_args(argv)
    runs: list[tuple[str, list[Path]]] = []
    for name, *folders in args.run:
        if not folders:
            p.error(f"--run {name}: give the folders of its seeds after the name")
        runs.append((name, [Path(f) for f in folders]))
    try:
        for side in args.sides:
            print("\n".join(table(runs, side)), end="\n\n")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
