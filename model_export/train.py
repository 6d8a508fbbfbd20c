"""Training loops for the baseline CNN and the DB-VAE, with checkpoints and resampling logs.

Batches are streamed from uint8 arrays (`model_export.batches`), so 16k images stay ~200 MB.
Camera-like augmentation is shared by both models. Checkpoints are written every epoch; a run
started again with the same --work folder resumes after the last finished epoch.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np

from model_export import augment as aug
from model_export.augment import apply_conditions, draw_conditions
from model_export.augment_wild import (
    CONTEXT_AUGMENTS,
    Context,
    ScaleDraw,
)
from model_export.averaging import BN_BATCHES, average_weights, reestimate_batchnorm
from model_export.batches import (
    Augmenter,
    AugmentName,
    Batches,
    FacesFirstBatches,
    check_wild_context,
    faces_first_steps,
    faces_per_batch,
    make_augmenter,
)
from model_export.data import DataError
from model_export.mining import NonfaceDraw, mine_nonfaces
from model_export.models import DBVAE, baseline_cnn
from model_export.resampling import Rule, effective_shares, face_weights

logger = logging.getLogger(__name__)


LrSchedule = Literal["constant", "cosine"]


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 5e-4
    latent_dim: int = 100
    kl_weight: float = 0.0005
    bins: int = 10
    alpha: float = 0.001
    rule: Rule = "max"
    temperature: float = 1.0
    cap: float | None = None
    seed: int = 0
    # DB-VAE: batches with their faces first, decoded only there (False: random mixed batches,
    # every row decoded, as the checkpoints made before faces-first batching).
    faces_first: bool = True
    # DB-VAE: measure rarity on the clean training faces ("clean"), or on one camera-augmented
    # view of each face drawn for the epoch and then trained on ("augmented"), so that rare
    # lighting, framing and blur count as rare too.
    rarity_views: Literal["clean", "augmented"] = "clean"
    # Training augmentation (make_augmenter): "camera" until 2026-12-03, "wild" since;
    # "wild-context" reframes the added in-the-wild faces from their wider crops; "wild-people"
    # also lays half the other images on such crops' surroundings.
    augment: AugmentName = "camera"
    # Data-loading threads (BatchStreams): more than one gives each batch its own random stream.
    workers: int = 1
    # Encoder size (model_export.models.encoder): base filters and convs per stage; the lab CNN
    # is 12 and 1.
    width: int = 12
    convs_per_stage: int = 1
    # Learning rate over training: "constant" (Adam at `learning_rate` throughout, the lab's
    # recipe) or "cosine" (from `learning_rate` down to 0 along a half cosine over every step
    # of `epochs` epochs, so the last epochs settle instead of jittering at full step size).
    lr_schedule: LrSchedule = "constant"
    # How the wild augmentations draw the framing: "uniform" in 0.35-1.25 of the crop, or "log"
    # (log-uniform over the same range; WildConfig.scale_draw).
    scale_draw: ScaleDraw = "uniform"
    # Also keep each epoch's weights as epoch-NN.weights.h5 beside the checkpoint, for
    # model_export.diagnostics.averaging. Not a training setting (the weights trained are the
    # same either way), so the resume check ignores it.
    keep_epoch_weights: bool = False
    # CNN methods: ship the mean of the last `average_last` epochs' weights, BatchNorm measured
    # again (model_export.averaging), instead of the last step's; 0 = the last step's. Not a
    # resume setting: the checkpoint holds the last step's weights either way, and the epochs
    # kept for the mean are checked when it is taken.
    average_last: int = 0
    # CNN methods: which non-faces each epoch trains on (model_export.mining): "recipe" (the
    # recipe's fixed draw, every epoch), "pool" (the recipe's count from the whole training
    # pool, uniformly) or "mined" (the same, half of them the ones the model scores highest).
    # "pool" and "mined" need the pool in `x` (`prepare(..., nonface_pool=True)`).
    nonface_draw: NonfaceDraw = "recipe"
    # CNN methods: share of the Dense(512)'s outputs dropped in training (models.encoder);
    # 0 = none, the lab's network.
    dropout: float = 0.0


def _verbose() -> int:
    """A live progress bar on a terminal; one line per epoch in a log file."""
    return 1 if sys.stderr.isatty() else 2


def fit_epoch(model: keras.Model, data: keras.utils.PyDataset) -> float:
    """Train one epoch of `data`; its mean loss.

    On TensorFlow the batches reach `fit` as a tf.data pipeline without autotuning: the
    PyDataset adapter's pipeline (`prefetch(AUTOTUNE)`) ends each `fit` by destroying its
    iterator, which waits for tf.data's autotuning thread (a py-spy stack: the main thread in
    ~RootDataset::Iterator, waiting on an UnboundedThreadPool thread); that took 18 s after
    one or two of every three 544-batch epochs on the 2-core CPU (23 s of training each).
    The batches are the same ones, in the same order, with the same two spec-probing reads and
    the same `on_epoch_end` calls (after the probe and after the epoch) that the adapter makes,
    so a run trains exactly as before (same weights, a test checks it): the adapter's batch
    order too, which `fit`'s default `shuffle=True` draws from Python's `random` (seeded by
    `keras.utils.set_random_seed` when the model is built). Other backends (JAX, PyTorch on a
    GPU) take the PyDataset as it is."""
    if keras.backend.backend() != "tensorflow":
        hist = model.fit(data, epochs=1, verbose=_verbose())
        return float(hist.history["loss"][-1])
    import tensorflow as tf

    n = len(data)
    probe = [data[i] for i in range(min(2, n))]  # what Keras' adapter reads for the spec
    data.on_epoch_end()  # and the reset its epoch iterator makes after that read
    spec = tuple(tf.TensorSpec((None, *np.shape(a)[1:]), tf.as_dtype(a.dtype)) for a in probe[0])

    def batches() -> Iterator[tuple[np.ndarray, ...]]:
        order = list(range(n))
        random.shuffle(order)  # as the adapter's generator does, when iteration starts
        for i in order:
            yield data[i]

    options = tf.data.Options()
    options.autotune.enabled = False  # no autotuning thread to wait for when the epoch ends
    ds = tf.data.Dataset.from_generator(batches, output_signature=spec).with_options(options)
    # A fixed prefetch: the next batch is augmented while this one trains (41 -> 52 ms a step
    # without it), with no autotuning to wait for.
    ds = ds.prefetch(2).apply(tf.data.experimental.assert_cardinality(n))
    hist = model.fit(ds, epochs=1, verbose=_verbose(), shuffle=False)  # shuffled above
    data.on_epoch_end()  # the adapter called it after each epoch
    return float(hist.history["loss"][-1])


def predict_logits(model: keras.Model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    out = []
    for i in range(0, len(x), batch):
        res = model(x[i : i + batch].astype(np.float32) / 255.0, training=False)
        logit = res["logit"] if isinstance(res, dict) else res
        out.append(np.asarray(logit).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0)


def latent_means(model: DBVAE, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Latent means [N, D] of images [N, 64, 64, 3]: uint8, or float32 already in [0, 1]."""
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].astype(np.float32)
        _, mean, _ = model.encode(xb / 255.0 if x.dtype == np.uint8 else xb, training=False)
        out.append(np.asarray(mean))
    return np.concatenate(out)


# Settings that shape what a checkpoint has learned; `epochs` is not one (more epochs resume).
_CNN_KEYS = (
    *("batch_size", "learning_rate", "seed", "augment", "per_batch_streams"),
    *("width", "convs_per_stage", "lr_schedule", "schedule_epochs", "scale_draw"),
    "nonface_draw",
    "dropout",
)
_DBVAE_KEYS = (
    *_CNN_KEYS,
    *("latent_dim", "kl_weight", "bins", "alpha", "rule", "temperature", "cap", "faces_first"),
    "rarity_views",
)
# What a checkpoint saved before a setting existed was trained with.
_LEGACY: dict[str, Any] = {
    "faces_first": False,
    "rarity_views": "clean",
    "augment": "camera",
    "per_batch_streams": False,
    "width": 12,
    "convs_per_stage": 1,
    "lr_schedule": "constant",
    "schedule_epochs": None,
    "scale_draw": "uniform",
    "nonface_draw": "recipe",
    "dropout": 0.0,
}


def _settings(cfg: TrainConfig, keys: tuple[str, ...]) -> dict[str, Any]:
    # How many threads load data is not a setting; whether batches draw from their own random
    # streams (any count above one) is, since it changes the augmentation the model saw.
    # A cosine schedule is drawn over a set number of epochs, so that number shapes the weights
    # (a checkpoint cosine-trained for 12 epochs has ended at step size 0 and cannot resume to
    # 20); a constant one resumes to any length.
    full = asdict(cfg) | {
        "per_batch_streams": cfg.workers > 1,
        "schedule_epochs": cfg.epochs if cfg.lr_schedule == "cosine" else None,
    }
    return {k: full[k] for k in keys}


def optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam at `cfg.learning_rate`, constant or along `cfg.lr_schedule`'s cosine.

    The cosine reads the optimizer's own step counter, which the checkpoint saves with the
    weights, so a run stopped and resumed follows the same curve."""
    if cfg.lr_schedule == "constant":
        return keras.optimizers.Adam(cfg.learning_rate)
    total = cfg.epochs * steps_per_epoch
    return keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=total, alpha=0.0)
    )


def _resume(
    model: keras.Model, work: Path, settings: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """(epochs done, their log) from the checkpoint in `work`, or (0, []) for a fresh start.

    A checkpoint trained with other settings is refused, never silently continued: the bundle's
    card would otherwise describe settings its weights were not trained with."""
    state = work / "state.json"
    if state.is_file() and (work / LAST_WEIGHTS).is_file():
        saved = json.loads(state.read_text())
        old = saved.get("settings")
        if old is not None:  # keys it predates read as what it was trained with
            old = {k: v for k, v in _LEGACY.items() if k in settings} | old
        if old is not None and old != settings:
            diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
            raise DataError(
                f"{work}: checkpoint was trained with other settings (saved, now): {diff}; "
                "use another --work folder, or delete this one to start over"
            )
        done = int(saved["epochs_done"])
        # Build the optimizer first, so its moments are restored too (not only the weights).
        model.optimizer.build(model.trainable_variables)
        model.load_weights(work / LAST_WEIGHTS)
        logger.info("%s: resuming after epoch %d", work, done)
        return done, list(saved.get("log", []))
    return 0, []


# A checkpoint folder's files: the last epoch's weights (what resumes and, without
# `average_last`, what is exported) and `average_last`'s weights, as exported, beside them.
LAST_WEIGHTS = "last.weights.h5"
AVERAGED_WEIGHTS = "averaged.weights.h5"


def epoch_weights_name(epoch: int) -> str:
    """The file `keep_epoch_weights` writes after `epoch` (1-based) epochs."""
    return f"epoch-{epoch:02d}.weights.h5"


def last_epoch_files(work: Path, epochs: int, k: int) -> tuple[list[Path], list[str]]:
    """The kept weights of the last `k` of `epochs` epochs (oldest first), and the names of
    those that are not there."""
    files = [work / epoch_weights_name(e) for e in range(epochs - k + 1, epochs + 1)]
    return files, [f.name for f in files if not f.is_file()]


def _checkpoint(
    model: keras.Model,
    work: Path,
    epochs_done: int,
    log: list[dict[str, Any]],
    settings: dict[str, Any],
    *,
    keep: bool = False,
) -> None:
    tmp = work / "tmp.weights.h5"
    model.save_weights(tmp)
    if keep:  # a copy first, so LAST_WEIGHTS never points past the epochs kept
        shutil.copyfile(tmp, work / epoch_weights_name(epochs_done))
    tmp.replace(work / LAST_WEIGHTS)
    # Atomic too: Ctrl-C between the two files leaves the previous, consistent state.json.
    tmp_state = work / "state.json.tmp"
    state = {"epochs_done": epochs_done, "log": log, "settings": settings}
    tmp_state.write_text(json.dumps(state))
    tmp_state.replace(work / "state.json")


def _compiled_cnn(
    cfg: TrainConfig, work: Path, steps_per_epoch: int
) -> tuple[keras.Model, int, list[dict[str, Any]]]:
    """The lab CNN with its optimizer and loss, resumed from `work` if a checkpoint exists.
    `steps_per_epoch`: batches per epoch, which a cosine schedule spreads its curve over."""
    work.mkdir(parents=True, exist_ok=True)
    model = baseline_cnn(
        cfg.seed, width=cfg.width, convs_per_stage=cfg.convs_per_stage, dropout=cfg.dropout
    )
    model.compile(
        optimizer=optimizer(cfg, steps_per_epoch),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    model.build((None, 64, 64, 3))
    return (model, *_resume(model, work, _settings(cfg, _CNN_KEYS)))


def context_rows(cfg: TrainConfig, context: Context | None) -> Context | None:
    """The context the augmentation uses: only "wild-context" and "wild-people" read wider
    crops."""
    return context if cfg.augment in CONTEXT_AUGMENTS else None


def train_baseline(
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    work: Path,
    *,
    context: Context | None = None,
    nonfaces_per_epoch: int | None = None,
) -> tuple[keras.Model, list[dict[str, Any]]]:
    """`context`: wider crops of some training faces (used by `--augment wild-context`).
    `nonfaces_per_epoch`: with `cfg.nonface_draw` "pool" or "mined", how many of the
    non-faces in `x` (the whole pool) each epoch draws."""
    faces, nonfaces, per_epoch, (model, done, log) = _cnn_start(x, y, cfg, work, nonfaces_per_epoch)
    ctx = context_rows(cfg, context)
    augmenter = make_augmenter(cfg.augment, x[nonfaces], ctx, cfg.scale_draw)
    which = None if ctx is None else ctx.which
    # The recipe's draw: one dataset for every epoch, each reshuffling its order and moving its
    # augmentation stream on (`on_epoch_end`); a new one per epoch would repeat epoch 1's.
    every_epoch = (
        Batches(x, y, cfg.batch_size, cfg.seed, aug=augmenter, workers=cfg.workers, which=which)
        if cfg.nonface_draw == "recipe"
        else None
    )
    for epoch in range(done, cfg.epochs):
        data = every_epoch
        entry: dict[str, Any] = {}
        if data is None:
            drawn_nonfaces, entry = _epoch_nonfaces(
                model, x, nonfaces, per_epoch, cfg=cfg, epoch=epoch
            )
            data = Batches(
                x, y, cfg.batch_size, cfg.seed + epoch, aug=augmenter, workers=cfg.workers,
                which=which, rows=np.concatenate([faces, drawn_nonfaces]),
            )  # fmt: skip
        log.append({"epoch": epoch + 1, "loss": fit_epoch(model, data), **entry})
        _checkpoint(model, work, epoch + 1, log, _settings(cfg, _CNN_KEYS), keep=_keeps(cfg))
    if cfg.average_last:
        _average_last(model, cfg, work, averaging_batches(x, y, cfg, augmenter, which))
    return model, log


def _cnn_start(
    x: np.ndarray, y: np.ndarray, cfg: TrainConfig, work: Path, nonfaces_per_epoch: int | None
) -> tuple[np.ndarray, np.ndarray, int, tuple[keras.Model, int, list[dict[str, Any]]]]:
    """The CNN methods' start: the rows of faces and of non-faces in `x`, how many non-faces
    an epoch trains on (all of them with the recipe's draw; `nonfaces_per_epoch` of the pool
    when drawn from it), and `_compiled_cnn` with that epoch's batch count."""
    faces, nonfaces = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    per_epoch = len(nonfaces)
    if cfg.nonface_draw != "recipe":
        if nonfaces_per_epoch is None or not 0 < nonfaces_per_epoch <= len(nonfaces):
            raise DataError(
                f"--nonface-draw {cfg.nonface_draw} draws {nonfaces_per_epoch} non-faces per "
                f"epoch from a pool of {len(nonfaces)}; lower the recipe's non-face count, or "
                "use --nonface-draw recipe"
            )
        per_epoch = nonfaces_per_epoch
    steps = math.ceil((len(faces) + per_epoch) / cfg.batch_size)
    return faces, nonfaces, per_epoch, _compiled_cnn(cfg, work, steps)


def _epoch_nonfaces(
    model: keras.Model,
    x: np.ndarray,
    nonfaces: np.ndarray,
    n: int,
    *,
    cfg: TrainConfig,
    epoch: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """This epoch's non-faces and what the log records of the draw: every one of `nonfaces`
    with the recipe's draw; else `n` of them (model_export.mining), with "mined" half of them
    scored by the model as the epochs before left it (none before the first), with "pool" all
    uniform."""
    if cfg.nonface_draw == "recipe":
        return nonfaces, {}
    rng = np.random.default_rng([cfg.seed, epoch, 2])  # the same draw on a resumed run

    def score(rows: np.ndarray) -> np.ndarray:
        return predict_logits(model, x[rows])

    scorer = score if epoch > 0 and cfg.nonface_draw == "mined" else None
    mined, lowest = mine_nonfaces(scorer, nonfaces, n, rng)
    entry: dict[str, Any] = {"mined_nonfaces": len(np.unique(mined))}
    if lowest is not None:
        entry["mined_lowest_hard_logit"] = round(lowest, 4)
        logger.info("epoch %d: hard non-faces score from logit %.3f up", epoch + 1, lowest)
    return mined, entry


def train_dbvae(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, cfg: TrainConfig, work: Path
) -> tuple[DBVAE, list[dict[str, Any]]]:
    """`groups` (e.g. race of each face) is used only to log the drawn shares."""
    check_wild_context(cfg.augment, method="dbvae", has_context=False)
    if cfg.rarity_views == "augmented" and cfg.augment != "camera":
        raise DataError(
            "rarity measured on augmented views works with --augment camera only; use "
            "--rarity-views clean with --augment wild"
        )
    if cfg.rarity_views == "augmented" and not cfg.faces_first:
        raise DataError(
            "rarity measured on augmented views needs faces-first batches; drop --decode-all"
        )
    work.mkdir(parents=True, exist_ok=True)
    faces = np.flatnonzero(y == 1)
    nonfaces = np.flatnonzero(y == 0)
    k = faces_per_batch(len(faces), len(nonfaces), cfg.batch_size)
    model = DBVAE(
        cfg.latent_dim,
        cfg.kl_weight,
        cfg.seed,
        faces_per_batch=k if cfg.faces_first else None,
        width=cfg.width,
        convs_per_stage=cfg.convs_per_stage,
    )
    steps = (
        faces_first_steps(len(faces), len(nonfaces), cfg.batch_size, k)
        if cfg.faces_first
        else math.ceil(len(x) / cfg.batch_size)  # drawn faces + every non-face
    )
    model.compile(optimizer=optimizer(cfg, steps))
    model(np.zeros((1, 64, 64, 3), np.float32))
    settings = _settings(cfg, _DBVAE_KEYS)
    done, log = _resume(model, work, settings)
    rng = np.random.default_rng(cfg.seed)
    augmenter = make_augmenter(cfg.augment, x[nonfaces], scale_draw=cfg.scale_draw)
    for epoch in range(done, cfg.epochs):
        conditions: np.ndarray | None = None
        by_label: tuple[np.ndarray, np.ndarray] | None = None
        if cfg.rarity_views == "augmented":
            # One camera condition per face for this epoch [F, 9], seeded by (seed, epoch) so a
            # resumed run draws the same; the views [F, 64, 64, 3] float32 live only here.
            crng = np.random.default_rng([cfg.seed, epoch, 1])
            conditions = draw_conditions(len(faces), crng)
            latents = latent_means(model, apply_conditions(x[faces], conditions, crng))
        else:
            latents = latent_means(model, x[faces])
        w = face_weights(
            latents,
            bins=cfg.bins,
            alpha=cfg.alpha,
            rule=cfg.rule,
            temperature=cfg.temperature,
            cap=cfg.cap,
        )
        pick = rng.choice(len(faces), len(faces), replace=True, p=w)
        drawn = faces[pick]
        shares = effective_shares(w, groups[faces])
        logger.info("epoch %d: expected group shares of drawn faces %s", epoch + 1, shares)
        entry: dict[str, Any] = {}
        if conditions is not None:
            entry["drawn_conditions"] = condition_shift(conditions, w)
            face_c = conditions[pick]
            # Non-faces take conditions of drawn faces: the camera-condition mix stays the same
            # for both labels, so a condition the draw favours cannot become a cue for "face".
            nonface_c = face_c[crng.integers(0, len(pick), len(nonfaces))]
            by_label = (face_c, nonface_c)
            logger.info("epoch %d: camera conditions, all vs drawn %s", epoch + 1, entry)
        data: keras.utils.PyDataset
        if cfg.faces_first:
            data = FacesFirstBatches(
                x,
                drawn,
                nonfaces,
                cfg.batch_size,
                k=k,
                seed=cfg.seed + epoch,
                conditions=by_label,
                aug=augmenter,
                workers=cfg.workers,
            )
        else:
            idx = np.concatenate([drawn, nonfaces])
            data = Batches(
                x, y, cfg.batch_size, cfg.seed + epoch, aug=augmenter, workers=cfg.workers, rows=idx
            )
        loss = fit_epoch(model, data)
        log.append(
            {
                "epoch": epoch + 1,
                "loss": loss,
                "drawn_shares": shares,
                "max_weight_x_mean": round(float(w.max() * len(w)), 2),
                "unique_drawn": len(np.unique(drawn)),
                **entry,
            }
        )
        _checkpoint(model, work, epoch + 1, log, settings, keep=_keeps(cfg))
    return model, log


def condition_shift(conditions: np.ndarray, w: np.ndarray) -> dict[str, list[float]]:
    """Mean of each camera condition over all views and over the draw (weights `w` [N]):
    {"gain": [all, drawn], ...}; the shares of blurred and JPEG views for blur and jpeg."""
    cols = {"scale": aug.SCALE, "gain": aug.GAIN, "gamma": aug.GAMMA, "noise": aug.NOISE}
    out = {
        k: [float(conditions[:, c].mean()), float(w @ conditions[:, c])] for k, c in cols.items()
    }
    for k, c in (("blurred", aug.BLUR), ("jpeg", aug.JPEG)):
        on = (conditions[:, c] > 0).astype(np.float64)
        out[k] = [float(on.mean()), float(w @ on)]
    return {k: [round(v, 4) for v in pair] for k, pair in out.items()}


def _keeps(cfg: TrainConfig) -> bool:
    """Whether each epoch's weights are kept: asked for, or needed for the mean of the last."""
    return cfg.keep_epoch_weights or cfg.average_last > 0


def averaging_batches(
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    augmenter: Augmenter,
    which: np.ndarray | None,
    *,
    face_p: np.ndarray | None = None,
) -> Batches:
    """Augmented batches drawn as one epoch of the method draws them (`face_p`: each face's
    chance, for the balanced method; every row once otherwise), from a stream of their own
    (seed 10,000 + the run's seed), on which BatchNorm is measured after averaging."""
    rng = np.random.default_rng(10_000 + cfg.seed)
    rows = None
    if face_p is not None:
        faces, nonfaces = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        rows = np.concatenate([faces[rng.choice(len(faces), len(faces), p=face_p)], nonfaces])
    return Batches(x, y, cfg.batch_size, 10_000 + cfg.seed, aug=augmenter, which=which, rows=rows)


def _average_last(model: keras.Model, cfg: TrainConfig, work: Path, batches: Batches) -> None:
    """`model` becomes the mean of the last `cfg.average_last` epochs' kept weights, with
    BatchNorm measured again on `batches` (model_export.averaging)."""
    k = cfg.average_last
    files, missing = last_epoch_files(work, cfg.epochs, k)
    if missing:
        raise DataError(
            f"{work}: --average-last {k} needs the weights of the last {k} epochs, and "
            f"{', '.join(missing)} are not there (trained without --average-last?); train into "
            "another --work folder, or delete this one to start over"
        )
    average_weights(model, files)
    reestimate_batchnorm(model, batches, BN_BATCHES)
    # The weights the bundle is exported from, for the report's float metrics (which do not
    # decode the training draw that BatchNorm was measured on); written again on every reload.
    tmp = work / "tmp.weights.h5"
    model.save_weights(tmp)
    tmp.replace(work / AVERAGED_WEIGHTS)
    logger.info("%s: the mean of epochs %d-%d's weights", work, cfg.epochs - k + 1, cfg.epochs)


def balanced_probabilities(face_groups: np.ndarray) -> np.ndarray:
    """float [F]: each face's chance to be drawn, 1 / (size of its group), summing to 1."""
    values, counts = np.unique(face_groups, return_counts=True)
    size = dict(zip(values.tolist(), counts.tolist(), strict=True))
    w = np.array([1.0 / size[g] for g in face_groups.tolist()])
    w /= w.sum()
    return w


def train_balanced(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    cfg: TrainConfig,
    work: Path,
    *,
    context: Context | None = None,
    nonfaces_per_epoch: int | None = None,
) -> tuple[keras.Model, list[dict[str, Any]]]:
    """The baseline CNN, but each epoch draws faces with probability 1 / (size of their group):
    a supervised comparison method that uses the group labels (the DB-VAE does not).
    `context`, `nonfaces_per_epoch`: as for train_baseline."""
    # Each epoch's rows are its draw of len(faces) faces plus its non-faces (with the recipe's
    # draw every non-face: len(x) rows).
    faces, nonfaces, per_epoch, (model, done, log) = _cnn_start(x, y, cfg, work, nonfaces_per_epoch)
    rng = np.random.default_rng(cfg.seed)
    fg = groups[faces]
    w = balanced_probabilities(fg)
    ctx = context_rows(cfg, context)
    augmenter = make_augmenter(cfg.augment, x[nonfaces], ctx, cfg.scale_draw)
    which = None if ctx is None else ctx.which
    for epoch in range(done, cfg.epochs):
        drawn = faces[rng.choice(len(faces), len(faces), replace=True, p=w)]
        epoch_nonfaces, entry = _epoch_nonfaces(model, x, nonfaces, per_epoch, cfg=cfg, epoch=epoch)
        data = Batches(
            x,
            y,
            cfg.batch_size,
            cfg.seed + epoch,
            aug=augmenter,
            workers=cfg.workers,
            which=which,
            rows=np.concatenate([drawn, epoch_nonfaces]),
        )
        loss = fit_epoch(model, data)
        log.append(
            {
                "epoch": epoch + 1,
                "loss": loss,
                "drawn_shares": effective_shares(w, fg),
                **entry,
            }
        )
        _checkpoint(model, work, epoch + 1, log, _settings(cfg, _CNN_KEYS), keep=_keeps(cfg))
    if cfg.average_last:
        draw = averaging_batches(x, y, cfg, augmenter, which, face_p=w)
        _average_last(model, cfg, work, draw)
    return model, log
