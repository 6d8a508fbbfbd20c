"""Asked: does averaging the weights of a run's last epochs lift in-the-wild recall where
visitors stand? (assets/models/README.md, "Diagnostic of 2026-12-07 (evening)".)

Every model ships the weights of its last step: Adam at a constant step size leaves them one
point of a jittering walk, and a deeper encoder fitted the training draw better and half B
worse (the depth diagnostic), a sign of a model that learns the few in-the-wild faces it draws
again and again by heart. The mean of the last epochs' weights (stochastic weight averaging,
Izmailov et al. 2018) lies in a flatter part of the loss and often generalizes better, at no
cost in the kiosk. This trains (or resumes) one seed of the shipped recipe keeping each
epoch's weights (`TrainConfig.keep_epoch_weights`), then scores on half B of wider-demog (photos
no model saw), float, each threshold at 2 % FPR on the validation non-faces as the report sets
it:

- `last`: the weights the run ends with (what `make models` ships);
- `mean of last k`: the mean of the last k epochs' weights, BatchNorm's moving statistics
  averaged with them (`avg`) or measured again on `--bn-batches` augmented training batches
  drawn as the method draws them (`avg+bn`), since the averaged weights were never trained as
  they are.

    python -m model_export.diagnostics.averaging --data DIR --wider DIR --work WORK --seeds 0 \\
        --epochs 12 --right-epochs 20 --learning-rate 1e-3 --right-learning-rate 5e-4 \\
        --latent-dim 32 --width 16 --convs-per-stage 2 --augment wild-context \\
        --method balanced --last 3 5 8

(the `make models` options; WORK is trained into, so give it a folder of its own). Prints one row
per method, seed and variant: overall recall and the lowest skin group x gender cell at
f = 0.5, 0.7, 0.9, 1.0 and the kiosk's framing; writes WORK/averaging.json. A diagnostic for
the models README, not a step of `all`: no shipped bundle depends on it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model_export.averaging import BN_BATCHES, average_weights, reestimate_batchnorm
from model_export.data import DataError
from model_export.diagnostics.wild_faces import CELLS, cell_recall

if TYPE_CHECKING:
    from model_export.batches import Batches
    from model_export.sets import Prepared

logger = logging.getLogger(__name__)


def training_draw(method: str, data: Prepared, cfg: Any) -> Batches:
    """The batches `--average-last` measures BatchNorm on, for `method`'s run."""
    from model_export.batches import make_augmenter
    from model_export.sets import balance_groups
    from model_export.train import averaging_batches, balanced_probabilities, context_rows

    x, y = data.train.x, data.train.y
    face_p = None
    if method == "balanced":
        face_p = balanced_probabilities(balance_groups(data.train, data.recipe.group_by)[y == 1])
    ctx = context_rows(cfg, data.train_context)
    aug = make_augmenter(cfg.augment, x[y == 0], ctx, cfg.scale_draw)
    return averaging_batches(x, y, cfg, aug, None if ctx is None else ctx.which, face_p=face_p)


def main(argv: list[str] | None = None) -> int:
    from installation.logits import sigmoid
    from model_export.evaluate import threshold_at_fpr
    from model_export.recipe import load_recipe
    from model_export.sets import prepare, wider_set_name
    from model_export.steps import add_training_args, checkpoint_dir, train_config, train_method
    from model_export.train import last_epoch_files, predict_logits
    from model_export.wider import FRACTIONS, STUDIO_FRACTION

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="faces64 folder")
    p.add_argument("--wider", type=Path, required=True, help="wider-demog folder")
    p.add_argument("--work", type=Path, required=True, help="a folder of its own: trained into")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--method", default="balanced", help="the right-hand model's method")
    p.add_argument("--last", type=int, nargs="+", default=[3, 5, 8], help="epochs averaged")
    p.add_argument(
        "--bn-batches", type=int, default=BN_BATCHES, help="batches BatchNorm is measured on"
    )
    p.add_argument("--recipe", type=Path, default=None, help="training recipe (default: shipped)")
    add_training_args(p)
    args = p.parse_args(argv)
    args.wider_train = True
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    recipe = load_recipe(args.recipe) if args.recipe else load_recipe()
    data = prepare(args.data, recipe, wider=args.wider, wider_train=True, lab_sets=False)
    sets = {
        ("kiosk" if f is None else f"f={f:.1f}"): data.evals[wider_set_name(f)]
        for f in (*FRACTIONS, STUDIO_FRACTION, None)
    }
    out: dict[str, Any] = {"faces": len(next(iter(sets.values())).rows), "runs": []}
    everyone = np.ones(out["faces"], bool)
    for method in ("baseline", args.method):
        for seed in args.seeds:
            cfg = train_config(args, method, seed)
            cfg.keep_epoch_weights = True
            model, _ = train_method(method, data, cfg, args.work)  # trains or resumes
            ckpt = checkpoint_dir(args.work, method, seed)
            keep, missing = last_epoch_files(ckpt, cfg.epochs, max(args.last))
            if missing:
                raise DataError(
                    f"{ckpt}: the last {max(args.last)} epochs' weights are not all kept; "
                    "train into an empty --work folder (this diagnostic keeps them)"
                )
            variants: list[tuple[str, list[Path], bool]] = [("last", keep[-1:], False)]
            for k in args.last:
                variants += [(f"avg{k}", keep[-k:], False), (f"avg{k}+bn", keep[-k:], True)]
            draw = training_draw(method, data, cfg)
            for name, files, bn in variants:
                average_weights(model, files)
                if bn:
                    reestimate_batchnorm(model, draw, args.bn_batches)
                thr = threshold_at_fpr(sigmoid(predict_logits(model, data.val_nonfaces.x)), 0.02)
                scores = {
                    s: cell_recall(sigmoid(predict_logits(model, v.x)) >= thr, v, everyone)
                    for s, v in sets.items()
                }
                out["runs"].append({"method": method, "seed": seed, "variant": name} | scores)
                row = "  ".join(
                    f"{s} {r['all']:.3f} ({min(r[f'{a} {b}']['recall'] for a, b in CELLS):.2f})"
                    for s, r in scores.items()
                )
                print(f"{method:9s} s{seed} {name:8s} {row}", flush=True)
    (args.work / "averaging.json").write_text(json.dumps(out, indent=1))
    print(f"half B of wider-demog: {out['faces']} faces; float; overall (lowest cell)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
