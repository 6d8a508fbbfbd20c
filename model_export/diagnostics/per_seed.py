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
exports seed k's to WORK/runs/sk; `--out` holds seed 0's); the folders of one run are its seeds
in order. Nothing is trained or evaluated again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from installation.inference.card import Card, SetMetrics
from model_export.data import DataError
from model_export.wider import ATTRS

SETS = ("wider_f050", "wider_f070", "wider_f090", "wider_f100", "wider_kiosk")
LABELS = {"wider_f050": "f = 0.5", "wider_f070": "f = 0.7", "wider_f090": "f = 0.9"}
LABELS |= {"wider_f100": "f = 1.0", "wider_kiosk": "kiosk"}
SIDES = ("baseline", "debiased")


def read_card(folder: Path) -> Card:
    path = folder / "card.json"
    try:
        return Card.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read the bundle's card ({exc.strerror}); pass folders "
            "that hold baseline/ and debiased/ bundles"
        ) from None
    except ValueError as exc:
        raise DataError(f"{path}: not a valid card: {exc}") from None


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
    args = p.parse_args(argv)
    runs: list[tuple[str, list[Path]]] = []
    for name, *folders in args.run:
        if not folders:
            p.error(f"--run {name}: give the folders of its seeds after the name")
        runs.append((name, [Path(f) for f in folders]))
    try:
        for side in SIDES:
            print("\n".join(table(runs, side)), end="\n\n")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
