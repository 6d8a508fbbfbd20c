"""The export-time graph rewrite (model_export.fold) on the real lab architectures, converted by
the real TFLite converter and run by the real interpreter."""

from __future__ import annotations

import pytest

# Training tests: they need the train extra (TensorFlow, Keras, h5py). A kiosk developer with
# only `.[runtime,dev]` gets them skipped with this reason; `make test` installs and runs them.
pytest.importorskip("keras", reason="needs the train extra: pip install -e '.[train]'")
pytestmark = pytest.mark.train

from pathlib import Path
from typing import Any

import keras
import numpy as np

from installation.inference import load_classifier
from model_export.bundle_check import check_tflite
from model_export.diagnostics.int8_fidelity import int8_logits, logit_error
from model_export.export import convert_int8, export_bundle
from model_export.fold import (
    LOGIT_CLIP,
    FoldError,
    check_same_function,
    equalize_ranges,
    folded_encoder,
    int8_serving,
)
from model_export.models import DBVAE, baseline_cnn
from model_export.workflow import calibration_images
from tests.tiny_bundles import synthetic_set, tiny_model


def _uneven_batchnorm(model: keras.Model, seed: int) -> None:
    """Moving statistics and scales as uneven across channels as a trained model's (a fresh
    model's BN is the identity, which would hide what the rewrite is for)."""
    rng = np.random.default_rng(seed)
    for lay in model.layers:
        if isinstance(lay, keras.layers.BatchNormalization):
            c = lay.gamma.shape[0]
            lay.set_weights(
                [
                    rng.uniform(0.05, 3.0, c),  # gamma: 60x spread, as after training
                    rng.normal(0.0, 0.3, c),  # beta
                    rng.uniform(0.0, 0.5, c),  # moving mean
                    rng.uniform(0.001, 0.2, c),  # moving variance
                ]
            )


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    x, _, _ = synthetic_set(300, seed=3)
    return x


def _logits_in_range(model: keras.Model, head: keras.layers.Dense, x: np.ndarray) -> None:
    """Scale the untrained head so logits spread over about -4..4, as a trained model's do
    around its threshold (all-clipped logits would make every int8 comparison trivial)."""
    out = model(x)
    z = np.asarray(out[0] if isinstance(out, (list, tuple)) else out)[:, 0]
    kernel, bias = head.get_weights()
    k = 2.0 / max(float(z.std()), 1e-6)
    bias = bias * k
    bias[0] -= float(z.mean()) * k
    head.set_weights([kernel * k, bias])


@pytest.fixture(scope="module")
def cnn(images: np.ndarray) -> keras.Model:
    model = baseline_cnn(seed=4)
    model.build((None, 64, 64, 3))
    _uneven_batchnorm(model, seed=4)
    _logits_in_range(model, model.layers[-1], images[:100])
    return model


def _kiosk_logits(model: keras.Model, calib: np.ndarray, x: np.ndarray, out: Path) -> np.ndarray:
    """Export `model` as a bundle and read its face logits the way the kiosk does
    (installation.inference: input LUT, int8 interpreter, dequantized output 0)."""
    bundle = export_bundle(
        model,
        out,
        kind="baseline",
        name="fold test",
        calibration=calib,
        card_fields={"threshold": 0.5, "license": "test"},
    )
    clf = load_classifier(bundle, accelerator="cpu")
    crops = np.round(x * 255).astype(np.uint8)
    return np.array([clf.predict(c).logit for c in crops])


def test_folded_graph_computes_the_trained_function(cnn: keras.Model, images: np.ndarray) -> None:
    folded = folded_encoder(cnn, [("face_logit", 0, 1)])
    kinds = [type(lay).__name__ for lay in folded.layers]
    assert "BatchNormalization" not in kinds
    assert kinds.count("DepthwiseConv2D") == 3
    assert check_same_function(cnn, folded, images[:64]) < 1e-3


def test_deeper_encoder_folds_to_the_same_function(images: np.ndarray) -> None:
    """A wider encoder with two convs per stage (the shipped size) folds and equalizes too: one
    depthwise per BN but the last, and the same function before and after."""
    deep = baseline_cnn(seed=5, width=8, convs_per_stage=2)
    deep.build((None, 64, 64, 3))
    _uneven_batchnorm(deep, seed=5)
    _logits_in_range(deep, deep.layers[-1], images[:100])
    folded = folded_encoder(deep, [("face_logit", 0, 1)])
    kinds = [type(lay).__name__ for lay in folded.layers]
    assert kinds.count("Conv2D") == 8 and kinds.count("DepthwiseConv2D") == 7
    equalize_ranges(folded, images[:64])
    assert check_same_function(deep, folded, images[:64]) < 1e-3


def test_equalize_keeps_the_function_and_evens_channel_ranges(
    cnn: keras.Model, images: np.ndarray
) -> None:
    folded = folded_encoder(cnn, [("face_logit", 0, 1)])
    probe_layer = folded.layers[2]  # the first BN-as-depthwise output [N, 32, 32, 12]

    def spread() -> float:
        act = np.asarray(keras.Model(folded.input, probe_layer.output)(images[:64]))
        r = np.abs(act).reshape(-1, act.shape[-1]).max(axis=0)
        return float(r.max() / max(r.min(), 1e-9))

    before = spread()
    equalize_ranges(folded, images[:64])
    after = spread()
    assert after < before / 2, (before, after)
    assert check_same_function(cnn, folded, images[64:128]) < 1e-3


def test_rewrite_cuts_int8_error_of_the_logit(
    cnn: keras.Model, images: np.ndarray, tmp_path: Path
) -> None:
    """The point of the rewrite: the int8 logit the kiosk reads stays closer to the float one."""
    # Pixels as a camera delivers them (uint8), so float and int8 see the same input.
    pixels = np.round(images * 255) / 255
    calib, test = pixels[:100].astype(np.float32), pixels[100:220].astype(np.float32)
    ref = np.clip(np.asarray(cnn(test)).reshape(-1), -LOGIT_CLIP, LOGIT_CLIP)
    plain = _kiosk_logits(cnn, calib, test, tmp_path / "plain")
    rewritten = _kiosk_logits(int8_serving(cnn, calib), calib, test, tmp_path / "rewritten")
    err_plain = np.sqrt(np.mean((np.clip(plain, -LOGIT_CLIP, LOGIT_CLIP) - ref) ** 2))
    err_rewritten = np.sqrt(np.mean((rewritten - ref) ** 2))
    assert np.mean(np.abs(ref) < LOGIT_CLIP) > 0.9  # a comparison of real values, not of clips
    assert err_rewritten < 0.7 * err_plain, (err_rewritten, err_plain)


def test_logit_is_clipped_and_kept_inside(cnn: keras.Model, images: np.ndarray) -> None:
    serving = int8_serving(cnn, images[:64])
    raw = np.asarray(cnn(images[:64])).reshape(-1)
    served = np.asarray(serving(images[:64])).reshape(-1)
    inside = np.abs(raw) < LOGIT_CLIP
    np.testing.assert_allclose(served[inside], raw[inside], atol=1e-3)
    assert np.all(np.abs(served) <= LOGIT_CLIP + 1e-4)


def test_dbvae_serving_has_logit_and_latent_mean_and_passes_the_bundle_check(
    images: np.ndarray,
) -> None:
    model = DBVAE(latent_dim=6, seed=2)
    model(np.zeros((1, 64, 64, 3), np.float32))
    _uneven_batchnorm(model.encoder, seed=2)
    _logits_in_range(model.encoder, model.encoder.layers[-1], images[:100])
    serving = int8_serving(model, images[:64])
    logit, mean = (np.asarray(o) for o in serving(images[:8]))
    ref_logit, ref_mean, _ = (np.asarray(o) for o in model.encode(images[:8]))
    np.testing.assert_allclose(mean, ref_mean, atol=1e-3)
    np.testing.assert_allclose(logit, np.clip(ref_logit, -LOGIT_CLIP, LOGIT_CLIP), atol=1e-3)
    summary = check_tflite(convert_int8(serving, images[:64]), expect_latent=True)
    assert summary.outputs[0].shape == [1, 1] and summary.outputs[1].shape == [1, 6]
    assert "DEPTHWISE_CONV_2D" in summary.ops and not summary.float_tensors


def test_unknown_architecture_is_refused_with_the_layers_named(images: np.ndarray) -> None:
    other: Any = tiny_model(latent_dim=None, seed=0)
    with pytest.raises(FoldError, match="unexpected encoder layers"):
        int8_serving(other, images[:16])


def test_a_broken_rewrite_is_caught_before_conversion(cnn: keras.Model, images: np.ndarray) -> None:
    folded = folded_encoder(cnn, [("face_logit", 0, 1)])
    dw = folded.layers[2]
    kernel, bias = dw.get_weights()
    dw.set_weights([kernel * 1.5, bias])  # what a wrong fold would do
    with pytest.raises(FoldError, match="differs from the trained model"):
        check_same_function(cnn, folded, images[:32])


def test_calibration_images_are_training_images_as_training_shows_them() -> None:
    x, _, _ = synthetic_set(60, seed=6)
    u8 = np.round(x * 255).astype(np.uint8)
    calib = calibration_images(u8, n=40)
    assert calib.shape == (40, 64, 64, 3) and calib.dtype == np.float32
    assert calib.min() >= 0.0 and calib.max() <= 1.0
    np.testing.assert_array_equal(calib, calibration_images(u8, n=40))  # same bundle every run
    # Augmented views, not the clean crops: light and framing differ from every source image.
    clean = u8.astype(np.float32) / 255
    nearest = np.min([[np.abs(c - s).mean() for s in clean] for c in calib[:10]], axis=1)
    assert np.all(nearest > 0.005), nearest
    assert len(calibration_images(u8[:7])) == 7  # a small draw uses what it has
    # augmented=False: the same draw as clean crops, each one of the source images.
    plain = calibration_images(u8, n=40, augmented=False)
    assert all(any(np.array_equal(c, s) for s in clean) for c in plain)
    assert not np.allclose(plain, calib, atol=0.02)


def test_fidelity_diagnostic_reads_logits_as_the_kiosk_does(
    cnn: keras.Model, images: np.ndarray, tmp_path: Path
) -> None:
    """model_export.diagnostics.int8_fidelity measures the int8 logit the kiosk would read, not
    another."""
    calib = images[:100].astype(np.float32)
    serving = int8_serving(cnn, calib)
    crops = np.round(images[100:140] * 255).astype(np.uint8)
    kiosk = _kiosk_logits(serving, calib, crops.astype(np.float32) / 255, tmp_path / "k")
    diag = int8_logits(convert_int8(serving, calib), crops)
    np.testing.assert_allclose(diag, kiosk, atol=1e-6)

    ref = np.array([0.0, 1.0, -20.0, 2.0])
    err = logit_error(ref, np.array([0.5, 1.0, -LOGIT_CLIP, 1.0]))
    # The float logit is clipped to the served range first: -20 vs -8 is no error.
    assert err["mean"] == pytest.approx(1.5 / 4)
    assert err["max"] == pytest.approx(1.0)
    assert 0.5 < err["p95"] <= 1.0


def test_dropout_is_left_out_of_the_serving_graph(images: np.ndarray) -> None:
    """`dropout` > 0 adds one Dropout after the Dense(512) (none at 0: the lab's graph, layer
    for layer); the fold leaves it out, and the folded graph computes the trained model's
    serving function (dropout off)."""
    plain = baseline_cnn(seed=5, width=8, convs_per_stage=2)
    dropped = baseline_cnn(seed=5, width=8, convs_per_stage=2, dropout=0.5)
    kinds = [type(lay).__name__ for lay in dropped.layers]
    assert kinds == [*[type(lay).__name__ for lay in plain.layers][:-1], "Dropout", "Dense"]
    assert "Dropout" not in [type(lay).__name__ for lay in plain.layers]
    dropped.build((None, 64, 64, 3))
    _uneven_batchnorm(dropped, seed=5)
    _logits_in_range(dropped, dropped.layers[-1], images[:100])
    # In training the layer drops: two calls differ; serving, it is the identity.
    x = images[:8]
    assert not np.allclose(dropped(x, training=True), dropped(x, training=True))
    folded = int8_serving(dropped, images[:200])
    assert "Dropout" not in [type(lay).__name__ for lay in folded.layers]
    assert check_same_function(dropped, folded, images[:64]) < 1e-3
    with pytest.raises(ValueError, match="dropout must be in"):
        baseline_cnn(seed=5, dropout=1.0)
