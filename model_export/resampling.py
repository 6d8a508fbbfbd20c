"""DB-VAE adaptive resampling: draw rare faces (by latent histograms) more often.

Per latent dimension d, a histogram of the training faces' latent means gives a density
p_d(z_d). A face's weight combines 1 / (p_d + alpha) over dimensions:
- "product" (the paper): prod_d 1 / (p_d + alpha), in log space; tends to collapse onto a few
  images;
- "max" (the course lab): max_d 1 / (p_d + alpha);
- "mean_log": exp(mean_d -log(p_d + alpha)).
A temperature flattens (>1) or sharpens (<1) the weights and `cap` bounds the largest weight
relative to the mean, so no single face dominates an epoch. Labels are never used here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Rule = Literal["product", "max", "mean_log"]


def face_weights(
    latents: np.ndarray,
    *,
    bins: int = 10,
    alpha: float = 0.001,
    rule: Rule = "max",
    temperature: float = 1.0,
    cap: float | None = None,
) -> npt.NDArray[np.float64]:
    """Sampling probabilities [N] for faces with latent means [N, D]; they sum to 1."""
    n, d = latents.shape
    neg_log = np.empty((n, d), dtype=np.float64)
    for j in range(d):
        hist, edges = np.histogram(latents[:, j], bins=bins)
        density = hist / max(n, 1)
        idx = np.clip(np.searchsorted(edges[1:-1], latents[:, j], side="right"), 0, bins - 1)
        neg_log[:, j] = -np.log(density[idx] + alpha)
    log_w: npt.NDArray[np.float64]
    if rule == "product":
        log_w = neg_log.sum(axis=1)
    elif rule == "max":
        log_w = neg_log.max(axis=1)
    elif rule == "mean_log":
        log_w = neg_log.mean(axis=1)
    else:
        raise ValueError(f"unknown combination rule {rule!r}; use product, max or mean_log")
    log_w = log_w / temperature
    w: npt.NDArray[np.float64] = np.exp(log_w - log_w.max())
    w /= w.sum()
    if cap is not None:
        w = _cap(w, cap)
    return w


def effective_shares(weights: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Expected share of each group among the drawn faces (reporting only)."""
    return {
        str(g): round(float(weights[groups == g].sum()), 4) for g in sorted(set(groups.tolist()))
    }


def _cap(w: npt.NDArray[np.float64], cap: float) -> npt.NDArray[np.float64]:
    """Limit max(w) / mean(w) to `cap` by water-filling: capped entries sit at the limit and the
    rest share the remaining mass in their old proportions."""
    n = len(w)
    if cap < 1:
        raise ValueError(f"cap must be >= 1 (a multiple of the mean weight), got {cap}")
    limit = cap / n
    capped = np.zeros(n, dtype=bool)
    out: npt.NDArray[np.float64] = w.copy()
    for _ in range(n):
        free = ~capped
        remaining = 1.0 - limit * capped.sum()
        total = w[free].sum()
        # Weights far below the largest underflow to 0 (sharp rules): share the rest evenly.
        scaled = (
            w[free] / total * remaining
            if total > 0
            else np.full(free.sum(), remaining / free.sum())
        )
        over = scaled > limit
        if not over.any():
            out[free] = scaled
            out[capped] = limit
            return out
        capped[np.flatnonzero(free)[over]] = True
    return np.full(n, 1.0 / n)
