"""Weight averaging (model_export.averaging, `--average-last`, and its diagnostic): each
epoch's weights kept without changing what trains, their mean taken weight by weight, BatchNorm's
statistics measured again as a plain mean over batches, and the report measuring what shipped."""

from __future__ import annotations

import pytest

pytest.importorskip("keras", reason="needs the train extra: pip install -e '.[train]'")
pytestmark = pytest.mark.train

from pathlib import Path

import keras
import numpy as np

from model_export.averaging import average_weights, reestimate_batchnorm
from model_export.data import DataError
from model_export.train import (
    TrainConfig,
    balanced_probabilities,
    epoch_weights_name,
    train_balanced,
    train_baseline,
)


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, size=(48, 64, 64, 3), dtype=np.uint8)
    return x, (np.arange(48) % 2).astype(np.float32)


def test_kept_epoch_weights_are_each_epochs_and_change_nothing_trained(tmp_path: Path) -> None:
    """Two runs of one seed, one keeping each epoch's weights: the same final weights, and the
    kept file of the last epoch is those weights; an earlier epoch's differ."""
    x, y = _data(0)
    plain, _ = train_baseline(x, y, TrainConfig(epochs=2, batch_size=16, seed=4), tmp_path / "a")
    cfg = TrainConfig(epochs=2, batch_size=16, seed=4, keep_epoch_weights=True)
    kept, _ = train_baseline(x, y, cfg, tmp_path / "b")
    for a, b in zip(plain.get_weights(), kept.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not list((tmp_path / "a").glob("epoch-*"))
    files = sorted(p.name for p in (tmp_path / "b").glob("epoch-*"))
    assert files == [epoch_weights_name(1), epoch_weights_name(2)] == sorted(files)
    kept.load_weights(tmp_path / "b" / epoch_weights_name(2))
    np.testing.assert_array_equal(kept.get_weights()[0], plain.get_weights()[0])
    kept.load_weights(tmp_path / "b" / epoch_weights_name(1))
    assert not np.array_equal(kept.get_weights()[0], plain.get_weights()[0])
    # The balanced method keeps them too (one more epoch loop of its own).
    groups = np.array(["a", "b", "b", "b"] * 12)
    cfg_b = TrainConfig(epochs=1, batch_size=16, seed=4, keep_epoch_weights=True)
    train_balanced(x, y, groups, cfg_b, tmp_path / "c")
    assert (tmp_path / "c" / epoch_weights_name(1)).is_file()


def test_average_is_the_mean_of_every_weight(tmp_path: Path) -> None:
    """Every weight (kernels, biases, BatchNorm's moving statistics) is the mean over files."""
    x, y = _data(1)
    cfg = TrainConfig(epochs=3, batch_size=16, seed=5, keep_epoch_weights=True)
    model, _ = train_baseline(x, y, cfg, tmp_path)
    files = [tmp_path / epoch_weights_name(e) for e in (2, 3)]
    each = []
    for f in files:
        model.load_weights(f)
        each.append(model.get_weights())
    average_weights(model, files)
    names = [w.path for w in model.weights]
    assert any("moving_mean" in n for n in names)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, (each[0][i] + each[1][i]) / 2, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="no weight files"):
        average_weights(model, [])


def test_batchnorm_statistics_become_the_plain_mean_over_batches() -> None:
    """After re-estimation on batches of constant images c1, c2, c3, the first BatchNorm's
    moving mean is the mean of their per-batch means (momentum t / (t + 1)), not a 0.99 EMA
    that would stay near the old value; its momentum is left as it was; other weights too."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 1))
    out = keras.layers.BatchNormalization()(keras.layers.Conv2D(1, 1, use_bias=False)(inp))
    model = keras.Model(inp, out)
    model.layers[1].set_weights([np.ones((1, 1, 1, 1), np.float32)])  # identity conv
    bn = model.layers[2]
    bn.moving_mean.assign(np.array([100.0], np.float32))
    levels = [1.0, 2.0, 6.0]
    batches = [(np.full((2, 4, 4, 1), v, np.float32), np.zeros(2)) for v in levels]
    gamma = bn.gamma.numpy().copy()

    class Listed:
        def __len__(self) -> int:
            return len(batches)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            return batches[i]

    reestimate_batchnorm(model, Listed(), 3)  # type: ignore[arg-type]
    np.testing.assert_allclose(bn.moving_mean.numpy(), [np.mean(levels)], rtol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), [0.0], atol=1e-6)  # constant batches
    assert bn.momentum == 0.99
    np.testing.assert_array_equal(bn.gamma.numpy(), gamma)


def test_balanced_probabilities_draw_each_group_equally() -> None:
    groups = np.array(["a"] * 6 + ["b"] * 2)
    w = balanced_probabilities(groups)
    assert w.sum() == pytest.approx(1.0)
    assert w[groups == "a"].sum() == pytest.approx(0.5) == w[groups == "b"].sum()


def test_the_diagnostic_runs_end_to_end_on_tiny_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One seed of both methods trained into WORK keeping every epoch; a row per variant on
    half B's faces (the count it prints is half B's); a WORK that lacks a kept epoch (trained
    without them) is refused with the fix, not averaged over what is there."""
    import json

    from model_export.diagnostics.averaging import main
    from model_export.paired import photo_halves
    from model_export.wider import load_wider
    from tests.model_fixtures import write_faces64, write_recipe, write_wider

    data = write_faces64(tmp_path / "faces64")
    wider = write_wider(tmp_path / "wider-demog", per_cell=10)
    n_b = int((~photo_halves([r.source for r in load_wider(wider).rows])).sum())
    recipe = write_recipe(tmp_path / "recipe.yaml")
    args = ["--data", str(data), "--wider", str(wider), "--recipe", str(recipe)]
    args += ["--epochs", "2", "--seeds", "0", "--last", "1", "2", "--bn-batches", "2"]
    assert main([*args, "--work", str(tmp_path / "w")]) == 0
    out = json.loads((tmp_path / "w" / "averaging.json").read_text())
    assert out["faces"] == n_b
    variants = [(r["method"], r["variant"]) for r in out["runs"]]
    names = ["last", "avg1", "avg1+bn", "avg2", "avg2+bn"]
    assert variants == [("baseline", v) for v in names] + [("balanced", v) for v in names]
    by = {(r["method"], r["variant"]): r for r in out["runs"]}
    for m in ("baseline", "balanced"):  # the mean of the last one epoch is the last weights
        assert by[(m, "avg1")]["f=0.5"] == by[(m, "last")]["f=0.5"]
        assert by[(m, "last")]["kiosk"]["count"] == n_b
    assert "kiosk" in capsys.readouterr().out
    (tmp_path / "w" / "baseline-s0" / epoch_weights_name(1)).unlink()
    with pytest.raises(DataError, match="train into an empty --work folder"):
        main([*args, "--work", str(tmp_path / "w")])


def test_average_last_ships_the_mean_of_the_last_epochs(tmp_path: Path) -> None:
    """`average_last` = 2 of 3 epochs: the returned model's kernels are the mean of epochs 2
    and 3's, its BatchNorm statistics measured again (not the mean of the kept ones); the
    checkpoint keeps the last step's weights, and reloading it averages to the same model."""
    x, y = _data(3)
    cfg = TrainConfig(epochs=3, batch_size=16, seed=6, average_last=2)
    model, _ = train_baseline(x, y, cfg, tmp_path)
    got = {w.path: w.numpy() for w in model.weights}
    kept = []
    for e in (2, 3):
        model.load_weights(tmp_path / epoch_weights_name(e))
        kept.append({w.path: w.numpy() for w in model.weights})
    for path, value in got.items():
        mean = (kept[0][path] + kept[1][path]) / 2
        if "moving_" in path:
            assert not np.allclose(value, mean, rtol=1e-3)  # measured again
        else:
            np.testing.assert_allclose(value, mean, rtol=1e-5, atol=1e-6)
    model.load_weights(tmp_path / "last.weights.h5")
    for w in model.weights:  # the checkpoint is epoch 3's weights as trained
        np.testing.assert_array_equal(w.numpy(), kept[1][w.path])
    again, _ = train_baseline(x, y, cfg, tmp_path)  # all epochs done: reload and average
    for a, b in zip(again.get_weights(), got.values(), strict=True):  # same order
        np.testing.assert_array_equal(a, b)


def test_average_last_over_epochs_not_kept_is_refused(tmp_path: Path) -> None:
    x, y = _data(4)
    train_baseline(x, y, TrainConfig(epochs=2, batch_size=16, seed=7), tmp_path)
    cfg = TrainConfig(epochs=2, batch_size=16, seed=7, average_last=2)
    with pytest.raises(DataError, match=r"--average-last 2 needs .* train into another --work"):
        train_baseline(x, y, cfg, tmp_path)


def test_average_last_option_reaches_the_config_and_bad_values_are_refused() -> None:
    import argparse

    from model_export.steps import add_training_args, train_config

    parser = argparse.ArgumentParser()
    add_training_args(parser)
    args = parser.parse_args(["--epochs", "12", "--right-epochs", "20", "--average-last", "5"])
    assert train_config(args, "baseline", seed=0).average_last == 5
    assert train_config(args, "balanced", seed=0).average_last == 5
    assert train_config(parser.parse_args([]), "baseline", seed=0).average_last == 0
    with pytest.raises(DataError, match="--average-last works with the CNN methods"):
        train_config(args, "dbvae", seed=0)
    for bad in ("13", "-1"):
        args = parser.parse_args(["--epochs", "12", "--average-last", bad])
        with pytest.raises(DataError, match=r"--average-last must be in 0\.\.12"):
            train_config(args, "baseline", seed=0)


def test_all_and_report_measure_the_averaged_weights(tmp_path: Path) -> None:
    """`all --average-last`: the card records it, and `report`, which reloads the float model
    from the checkpoint folder instead of the card, measures the averaged weights the bundle was
    exported from (the same float numbers as the card), not the last step's."""
    import json

    from model_export.cli import main as export_main
    from model_export.steps import checkpoint_dir
    from model_export.train import AVERAGED_WEIGHTS
    from tests.model_fixtures import write_faces64, write_recipe

    data = write_faces64(tmp_path / "faces64")
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out, work = tmp_path / "models", tmp_path / "ck"
    args = ["all", "--data", str(data), "--out", str(out), "--work", str(work)]
    args += ["--recipe", str(recipe), "--method", "balanced", "--epochs", "3"]
    assert export_main([*args, "--seeds", "0", "--average-last", "2"]) == 0
    card = json.loads((out / "debiased" / "card.json").read_text())
    assert card["training"]["settings"]["average_last"] == 2
    assert (checkpoint_dir(work, "balanced", 0) / AVERAGED_WEIGHTS).is_file()
    rep = ["report", "--runs", str(work / "runs" / "s0"), "--works", str(work), "--data", str(data)]
    assert export_main([*rep, "--recipe", str(recipe), "--out", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    for folder in ("baseline", "debiased"):
        shipped = json.loads((out / folder / "card.json").read_text())["metrics"]["float"]
        assert report["per_run"][0][folder]["float"] == shipped
    (checkpoint_dir(work, "balanced", 0) / AVERAGED_WEIGHTS).unlink()
    assert export_main([*rep, "--recipe", str(recipe), "--out", str(tmp_path / "rep2")]) == 1


def test_dropout_option_reaches_the_config_and_bad_values_are_refused() -> None:
    """`--dropout P`: CNN methods only, 0 <= P < 1, recorded among the checkpoint's settings (so
    a checkpoint trained without it is never resumed with it)."""
    import argparse

    from model_export.steps import add_training_args, train_config
    from model_export.train import _CNN_KEYS

    parser = argparse.ArgumentParser()
    add_training_args(parser)
    args = parser.parse_args(["--dropout", "0.5"])
    assert train_config(args, "baseline", seed=0).dropout == 0.5
    assert train_config(args, "balanced", seed=0).dropout == 0.5
    assert train_config(parser.parse_args([]), "balanced", seed=0).dropout == 0.0
    assert "dropout" in _CNN_KEYS
    with pytest.raises(DataError, match="--dropout works with the CNN methods"):
        train_config(args, "dbvae", seed=0)
    for bad in ("1", "-0.1", "nan"):
        with pytest.raises(DataError, match="--dropout must be at least 0 and below 1"):
            train_config(parser.parse_args(["--dropout", bad]), "baseline", seed=0)
