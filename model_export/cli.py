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


def _train_seed(args: argparse.Namespace, data: Any, seed: int, out: Path) -> None:
    from model_export.latent_stats import compute_latent_stats
    from model_export.train import (
        TrainConfig,
        latent_means,
        train_balanced,
        train_baseline,
        train_dbvae,
    )
    from model_export.workflow import export_model

    x, y = data.train.x, data.train.y
    base_cfg = TrainConfig(epochs=args.epochs, seed=seed)
    model, log = train_baseline(x, y, base_cfg, args.work / f"baseline-s{seed}")
    export_model(
        "baseline",
        model,
        model,
        data,
        out=out / "baseline",
        train_log=log,
        train_settings=vars(base_cfg),
        fpr=args.fpr,
    )
    db_cfg = TrainConfig(
        epochs=args.dbvae_epochs or args.epochs,
        seed=seed,
        rule=args.rule,
        alpha=args.alpha,
        latent_dim=args.latent_dim,
        cap=args.cap,
        temperature=args.temperature,
    )
    groups = data.train.attr(data.recipe.group_by)
    if args.method == "balanced":
        bal, blog = train_balanced(x, y, groups, base_cfg, args.work / f"balanced-s{seed}")
        export_model(
            "balanced",
            bal,
            bal,
            data,
            out=out / "debiased",
            train_log=blog,
            train_settings=vars(base_cfg),
            fpr=args.fpr,
        )
        return
    dbvae, dlog = train_dbvae(x, y, groups, db_cfg, args.work / f"dbvae-s{seed}")
    stats = compute_latent_stats(
        latent_means(dbvae, x[y == 1]), bins=db_cfg.bins, alpha=db_cfg.alpha
    )
    export_model(
        "dbvae",
        dbvae,
        dbvae.serving_model(),
        data,
        out=out / "debiased",
        train_log=dlog,
        train_settings=vars(db_cfg),
        fpr=args.fpr,
        latent_stats=stats,
    )


def _all(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from model_export.recipe import load_recipe
    from model_export.report import build_report
    from model_export.workflow import prepare, ship

    t0 = time.perf_counter()
    recipe = load_recipe(args.recipe) if args.recipe else load_recipe()
    data = prepare(args.data, recipe)
    runs = []
    for seed in args.seeds:
        run = args.work / "runs" / f"s{seed}"
        _train_seed(args, data, seed, run)
        runs.append(run)
        logger.info("seed %d done after %.0f s", seed, time.perf_counter() - t0)
    report = build_report(runs, [args.work] * len(runs), data, args.out / "report", args.fpr)
    ship(runs[0], args.out, report)
    logger.info("all done in %.0f s; report in %s", time.perf_counter() - t0, args.out / "report")
    return 0


def _report(args: argparse.Namespace) -> int:
    from model_export.recipe import load_recipe
    from model_export.report import build_report
    from model_export.workflow import prepare

    data = prepare(args.data, load_recipe())
    works = args.works or [r.parent for r in args.runs]
    rep = build_report(args.runs, works, data, args.out, args.fpr)
    print(json.dumps(rep["targets"], indent=2))
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
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="training seeds (>= 3 for the report)"
    )
    p.add_argument("--fpr", type=float, default=0.02, help="false-positive rate for thresholds")
    p.add_argument(
        "--method",
        choices=["dbvae", "balanced"],
        default="dbvae",
        help="right-hand model: DB-VAE (no labels) or group-balanced resampling (uses labels)",
    )
    p.add_argument("--rule", choices=["max", "product", "mean_log"], default="max")
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--cap", type=float, default=None)
    p.add_argument("--temperature", type=float, default=1.0)
    p.set_defaults(func=_all)
    p = sub.add_parser("report", help="multi-seed report over run folders")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="folders with both bundles")
    p.add_argument("--works", type=Path, nargs="+", default=None, help="their checkpoint folders")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fpr", type=float, default=0.02)
    p.set_defaults(func=_report)
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
