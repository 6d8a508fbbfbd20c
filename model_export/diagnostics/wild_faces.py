"""Asked: are in-the-wild training faces the limit? (assets/models/README.md, "Sweep of 2026-12-05
(afternoon)".)

Trains the shipped baseline recipe twice with one seed, without and with the faces of half A of
wider-demog's photos added to the training faces, and measures both on half B's faces only
(photos neither model saw), float, at 2 % FPR on the validation non-faces:

    python -m model_export.diagnostics.wild_faces --data DIR --wider DIR --work WORK --seed 0

Writes WORK/wild_faces.json and prints one table row per arm and framing: overall recall and
Darker women / Darker men / Lighter women / Lighter men, with counts. A diagnostic for the models
README, not a step of `all`: no shipped bundle depends on it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from model_export.data import Images
from model_export.wider import split_wider

logger = logging.getLogger(__name__)

CELLS = (
    ("Darker", "Female"),
    ("Darker", "Male"),
    ("Lighter", "Female"),
    ("Lighter", "Male"),
)


def with_added(train: Images, added: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training images with `added` appended as faces: x [N + N_a, 64, 64, 3], y [N + N_a]."""
    x = np.concatenate([train.x, added])
    y = np.concatenate([train.y, np.ones(len(added), np.float32)])
    return x, y


def cell_recall(found: np.ndarray, images: Images, mask: np.ndarray) -> dict[str, Any]:
    """Recall over `mask`'s faces and per skin group x gender cell, with counts."""
    groups = images.attr("skin_group")
    genders = images.attr("gender")
    out: dict[str, Any] = {"all": round(float(found[mask].mean()), 4), "count": int(mask.sum())}
    for skin, gender in CELLS:
        m = mask & (groups == skin) & (genders == gender)
        out[f"{skin} {gender}"] = {
            "recall": round(float(found[m].mean()), 4),
            "count": int(m.sum()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    from installation.logits import sigmoid
    from model_export.evaluate import threshold_at_fpr
    from model_export.recipe import load_recipe
    from model_export.sets import prepare, wider_set_name
    from model_export.train import TrainConfig, predict_logits, train_baseline
    from model_export.wider import FRACTIONS, STUDIO_FRACTION

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="faces64 folder")
    p.add_argument("--wider", type=Path, required=True, help="wider-demog folder")
    p.add_argument("--work", type=Path, required=True, help="checkpoints and wild_faces.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=12)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    data = prepare(args.data, load_recipe(), wider=args.wider)
    assert data.wider is not None
    split = split_wider(data.wider)
    sets = [wider_set_name(f) for f in (*FRACTIONS, STUDIO_FRACTION)] + [wider_set_name(None)]
    results: dict[str, Any] = {"seed": args.seed, "added_faces": len(split.added), "arms": {}}
    for arm in ("control", "added"):
        x, y = with_added(data.train, split.added if arm == "added" else split.added[:0])
        cfg = TrainConfig(
            epochs=args.epochs,
            seed=args.seed,
            latent_dim=32,
            augment="wild",
            width=16,
            convs_per_stage=2,
        )
        model, log = train_baseline(x, y, cfg, args.work / arm)
        thr = threshold_at_fpr(sigmoid(predict_logits(model, data.val_nonfaces.x)), 0.02)
        arm_out: dict[str, Any] = {"train_faces": int(y.sum()), "loss": log[-1]["loss"]}
        for name in sets:
            images = data.evals[name]
            found = sigmoid(predict_logits(model, images.x)) >= thr
            arm_out[name] = cell_recall(found, images, split.held_out)
        results["arms"][arm] = arm_out
        (args.work / "wild_faces.json").write_text(json.dumps(results, indent=1))
    for name in sets:
        for arm, r in results["arms"].items():
            s = r[name]
            cells = " / ".join(f"{s[f'{a} {b}']['recall']:.2f}" for a, b in CELLS)
            print(f"{name:14s} {arm:8s} {s['all']:.3f}; {cells}  (half B, {s['count']} faces)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
