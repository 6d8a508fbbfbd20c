"""`bias-mirror-export`: train, evaluate and export the two models.

bias-mirror-export train --data DIR --method baseline|dbvae|balanced [--seeds S..] [--work DIR]
bias-mirror-export export --data DIR --method M --seed S --out BUNDLE_DIR [--work DIR]
bias-mirror-export all --data DIR --out assets/models [--seeds 0 1 2] [--epochs N]
bias-mirror-export evaluate --models DIR --data DIR [--json]
bias-mirror-export report --runs RUN.. --data DIR --out DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_export.data import DataError

logger = logging.getLogger(__name__)


def _data(args: argparse.Namespace, *, with_train: bool = True) -> Any:
    from model_export.recipe import load_recipe
    from model_export.sets import prepare
    from model_export.wider import check_share

    check_share(args.wider_train_share)
    if args.wider_train_share != 1 and not args.wider_train:
        raise DataError(
            f"--wider-train-share {args.wider_train_share} chooses how much of the half "
            "--wider-train adds to training; add --wider-train (or leave the option out)"
        )
    if args.wider_train_half != "A" and not args.wider_train:
        raise DataError(
            f"--wider-train-half {args.wider_train_half} chooses the half of wider-demog that "
            "--wider-train adds to training; add --wider-train (or leave the option out)"
        )
    again = _repeated(args.wider_fractions)
    if again is not None:
        raise DataError(
            f"--wider-fractions lists {again} twice; give each face fraction once, "
            "e.g. 0.5 0.7 0.9 1.0"
        )
    recipe = load_recipe(args.recipe) if getattr(args, "recipe", None) else load_recipe()
    return prepare(
        args.data,
        recipe,
        with_train=with_train,
        wider=args.wider,
        wider_fractions=tuple(args.wider_fractions),
        wider_train=args.wider_train,
        wider_train_half=args.wider_train_half,
        wider_train_share=args.wider_train_share,
        threshold_set=args.threshold_nonfaces,
        nonface_pool=getattr(args, "nonface_draw", "recipe") != "recipe",
    )


def _check_folder(path: Path, flag: str) -> None:
    """Refuse, before any work, a folder option that names a file or lies inside one (the
    report would otherwise end in FileExistsError or NotADirectoryError when it writes)."""
    for p in (path, *path.parents):
        if not p.exists():
            continue
        if not p.is_dir():
            problem = (
                "names a file, not a folder"
                if p == path
                else f"{p} is a file, so no folder can be made there"
            )
            raise DataError(f"{flag} {path}: {problem}; pass a new or existing folder instead")
        return


def _check_distinct(paths: list[Path], flag: str) -> None:
    """Refuse a run folder given twice: each seed is its own run, so a repeat would be
    counted as another seed."""
    seen: dict[Path, Path] = {}
    for path in paths:
        first = seen.get(path.resolve())
        if first is not None:
            same = "" if first == path else f" (as {first})"
            raise DataError(
                f"{flag}: {path} is given twice{same}; seeds must be distinct runs, so pass each "
                "run folder once (e.g. runs/s0 runs/s1 runs/s2)"
            )
        seen[path.resolve()] = path


def _repeated(values: Sequence[float]) -> float | None:
    """The smallest value listed more than once (seeds, face fractions), or None."""
    return min((v for v in values if values.count(v) > 1), default=None)


def _check_seeds(seeds: list[int]) -> None:
    again = _repeated(seeds)
    if again is not None:
        raise DataError(
            f"--seeds {' '.join(map(str, seeds))}: seed {again} is given twice; each seed "
            "is its own run, so pass each once (e.g. --seeds 0 1 2)"
        )


def _check_bundles(runs: list[Path], flag: str) -> None:
    """Each run folder's two bundles, loaded as the kiosk loads them (card.json valid, model
    matching its sha256 and loadable), before any data is decoded: a BundleError or CardError
    names the file and the fix."""
    from installation.paths import BUNDLE_FOLDERS

    missing = [str(r / f) for r in runs for f in BUNDLE_FOLDERS if not (r / f).is_dir()]
    if missing:
        raise DataError(
            f"{flag}: run folder(s) without a bundle: {missing}; pass folders made by `all`"
        )
    _check_loadable([run / folder for run in runs for folder in BUNDLE_FOLDERS])


def _check_loadable(bundles: list[Path]) -> None:
    from installation.inference import load_classifier

    for bundle in bundles:
        load_classifier(bundle, accelerator="cpu")


def _train(args: argparse.Namespace) -> int:
    from model_export.steps import set_precision, train_config, train_method

    _check_seeds(args.seeds)
    set_precision(args.mixed_precision)
    cfgs = [train_config(args, args.method, seed) for seed in args.seeds]  # bad options fail fast
    data = _data(args)
    for cfg in cfgs:
        _, log = train_method(args.method, data, cfg, args.work)
        last = log[-1]["loss"] if log else None
        logger.info(
            "%s seed %d: %d epochs done, last loss %s", args.method, cfg.seed, len(log), last
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from model_export.steps import (
        export_method,
        require_trained,
        train_config,
        train_method,
        views_of,
    )

    cfg = train_config(args, args.method, args.seed)
    require_trained(args.work, args.method, cfg)
    data = _data(args)
    # All epochs are done, so this only reloads the checkpoint and its log.
    model, log = train_method(args.method, data, cfg, args.work)
    path = export_method(
        args.method, model, log, cfg, data, out=args.out, fpr=args.fpr, views=views_of(args)
    )
    print(path)
    return 0


def _all(args: argparse.Namespace) -> int:
    from model_export.report import build_report
    from model_export.steps import train_and_export, train_config
    from model_export.workflow import ship

    t0 = time.perf_counter()
    _check_seeds(args.seeds)
    _check_folder(args.out, "--out")
    for seed in args.seeds:  # bad options fail fast, before minutes of decoding
        for method in ("baseline", args.method):
            train_config(args, method, seed)
    data = _data(args)
    runs = []
    for seed in args.seeds:
        run = args.work / "runs" / f"s{seed}"
        for method in ("baseline", args.method):
            train_and_export(args, data, method, seed, run)
        runs.append(run)
        logger.info("seed %d done after %.0f s", seed, time.perf_counter() - t0)
    works = [args.work] * len(runs)
    # The exports just measured every bundle on this data: the report reads their cards.
    report = build_report(runs, works, data, args.out / "report", args.fpr, from_cards=True)
    ship(runs[0], args.out, report)
    logger.info("all done in %.0f s; report in %s", time.perf_counter() - t0, args.out / "report")
    return 0


def _cross(args: argparse.Namespace) -> Any:
    """The cross runs' detections on the half `--runs` trained on (model_export.crossfit);
    the options were checked by `_check_cross`."""
    from model_export.crossfit import judge_runs_of
    from model_export.recipe import load_recipe
    from model_export.wider import other_half

    recipe = load_recipe(args.recipe) if getattr(args, "recipe", None) else load_recipe()
    return judge_runs_of(
        other_half(args.wider_train_half),
        args.cross_runs,
        data=args.data,
        wider=args.wider,
        recipe=recipe,
        fpr=args.fpr,
        threshold_set=args.threshold_nonfaces,
    )


def _check_cross(args: argparse.Namespace, n_runs: int) -> None:
    if not args.wider_train or args.wider is None:
        raise DataError(
            "--cross-runs re-checks runs trained on half of wider-demog: add --wider and "
            "--wider-train (and --wider-train-half as those runs had it)"
        )
    if len(args.cross_runs) != n_runs:
        raise DataError(
            f"{len(args.cross_runs)} --cross-runs for {n_runs} --runs: seed k of each is paired, "
            "so pass as many"
        )
    _check_distinct(args.cross_runs, "--cross-runs")
    _check_bundles(args.cross_runs, "--cross-runs")


def _report(args: argparse.Namespace) -> int:
    from model_export.report import build_report
    from model_export.workflow import ship

    # Every option is checked before minutes of decoding and measuring.
    _check_distinct(args.runs, "--runs")
    if args.works is not None and len(args.works) != len(args.runs):
        raise DataError(
            f"{len(args.works)} --works for {len(args.runs)} --runs: run k's checkpoints are in "
            "--works k, so pass as many (or leave --works out: each run's parent folder)"
        )
    _check_folder(args.out, "--out")
    if args.ship_to:
        _check_folder(args.ship_to, "--ship-to")
    _check_bundles(args.runs, "--runs")
    if args.cross_runs:
        _check_cross(args, len(args.runs))
    data = _data(args, with_train=False)
    works = args.works or [r.parent for r in args.runs]
    cross = _cross(args) if args.cross_runs else None
    rep = build_report(args.runs, works, data, args.out, args.fpr, cross=cross)
    if args.ship_to:
        ship(args.runs[0], args.ship_to, rep)
    print(json.dumps(rep["targets"], indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from installation.inference.card import load_card
    from model_export.paired import cell_labels, compare, wider_sets
    from model_export.workflow import int8_metrics

    if not args.models.is_dir():
        raise DataError(f"{args.models}: not a folder; --models must hold bundle folders")
    bundles = sorted(p for p in args.models.iterdir() if (p / "card.json").is_file())
    if not bundles and (args.models / "card.json").is_file():
        raise DataError(
            f"{args.models}: this folder is itself a bundle (it holds card.json); --models takes "
            f"the folder that holds the bundles: pass its parent folder, {args.models.parent}"
        )
    if not bundles:
        raise DataError(
            f"{args.models}: no bundle (a folder with card.json and model.tflite) inside; "
            "point --models at e.g. assets/models"
        )
    _check_loadable(bundles)  # a corrupt bundle fails here, before any data is decoded
    data = _data(args, with_train=False)
    result: dict[str, Any] = {"schema": 1, "fpr_target": args.fpr, "models": {}}
    found: dict[str, dict[str, Any]] = {}
    for bundle in bundles:
        card = load_card(bundle / "card.json")
        found[bundle.name] = {}
        thr, metrics = int8_metrics(bundle, data, args.fpr, detections=found[bundle.name])
        result["models"][bundle.name] = {
            "name": card.name,
            "kind": card.kind,
            "method": card.method,
            "threshold": thr,
            "card_threshold": card.threshold,
            "int8": metrics,
        }
    names = wider_sets(list(data.evals))
    if names and {"baseline", "debiased"} <= set(found):
        # One model each: the paired comparison of these two bundles (no seed means).
        cells = cell_labels([r.attrs for r in data.evals[names[0]].rows])
        result["paired"] = compare(
            {n: [found["baseline"][n]] for n in names},
            {n: [found["debiased"][n]] for n in names},
            cells,
        )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, res in result["models"].items():
            for set_name, m in res["int8"].items():
                worst = f"worst {m['worst_group']} gap {m['gap']}"
                print(f"{name:10s} {set_name:12s} recall {m['recall']:.3f} {worst}")
        for set_name, res in result.get("paired", {}).items():
            bt, mc = res["bootstrap"], res["mcnemar"][0]
            gap = bt["gap"]["change"]
            print(
                f"paired     {set_name:12s} faces only baseline finds {mc['only_a']}, only "
                f"debiased {mc['only_b']} (McNemar p = {mc['p_value']:.3g}); gap change "
                f"{gap['value']:+.3f} {gap['ci95']}"
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    from model_export.evaluate import fpr_arg
    from model_export.sets import THRESHOLD_NONFACES
    from model_export.steps import METHOD_IDS, add_training_args
    from model_export.wider import HALVES

    parser = argparse.ArgumentParser(prog="bias-mirror-export", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", type=Path, required=True, help="faces64 folder")
        p.add_argument("--recipe", type=Path, default=None, help="training recipe YAML")
        p.add_argument(
            "--fpr",
            type=fpr_arg,
            default=0.02,
            help="false-positive rate of thresholds, between 0 and 1 (exclusive)",
        )
        p.add_argument(
            "--threshold-nonfaces",
            choices=list(THRESHOLD_NONFACES),
            default="objects",
            help="the non-faces each threshold is set on: objects = the validation non-faces as "
            "they are; camera = those and each once more as a camera shows it (the in-the-wild "
            "augmentation; assets/models/README.md)",
        )
        p.add_argument(
            "--wider",
            type=Path,
            default=None,
            help="wider-demog folder: also evaluate on in-the-wild faces at the kiosk's framing",
        )
        p.add_argument(
            "--wider-fractions",
            type=float,
            nargs="+",
            default=[0.5, 0.7, 0.9, 1.0],
            help="face fractions (face side / crop side, >= 0.5) of the wider-demog sets",
        )
        p.add_argument(
            "--wider-train",
            action="store_true",
            help="train on half A of wider-demog's photos too; measure on half B's faces only",
        )
        p.add_argument(
            "--wider-train-half",
            choices=HALVES,
            default="A",
            help="with --wider-train: which half of the photos to train on (the other is "
            "measured); B trains on the shipped models' measured half, for a re-check of the "
            "recipe on half A (model_export.diagnostics.crossfit)",
        )
        p.add_argument(
            "--wider-train-share",
            type=float,
            default=1.0,
            metavar="S",
            help="with --wider-train: train on this share (0-1] of the half's photos only, a "
            "seeded draw; the other half is measured either way (how recall grows with "
            "in-the-wild faces)",
        )

    def work_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--work", type=Path, default=Path("checkpoints"), help="checkpoints")

    p = sub.add_parser("train", help="train one method (resumable checkpoints in --work)")
    data_args(p)
    work_arg(p)
    p.add_argument("--method", choices=METHOD_IDS, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_training_args(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("export", help="export a trained checkpoint as an int8 bundle")
    data_args(p)
    work_arg(p)
    p.add_argument("--method", choices=METHOD_IDS, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="bundle folder to (re)write")
    add_training_args(p)
    p.set_defaults(func=_export)

    p = sub.add_parser("all", help="train both models, evaluate, export the bundles and report")
    data_args(p)
    work_arg(p)
    p.add_argument("--out", type=Path, default=Path("assets/models"))
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="training seeds (>= 3 for the report)"
    )
    p.add_argument(
        "--method",
        choices=["dbvae", "balanced"],
        default="dbvae",
        help="right-hand model: DB-VAE (no labels) or group-balanced resampling (uses labels)",
    )
    add_training_args(p)
    p.set_defaults(func=_all)

    p = sub.add_parser("report", help="multi-seed report over run folders")
    data_args(p)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="folders with both bundles")
    p.add_argument("--works", type=Path, nargs="+", default=None, help="their checkpoint folders")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--ship-to", type=Path, default=None, help="also ship the first run's bundles there"
    )
    p.add_argument(
        "--cross-runs",
        type=Path,
        nargs="+",
        default=None,
        help="run folders of the same recipe trained on the other half of wider-demog's photos "
        "(--wider-train-half B when --runs trained on A), one per seed in order: every face is "
        "then judged by models that never saw its photo, and the debiasing verdict is the "
        "re-check's (model_export.crossfit; make recheck)",
    )
    p.set_defaults(func=_report)

    p = sub.add_parser("evaluate", help="evaluate every bundle in --models on --data (int8)")
    data_args(p)
    p.add_argument("--models", type=Path, required=True)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=_evaluate)
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    """The errors bad input causes, each with a message that names the file and the fix:
    printed as one line by every bias-mirror-export command and diagnostic, never a traceback
    (a bundle the kiosk could not load either among them)."""
    from installation.inference import BackendError, BundleError
    from installation.inference.card import CardError
    from installation.inference.rarity import RarityError

    return (DataError, BundleError, CardError, RarityError, BackendError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        rc: int = args.func(args)
    except user_errors() as exc:
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
