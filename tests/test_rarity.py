"""Rarity score: latent.npz written by model_export, read by the kiosk (pure NumPy, no TF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from installation.inference.rarity import Rarity, RarityError, rarity_scores
from model_export.latent_stats import LatentStats, compute_latent_stats

# Two dimensions, two bins each: dim 0 is skewed (90 % of faces in bin 0), dim 1 is flat.
EDGES = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]], np.float32)
DENSITY = np.array([[0.9, 0.1], [0.5, 0.5]], np.float32)


def test_score_by_hand() -> None:
    z = np.array([[0.5, 1.5], [1.5, 0.5]], np.float32)
    got = rarity_scores(z, EDGES, DENSITY, alpha=0.0)
    want = [(-np.log(0.9) - np.log(0.5)) / 2, (-np.log(0.1) - np.log(0.5)) / 2]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # Smoothing enters inside the log, per dimension.
    got_a = rarity_scores(z[:1], EDGES, DENSITY, alpha=0.1)
    np.testing.assert_allclose(got_a, [(-np.log(1.0) - np.log(0.6)) / 2], rtol=1e-6)


def test_values_outside_the_edges_fall_in_the_edge_bins() -> None:
    inside = rarity_scores(np.array([[0.1, 0.1], [1.9, 1.9]], np.float32), EDGES, DENSITY, 0.0)
    outside = rarity_scores(np.array([[-50, -1], [9, 99]], np.float32), EDGES, DENSITY, 0.0)
    np.testing.assert_allclose(outside, inside)
    # Edges behave like np.histogram: an interior edge opens the right bin, the last edge closes
    # the last bin.
    on_edges = rarity_scores(np.array([[1.0, 2.0]], np.float32), EDGES, DENSITY, 0.0)
    np.testing.assert_allclose(on_edges, inside[1:])


def _gaussian_stats(seed: int = 0, n: int = 4000, d: int = 8) -> tuple[np.ndarray, LatentStats]:
    lat = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return lat, compute_latent_stats(lat, bins=10, alpha=0.001)


def test_compute_latent_stats_shapes_and_normalisation() -> None:
    _, stats = _gaussian_stats()
    assert stats.edges.shape == (8, 11) and stats.density.shape == (8, 10)
    assert stats.edges.dtype == stats.density.dtype == np.float32
    np.testing.assert_allclose(stats.density.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(np.diff(stats.edges, axis=1) > 0)
    assert stats.score_quantiles.shape == (101,)
    assert np.all(np.diff(stats.score_quantiles) >= 0)
    # The histogram is the training faces' own: a standard normal puts its mass in the middle.
    assert np.all(stats.density[:, 4:6].sum(axis=1) > stats.density[:, [0, 9]].sum(axis=1))


def test_percentile_of_training_faces_is_their_rank(tmp_path: Path) -> None:
    lat, stats = _gaussian_stats()
    stats.save(tmp_path / "latent.npz")
    rarity = Rarity.load(tmp_path / "latent.npz")
    pct = np.array([rarity.percentile(z) for z in lat[:800]])
    assert np.all((pct >= 0) & (pct <= 1))
    # "Rarer than p of the training faces" holds for the training faces themselves.
    for q in (0.1, 0.5, 0.9):
        assert np.mean(pct <= q) == pytest.approx(q, abs=0.05)


def test_typical_face_is_common_and_tail_face_is_rare(tmp_path: Path) -> None:
    _, stats = _gaussian_stats()
    stats.save(tmp_path / "latent.npz")
    rarity = Rarity.load(tmp_path / "latent.npz")
    assert rarity.latent_dim == 8
    typical = rarity.percentile(np.zeros(8, np.float32))
    tail = rarity.percentile(np.full(8, 3.5, np.float32))
    assert typical < 0.2 and tail > 0.95
    # Moving dimensions one by one into the tail only ever makes the face rarer.
    steps = [rarity.percentile(np.r_[np.full(k, 3.5), np.zeros(8 - k)]) for k in range(9)]
    assert steps == sorted(steps)


def test_saved_file_round_trips(tmp_path: Path) -> None:
    lat, stats = _gaussian_stats(seed=3, n=500, d=4)
    stats.save(tmp_path / "latent.npz")
    rarity = Rarity.load(tmp_path / "latent.npz")
    np.testing.assert_array_equal(rarity.edges, stats.edges)
    np.testing.assert_array_equal(rarity.density, stats.density)
    np.testing.assert_array_equal(rarity.quantiles, stats.score_quantiles)
    assert rarity.alpha == pytest.approx(stats.alpha)
    direct = rarity_scores(lat[:5], stats.edges, stats.density, stats.alpha)
    np.testing.assert_allclose([rarity.score(z) for z in lat[:5]], direct, rtol=1e-6)


def test_compute_rejects_bad_latents() -> None:
    with pytest.raises(ValueError, match=r"\[N>=2, D\]"):
        compute_latent_stats(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match=r"\[N>=2, D\]"):
        compute_latent_stats(np.zeros((1, 4), np.float32))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("garbage", "not a valid latent.npz"),
        ("missing_key", "not a valid latent.npz"),
        ("bad_shapes", "expected [D,B+1], [D,B], [101]"),
        ("nan", "invalid values"),
        ("falling_edges", "invalid values"),
    ],
)
def test_bad_latent_files_name_the_file_and_fix(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "latent.npz"
    if content == "garbage":
        path.write_bytes(b"\x00not an npz")
    elif content == "missing_key":
        np.savez(path, edges=EDGES, density=DENSITY, alpha=np.float32(0.001))
    elif content in ("nan", "falling_edges"):
        edges = EDGES.copy()
        edges[0, 1] = np.nan if content == "nan" else 5.0
        np.savez(
            path,
            edges=edges,
            density=DENSITY,
            alpha=np.float32(0.001),
            score_quantiles=np.zeros(101, np.float32),
        )
    else:
        np.savez(
            path,
            edges=EDGES,
            density=DENSITY[:, :1],
            alpha=np.float32(0.001),
            score_quantiles=np.zeros(101, np.float32),
        )
    with pytest.raises(RarityError) as err:
        Rarity.load(path)
    assert words in str(err.value) and str(path) in str(err.value)
    assert "re-export" in str(err.value).lower()


def test_shipped_tiny_latent_file_loads(tiny_bundles: Path) -> None:
    rarity = Rarity.load(tiny_bundles / "tiny_dbvae" / "latent.npz")
    assert rarity.latent_dim == 8
    np.testing.assert_allclose(rarity.density.sum(axis=1), 1.0, rtol=1e-5)


def test_percentile_benchmark(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Once per frame on the kiosk, next to two model calls: D=100 as in the shipped DB-VAE."""
    lat, stats = _gaussian_stats(n=2000, d=100)
    stats.save(tmp_path / "latent.npz")
    rarity = Rarity.load(tmp_path / "latent.npz")
    pct = benchmark(rarity.percentile, lat[0])
    assert 0.0 <= pct <= 1.0
