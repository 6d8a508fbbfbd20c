"""The mean of a run's last epochs' weights (stochastic weight averaging, Izmailov et al. 2018),
which `--average-last K` ships instead of the last step's weights: the same network, so the
kiosk pays nothing for it. BatchNorm's moving statistics are measured again on training batches
afterwards, since the averaged weights were never trained as they are (assets/models/README.md,
"Diagnostic of 2026-12-07 (evening)")."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

if TYPE_CHECKING:
    from model_export.batches import Batches

# Training batches BatchNorm is measured on after averaging (200 x 32 = 6,400 augmented images).
BN_BATCHES = 200


def average_weights(model: keras.Model, files: list[Path]) -> None:
    """Set every weight of `model` (trainable ones and BatchNorm's moving statistics) to the
    mean of those saved in `files` (each a checkpoint of the same architecture)."""
    if not files:
        raise ValueError("no weight files to average")
    sums: list[np.ndarray] | None = None
    for f in files:
        model.load_weights(f)
        ws = [w.astype(np.float64) for w in model.get_weights()]
        sums = ws if sums is None else [a + b for a, b in zip(sums, ws, strict=True)]
    assert sums is not None
    model.set_weights([(s / len(files)).astype(np.float32) for s in sums])


def reestimate_batchnorm(model: keras.Model, batches: Batches, n: int) -> None:
    """BatchNorm's moving mean and variance set to the plain mean of their values over the
    first `n` batches of `batches` (momentum t / (t + 1) at batch t, so batch 0 replaces what
    was there); the weights themselves are untouched. Eager calls: each reads the momentum."""
    bns = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    saved = [b.momentum for b in bns]
    try:
        for t in range(n):
            for b in bns:
                b.momentum = t / (t + 1)
            xb, _ = batches[t % len(batches)]
            model(xb, training=True)
    finally:
        for b, m in zip(bns, saved, strict=True):
            b.momentum = m
