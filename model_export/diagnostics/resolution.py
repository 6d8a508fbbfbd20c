"""Asked: is the 64x64 input the limit at small face fractions? (assets/models/README.md,
"Diagnostic of 2026-12-06 (night)".)

At face fraction 0.5 a face has 32 of the input's 64 pixels across; studio-tight (1.0) it has
64. The shipped models find studio-tight faces far more often. Two things change between them:
how many pixels the face has, and how much of the crop is surroundings (hair, shoulders, other
people, the room). This separates them on half B of wider-demog (photos no model saw), with the
`make models` checkpoints reloaded from WORK (float, 3 seeds of both methods, each threshold at
2 % FPR on the validation non-faces, as the report sets it):

- `f=0.5`, `f=0.7`, `f=1.0`: the report's crops (model_export.wider.crop64);
- `f=1.0@32px`, `f=1.0@45px`: the studio-tight crop at the pixels a face has at f = 0.5 / 0.7
  (INTER_AREA down, as crop64 makes the smaller fractions, then INTER_LINEAR back to 64x64): the
  face fills the crop, with no more detail than at the smaller fraction.

    python -m model_export.diagnostics.resolution --data DIR --wider DIR --work WORK \
        --seeds 0 1 2 --epochs 12 --right-epochs 20 --latent-dim 32 --width 16 \
        --convs-per-stage 2 --augment wild-context --method balanced

(the training options of the run that made WORK, so the checkpoints reload, never retrain).
Prints one row per view: overall recall and Darker women / Darker men / Lighter women / Lighter
men, 3-seed means, per model; writes WORK/resolution.json. A diagnostic for the models README,
not a step of `all`: no shipped bundle depends on it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from model_export.diagnostics.wild_faces import CELLS, cell_recall
from model_export.wider import crop64

logger = logging.getLogger(__name__)

# View name -> (face fraction of the crop, pixels the face is reduced to, or None).
VIEWS: dict[str, tuple[float, int | None]] = {
    "f=0.5": (0.5, None),
    "f=1.0@32px": (1.0, 32),
    "f=0.7": (0.7, None),
    "f=1.0@45px": (1.0, 45),
    "f=1.0": (1.0, None),
}


def view64(img128: np.ndarray, fraction: float, pixels: int | None) -> np.ndarray:
    """uint8 [128, 128, 3] -> uint8 [64, 64, 3]: the crop at `fraction`, and with `pixels`
    its detail reduced to a `pixels`-wide image first (then enlarged back to 64x64)."""
    out = crop64(img128, fraction)
    if pixels is None:
        return out
    small = cv2.resize(out, (pixels, pixels), interpolation=cv2.INTER_AREA)
    big: np.ndarray = cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR)
    return big


def main(argv: list[str] | None = None) -> int:
    from installation.logits import sigmoid
    from model_export.data import Images
    from model_export.evaluate import threshold_at_fpr
    from model_export.recipe import load_recipe
    from model_export.sets import prepare
    from model_export.steps import add_training_args, require_trained, train_config, train_method
    from model_export.train import predict_logits

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="faces64 folder")
    p.add_argument("--wider", type=Path, required=True, help="wider-demog folder")
    p.add_argument("--work", type=Path, required=True, help="finished checkpoints (make models)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--method", default="balanced", help="the right-hand model's method")
    add_training_args(p)
    args = p.parse_args(argv)
    args.wider_train = True
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    data = prepare(args.data, load_recipe(), wider=args.wider, wider_train=True)
    assert data.wider is not None  # half B only (prepare's split with wider_train)
    full = data.wider
    views = {
        name: Images(np.stack([view64(img, f, px) for img in full.x128]), full.rows)
        for name, (f, px) in VIEWS.items()
    }
    everyone = np.ones(len(full.rows), bool)
    out: dict[str, Any] = {"faces": len(full.rows), "models": {}}
    for method in ("baseline", args.method):
        per_seed: list[dict[str, Any]] = []
        for seed in args.seeds:
            cfg = train_config(args, method, seed)
            require_trained(args.work, method, cfg)  # reload only: never trains here
            model, _ = train_method(method, data, cfg, args.work)
            thr = threshold_at_fpr(sigmoid(predict_logits(model, data.val_nonfaces.x)), 0.02)
            per_seed.append(
                {
                    name: cell_recall(sigmoid(predict_logits(model, v.x)) >= thr, v, everyone)
                    for name, v in views.items()
                }
            )
        out["models"][method] = per_seed
    (args.work / "resolution.json").write_text(json.dumps(out, indent=1))
    for method, seeds in out["models"].items():
        for name in VIEWS:
            all_mean = np.mean([s[name]["all"] for s in seeds])
            cells = " / ".join(
                f"{np.mean([s[name][f'{a} {b}']['recall'] for s in seeds]):.3f}" for a, b in CELLS
            )
            print(f"{method:9s} {name:11s} {all_mean:.3f}; {cells}  ({out['faces']} faces)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
