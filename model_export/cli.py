"""`bias-mirror-export`: train, evaluate and export the two models.

bias-mirror-export all --data DIR --out assets/models [--epochs N] [--seed S]
bias-mirror-export evaluate --models DIR --data DIR [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from model_export.data import DataError

logger = logging.getLogger(__name__)


def _all(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model_export.export import export_bundle  # noqa: F401  (fail early without TF)
    from model_export.latent_stats import compute_latent_stats
    from model_export.recipe import load_recipe
    from model_export.train import TrainConfig, latent_means, train_baseline, train_dbvae
    from model_export.workflow import export_model, prepare

    t0 = time.perf_counter()
    recipe = load_recipe(args.recipe) if args.recipe else load_recipe()
    data = prepare(args.data, recipe)
    x, y = data.train.x, data.train.y
    base_cfg = TrainConfig(epochs=args.epochs, seed=args.seed)
    work = args.work
    model, log = train_baseline(x, y, base_cfg, work / f"baseline-s{args.seed}")
    export_model(
        "baseline",
        model,
        model,
        data,
        out=args.out / "baseline",
        train_log=log,
        train_settings=vars(base_cfg),
        fpr=args.fpr,
    )
    db_cfg = TrainConfig(
        epochs=args.dbvae_epochs or args.epochs,
        seed=args.seed,
        rule=args.rule,
        alpha=args.alpha,
        latent_dim=args.latent_dim,
        cap=args.cap,
        temperature=args.temperature,
    )
    groups = data.train.attr(recipe.group_by)
    dbvae, dlog = train_dbvae(x, y, groups, db_cfg, work / f"dbvae-s{args.seed}")
    stats = compute_latent_stats(
        latent_means(dbvae, x[y == 1]), bins=db_cfg.bins, alpha=db_cfg.alpha
    )
    export_model(
        "dbvae",
        dbvae,
        dbvae.serving_model(),
        data,
        out=args.out / "debiased",
        train_log=dlog,
        train_settings=vars(db_cfg),
        fpr=args.fpr,
        latent_stats=stats,
    )
    logger.info("all done in %.0f s", time.perf_counter() - t0)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from model_export.recipe import load_recipe
    from model_export.workflow import int8_metrics, prepare

    data = prepare(args.data, load_recipe())
    result: dict[str, Any] = {}
    for bundle in sorted(p for p in args.models.iterdir() if (p / "card.json").is_file()):
        thr, metrics = int8_metrics(bundle, data, args.fpr)
        result[bundle.name] = {"threshold": thr, "int8": metrics}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, res in result.items():
            for set_name, m in res["int8"].items():
                worst = f"worst {m['worst_group']} gap {m['gap']}"
                print(f"{name:10s} {set_name:10s} recall {m['recall']:.3f} {worst}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bias-mirror-export", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("all", help="train both models, evaluate, export the bundles")
    p.add_argument("--data", type=Path, required=True, help="faces64 folder")
    p.add_argument("--out", type=Path, default=Path("assets/models"))
    p.add_argument("--work", type=Path, default=Path("checkpoints"), help="checkpoints (resume)")
    p.add_argument("--recipe", type=Path, default=None, help="training recipe YAML")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dbvae-epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fpr", type=float, default=0.02, help="false-positive rate for thresholds")
    p.add_argument("--rule", choices=["max", "product", "mean_log"], default="max")
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--cap", type=float, default=None)
    p.add_argument("--temperature", type=float, default=1.0)
    p.set_defaults(func=_all)
    p = sub.add_parser("evaluate", help="evaluate every bundle in --models on --data")
    p.add_argument("--models", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--fpr", type=float, default=0.02)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        rc: int = args.func(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted: the last finished epoch is checkpointed; run again to resume",
            file=sys.stderr,
        )
        return 130
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
