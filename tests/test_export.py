"""The int8 exporter end to end with real TensorFlow conversion (tiny models, seconds)."""

from __future__ import annotations

import pytest

# Training tests: they need the train extra (TensorFlow, Keras, h5py). A kiosk developer with
# only `.[runtime,dev]` gets them skipped with this reason; `make test` installs and runs them.
pytest.importorskip("keras", reason="needs the train extra: pip install -e '.[train]'")
pytestmark = pytest.mark.train

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import keras
import numpy as np

from installation.inference import BundleError, load_bundle, load_classifier
from installation.inference.card import Card
from model_export import export as export_mod
from model_export.bundle_check import BundleCheckError, check_tflite, summarize
from model_export.export import ExportError, convert_int8, export_bundle
from model_export.latent_stats import compute_latent_stats
from tests.tiny_bundles import synthetic_set, tiny_model


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = synthetic_set(160, seed=5)
    return x, y


@pytest.fixture(scope="module")
def trained(data: tuple[np.ndarray, np.ndarray]) -> Any:
    x, y = data
    model = tiny_model(latent_dim=4, seed=1)
    logit = keras.Model(model.input, model.outputs[0])
    logit.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    logit.fit(x, y, epochs=6, batch_size=32, verbose=0)
    return model


FIELDS = {
    "threshold": 0.5,
    "license": "test",
    "method": "test model",
    "metrics": {},
}


def test_export_dbvae_bundle_end_to_end(
    trained: Any, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, _ = data
    float_logit, float_latent = (np.asarray(o) for o in trained.predict(x[:32], verbose=0))
    stats = compute_latent_stats(float_latent, bins=8)
    out = export_bundle(
        trained,
        tmp_path / "b",
        kind="dbvae",
        name="T",
        calibration=x[:100],
        card_fields=FIELDS,
        latent_stats=stats,
    )
    files = sorted(p.name for p in out.iterdir())
    assert files == ["card.json", "latent.npz", "model.tflite"]
    card = Card.model_validate(json.loads((out / "card.json").read_text()))
    assert card.sha256 == hashlib.sha256((out / "model.tflite").read_bytes()).hexdigest()
    assert card.kind == "dbvae" and card.latent_dim == 4
    summary = summarize((out / "model.tflite").read_bytes())
    assert summary.float_tensors == []
    assert summary.input_dtype == "int8"
    # int8 agrees with the float model on the same images.
    clf = load_classifier(out, accelerator="cpu")
    preds = [clf.predict(np.round(img * 255).astype(np.uint8)) for img in x[:32]]
    p_int8 = np.array([p.p_face for p in preds])
    p_float = 1 / (1 + np.exp(-float_logit.reshape(-1)))
    assert np.abs(p_int8 - p_float).mean() < 0.05
    assert np.mean((p_int8 >= 0.5) != (p_float >= 0.5)) <= 1 / 32
    lat = np.stack([p.latent for p in preds if p.latent is not None])
    assert np.corrcoef(lat.reshape(-1), float_latent.reshape(-1))[0, 1] > 0.95


def test_interrupted_export_leaves_the_old_bundle(
    trained: Any,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, _ = data
    base = keras.Model(trained.input, trained.outputs[0])
    out = export_bundle(
        base, tmp_path / "b", kind="baseline", name="old", calibration=x[:50], card_fields=FIELDS
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(folder: Path) -> None:
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing the new bundle

    monkeypatch.setattr(export_mod, "_compile_edgetpu", boom)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(
            base, out, kind="baseline", name="new", calibration=x[:50], card_fields=FIELDS
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temp folder left behind


def test_calibration_must_be_real_images(trained: Any) -> None:
    with pytest.raises(ExportError, match="float32 pixels"):
        convert_int8(trained, np.full((20, 64, 64, 3), 255.0, np.float32))
    with pytest.raises(ExportError, match="at least 10"):
        convert_int8(trained, np.zeros((3, 64, 64, 3), np.float32))


def test_contract_violations_are_refused(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, _ = data
    inp = keras.Input((64, 64, 3))
    flat = keras.layers.Flatten()(keras.layers.Conv2D(4, 5, strides=4)(inp))
    two_logits = keras.Model(inp, keras.layers.Dense(2)(flat))
    with pytest.raises(BundleCheckError, match=r"output 0 must be the face logit \[1, 1\]"):
        export_bundle(
            two_logits,
            tmp_path / "x",
            kind="baseline",
            name="x",
            calibration=x[:20],
            card_fields=FIELDS,
        )
    assert not (tmp_path / "x").exists()
    with pytest.raises(ExportError, match="latent_stats"):
        export_bundle(
            two_logits,
            tmp_path / "x",
            kind="dbvae",
            name="x",
            calibration=x[:20],
            card_fields=FIELDS,
        )


def test_runtime_refuses_unknown_output_shape(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path, tiny_bundles: Path
) -> None:
    """A model file whose output 0 is not [1, 1], dressed up as a bundle."""
    x, _ = data
    inp = keras.Input((64, 64, 3))
    flat = keras.layers.Flatten()(keras.layers.Conv2D(4, 5, strides=4)(inp))
    content = convert_int8(keras.Model(inp, keras.layers.Dense(3)(flat)), x[:20])
    folder = tmp_path / "weird"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(content)
    card = json.loads((tiny_bundles / "tiny_baseline" / "card.json").read_text())
    card["sha256"] = hashlib.sha256(content).hexdigest()
    s = summarize(content)
    card["input"].update(scale=s.input_scale, zero_point=s.input_zero_point)
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=r"expected the face logit \[1, 1\]"):
        load_classifier(folder)


def test_runtime_refuses_wrong_input_shape(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path, tiny_bundles: Path
) -> None:
    """A real int8 model with a [1, 32, 32, 3] input, dressed up as a bundle."""
    x, _ = data
    inp = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten()(keras.layers.Conv2D(4, 5, strides=4)(inp))
    small = keras.Model(inp, keras.layers.Dense(1)(flat))
    content = export_mod._to_tflite(small, x[:20, :32, :32], (1, 32, 32, 3))
    folder = tmp_path / "small"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(content)
    card = json.loads((tiny_bundles / "tiny_baseline" / "card.json").read_text())
    card["sha256"] = hashlib.sha256(content).hexdigest()
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=r"input \[\[1, 32, 32, 3\]\] is not the contract's"):
        load_classifier(folder)


def _fake_compiler(bin_dir: Path, ok: bool) -> None:
    """Stands in for Coral's edgetpu_compiler (x86_64 Debian package, absent here)."""
    bin_dir.mkdir()
    script = bin_dir / "edgetpu_compiler"
    body = (
        '[ "$1" = -s ] && [ "$2" = -o ] || exit 9\n'
        'cp "$4" "$3/model_edgetpu.tflite" && echo "Edge TPU Compiler version fake"\n'
        if ok
        else 'echo "Model not quantized" >&2; exit 1\n'
    )
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)


def test_edgetpu_compiler_on_path_adds_the_compiled_model(
    trained: Any,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_compiler(tmp_path / "bin", ok=True)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    base = keras.Model(trained.input, trained.outputs[0])
    out = export_bundle(
        base, tmp_path / "b", kind="baseline", name="b", calibration=x_of(data), card_fields=FIELDS
    )
    bundle = load_bundle(out)
    assert bundle.edgetpu_path == out / "model_edgetpu.tflite"
    assert (
        bundle.card.edgetpu_sha256 == hashlib.sha256(bundle.edgetpu_path.read_bytes()).hexdigest()
    )


def test_failing_edgetpu_compiler_leaves_no_bundle(
    trained: Any,
    data: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_compiler(tmp_path / "bin", ok=False)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    base = keras.Model(trained.input, trained.outputs[0])
    with pytest.raises(ExportError, match=r"edgetpu_compiler failed .*Model not quantized"):
        export_bundle(
            base,
            tmp_path / "b",
            kind="baseline",
            name="b",
            calibration=x_of(data),
            card_fields=FIELDS,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def x_of(data: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return data[0][:30]


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(trained: Any, tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "baseline").mkdir(parents=True)
    (models / "README.md").write_text("keep me")
    with pytest.raises(ExportError, match="not a model bundle"):
        export_bundle(
            trained,
            models,
            kind="dbvae",
            name="x",
            calibration=np.zeros((20, 64, 64, 3), np.float32),
            card_fields=FIELDS,
            latent_stats=compute_latent_stats(np.zeros((4, 4), np.float32)),
        )
    assert (models / "README.md").read_text() == "keep me"


def test_failed_swap_puts_the_old_bundle_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "b", tmp_path / ".b.tmp"
    for folder, text in ((old, "old"), (new, "new")):
        folder.mkdir()
        (folder / "card.json").write_text(text)
    real_replace = os.replace
    calls: list[tuple[str, str]] = []

    def flaky(src: Any, dst: Any) -> None:
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # the new bundle's rename fails (disk full, Ctrl-C, ...)
            raise OSError("simulated failure")
        real_replace(src, dst)

    monkeypatch.setattr(export_mod.os, "replace", flaky)
    with pytest.raises(OSError, match="simulated"):
        export_mod._swap_in(new, old)
    assert calls[:2] == [("b", ".b.old"), (".b.tmp", "b")]
    assert (old / "card.json").read_text() == "old"
    assert not (tmp_path / ".b.old").exists()


def test_latent_stats_must_match_the_model(
    trained: Any, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    stats = compute_latent_stats(np.random.default_rng(0).normal(size=(50, 3)))
    with pytest.raises(ExportError, match="latent_stats has 3 dimensions"):
        export_bundle(
            trained,
            tmp_path / "b",
            kind="dbvae",
            name="b",
            calibration=x_of(data),
            card_fields=FIELDS,
            latent_stats=stats,
        )
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("activation", "words"),
    [
        ("gelu", "ops the Edge TPU cannot run: ['GELU']"),
        # ELU has no int8 kernel: the converter wraps it in DEQUANTIZE/QUANTIZE, float inside.
        ("elu", "float tensors remain"),
    ],
)
def test_ops_off_the_edgetpu_list_are_refused(
    data: tuple[np.ndarray, np.ndarray], activation: str, words: str
) -> None:
    inp = keras.Input((64, 64, 3))
    h = keras.layers.Activation(activation)(keras.layers.Conv2D(4, 5, strides=4)(inp))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    content = convert_int8(model, x_of(data))
    with pytest.raises(BundleCheckError, match=re.escape(words)):
        check_tflite(content, expect_latent=False)
