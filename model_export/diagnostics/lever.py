"""Answered: how far does each resampling setting move the groups among the drawn faces?

Measured on a trained DB-VAE:

    python -m model_export.diagnostics.lever --work runs/aug-work --seed 0 --data DIR
        [--latent-dim 100]

Loads `<work>/dbvae-s<seed>/`, encodes the recipe's training faces and prints, for every
combination rule x temperature x cap, the expected share of each group among the drawn faces
and how many distinct faces carry 90 % of the probability (a collapse shows as a small number).
Labels are used for this report only.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from model_export.resampling import Rule, effective_shares, face_weights

logger = logging.getLogger(__name__)

RULES: tuple[Rule, ...] = ("max", "mean_log", "product")
TEMPERATURES = (1.0, 0.5, 0.25, 0.1)
CAPS = (None, 20.0)


def faces_for_90_percent(w: np.ndarray) -> int:
    """Smallest number of faces whose probabilities sum to 0.9."""
    return int(np.searchsorted(np.cumsum(np.sort(w)[::-1]), 0.9 - 1e-9) + 1)


def sweep(
    latents: np.ndarray, groups: np.ndarray, bins: int = 10, alpha: float = 0.001
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for rule in RULES:
        for t in TEMPERATURES:
            for cap in CAPS:
                w = face_weights(latents, bins=bins, alpha=alpha, rule=rule, temperature=t, cap=cap)
                rows.append(
                    {
                        "rule": rule,
                        "temperature": t,
                        "cap": cap,
                        "shares": effective_shares(w, groups),
                        "faces_for_90pct": faces_for_90_percent(w),
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    from model_export.models import DBVAE
    from model_export.recipe import load_recipe
    from model_export.sets import prepare
    from model_export.steps import checkpoint_dir
    from model_export.train import LAST_WEIGHTS, latent_means

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--latent-dim", type=int, default=100)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    recipe = load_recipe()
    data = prepare(args.data, recipe)
    model = DBVAE(args.latent_dim, seed=args.seed)
    model(np.zeros((1, 64, 64, 3), np.float32))
    model.load_weights(
        checkpoint_dir(args.work, "dbvae", args.seed) / LAST_WEIGHTS, skip_mismatch=True
    )
    faces = data.train.y == 1
    z = latent_means(model, data.train.x[faces])  # [N_faces, D]
    rows = sweep(z, data.train.attr(recipe.group_by)[faces])
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
