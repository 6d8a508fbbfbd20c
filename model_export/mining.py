"""Hard non-faces, mined each epoch (`--nonface-draw mined`), as face detectors have been
bootstrapped since Sung & Poggio (1998) and Viola & Jones (2001).

The recipe draws a fixed 8,000 of faces64's ~19,000 training non-faces once. With "mined" the
training pool holds every training non-face (never the validation ones, which set the
threshold), and each epoch draws the recipe's count from it: half the non-faces the model of
the epoch before scores highest (clean images, inference mode), half uniformly from the rest,
so the model keeps seeing ordinary clutter while it is pushed on what it takes for a face.
"pool" draws all of the epoch's non-faces uniformly from the same pool: more distinct
non-faces at the recipe's cost per epoch, without the push.
The recall the exhibit needs is set at 2 % of held-out non-faces, the upper tail of their
scores; this is the lever aimed at that tail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

NonfaceDraw = Literal["recipe", "pool", "mined"]
NONFACE_DRAWS: tuple[NonfaceDraw, ...] = ("recipe", "pool", "mined")
HARD_SHARE = 0.5  # share of each epoch's non-faces that are the highest-scoring ones


def mine_nonfaces(
    score: Callable[[np.ndarray], np.ndarray] | None,
    nonfaces: np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float | None]:
    """Indices of `n` of the rows `nonfaces` (int [P], P >= n) for one epoch, and the lowest
    score among the hard ones (None without a scorer).

    `score(rows)`: the current model's logit [len(rows)] for those rows; None (the first
    epoch, nothing learnt yet) draws all `n` uniformly."""
    if n > len(nonfaces):
        raise ValueError(f"{n} non-faces per epoch wanted, the pool holds {len(nonfaces)}")
    if score is None:
        return rng.choice(nonfaces, n, replace=False), None
    logits = score(nonfaces)  # [P]
    n_hard = round(n * HARD_SHARE)
    # Stable order: ties (rare in float logits) fall to the lower row, the same on every run.
    order = np.argsort(-logits, kind="stable")
    hard = nonfaces[order[:n_hard]]
    rest = nonfaces[order[n_hard:]]
    easy = rng.choice(rest, n - n_hard, replace=False)
    lowest = float(logits[order[n_hard - 1]]) if n_hard else None
    return np.concatenate([hard, easy]), lowest
