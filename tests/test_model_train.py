"""model_export learning side: resampling lever, thresholds, metrics, training, `all`."""

from __future__ import annotations

import pytest

# Training tests: they need the train extra (TensorFlow, Keras, h5py). A kiosk developer with
# only `.[runtime,dev]` gets them skipped with this reason; `make test` installs and runs them.
pytest.importorskip("keras", reason="needs the train extra: pip install -e '.[train]'")
pytestmark = pytest.mark.train

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from installation.inference import load_classifier
from installation.inference.card import Card
from model_export.augment import GAIN, GAMMA, N_CONDITIONS, SCALE
from model_export.batches import Batches, BatchStreams, FacesFirstBatches, faces_per_batch
from model_export.cli import main as export_main
from model_export.data import DataError
from model_export.evaluate import all_combinations, set_metrics, threshold_at_fpr
from model_export.models import DBVAE
from model_export.resampling import Rule, effective_shares, face_weights
from model_export.train import TrainConfig, fit_epoch, train_baseline, train_dbvae
from tests.model_fixtures import write_faces64, write_recipe, write_wider


def _latents(n_common: int = 300, n_rare: int = 10, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 1, size=(n_common, d))
    rare = rng.normal(4, 0.3, size=(n_rare, d))  # a small cluster far from the rest
    return np.concatenate([common, rare])


@pytest.mark.parametrize("rule", ["max", "product", "mean_log"])
def test_rare_faces_get_more_weight(rule: str) -> None:
    w = face_weights(_latents(), rule=rule)  # type: ignore[arg-type]
    assert w.sum() == pytest.approx(1.0)
    assert w[300:].mean() > 3 * w[:300].mean()


def test_product_concentrates_more_than_max() -> None:
    lat = _latents()
    rules: tuple[Rule, ...] = ("max", "product")
    top = {r: np.sort(face_weights(lat, rule=r))[-10:].sum() for r in rules}
    assert top["product"] > top["max"]


def test_temperature_and_cap_flatten() -> None:
    lat = _latents()
    sharp = face_weights(lat, rule="product", temperature=0.5)
    flat = face_weights(lat, rule="product", temperature=4.0)
    assert sharp.max() > flat.max()
    capped = face_weights(lat, rule="product", cap=5.0)
    assert capped.max() * len(capped) <= 5.0 + 1e-6
    assert capped.sum() == pytest.approx(1.0)
    # So sharp that all but one weight underflow to 0: the cap still gives a valid distribution.
    rng = np.random.default_rng(1)
    wide = rng.normal(0, 1, size=(400, 100))
    extreme = face_weights(wide, rule="product", temperature=0.01, cap=20.0)
    assert np.isfinite(extreme).all() and extreme.sum() == pytest.approx(1.0)
    assert extreme.max() * len(extreme) == pytest.approx(20.0)


def test_effective_shares() -> None:
    shares = effective_shares(np.array([0.5, 0.25, 0.25]), np.array(["a", "b", "b"]))
    assert shares == {"a": 0.5, "b": 0.5}


def test_unknown_rule() -> None:
    with pytest.raises(ValueError, match="mean_log"):
        face_weights(_latents(), rule="median")  # type: ignore[arg-type]


def test_threshold_at_fpr() -> None:
    p = np.linspace(0, 1, 1000, endpoint=False)
    t = threshold_at_fpr(p, 0.02)
    assert np.mean(p >= t) <= 0.02
    assert np.mean(p >= t - 0.002) > 0.02  # the smallest such threshold
    with pytest.raises(ValueError):
        threshold_at_fpr(np.array([]), 0.02)


def test_set_metrics_by_hand() -> None:
    p = np.array([0.9, 0.2, 0.8, 0.7, 0.1, 0.95])
    attrs = [
        {"race": "A", "gender": "Female"},
        {"race": "A", "gender": "Female"},
        {"race": "A", "gender": "Male"},
        {"race": "B", "gender": "Female"},
        {"race": "B", "gender": "Male"},
        {"race": "B", "gender": "Male"},
    ]
    m = set_metrics(p, attrs, 0.5, all_combinations(("race", "gender")), fpr=0.02)
    by = {g["key"]: g for g in m["groups"]}
    assert by["race=A,gender=Female"]["recall"] == 0.5
    assert by["race=B,gender=Male"]["recall"] == 0.5
    assert by["race=A"]["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert by["gender=Male"]["count"] == 3
    assert by["race=A,gender=Female"]["label"] == "A women"
    assert m["recall"] == pytest.approx(4 / 6, abs=1e-4)
    assert m["gap"] == 0.5 and m["worst_group"] in ("race=A,gender=Female", "race=B,gender=Male")
    Card.model_fields["metrics"]  # the structure is what the card schema stores


def test_training_checkpoints_and_resumes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(64, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(64) % 2).astype(np.float32)
    cfg = TrainConfig(epochs=1, batch_size=16, seed=3)
    _, log1 = train_baseline(x, y, cfg, tmp_path / "b")
    assert (tmp_path / "b" / "last.weights.h5").is_file() and len(log1) == 1
    cfg.epochs = 2
    _, log2 = train_baseline(x, y, cfg, tmp_path / "b")
    # Resumed after epoch 1: its log entry is the saved one (not retrained), epoch 2 is new.
    assert [e["epoch"] for e in log2] == [1, 2] and log2[0] == log1[0]
    groups = np.array(["a", "a", "b", "b"] * 16)  # faces (odd indices) of both groups
    dcfg = TrainConfig(epochs=1, batch_size=16, seed=3, latent_dim=4)
    _, dlog = train_dbvae(x, y, groups, dcfg, tmp_path / "d")
    assert set(dlog[0]["drawn_shares"]) == {"a", "b"}
    assert dlog[0]["unique_drawn"] > 0


def test_resume_refuses_a_checkpoint_trained_with_other_settings(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, size=(32, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(32) % 2).astype(np.float32)
    groups = np.array(["a", "b"] * 16)
    cfg = TrainConfig(epochs=1, batch_size=16, seed=3, latent_dim=4, temperature=1.0)
    train_dbvae(x, y, groups, cfg, tmp_path / "d")
    before = (tmp_path / "d" / "state.json").read_text()
    sharper = TrainConfig(epochs=2, batch_size=16, seed=3, latent_dim=4, temperature=0.25)
    with pytest.raises(DataError, match=r"temperature.*another --work"):
        train_dbvae(x, y, groups, sharper, tmp_path / "d")
    assert (tmp_path / "d" / "state.json").read_text() == before  # nothing overwritten
    # DB-VAE-only settings do not concern a CNN checkpoint: the baseline resumes with them.
    train_baseline(x, y, TrainConfig(epochs=1, batch_size=16, seed=3), tmp_path / "b")
    _, log = train_baseline(
        x, y, TrainConfig(epochs=2, batch_size=16, seed=3, cap=20.0), tmp_path / "b"
    )
    assert [e["epoch"] for e in log] == [1, 2]


def _lr(model: Any) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


def test_cosine_schedule_ends_at_zero_and_resumes_on_its_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 images in batches of 16: 4 steps an epoch, 8 over the 2-epoch curve."""
    import model_export.train as train_mod

    rng = np.random.default_rng(2)
    x = rng.integers(0, 255, size=(64, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(64) % 2).astype(np.float32)
    cosine = TrainConfig(epochs=2, batch_size=16, seed=3, lr_schedule="cosine")
    model, _ = train_baseline(x, y, cosine, tmp_path / "whole")
    assert int(model.optimizer.iterations) == 8 and _lr(model) == pytest.approx(0.0, abs=1e-9)
    constant, _ = train_baseline(x, y, TrainConfig(epochs=2, batch_size=16, seed=3), tmp_path / "c")
    assert _lr(constant) == pytest.approx(5e-4)

    # Stopped after its first epoch, then resumed: the step counter comes back with the
    # weights, so the second epoch runs the curve's second half (it would restart at the top
    # and end at half the rate if the counter were lost).
    real_fit, calls = train_mod.fit_epoch, []

    def stop_after_one(model: Any, data: Any) -> float:
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_fit(model, data)

    monkeypatch.setattr(train_mod, "fit_epoch", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        train_baseline(x, y, cosine, tmp_path / "stopped")
    monkeypatch.setattr(train_mod, "fit_epoch", real_fit)
    resumed, log = train_baseline(x, y, cosine, tmp_path / "stopped")
    assert [e["epoch"] for e in log] == [1, 2]
    assert int(resumed.optimizer.iterations) == 8 and _lr(resumed) == pytest.approx(0.0, abs=1e-9)

    # A finished curve cannot be stretched, and a constant-rate checkpoint is not a cosine one.
    longer = TrainConfig(epochs=3, batch_size=16, seed=3, lr_schedule="cosine")
    with pytest.raises(DataError, match=r"schedule_epochs.*another --work"):
        train_baseline(x, y, longer, tmp_path / "whole")
    with pytest.raises(DataError, match=r"lr_schedule"):
        train_baseline(x, y, cosine, tmp_path / "c")


def test_scale_draw_is_a_recorded_setting_and_reaches_the_card(tmp_path: Path) -> None:
    from model_export.workflow import augmentation_record

    rng = np.random.default_rng(6)
    x = rng.integers(0, 255, size=(32, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(32) % 2).astype(np.float32)
    uniform = TrainConfig(epochs=1, batch_size=16, seed=3, augment="wild")
    train_baseline(x, y, uniform, tmp_path / "b")
    log = TrainConfig(epochs=2, batch_size=16, seed=3, augment="wild", scale_draw="log")
    with pytest.raises(DataError, match=r"scale_draw.*another --work"):
        train_baseline(x, y, log, tmp_path / "b")
    assert augmentation_record("wild-context", "log")["scale_draw"] == "log"
    assert augmentation_record("wild-context")["scale_draw"] == "uniform"
    with pytest.raises(DataError, match=r"unknown scale draw 'cubic'.*uniform, log"):
        augmentation_record("wild", "cubic")


def test_dbvae_cosine_curve_spans_its_faces_first_epochs(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(0, 255, size=(48, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(48) % 3 == 0).astype(np.float32)  # 16 faces, 32 non-faces
    groups = np.array(["a", "b"] * 24)
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3, latent_dim=4, lr_schedule="cosine")
    model, _ = train_dbvae(x, y, groups, cfg, tmp_path / "d")
    k = faces_per_batch(16, 32, 16)
    steps = len(FacesFirstBatches(x, np.arange(16), np.arange(16, 48), 16, k=k, seed=0))
    assert int(model.optimizer.iterations) == 2 * steps
    assert _lr(model) == pytest.approx(0.0, abs=1e-9)


def _noise_aug(xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return xb.astype(np.float32) / 255.0 + rng.normal(0, 1, xb.shape).astype(np.float32)


def test_parallel_batches_are_reproducible_in_any_order() -> None:
    """Several workers augment batches in whatever order threads reach them: each batch draws
    from its own (seed, epoch, batch) stream, so the order of access changes nothing, and the
    next epoch draws anew. One worker keeps the single sequential stream of every shipped run."""
    x = np.random.default_rng(0).integers(0, 255, size=(40, 64, 64, 3), dtype=np.uint8)
    y = np.zeros(40, np.float32)

    def epoch(workers: int, order: list[int]) -> dict[int, np.ndarray]:
        data = Batches(x, y, 8, seed=5, aug=_noise_aug, workers=workers)
        return {i: data[i][0] for i in order}

    a, b = epoch(3, [0, 1, 2, 3, 4]), epoch(3, [4, 2, 0, 3, 1])
    assert all(np.array_equal(a[i], b[i]) for i in range(5))
    seq_a, seq_b = epoch(1, [0, 1, 2, 3, 4]), epoch(1, [4, 2, 0, 3, 1])
    assert not np.array_equal(seq_a[0], seq_b[0])  # one stream: order matters, as it always did
    data = Batches(x, y, 8, seed=5, aug=_noise_aug, workers=3)
    first = data[0][0]
    data.on_epoch_end()
    assert not np.array_equal(first, data[0][0])
    with pytest.raises(DataError, match="--workers"):
        BatchStreams(5, 0)


def test_an_epochs_draw_is_read_in_place_with_the_batches_a_copy_gave() -> None:
    """`rows` (a resampled epoch, repeats included) gives bit for bit the batches of the copy
    `x[rows]` that the balanced method made before, over two epochs, with the wider-crop rows
    following their images, and holds no copy: Keras keeps every dataset given to `fit`, so a
    copy per epoch grew `make models` by about 200 MB an epoch (15 GB)."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, size=(30, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(30) % 2).astype(np.float32)
    which = np.where(np.arange(30) % 3 == 0, np.arange(30), -1)
    rows = rng.choice(30, size=45, replace=True)

    def aug(b: np.ndarray, r: np.random.Generator, which: Any = None) -> np.ndarray:
        tag = 0.0 if which is None else which[:, None, None, None].astype(np.float32)
        return b.astype(np.float32) / 255 + r.normal(size=b.shape).astype(np.float32) + tag

    copy = Batches(x[rows], y[rows], 8, seed=3, aug=aug, which=which[rows])
    in_place = Batches(x, y, 8, seed=3, aug=aug, which=which, rows=rows)
    assert len(copy) == len(in_place) == 6 and in_place.x is x
    for _ in range(2):
        for i in range(len(copy)):
            (xa, ya), (xb, yb) = copy[i], in_place[i]
            assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
        copy.on_epoch_end()
        in_place.on_epoch_end()


def test_parallel_workers_are_a_recorded_setting(tmp_path: Path) -> None:
    """A checkpoint trained with one worker is not resumed with per-batch streams."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 255, size=(32, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(32) % 2).astype(np.float32)
    train_baseline(x, y, TrainConfig(epochs=1, batch_size=16, seed=3), tmp_path / "b")
    with pytest.raises(DataError, match="per_batch_streams"):
        train_baseline(
            x, y, TrainConfig(epochs=2, batch_size=16, seed=3, workers=4), tmp_path / "b"
        )
    _, log = train_baseline(
        x, y, TrainConfig(epochs=1, batch_size=16, seed=3, workers=4), tmp_path / "p"
    )
    assert len(log) == 1


@pytest.mark.parametrize(("n_faces", "n_nonfaces"), [(40, 40), (7, 30), (30, 3), (5, 0)])
def test_faces_first_batches_see_every_row_once_faces_first(n_faces: int, n_nonfaces: int) -> None:
    # Row i is filled with the value i; augmentation is switched off so a batch says its rows.
    n = n_faces + n_nonfaces
    x = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 64, 64, 3))
    faces, nonfaces = np.arange(n_faces), np.arange(n_faces, n)
    k = faces_per_batch(n_faces, n_nonfaces, 8)
    data = FacesFirstBatches(
        np.ascontiguousarray(x),
        faces,
        nonfaces,
        batch_size=8,
        k=k,
        seed=0,
        aug=lambda xb, rng: xb.astype(np.float32),
    )
    seen: list[int] = []
    for i in range(len(data)):
        xb, yb = data[i]
        rows = [int(v) for v in xb[:, 0, 0, 0]]
        assert len(rows) <= 8 and yb.tolist() == [float(r < n_faces) for r in rows]
        n_f = int(yb.sum())
        assert n_f <= k and yb[:n_f].all() and not yb[n_f:].any()  # faces first, at most k
        seen += rows
    assert sorted(seen) == list(range(n))  # each row exactly once per epoch


def test_faces_first_decodes_only_the_faces_and_keeps_the_loss() -> None:
    """The DB-VAE's VAE terms are zero for non-faces: decoding only the first k rows of a
    faces-first batch must give the same loss as decoding every row."""
    rng = np.random.default_rng(0)
    x = rng.random((8, 64, 64, 3)).astype(np.float32)
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], np.float32)  # 3 faces first
    fast = DBVAE(latent_dim=6, kl_weight=0.01, seed=2, faces_per_batch=3)
    full = DBVAE(latent_dim=6, kl_weight=0.01, seed=2)
    for m in (fast, full):
        m(np.zeros((1, 64, 64, 3), np.float32))
    full.set_weights(fast.get_weights())
    pf, pa = fast(x, training=True), full(x, training=True)  # same seed: same sampling noise
    assert tuple(pf["recon"].shape) == (3, 64, 64, 3)
    assert tuple(pa["recon"].shape) == (8, 64, 64, 3)
    lf, la = float(fast.compute_loss(x, y, pf)), float(full.compute_loss(x, y, pa))
    assert lf == pytest.approx(la, rel=1e-5)
    # A non-face in a face slot (short last batch) is gated out, as in the full loss.
    y2 = np.array([1, 0, 1, 0, 0, 0, 0, 0], np.float32)
    pf, pa = fast(x, training=True), full(x, training=True)
    lf, la = float(fast.compute_loss(x, y2, pf)), float(full.compute_loss(x, y2, pa))
    assert lf == pytest.approx(la, rel=1e-5)
    # Not training (evaluation, export): every row is decoded.
    assert tuple(fast(x, training=False)["recon"].shape) == (8, 64, 64, 3)


def test_a_checkpoint_from_before_faces_first_resumes_only_as_it_was_trained(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, size=(32, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(32) % 2).astype(np.float32)
    groups = np.array(["a", "b"] * 16)
    old = TrainConfig(epochs=1, batch_size=16, seed=3, latent_dim=4, faces_first=False)
    train_dbvae(x, y, groups, old, tmp_path / "d")
    # A checkpoint saved before the setting existed has no key for it.
    state = json.loads((tmp_path / "d" / "state.json").read_text())
    del state["settings"]["faces_first"]
    (tmp_path / "d" / "state.json").write_text(json.dumps(state))
    with pytest.raises(DataError, match=r"faces_first.*another --work"):
        train_dbvae(
            x, y, groups, TrainConfig(**{**old.__dict__, "faces_first": True}), tmp_path / "d"
        )
    _, log = train_dbvae(x, y, groups, TrainConfig(**{**old.__dict__, "epochs": 2}), tmp_path / "d")
    assert [e["epoch"] for e in log] == [1, 2]


def test_faces_first_batches_apply_fixed_conditions_per_row() -> None:
    # Row i holds the value 10 * i; faces get gain 1, non-faces gain 0.5, nothing else changes.
    n_f, n_nf = 6, 10
    n = n_f + n_nf
    x = np.ascontiguousarray(
        np.broadcast_to((np.arange(n, dtype=np.uint8) * 10)[:, None, None, None], (n, 64, 64, 3))
    )
    cond = np.zeros((n, N_CONDITIONS))
    cond[:, SCALE] = cond[:, GAMMA] = 1.0
    cond[:, GAIN] = np.where(np.arange(n) < n_f, 1.0, 0.5)
    faces, nonfaces = np.arange(n_f), np.arange(n_f, n)
    k = faces_per_batch(n_f, n_nf, 8)
    data = FacesFirstBatches(
        x, faces, nonfaces, 8, k=k, seed=1, conditions=(cond[faces], cond[nonfaces])
    )
    seen: dict[int, float] = {}
    for i in range(len(data)):
        xb, yb = data[i]
        for img, label in zip(xb, yb, strict=True):
            value = float(img[0, 0, 0]) * 255
            row = round(value / (1.0 if label else 0.5) / 10)
            seen[row] = float(label)
    assert seen == {r: float(r < n_f) for r in range(n)}  # every row once, with its own gain


def test_dbvae_rarity_on_augmented_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 255, size=(48, 64, 64, 3), dtype=np.uint8)
    y = (np.arange(48) % 2).astype(np.float32)
    groups = np.array(["a", "a", "b", "b"] * 12)
    given: list[tuple[np.ndarray, np.ndarray]] = []
    real = FacesFirstBatches

    def spy(*args: Any, **kwargs: Any) -> FacesFirstBatches:
        given.append(kwargs["conditions"])
        return real(*args, **kwargs)

    monkeypatch.setattr("model_export.train.FacesFirstBatches", spy)
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3, latent_dim=4, rarity_views="augmented")
    _, log = train_dbvae(x, y, groups, cfg, tmp_path / "d")
    assert [e["epoch"] for e in log] == [1, 2]
    for entry in log:
        shift = entry["drawn_conditions"]
        assert set(shift) == {"scale", "gain", "gamma", "noise", "blurred", "jpeg"}
        assert all(len(pair) == 2 for pair in shift.values())  # [all views, drawn views]
    assert len(given) == 2
    for face_c, nonface_c in given:
        assert face_c.shape == (24, N_CONDITIONS) and nonface_c.shape == (24, N_CONDITIONS)
        # Non-faces wear conditions of drawn faces: no condition is a cue for the label.
        drawn = {tuple(r) for r in face_c}
        assert all(tuple(r) in drawn for r in nonface_c)
    state = json.loads((tmp_path / "d" / "state.json").read_text())
    assert state["settings"]["rarity_views"] == "augmented"
    clean = TrainConfig(epochs=3, batch_size=16, seed=3, latent_dim=4)
    with pytest.raises(DataError, match=r"rarity_views.*another --work"):
        train_dbvae(x, y, groups, clean, tmp_path / "d")
    mixed = TrainConfig(**{**cfg.__dict__, "faces_first": False})
    with pytest.raises(DataError, match=r"faces-first.*--decode-all"):
        train_dbvae(x, y, groups, mixed, tmp_path / "m")


def test_all_end_to_end_on_tiny_data(tmp_path: Path) -> None:
    data = write_faces64(tmp_path / "faces64")
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out = tmp_path / "models"
    rc = export_main(
        [
            "all",
            "--data",
            str(data),
            "--out",
            str(out),
            "--work",
            str(tmp_path / "ck"),
            "--recipe",
            str(recipe),
            "--epochs",
            "1",
            "--latent-dim",
            "8",
            "--seeds",
            "0",
            "1",
        ]
    )
    assert rc == 0
    for name, kind in (("baseline", "baseline"), ("debiased", "dbvae")):
        card = Card.model_validate(json.loads((out / name / "card.json").read_text()))
        assert card.kind == kind
        assert set(card.metrics) == {"float", "int8"}
        assert set(card.metrics["int8"]) == {"mit6s191", "utkface", "camera_shift"}
        assert card.training_data["faces_by_race"]["White"] == 24
        assert card.display is not None and len(card.display_groups()) == 4
        assert card.metrics["int8"]["utkface"].fpr is not None
        assert card.metrics["int8"]["utkface"].fpr <= 0.02 + 1e-9
        clf = load_classifier(out / name)
        assert clf.card.threshold == card.threshold
    assert (out / "debiased" / "latent.npz").is_file()
    report = json.loads((out / "report" / "report.json").read_text())
    assert len(report["per_run"]) == 2
    assert set(report["targets"]) >= {"mit6s191", "camera_shift", "int8_within_1_5_points"}
    assert (out / "report" / "recall_by_group.png").stat().st_size > 10_000
    assert "± " in (out / "report" / "report.md").read_text()
    # Paired effects: one difference per seed, from the runs' own worst groups.
    eff = report["effects"]["mit6s191"]["worst"]
    assert len(eff["per_seed"]) == 2
    assert eff["ci95"][0] <= eff["mean"] <= eff["ci95"][1]
    assert "Effect per seed" in (out / "report" / "report.md").read_text()
    card = json.loads((out / "debiased" / "card.json").read_text())
    assert card["seed_statistics"]["seeds"] == 2
    # The card's status line is the report's, not a hand-written or stale one.
    assert card["status"] == report["status"] and "seed 0 of 2 shipped" in card["status"]
    finest = [g for g in card["metrics"]["int8"]["mit6s191"]["groups"] if len(g["attrs"]) == 2]
    assert finest and all("recall_std" in g for g in finest)
    # What the kiosk shows: each group's mean over the seeds' own recalls.
    for g in finest:
        own = [
            next(
                x["recall"]
                for x in r["debiased"]["int8"]["mit6s191"]["groups"]
                if x["key"] == g["key"]
            )
            for r in report["per_run"]
        ]
        assert g["recall_mean"] == pytest.approx(sum(own) / len(own), abs=1e-4)
    # The shipped card carries exactly the numbers of the report (seed 0's re-evaluation).
    assert _without_seed_stats(card["metrics"]["int8"]) == report["per_run"][0]["debiased"]["int8"]
    # `report --ship-to` rebuilds the same report and bundles from the run folders.
    runs = [str(tmp_path / "ck" / "runs" / f"s{s}") for s in (0, 1)]
    rep_args = ["--out", str(tmp_path / "rep"), "--ship-to", str(tmp_path / "shipped")]
    rc = export_main(["report", "--runs", *runs, "--data", str(data), *rep_args])
    assert rc == 0
    again = json.loads((tmp_path / "shipped" / "debiased" / "card.json").read_text())
    assert again["metrics"] == card["metrics"]
    assert export_main(["report", "--runs", str(tmp_path), "--data", str(data), "--out", "x"]) == 1


def _without_seed_stats(metrics: dict[str, Any]) -> dict[str, Any]:
    """The card adds the seed spread and mean to each group; the per-run report has neither."""
    return {
        name: {
            **m,
            "groups": [
                {k: v for k, v in g.items() if k not in ("recall_std", "recall_mean")}
                for g in m["groups"]
            ],
        }
        for name, m in metrics.items()
    }


def test_all_with_missing_data_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export_main(["all", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 1
    assert "labels.csv" in capsys.readouterr().err


def test_training_options_reach_the_config_and_bad_ones_are_refused() -> None:
    import argparse

    from model_export.steps import add_training_args, train_config

    parser = argparse.ArgumentParser()
    add_training_args(parser)
    args = parser.parse_args(["--learning-rate", "1e-3", "--scale-draw", "log"])
    cfg = train_config(args, "baseline", seed=4)
    assert (cfg.learning_rate, cfg.scale_draw, cfg.lr_schedule) == (1e-3, "log", "constant")
    for bad in ("0", "-1e-3", "0.5"):
        args = parser.parse_args([f"--learning-rate={bad}"])
        with pytest.raises(DataError, match=r"--learning-rate must be in \(0, 0.1\], got"):
            train_config(args, "baseline", seed=4)
    # The right-hand model may take its own step size; the baseline keeps --learning-rate.
    args = parser.parse_args(["--learning-rate", "1e-3", "--right-learning-rate", "5e-4"])
    rates = {m: train_config(args, m, seed=0).learning_rate for m in ("baseline", "balanced")}
    assert rates == {"baseline": 1e-3, "balanced": 5e-4}
    assert train_config(args, "dbvae", seed=0).learning_rate == 5e-4
    args = parser.parse_args(["--right-learning-rate", "2"])
    assert train_config(args, "baseline", seed=0).learning_rate == 5e-4
    with pytest.raises(DataError, match=r"--right-learning-rate must be in \(0, 0.1\], got 2"):
        train_config(args, "balanced", seed=0)


def test_balanced_method_is_named_truthfully(tmp_path: Path) -> None:
    data = write_faces64(tmp_path / "faces64")
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out = tmp_path / "models"
    args = ["all", "--data", str(data), "--out", str(out), "--work", str(tmp_path / "ck")]
    args += ["--recipe", str(recipe), "--epochs", "1", "--method", "balanced"]
    # The right-hand model may train longer than the baseline (the shipped pair does).
    assert export_main([*args, "--right-epochs", "2"]) == 0
    card = json.loads((out / "debiased" / "card.json").read_text())
    base = json.loads((out / "baseline" / "card.json").read_text())
    assert (len(base["training"]["log"]), len(card["training"]["log"])) == (1, 2)
    assert card["method_id"] == "balanced" and card["kind"] == "baseline"
    assert "group labels" in card["method"] and "DB-VAE" not in card["name"]
    shares = card["training"]["log"][0]["drawn_shares"]
    assert max(shares.values()) - min(shares.values()) < 0.01  # each race equally often
    report = (out / "report" / "report.md").read_text()
    assert "Debiased (balanced)" in report and "DB-VAE" not in report


def test_all_with_wider_demog_on_tiny_data(tmp_path: Path) -> None:
    data = write_faces64(tmp_path / "faces64")
    wider = write_wider(tmp_path / "wider-demog")
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out = tmp_path / "models"
    args = ["all", "--data", str(data), "--out", str(out), "--work", str(tmp_path / "ck")]
    args += ["--recipe", str(recipe), "--epochs", "1", "--latent-dim", "8", "--seeds", "0", "1"]
    assert export_main([*args, "--wider", str(wider)]) == 0
    wider_sets = {"wider_f050", "wider_f070", "wider_f090", "wider_f100", "wider_kiosk"}
    report = json.loads((out / "report" / "report.json").read_text())
    wt = report["targets"]["wider"]
    assert set(report["paired"]) == wider_sets
    for res in report["paired"].values():
        assert len(res["mcnemar"]) == 2  # one paired test per seed
        assert res["bootstrap"]["seeds"] == 2 and res["bootstrap"]["faces"] == 24
    for name in ("baseline", "debiased"):
        card = Card.model_validate(json.loads((out / name / "card.json").read_text()))
        assert wider_sets <= set(card.metrics["int8"]) and wider_sets <= set(card.metrics["float"])
        assert card.display is not None and card.display.eval_set == "wider_kiosk"
        # Each card's own gap (its own best minus worst group), as its panel names it.
        shown = report["paired"]["wider_kiosk"]["bootstrap"]["own_gap"]
        ci = shown["baseline" if name == "baseline" else "other"]["ci95"]
        assert card.display.gap_real == (ci[0] > 0 or ci[1] < 0)
        assert card.display.gap_ci95 == tuple(ci)
        assert card.training_data["augmentation"]["name"] == "wild"
        for g in card.metrics["int8"]["wider_f070"].groups:
            assert g.model_extra is not None and len(g.model_extra["ci95"]) == 2
    right = Card.model_validate(json.loads((out / "debiased" / "card.json").read_text()))
    assert right.debiased is wt["debiased_holds"]
    # One epoch on 24 faces debiases nothing measurable: the card names the method instead.
    assert right.debiased is False and right.name == "DB-VAE resampling"
    md = (out / "report" / "report.md").read_text()
    assert "In-the-wild faces (wider-demog)" in md and "McNemar" in md
    # The report names the right-hand model as the card does: never "Debiased" unless measured.
    assert "DB-VAE resampling" in md and "Debiased" not in md
    halves = report["recheck_halves"]
    for name in ("wider_f050", "wider_f070", "wider_f090"):
        assert halves["A"][name]["faces"] + halves["B"][name]["faces"] == 24
    assert "Re-check on two halves" in md
    assert "wider-demog" in report["status"]


def test_all_with_wider_train_trains_on_half_a_and_measures_half_b(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--wider-train`: half A of the in-the-wild photos joins the training faces (the card says
    so, with its count), every in-the-wild number is on half B's faces alone, and the re-check
    splits half B in two."""
    from model_export.paired import photo_halves
    from model_export.wider import load_wider

    data = write_faces64(tmp_path / "faces64")
    wider = write_wider(tmp_path / "wider-demog", per_cell=10)
    faces = load_wider(wider)
    half_a = photo_halves([r.source for r in faces.rows])
    n_a, n_b = int(half_a.sum()), int((~half_a).sum())
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out = tmp_path / "models"
    args = ["all", "--data", str(data), "--out", str(out), "--work", str(tmp_path / "ck")]
    args += ["--recipe", str(recipe), "--epochs", "1", "--latent-dim", "8", "--seeds", "0"]
    assert export_main([*args, "--wider", str(wider), "--wider-train"]) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    for res in report["paired"].values():
        assert res["bootstrap"]["faces"] == n_b
    halves = report["recheck_halves"]
    assert halves["A"]["wider_f070"]["faces"] + halves["B"]["wider_f070"]["faces"] == n_b
    assert halves["A"]["wider_f070"]["faces"] > 0 and halves["B"]["wider_f070"]["faces"] > 0
    for name in ("baseline", "debiased"):
        card = Card.model_validate(json.loads((out / name / "card.json").read_text()))
        assert card.metrics["int8"]["wider_kiosk"].count == n_b
        added = card.training_data["wider_train"]
        assert added["half"] == "A" and added["faces"] == n_a
        assert sum(added["by_skin_group"].values()) == n_a
        assert "wider-demog half A" in card.training_data["source"]
    # Without --wider there is no half to train on: a clear error, nothing trained.
    capsys.readouterr()
    assert export_main([*args, "--work", str(tmp_path / "none"), "--wider-train"]) == 1
    assert "--wider-train adds half of wider-demog to training: pass --wider" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "none").exists()


def test_report_with_cross_runs_judges_every_face_by_models_that_never_saw_its_photo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report --cross-runs`: the recipe trained on half B judges half A, these runs half B;
    the report pools them (every face of wider-demog once), keeps the measured half's own
    verdict on record, and the right-hand card's label follows the re-check's rule."""
    from model_export.crossfit import POOLED, half_label

    data = write_faces64(tmp_path / "faces64")
    wider = write_wider(tmp_path / "wider-demog", per_cell=10)
    recipe = write_recipe(tmp_path / "recipe.yaml")
    common = ["--data", str(data), "--wider", str(wider), "--wider-train", "--recipe", str(recipe)]
    train = ["--epochs", "1", "--latent-dim", "8", "--seeds", "0"]
    for half in ("A", "B"):
        work = tmp_path / f"work-{half}"
        args = ["all", *common, *train, "--wider-train-half", half, "--work", str(work)]
        assert export_main([*args, "--out", str(tmp_path / f"out-{half}")]) == 0
    runs = [str(tmp_path / "work-A" / "runs" / "s0")]
    cross = [str(tmp_path / "work-B" / "runs" / "s0")]
    out, ship = tmp_path / "report", tmp_path / "shipped"
    rep_args = ["report", *common, "--runs", *runs, "--works", str(tmp_path / "work-A")]
    rep_args += ["--out", str(out), "--ship-to", str(ship)]
    assert export_main([*rep_args, "--cross-runs", *cross]) == 0
    report = json.loads((out / "report.json").read_text())
    cf = report["crossfit"]
    n = len(load_wider_rows(wider))
    n_b = report["paired"]["wider_f070"]["bootstrap"]["faces"]
    assert cf[half_label("B")]["paired"]["wider_f070"]["bootstrap"]["faces"] == n_b
    assert cf[half_label("A")]["paired"]["wider_f070"]["bootstrap"]["faces"] == n - n_b
    assert cf[POOLED]["paired"]["wider_f070"]["bootstrap"]["faces"] == n
    wt = report["targets"]["wider"]
    assert "debiased_holds_measured_half" in wt and wt["debiased_holds"] is cf["holds"]
    right = Card.model_validate(json.loads((ship / "debiased" / "card.json").read_text()))
    assert right.debiased is cf["holds"]
    assert "cross-fit re-check" in (right.model_extra or {})["status"]
    assert "Re-check on all of wider-demog" in (out / "report.md").read_text()
    # Cross runs need as many seeds as the runs, and the half the runs trained on.
    capsys.readouterr()
    assert export_main([*rep_args, "--cross-runs", *cross, *cross]) == 1
    assert "2 --cross-runs for 1 --runs" in capsys.readouterr().err
    no_half = [a for a in rep_args if a != "--wider-train"]
    assert export_main([*no_half, "--cross-runs", *cross]) == 1
    assert "add --wider and --wider-train" in capsys.readouterr().err


def load_wider_rows(wider: Path) -> list[Any]:
    from model_export.wider import load_wider

    return load_wider(wider).rows


@pytest.mark.parametrize("half", ["A", "B"])
def test_either_half_of_the_photos_trains_and_the_other_is_measured(
    tmp_path: Path, half: str
) -> None:
    """`--wider-train-half`: the training faces are exactly the chosen half's photos, the
    in-the-wild sets exactly the other half's, and the counts name the half trained on."""
    from model_export.paired import photo_halves
    from model_export.recipe import load_recipe
    from model_export.sets import WIDER_GROUP, prepare
    from model_export.wider import load_wider

    data = write_faces64(tmp_path / "faces64")
    wider = write_wider(tmp_path / "wider-demog", per_cell=10)
    rows = load_wider(wider).rows
    in_a = photo_halves([r.source for r in rows])
    trained = {r.path for r, a in zip(rows, in_a, strict=True) if a == (half == "A")}
    recipe = load_recipe(write_recipe(tmp_path / "recipe.yaml"))
    prep = prepare(data, recipe, wider=wider, wider_train=True, wider_train_half=half)
    added = {r.path for r in prep.train.rows if r.attrs.get(recipe.group_by) == WIDER_GROUP}
    assert added == trained
    measured = {r.path for r in prep.evals["wider_f070"].rows}
    assert measured == {r.path for r in rows} - trained
    assert prep.counts["wider_train"]["half"] == half
    assert prep.counts["wider_train"]["faces"] == len(trained)
    assert f"wider-demog half {half}" in prep.counts["source"]


def test_the_cross_fit_decodes_only_the_in_the_wild_sets(tmp_path: Path) -> None:
    """`prepare(..., lab_sets=False)` (the cross-fit's judge): the same in-the-wild sets and
    validation non-faces, and neither the lab's evaluation sets nor camera-shift."""
    from model_export.recipe import load_recipe
    from model_export.sets import EVAL_SETS, prepare

    data = write_faces64(tmp_path / "faces64")
    wider = write_wider(tmp_path / "wider-demog", per_cell=10)
    recipe = load_recipe(write_recipe(tmp_path / "recipe.yaml"))
    half_b = functools.partial(
        prepare, data, recipe, with_train=False, wider=wider, wider_train=True, wider_train_half="B"
    )
    full, wild = half_b(), half_b(lab_sets=False)
    lab = {name for name, (prefix, _) in EVAL_SETS.items() if prefix} | {"camera_shift"}
    assert lab <= set(full.evals)
    assert set(wild.evals) == set(full.evals) - lab
    assert all(name.startswith("wider_") for name in wild.evals)
    for name in wild.evals:
        assert [r.path for r in wild.evals[name].rows] == [r.path for r in full.evals[name].rows]
        assert np.array_equal(wild.evals[name].x, full.evals[name].x)
    assert np.array_equal(wild.val_nonfaces.x, full.val_nonfaces.x)


def test_balanced_draws_each_in_the_wild_skin_group_and_gender_as_its_own_group(
    tmp_path: Path,
) -> None:
    """`--method balanced --wider-train`: the added in-the-wild faces are balanced by their own
    labels (skin group x gender), the portraits by race; each group is drawn equally often."""
    from model_export.recipe import load_recipe
    from model_export.sets import WIDER_GROUP, balance_groups, prepare

    data = write_faces64(tmp_path / "faces64")
    wider = write_wider(tmp_path / "wider-demog", per_cell=10)
    recipe = load_recipe(write_recipe(tmp_path / "recipe.yaml"))
    prep = prepare(data, recipe, wider=wider, wider_train=True)
    groups = balance_groups(prep.train, recipe.group_by)
    wild = [i for i, r in enumerate(prep.train.rows) if r.attrs.get(recipe.group_by) == WIDER_GROUP]
    assert wild and len(groups) == len(prep.train.rows)
    for i in wild:
        attrs = prep.train.rows[i].attrs
        assert groups[i] == f"{WIDER_GROUP} {attrs['skin_group']} {attrs['gender']}"
    wild_set = set(wild)
    portraits = [i for i in range(len(groups)) if i not in wild_set]
    assert all(groups[i] == prep.train.rows[i].attrs.get("race", "") for i in portraits)
    assert len({groups[i] for i in wild}) == 4  # Darker/Lighter x Female/Male


@pytest.mark.parametrize("augment", ["wild-context", "wild-people"])
def test_wild_context_reframes_the_added_faces_from_their_wider_crops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], augment: str
) -> None:
    """`--augment wild-context` (and `wild-people`, which also lays portraits and non-faces on
    those crops' surroundings): both CNNs train with half A's faces reframed from their 128x128
    crops, and the cards say so; without --wider-train, or for the DB-VAE, a clear error before
    any decoding or training."""
    from model_export.wider import load_wider, split_wider

    data = write_faces64(tmp_path / "faces64")
    wider = write_wider(tmp_path / "wider-demog", per_cell=10)
    split = split_wider(load_wider(wider))
    assert split.added128.shape == (len(split.added), 128, 128, 3)
    # The tight crop is the centre half of the wider one: the same face, one framing.
    centre = split.added128[:, 32:96, 32:96].astype(np.float32)
    assert np.abs(centre - split.added.astype(np.float32)).mean() < 8
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out = tmp_path / "models"
    args = ["all", "--data", str(data), "--out", str(out), "--recipe", str(recipe)]
    args += ["--epochs", "1", "--seeds", "0", "--method", "balanced", "--augment", augment]
    args += ["--wider", str(wider)]
    assert export_main([*args, "--work", str(tmp_path / "ck"), "--wider-train"]) == 0
    for name in ("baseline", "debiased"):
        card = json.loads((out / name / "card.json").read_text())
        assert card["training"]["settings"]["augment"] == augment
        record = card["training_data"]["augmentation"]
        assert "128x128 crops" in record["context"]
        assert ("people" in record) == (augment == "wild-people")
    capsys.readouterr()
    assert export_main([*args, "--work", str(tmp_path / "none")]) == 1
    assert "add --wider-train" in capsys.readouterr().err
    dbvae = [a if a != "balanced" else "dbvae" for a in args]
    assert export_main([*dbvae, "--work", str(tmp_path / "none"), "--wider-train"]) == 1
    assert "use --augment wild with --method dbvae" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_fit_epoch_trains_exactly_as_fit_on_the_dataset() -> None:
    """`fit_epoch` (a tf.data pipeline without Keras' prefetch, whose teardown took 18 s after
    two of three full-size epochs) trains the same weights as `fit` on the PyDataset, epoch for
    epoch, with augmentation that draws from the dataset's random stream: the same batches, in
    the same shuffled order, after the same spec reads."""
    import keras

    from model_export.models import baseline_cnn

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (72, 64, 64, 3), dtype=np.uint8)
    y = (rng.random(72) < 0.5).astype(np.float32)

    def aug(b: np.ndarray, r: np.random.Generator) -> np.ndarray:
        return b.astype(np.float32) / 255 + r.normal(size=b.shape).astype(np.float32) * 0.1

    def train(ours: bool) -> tuple[list[float], list[np.ndarray]]:
        model = baseline_cnn(0, width=4)
        model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
        data = Batches(x, y, 8, seed=1, aug=aug)
        losses = []
        for _ in range(2):
            if ours:
                losses.append(fit_epoch(model, data))
            else:
                losses.append(float(model.fit(data, epochs=1, verbose=0).history["loss"][-1]))
        return losses, model.get_weights()

    (loss_a, w_a), (loss_b, w_b) = train(False), train(True)
    assert loss_a == loss_b
    assert all(np.array_equal(a, b) for a, b in zip(w_a, w_b, strict=True))
