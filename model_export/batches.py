"""Training batches: the augmentations by name, and the streams of batches both training loops
read (`Batches` for the CNNs, `FacesFirstBatches` for the DB-VAE), each augmenting as it goes
from uint8 arrays read in place, so 16k images stay ~200 MB."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

import keras
import numpy as np

from model_export.augment import apply_conditions, augment
from model_export.augment_wild import (
    CONTEXT_AUGMENTS,
    PEOPLE_SHARE,
    Context,
    ScaleDraw,
    augment_wild,
    wild_config,
)
from model_export.data import DataError

# uint8 [B, 64, 64, 3] and the batch's random stream -> float32 [B, 64, 64, 3] in [0, 1]; with
# contexts, also `which` (int [B]: each image's row of the wider crops, -1 for none).
Augmenter = Callable[..., np.ndarray]
AugmentName = Literal["camera", "wild", "wild-context", "wild-people"]
AUGMENT_NAMES: tuple[AugmentName, ...] = ("camera", "wild", "wild-context", "wild-people")


def check_wild_context(augment: str, *, method: str | None, has_context: bool) -> None:
    """The one home of the two requirements of `--augment wild-context` and `wild-people`: a
    CNN method (`method`, None where unknown) and the wider crops that `--wider-train` brings
    (`has_context`)."""
    if augment not in CONTEXT_AUGMENTS:
        return
    if method == "dbvae":
        raise DataError(
            f"--augment {augment} is built for the CNNs (baseline, balanced); use --augment "
            "wild with --method dbvae"
        )
    if not has_context:
        raise DataError(
            f"--augment {augment} reads the 128x128 crops of the in-the-wild faces --wider-train "
            "adds: add --wider-train (with --wider), or use --augment wild"
        )


def make_augmenter(
    name: AugmentName,
    scenes: np.ndarray,
    context: Context | None = None,
    scale_draw: ScaleDraw = "uniform",
) -> Augmenter:
    """uint8 [B, 64, 64, 3] -> float32 [B, 64, 64, 3] in [0, 1]. "camera": the milder camera
    changes of model_export.augment (models trained until 2026-12-03); "wild": framing 0.35-1.25
    on scene patches (`scenes`: the training non-faces), light, low resolution, motion blur
    (model_export.augment_wild); "wild-context": "wild", but faces with a wider crop in
    `context` are reframed from it (their own surroundings instead of a pasted scene);
    "wild-people": "wild-context", and PEOPLE_SHARE of the other images (portraits, non-faces)
    are laid on a random wider crop's surroundings instead of a scene patch. `scale_draw`: how
    the wild ones draw the framing (WildConfig.scale_draw; the camera one has its own)."""
    if name == "camera":
        return augment
    wild = wild_config(scale_draw)
    if name == "wild":
        return functools.partial(augment_wild, scenes=scenes, cfg=wild)
    if name in CONTEXT_AUGMENTS:
        check_wild_context(name, method=None, has_context=context is not None)
        assert context is not None  # checked above
        people = PEOPLE_SHARE if name == "wild-people" else 0.0  # 0: no extra draws
        return functools.partial(
            augment_wild, scenes=scenes, cfg=wild, contexts=context.crops, people=people
        )
    raise DataError(f"unknown augmentation {name!r}; use one of {', '.join(AUGMENT_NAMES)}")


class BatchStreams:
    """Where a batch's augmentation draws its random numbers.

    One worker (the default, how every shipped checkpoint was trained): one sequential stream,
    batch after batch. Several workers (`--workers`, for a GPU box whose single data thread
    cannot keep up with the accelerator) augment batches concurrently and in any order, so each
    batch gets its own stream seeded by (seed, epoch, batch): a run is reproducible for a given
    seed, but its augmentation draws differ from a one-worker run's."""

    def __init__(self, seed: int, workers: int) -> None:
        if workers < 1:
            raise DataError(f"--workers must be >= 1, got {workers}")
        self.seed, self.per_batch, self.epoch = seed, workers > 1, 0

    def get(self, i: int, shared: np.random.Generator) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, i]) if self.per_batch else shared


class Batches(keras.utils.PyDataset):
    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        seed: int,
        *,
        train: bool = True,
        aug: Augmenter = augment,
        workers: int = 1,
        which: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        """`which` (int [N], aligned with `x`): each image's row of the augmenter's wider
        crops (-1 for none), passed to `aug` for the images of each batch. `rows` (int [R]):
        the epoch's draw, indices into `x` (repeats allowed; default every row once), read in
        place: Keras keeps every dataset passed to `fit` alive, so a copy `x[rows]` per epoch
        grew the process by its size (about 200 MB) every epoch, 15 GB over `make models`."""
        super().__init__(workers=workers, use_multiprocessing=False)
        self.x, self.y, self.bs, self.train, self.aug = x, y, batch_size, train, aug
        self.which = which
        self.rows = np.arange(len(x)) if rows is None else rows
        self.rng = np.random.default_rng(seed)
        self.streams = BatchStreams(seed, workers)
        n = len(self.rows)
        # The same draws as permuting a copy x[rows]: batches are bit for bit those of a copy.
        self.order = self.rows[self.rng.permutation(n)] if train else self.rows

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.bs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.order[i * self.bs : (i + 1) * self.bs]
        xb = self.x[idx]
        if not self.train:
            return xb.astype(np.float32) / 255.0, self.y[idx]
        rng = self.streams.get(i, self.rng)
        if self.which is None:
            return self.aug(xb, rng), self.y[idx]
        return self.aug(xb, rng, which=self.which[idx]), self.y[idx]

    def on_epoch_end(self) -> None:
        self.streams.epoch += 1
        if self.train:
            self.order = self.rows[self.rng.permutation(len(self.rows))]


def faces_per_batch(n_faces: int, n_nonfaces: int, batch_size: int) -> int:
    """Faces in each DB-VAE batch: the set's face share of the batch (16 of 32 for 8k + 8k)."""
    n = n_faces + n_nonfaces
    if n_faces == 0 or n == 0:
        return 0
    return min(batch_size, max(1, round(batch_size * n_faces / n)))


def faces_first_steps(n_faces: int, n_nonfaces: int, batch_size: int, k: int) -> int:
    """Batches in an epoch of FacesFirstBatches: until both kinds have run out."""
    m = batch_size - k
    return max(math.ceil(n_faces / k) if k else 0, math.ceil(n_nonfaces / m) if m else 0)


class FacesFirstBatches(keras.utils.PyDataset):
    """DB-VAE batches of `batch_size` rows, the first `k` of them faces (the model's
    `faces_per_batch`, passed in so the two cannot disagree), the rest non-faces; each kind in
    its own shuffled order every epoch.

    The DB-VAE decodes only the first k rows (its VAE terms are zero for non-faces): DB-VAE
    epochs took 49-64 s on the 2-core CPU, against 58-87 s with mixed batches decoded whole.
    Every drawn face and every non-face is seen once per epoch; when one kind runs out first,
    the last batches hold only the other (shorter batches; non-faces among the first k rows are
    gated out of the VAE loss by their label).

    `conditions` (faces' [F, 9], non-faces' [M, 9], aligned with `faces` and `nonfaces`): camera
    conditions fixed in advance (`rarity_views="augmented"`) instead of drawn per batch."""

    def __init__(
        self,
        x: np.ndarray,
        faces: np.ndarray,
        nonfaces: np.ndarray,
        batch_size: int,
        *,
        k: int,
        seed: int,
        conditions: tuple[np.ndarray, np.ndarray] | None = None,
        aug: Augmenter = augment,
        workers: int = 1,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=False)
        self.x, self.k, self.m, self.aug = x, k, batch_size - k, aug
        self.rng = np.random.default_rng(seed)
        self.streams = BatchStreams(seed, workers)
        # Index orders (the same draws as permuting the arrays), so conditions can follow.
        fo, no = self.rng.permutation(len(faces)), self.rng.permutation(len(nonfaces))
        self.faces, self.nonfaces = faces[fo], nonfaces[no]
        self.conditions = None if conditions is None else (conditions[0][fo], conditions[1][no])
        self.n = faces_first_steps(len(faces), len(nonfaces), batch_size, k)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        fs, ns = slice(i * self.k, (i + 1) * self.k), slice(i * self.m, (i + 1) * self.m)
        f, nf = self.faces[fs], self.nonfaces[ns]
        y = np.concatenate([np.ones(len(f), np.float32), np.zeros(len(nf), np.float32)])
        xb = self.x[np.concatenate([f, nf])]
        rng = self.streams.get(i, self.rng)
        if self.conditions is None:
            return self.aug(xb, rng), y
        cond = np.concatenate([self.conditions[0][fs], self.conditions[1][ns]])
        return apply_conditions(xb, cond, rng), y
