"""One method, one seed: train (resumable) and export, shared by the `train`, `export` and `all`
subcommands of `bias-mirror-export`.

Checkpoints live in `<work>/<method>-s<seed>/`; `export` reloads the finished checkpoint, so a
model trained once can be exported (and re-evaluated) again without training.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

from installation.inference.views import CROP_ALONE, Views
from model_export.augment_wild import SCALE_DRAWS
from model_export.data import DataError
from model_export.mining import NONFACE_DRAWS
from model_export.sets import Prepared, balance_groups
from model_export.workflow import export_model

logger = logging.getLogger(__name__)

METHOD_IDS = ("baseline", "dbvae", "balanced")
# Bundle folder each method ships in: the right-hand ("debiased") panel is dbvae or balanced.
FOLDER = {"baseline": "baseline", "dbvae": "debiased", "balanced": "debiased"}


def add_training_args(p: argparse.ArgumentParser) -> None:
    """Options that change training; every one is written into the card's settings."""
    p.add_argument("--epochs", type=int, default=5, help="epochs of the CNNs (baseline, balanced)")
    p.add_argument(
        "--right-epochs",
        type=int,
        default=None,
        help="epochs of the right-hand model (dbvae or balanced; default: --epochs): balancing "
        "over few in-the-wild faces keeps learning after the baseline has stopped",
    )
    p.add_argument("--batch-size", type=int, default=32, help="32 on a CPU; 256 on a GPU")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=5e-4,
        help="Adam's step size (the lab's 5e-4; with --lr-schedule cosine, where it starts)",
    )
    p.add_argument(
        "--right-learning-rate",
        type=float,
        default=None,
        help="Adam's step size for the right-hand model (dbvae or balanced; default: "
        "--learning-rate): the baseline can take larger steps than a model that redraws few "
        "in-the-wild faces many times",
    )
    p.add_argument(
        "--average-last",
        type=int,
        default=0,
        metavar="K",
        help="CNN methods: ship the mean of the last K epochs' weights, BatchNorm measured again "
        "(stochastic weight averaging), instead of the last step's; 0: the last step's",
    )
    p.add_argument(
        "--nonface-draw",
        choices=NONFACE_DRAWS,
        default="recipe",
        help="CNN methods: train every epoch on the recipe's non-faces (recipe), or draw the "
        "recipe's count each epoch from every training non-face, uniformly (pool) or half of "
        "them those the model scores highest (mined: hard-negative bootstrapping); the "
        "validation non-faces that set the threshold are never in the pool",
    )
    p.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        metavar="P",
        help="CNN methods: drop this share (0 <= P < 1) of the Dense(512)'s outputs in "
        "training, a regularizer; 0 (default): none, the lab's network",
    )
    p.add_argument("--rule", choices=["max", "product", "mean_log"], default="max")
    p.add_argument("--alpha", type=float, default=0.001, help="histogram smoothing")
    p.add_argument("--bins", type=int, default=10, help="histogram bins per latent dimension")
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--kl-weight", type=float, default=0.0005)
    p.add_argument("--cap", type=float, default=None, help="largest weight / mean weight")
    p.add_argument("--temperature", type=float, default=1.0, help="< 1 sharpens the weights")
    p.add_argument(
        "--decode-all",
        action="store_true",
        help="DB-VAE: random mixed batches, every row decoded (how checkpoints made before "
        "faces-first batching were trained; about a quarter slower)",
    )
    p.add_argument(
        "--rarity-views",
        choices=["clean", "augmented"],
        default="clean",
        help="DB-VAE: measure rarity on the clean training faces, or on the camera-augmented "
        "view of each face it then trains on (rare lighting, framing and blur count as rare)",
    )
    p.add_argument(
        "--augment",
        choices=["camera", "wild", "wild-context", "wild-people"],
        default="wild",
        help="training augmentation: wild (face fraction 0.35-1.25 on scene patches, in-the-wild "
        "light, low resolution, motion blur; since 2026-12-03), wild-context (wild, but the "
        "faces --wider-train adds are reframed from their 128x128 crops, with their own "
        "surroundings; CNNs only), wild-people (wild-context, and half the portraits and "
        "non-faces laid on those crops' surroundings instead of a scene patch; CNNs only) or "
        "camera (the milder one before)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="data-loading threads; > 1 for a GPU box, where one thread's augmentation cannot "
        "keep the accelerator busy (each batch then draws from its own seeded random stream, "
        "so results differ from a one-worker run)",
    )
    p.add_argument(
        "--width",
        type=int,
        default=12,
        help="encoder base filters (stages width x 1, 2, 4, 6); the lab CNN's is 12",
    )
    p.add_argument(
        "--convs-per-stage",
        type=int,
        default=1,
        help="encoder convs per stage: 1 is the lab CNN, 2 adds a stride-1 3x3 conv to each",
    )
    p.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="step size over training: constant (--learning-rate throughout, the lab's recipe) "
        "or cosine (from --learning-rate down to 0 along a half cosine over the run's epochs; "
        "a checkpoint trained so cannot be resumed to more epochs)",
    )
    p.add_argument(
        "--scale-draw",
        choices=SCALE_DRAWS,
        default="uniform",
        help="how the wild augmentations draw the framing (content 0.35-1.25 of the crop): "
        "uniform, or log-uniform, as a face's size spreads with distance (60 %% of draws below "
        "0.75, the kiosk's framings, against 44 %%)",
    )
    p.add_argument(
        "--zoom",
        type=float,
        default=None,
        help="judge each crop on a second view too, its centre (this share of the side, e.g. "
        "0.7) zoomed back to 64x64, and keep the larger face score (installation.inference."
        "views); the threshold is set on that score. Written into the card; not a training "
        "setting (the same checkpoint can be exported with or without it)",
    )
    p.add_argument(
        "--flip-average",
        action="store_true",
        help="judge each crop as it is and mirrored left to right, and average the two face "
        "logits (installation.inference.views); the threshold is set on that score. Written "
        "into the card; not a training setting (the same checkpoint can be exported with or "
        "without it)",
    )
    p.add_argument(
        "--mixed-precision",
        action="store_true",
        help="float16 compute (GPU only; weights and the loss stay float32)",
    )


def train_config(args: argparse.Namespace, method: str, seed: int) -> Any:
    from installation.inference.views import check_zoom
    from model_export.batches import check_wild_context
    from model_export.train import TrainConfig

    right = method != "baseline"
    epochs_flag, epochs = "--epochs", args.epochs
    if right and args.right_epochs is not None:  # 0 is refused below, never read as "unset"
        epochs_flag, epochs = "--right-epochs", args.right_epochs
    lr_flag = "--learning-rate"
    learning_rate = args.learning_rate
    if right and getattr(args, "right_learning_rate", None) is not None:
        lr_flag, learning_rate = "--right-learning-rate", args.right_learning_rate
    try:
        check_zoom(getattr(args, "zoom", None))
    except ValueError as exc:
        raise DataError(f"--zoom: {exc}") from None
    if args.width < 1 or args.convs_per_stage < 1:
        raise DataError(
            f"--width and --convs-per-stage must be >= 1, got {args.width}/{args.convs_per_stage}"
        )
    if epochs < 1 or args.batch_size < 1:
        raise DataError(
            f"{epochs_flag} and --batch-size must be >= 1, got {epochs}/{args.batch_size}"
        )
    check_numbers(args, seed)
    if not 0 < learning_rate <= 0.1:
        raise DataError(f"{lr_flag} must be in (0, 0.1], got {learning_rate}")
    average_last = args.average_last
    if not (math.isfinite(args.dropout) and 0 <= args.dropout < 1):
        raise DataError(f"--dropout must be at least 0 and below 1, e.g. 0.5; got {args.dropout}")
    # Options the DB-VAE's training does not take, each named as given when it is in use.
    cnn_only = {
        "--average-last": bool(average_last),
        f"--nonface-draw {args.nonface_draw}": args.nonface_draw != "recipe",
        "--dropout": bool(args.dropout),
    }
    used = [flag for flag, on in cnn_only.items() if on]
    if used and method == "dbvae":
        raise DataError(f"{used[0]} works with the CNN methods (baseline, balanced), not dbvae")
    if not 0 <= average_last <= epochs:
        raise DataError(
            f"--average-last must be in 0..{epochs} (the epochs trained), got {average_last}"
        )
    check_wild_context(
        args.augment, method=method, has_context=bool(getattr(args, "wider_train", False))
    )
    return TrainConfig(
        epochs=epochs,
        batch_size=args.batch_size,
        learning_rate=learning_rate,
        seed=seed,
        latent_dim=args.latent_dim,
        kl_weight=args.kl_weight,
        bins=args.bins,
        alpha=args.alpha,
        rule=args.rule,
        cap=args.cap,
        temperature=args.temperature,
        faces_first=not args.decode_all,
        rarity_views=args.rarity_views,
        augment=args.augment,
        workers=args.workers,
        width=args.width,
        convs_per_stage=args.convs_per_stage,
        lr_schedule=args.lr_schedule,
        scale_draw=args.scale_draw,
        average_last=average_last,
        nonface_draw=args.nonface_draw,
        dropout=args.dropout,
    )


# Seeds reach NumPy and Keras, which take 0 .. 2**32 - 1, as `seed + epoch` and `10_000 + seed`.
MAX_SEED = 2**31 - 1


def check_numbers(args: argparse.Namespace, seed: int) -> None:
    """Refuse, before any data is decoded, the numeric training options no run can use: NaN,
    infinities, zero or negative counts and sizes (argparse takes them all). The DB-VAE's are
    checked for every method, as every card records them in its settings."""
    if not 0 <= seed <= MAX_SEED:
        raise DataError(
            f"seed {seed}: --seeds (--seed) takes whole numbers from 0 to {MAX_SEED}; e.g. 0 1 2"
        )
    if args.workers < 1:
        raise DataError(f"--workers must be >= 1 (data-loading threads), got {args.workers}")
    counts = {
        "--bins": (args.bins, "histogram bins per latent dimension; the lab's 10"),
        "--latent-dim": (args.latent_dim, "size of the DB-VAE's latent space; the lab's 100"),
    }
    for flag, (value, what) in counts.items():
        if value < 1:
            raise DataError(f"{flag} must be >= 1 ({what}), got {value}")
    positive = {
        "--alpha": (args.alpha, "histogram smoothing", "0.001"),
        "--temperature": (args.temperature, "< 1 sharpens the weights, > 1 flattens them", "1.0"),
    }
    for flag, (value, what, example) in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise DataError(
                f"{flag} must be a finite number > 0 ({what}), got {value}; e.g. {example}"
            )
    if not (math.isfinite(args.kl_weight) and args.kl_weight >= 0):
        raise DataError(
            f"--kl-weight must be a finite number >= 0 (the KL term's weight in the DB-VAE's "
            f"loss), got {args.kl_weight}; e.g. 0.0005"
        )
    cap = args.cap
    if cap is not None and not (math.isfinite(cap) and cap >= 1):
        raise DataError(
            f"--cap must be a finite number >= 1 (the largest weight as a multiple of the mean "
            f"weight), got {cap}; e.g. 10, or leave it out for no cap"
        )


def set_precision(mixed: bool) -> None:
    import keras

    # mixed_float16 keeps variables float32; the logit Dense and the loss are cast back to
    # float32 by Keras' loss scaling, so the exported (float32 -> int8) model is unchanged.
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")


def checkpoint_dir(work: Path, method: str, seed: int) -> Path:
    return work / f"{method}-s{seed}"


def train_method(
    method: str, data: Prepared, cfg: Any, work: Path
) -> tuple[Any, list[dict[str, Any]]]:
    """Train (or resume, or just reload when all epochs are done) one method for one seed."""
    from model_export.train import train_balanced, train_baseline, train_dbvae

    x, y = data.train.x, data.train.y
    ckpt = checkpoint_dir(work, method, cfg.seed)
    if method == "baseline":
        return train_baseline(
            x, y, cfg, ckpt, context=data.train_context, nonfaces_per_epoch=data.recipe.nonfaces
        )
    if method == "balanced":
        groups = balance_groups(data.train, data.recipe.group_by)
        return train_balanced(
            x,
            y,
            groups,
            cfg,
            ckpt,
            context=data.train_context,
            nonfaces_per_epoch=data.recipe.nonfaces,
        )
    if method == "dbvae":
        # Group labels only to log the drawn shares.
        return train_dbvae(x, y, data.train.attr(data.recipe.group_by), cfg, ckpt)
    raise DataError(f"unknown method {method!r}; use one of {', '.join(METHOD_IDS)}")


def finished_epochs(work: Path, method: str, seed: int) -> int:
    state = checkpoint_dir(work, method, seed) / "state.json"
    if not state.is_file():
        return 0
    return int(json.loads(state.read_text())["epochs_done"])


def require_trained(work: Path, method: str, cfg: Any) -> None:
    """Refuse to export (or measure) a checkpoint that has not finished its epochs."""
    done = finished_epochs(work, method, cfg.seed)
    if done < cfg.epochs:
        raise DataError(
            f"{checkpoint_dir(work, method, cfg.seed)}: {done} of {cfg.epochs} epochs "
            "trained; run `bias-mirror-export train` with the same options first"
        )


def export_method(
    method: str,
    model: Any,
    log: list[dict[str, Any]],
    cfg: Any,
    data: Prepared,
    *,
    out: Path,
    fpr: float,
    views: Views = CROP_ALONE,
) -> Path:
    """Evaluate float, export int8, re-evaluate int8, write the bundle to `out` (atomically);
    every score as `views` judge a crop (installation.inference.views)."""
    import dataclasses

    stats = None
    if method == "dbvae":  # the kiosk's rarity meter: histograms of the training faces' latents
        from model_export.latent_stats import compute_latent_stats
        from model_export.train import latent_means

        x, y = data.train.x, data.train.y
        faces = latent_means(model, x[y == 1])
        stats = compute_latent_stats(faces, bins=cfg.bins, alpha=cfg.alpha)
    return export_model(
        method,
        model,
        data,
        out=out,
        train_log=log,
        train_settings=dataclasses.asdict(cfg),
        fpr=fpr,
        latent_stats=stats,
        views=views,
    )


def train_and_export(
    args: argparse.Namespace, data: Prepared, method: str, seed: int, run: Path
) -> Path:
    cfg = train_config(args, method, seed)
    set_precision(args.mixed_precision)
    model, log = train_method(method, data, cfg, args.work)
    if args.mixed_precision:
        # Export from a float32 copy: the int8 converter must not see float16 compute.
        set_precision(False)
        model, log = train_method(method, data, cfg, args.work)  # all epochs done: reload only
    return export_method(
        method, model, log, cfg, data, out=run / FOLDER[method], fpr=args.fpr, views=views_of(args)
    )


def views_of(args: argparse.Namespace) -> Views:
    """The views --zoom and --flip-average ask for (checked by train_config)."""
    return Views(args.zoom, args.flip_average)
