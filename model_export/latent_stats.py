"""Per-dimension latent histograms of the training faces: the DB-VAE bundle's `latent.npz`.

The kiosk turns a visitor's latent mean into "rarer than N% of the training faces" with them
(installation/inference/rarity.py reads the same format). Pure NumPy: shared by both halves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from installation.inference.rarity import rarity_scores

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LatentStats:
    edges: F32  # [D, B+1] bin edges per latent dimension
    density: F32  # [D, B] normalised histogram per dimension (rows sum to 1)
    alpha: float  # smoothing added to the density before the log
    score_quantiles: F32  # [101] quantiles 0..100 % of the training faces' rarity scores

    def save(self, path: Path) -> None:
        with path.open("wb") as fh:
            np.savez(
                fh,
                edges=self.edges,
                density=self.density,
                alpha=np.float32(self.alpha),
                score_quantiles=self.score_quantiles,
            )


def compute_latent_stats(latents: np.ndarray, bins: int = 10, alpha: float = 0.001) -> LatentStats:
    """Histograms of the training faces' latent means [N, D]."""
    if latents.ndim != 2 or latents.shape[0] < 2:
        raise ValueError(f"need latent means [N>=2, D], got shape {latents.shape}")
    lat = latents.astype(np.float32)
    d = lat.shape[1]
    edges = np.empty((d, bins + 1), dtype=np.float32)
    density = np.empty((d, bins), dtype=np.float32)
    for j in range(d):
        hist, e = np.histogram(lat[:, j], bins=bins)
        edges[j] = e
        density[j] = hist / max(hist.sum(), 1)
    scores = rarity_scores(lat, edges, density, alpha)
    quantiles = np.quantile(scores, np.linspace(0, 1, 101)).astype(np.float32)
    return LatentStats(edges, density, float(alpha), quantiles)
