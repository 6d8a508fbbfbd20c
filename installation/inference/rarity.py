"""On-device rarity score from the DB-VAE latent mean and the bundle's `latent.npz`.

latent.npz: `edges` [D, B+1], `density` [D, B] (per-dimension histogram of the training faces'
latent means, rows sum to 1), `alpha` (smoothing), `score_quantiles` [101] (quantiles 0..100 % of
the training faces' scores). score s(z) = mean_d -log(density_d[bin_d(z_d)] + alpha); a higher
score means a rarer face. The percentile says how many training faces scored lower.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt


def rarity_scores(
    latents: np.ndarray, edges: np.ndarray, density: np.ndarray, alpha: float
) -> npt.NDArray[np.float32]:
    """Scores for latent means [N, D] -> [N]; values outside the edges fall in the edge bins."""
    n_bins = density.shape[1]
    # Bin index = number of interior edges <= z (np.histogram's rule), so values below / above the
    # range land in bin 0 / B-1. [N, D, 1] vs [1, D, B-1] -> [N, D]; vectorised for the kiosk's
    # per-frame call (D=100: ~20 us instead of a Python loop over dimensions).
    inner = edges[None, :, 1:-1]
    bins = np.minimum((inner <= latents[:, :, None]).sum(axis=2), n_bins - 1)
    picked = density[np.arange(density.shape[0])[None, :], bins]  # [N, D]
    scores: npt.NDArray[np.float64] = np.mean(-np.log(picked + alpha), axis=1)
    return scores.astype(np.float32)


class RarityError(ValueError):
    pass


class Rarity:
    def __init__(
        self, edges: np.ndarray, density: np.ndarray, alpha: float, quantiles: np.ndarray
    ) -> None:
        self.edges = edges.astype(np.float32)
        self.density = density.astype(np.float32)
        self.alpha = float(alpha)
        self.quantiles = quantiles.astype(np.float32)
        self.latent_dim = int(self.density.shape[0])

    @classmethod
    def load(cls, path: Path) -> Rarity:
        try:
            with np.load(path) as npz:
                edges, density = npz["edges"], npz["density"]
                alpha, quantiles = float(npz["alpha"]), npz["score_quantiles"]
        # A truncated or damaged file fails inside zipfile (BadZipFile, EOFError), not only
        # with the OSError / ValueError of a missing or foreign one.
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise RarityError(
                f"{path}: not a valid latent.npz ({exc}); re-export the bundle"
            ) from None
        if (
            edges.ndim != 2
            or density.shape != (edges.shape[0], edges.shape[1] - 1)
            or quantiles.shape != (101,)
        ):
            raise RarityError(
                f"{path}: latent.npz has shapes edges {edges.shape}, density {density.shape}, "
                f"score_quantiles {quantiles.shape}; expected [D,B+1], [D,B], [101]. "
                "Re-export the bundle."
            )
        finite = all(np.all(np.isfinite(a)) for a in (edges, density, quantiles)) and np.isfinite(
            alpha
        )
        if (
            not finite
            or alpha < 0
            or np.any(density < 0)
            or np.any(np.diff(edges, axis=1) <= 0)
            or np.any(np.diff(quantiles) < 0)
        ):
            raise RarityError(
                f"{path}: latent.npz holds invalid values (need finite numbers, rising edges, "
                "non-negative density and alpha, sorted score_quantiles). Re-export the bundle."
            )
        return cls(edges, density, alpha, quantiles)

    def score(self, latent: np.ndarray) -> float:
        return float(rarity_scores(latent.reshape(1, -1), self.edges, self.density, self.alpha)[0])

    def percentile(self, latent: np.ndarray) -> float:
        """Share of training faces with a lower score, in [0, 1] (0.9: rarer than 90 %)."""
        s = self.score(latent)
        # quantiles[k] is the k-th percentile; interpolate the inverse.
        return float(np.interp(s, self.quantiles, np.linspace(0.0, 1.0, 101)))
