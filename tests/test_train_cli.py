"""`bias-mirror-export train` then `export` from the checkpoint; memory and option errors."""

from __future__ import annotations

import pytest

# Training tests: they need the train extra (TensorFlow, Keras, h5py). A kiosk developer with
# only `.[runtime,dev]` gets them skipped with this reason; `make test` installs and runs them.
pytest.importorskip("keras", reason="needs the train extra: pip install -e '.[train]'")
pytestmark = pytest.mark.train

import json
import signal
from pathlib import Path

import numpy as np

from installation.inference import load_classifier
from model_export.cli import main as export_main
from model_export.data import DataError, load_images, read_labels, split_train_val
from model_export.evaluate import threshold_at_fpr
from model_export.sets import check_memory
from tests.model_fixtures import write_faces64, write_recipe


def test_train_then_export_from_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_faces64(tmp_path / "faces64")
    recipe = write_recipe(tmp_path / "recipe.yaml")
    common = ["--data", str(data), "--recipe", str(recipe), "--work", str(tmp_path / "ck")]
    common += ["--method", "balanced", "--epochs", "1", "--batch-size", "16"]
    out = tmp_path / "bundle"
    # Export before training: a clear error that says what to run.
    assert export_main(["export", *common, "--seed", "4", "--out", str(out)]) == 1
    assert "0 of 1 epochs" in capsys.readouterr().err
    assert export_main(["train", *common, "--seeds", "4"]) == 0
    state = json.loads((tmp_path / "ck" / "balanced-s4" / "state.json").read_text())
    assert state["epochs_done"] == 1
    assert export_main(["export", *common, "--seed", "4", "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["method_id"] == "balanced"
    assert card["training"]["settings"]["seed"] == 4
    assert card["training"]["settings"]["batch_size"] == 16
    assert card["training"]["log"] == state["log"]  # the checkpoint's log, not a retrain
    assert card["training_data"]["augmentation"]["p_jpeg"] > 0
    # The int8 ranges came from the training draw under augmentation, all of it on this tiny set.
    n_train = card["training_data"]["faces"] + card["training_data"]["nonfaces"]
    assert card["int8_calibration"]["images"] == min(400, n_train)
    assert "augmentation" in card["int8_calibration"]["source"]
    assert load_classifier(out, accelerator="cpu").card.threshold == card["threshold"]
    assert "zoom" not in card  # the crop alone unless asked

    # The same checkpoint with the second view: a card that says so, and a threshold set on the
    # two-view score of the validation non-faces. (The .tflite files differ only in Keras'
    # layer-name counters, as the process built the model twice.)
    zoomed = tmp_path / "zoomed"
    assert (
        export_main(["export", *common, "--seed", "4", "--out", str(zoomed), "--zoom", "0.7"]) == 0
    )
    zcard = json.loads((zoomed / "card.json").read_text())
    assert zcard["zoom"] == 0.7
    rows = read_labels(data)
    _, val_rows = split_train_val(rows, 0.1)
    val = load_images(data, [r for r in val_rows if not r.is_face]).x
    clf = load_classifier(zoomed, accelerator="cpu")
    p_two = np.array([clf.predict(x).p_face for x in val])
    assert zcard["threshold"] == pytest.approx(threshold_at_fpr(p_two, 0.02))
    plain = load_classifier(out, accelerator="cpu")
    p_one = np.array([plain.predict(x).p_face for x in val])
    assert np.all(p_two >= p_one - 1e-6)  # the larger of two views, one of them the crop
    assert np.any(p_two > p_one + 1e-6)  # and the zoomed view does score some of them
    assert (
        export_main(["export", *common, "--seed", "4", "--out", str(zoomed), "--zoom", "1.5"]) == 1
    )
    assert "--zoom" in capsys.readouterr().err

    # With the mirror image averaged in: the card says so and its threshold is set on the
    # averaged score of the validation non-faces, as the kiosk computes it.
    flipped = tmp_path / "flipped"
    assert (
        export_main(["export", *common, "--seed", "4", "--out", str(flipped), "--flip-average"])
        == 0
    )
    fcard = json.loads((flipped / "card.json").read_text())
    assert fcard["flip_average"] is True and "zoom" not in fcard
    fclf = load_classifier(flipped, accelerator="cpu")
    p_avg = np.array([fclf.predict(x).p_face for x in val])
    assert fcard["threshold"] == pytest.approx(threshold_at_fpr(p_avg, 0.02))
    assert not np.allclose(p_avg, p_one)  # the mirror image moved the scores
    assert "flip_average" not in card


def test_bad_training_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_faces64(tmp_path / "faces64", faces_per_race=1, nonfaces=20)
    args = ["train", "--data", str(data), "--method", "baseline", "--epochs", "0"]
    assert export_main([*args, "--work", str(tmp_path / "ck")]) == 1
    assert "--epochs" in capsys.readouterr().err


def test_a_draw_that_cannot_fit_in_memory_is_refused() -> None:
    with pytest.raises(DataError, match=r"recipe huge: .* lower the face/non-face counts"):
        check_memory(10**9, "recipe huge")  # ~34 TiB of decoded images
    check_memory(1000, "recipe small")  # ~35 MiB: fine


def test_mixed_precision_training_exports_a_float32_graph(tmp_path: Path) -> None:
    """float16 compute while training (a GPU option; also runs on a CPU), int8 export from a
    float32 rebuild of the same weights."""
    import keras

    from model_export.steps import set_precision

    data = write_faces64(tmp_path / "faces64")
    recipe = write_recipe(tmp_path / "recipe.yaml")
    common = ["--data", str(data), "--recipe", str(recipe), "--work", str(tmp_path / "ck")]
    common += ["--method", "baseline", "--epochs", "1", "--batch-size", "16"]
    try:
        assert export_main(["train", *common, "--mixed-precision"]) == 0
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        set_precision(False)
        out = tmp_path / "bundle"
        assert export_main(["export", *common, "--out", str(out)]) == 0
    finally:
        set_precision(False)  # the policy is process-global: leave it as other tests expect
    assert load_classifier(out, accelerator="cpu").card.kind == "baseline"


@pytest.mark.usefixtures("terminal_sigint")
def test_ctrl_c_leaves_a_resumable_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import keras

    data = write_faces64(tmp_path / "faces64")
    recipe = write_recipe(tmp_path / "recipe.yaml")
    args = ["train", "--data", str(data), "--recipe", str(recipe), "--work", str(tmp_path / "ck")]
    args += ["--method", "baseline", "--batch-size", "16"]
    assert export_main([*args, "--epochs", "1"]) == 0
    state_file = tmp_path / "ck" / "baseline-s0" / "state.json"
    first = json.loads(state_file.read_text())

    original = keras.callbacks.CallbackList.on_train_batch_end
    calls = {"n": 0}

    def interrupted(self: object, batch: int, logs: object = None) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # fault injection: the operator presses Ctrl-C mid-epoch (a real
            # SIGINT, raised in the main thread that runs the training loop)
            signal.raise_signal(signal.SIGINT)
        original(self, batch, logs)  # type: ignore[arg-type]

    monkeypatch.setattr(keras.callbacks.CallbackList, "on_train_batch_end", interrupted)
    assert export_main([*args, "--epochs", "3"]) == 130
    assert "resume" in capsys.readouterr().err
    assert json.loads(state_file.read_text()) == first  # epoch 1 intact, nothing half-written
    assert not (tmp_path / "ck" / "baseline-s0" / "tmp.weights.h5").exists()
    monkeypatch.setattr(keras.callbacks.CallbackList, "on_train_batch_end", original)
    assert export_main([*args, "--epochs", "3"]) == 0
    log = json.loads(state_file.read_text())["log"]
    assert [e["epoch"] for e in log] == [1, 2, 3] and log[0] == first["log"][0]
