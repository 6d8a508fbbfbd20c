"""Mined hard non-faces (`--nonface-draw mined`, model_export.mining): each epoch's draw holds the
highest-scoring half of the pool and a uniform half of the rest, the pool is every training
non-face and never a validation one, and the option reaches training and the card."""

from __future__ import annotations

import pytest

pytest.importorskip("keras", reason="needs the train extra: pip install -e '.[train]'")
pytestmark = pytest.mark.train

from pathlib import Path

import numpy as np

from model_export.mining import HARD_SHARE, mine_nonfaces


def test_the_hard_half_is_the_highest_scoring_and_the_rest_uniform() -> None:
    pool = np.arange(100, 300)  # rows of x, not 0-based: the draw returns rows, not positions
    logits = np.random.default_rng(0).normal(size=len(pool))
    seen: list[np.ndarray] = []

    def score(rows: np.ndarray) -> np.ndarray:
        seen.append(rows)
        return np.asarray(logits[rows - 100], dtype=np.float64)

    rng = np.random.default_rng(1)
    got, lowest = mine_nonfaces(score, pool, 40, rng)
    np.testing.assert_array_equal(seen[0], pool)  # the whole pool is scored
    assert len(got) == 40 == len(np.unique(got))  # no non-face twice in an epoch
    n_hard = round(40 * HARD_SHARE)
    top = set(pool[np.argsort(-logits)[:n_hard]].tolist())
    assert set(got[:n_hard].tolist()) == top
    assert lowest == pytest.approx(min(logits[r - 100] for r in top))
    rest = got[n_hard:]
    assert not set(rest.tolist()) & top
    # The uniform half is not the next-highest: over many draws every other row turns up.
    drawn: set[int] = set()
    for seed in range(60):
        drawn |= set(mine_nonfaces(score, pool, 40, np.random.default_rng(seed))[0][n_hard:])
    assert drawn == set(pool.tolist()) - top


def test_the_first_epoch_draws_uniformly_and_a_pool_too_small_is_refused() -> None:
    pool = np.arange(50)
    got, lowest = mine_nonfaces(None, pool, 20, np.random.default_rng(0))
    assert lowest is None and len(np.unique(got)) == 20
    assert set(got.tolist()) <= set(pool.tolist())
    with pytest.raises(ValueError, match="21 non-faces per epoch wanted, the pool holds 20"):
        mine_nonfaces(None, np.arange(20), 21, np.random.default_rng(0))


def test_the_pool_is_every_training_nonface_and_no_validation_one(tmp_path: Path) -> None:
    from model_export.data import read_labels, split_train_val
    from model_export.recipe import load_recipe
    from model_export.sets import prepare
    from tests.model_fixtures import write_faces64, write_recipe

    data = write_faces64(tmp_path / "faces64")
    recipe = load_recipe(write_recipe(tmp_path / "recipe.yaml", nonfaces=60))
    plain = prepare(data, recipe)
    pooled = prepare(data, recipe, nonface_pool=True)
    train_rows, val_rows = split_train_val(read_labels(data))
    every = {r.path for r in train_rows if not r.is_face}
    val = {r.path for r in val_rows if not r.is_face}
    assert val and every
    paths = [r.path for r in pooled.train.rows if not r.is_face]
    assert set(paths) == every and len(paths) == len(every)  # each once
    assert not set(paths) & val
    assert int((1 - plain.train.y).sum()) == 60 < len(every)
    # The recipe's draw comes first, unchanged, so the faces and their order are the same.
    n = len(plain.train.rows)
    assert [r.path for r in pooled.train.rows[:n]] == [r.path for r in plain.train.rows]
    np.testing.assert_array_equal(pooled.train.x[:n], plain.train.x)
    assert pooled.counts["nonface_pool"] and not plain.counts["nonface_pool"]


def test_mined_training_draws_the_recipe_count_and_logs_the_hard_scores(tmp_path: Path) -> None:
    from model_export.data import DataError
    from model_export.train import TrainConfig, train_balanced, train_baseline

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(64, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(64) < 24).astype(np.float32)  # 24 faces, 40 non-faces in the pool
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3, nonface_draw="mined")
    _, log = train_baseline(x, y, cfg, tmp_path / "b", nonfaces_per_epoch=16)
    assert [e["mined_nonfaces"] for e in log] == [16, 16]
    assert "mined_lowest_hard_logit" not in log[0]  # nothing learnt to score with yet
    assert isinstance(log[1]["mined_lowest_hard_logit"], float)
    groups = np.array(["a", "b"] * 32)
    _, log_b = train_balanced(x, y, groups, cfg, tmp_path / "c", nonfaces_per_epoch=16)
    assert "mined_lowest_hard_logit" in log_b[1]
    for bad in (None, 41):
        with pytest.raises(DataError, match=r"--nonface-draw mined draws .* pool of 40"):
            train_baseline(x, y, cfg, tmp_path / "d", nonfaces_per_epoch=bad)
    # "pool": the same count, uniformly, nothing scored (no hard logit logged).
    pool = TrainConfig(epochs=2, batch_size=16, seed=3, nonface_draw="pool")
    _, log_p = train_baseline(x, y, pool, tmp_path / "p", nonfaces_per_epoch=16)
    assert [e["mined_nonfaces"] for e in log_p] == [16, 16]
    assert not any("mined_lowest_hard_logit" in e for e in log_p)
    # A checkpoint of the recipe's draw is not resumed as a mined one, nor the other way round.
    plain = TrainConfig(epochs=2, batch_size=16, seed=3)
    with pytest.raises(DataError, match="nonface_draw"):
        train_baseline(x, y, plain, tmp_path / "b")


def test_the_option_reaches_the_config_and_the_dbvae_refuses_it() -> None:
    import argparse

    from model_export.data import DataError
    from model_export.steps import add_training_args, train_config

    parser = argparse.ArgumentParser()
    add_training_args(parser)
    args = parser.parse_args(["--nonface-draw", "mined"])
    assert train_config(args, "baseline", seed=0).nonface_draw == "mined"
    assert train_config(args, "balanced", seed=0).nonface_draw == "mined"
    assert train_config(parser.parse_args([]), "baseline", seed=0).nonface_draw == "recipe"
    pool = parser.parse_args(["--nonface-draw", "pool"])
    assert train_config(pool, "balanced", seed=0).nonface_draw == "pool"
    with pytest.raises(DataError, match="--nonface-draw mined works with the CNN methods"):
        train_config(args, "dbvae", seed=0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--nonface-draw", "hard"])


def test_the_recipe_draw_trains_one_dataset_whose_epochs_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the recipe's draw the baseline trains every epoch on one dataset, which reshuffles
    its order and moves its augmentation stream on after each epoch (as before the non-face
    draws existed): a new dataset per epoch with the same seed repeated epoch 1 every epoch."""
    from model_export import train
    from model_export.train import TrainConfig, train_baseline

    seen: list[tuple[int, np.ndarray, int]] = []
    real = train.fit_epoch

    def recording(model: object, data: train.Batches) -> float:
        seen.append((id(data), data.order.copy(), data.streams.epoch))
        return real(model, data)  # type: ignore[arg-type]

    monkeypatch.setattr(train, "fit_epoch", recording)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, size=(48, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(48) % 2).astype(np.float32)
    train_baseline(x, y, TrainConfig(epochs=3, batch_size=16, seed=2), tmp_path)
    assert len({d for d, _, _ in seen}) == 1
    epochs = [e for _, _, e in seen]  # the augmentation stream moves on every epoch
    assert epochs == sorted(set(epochs)) and len(epochs) == 3
    assert not np.array_equal(seen[0][1], seen[1][1])  # and the order is drawn again
