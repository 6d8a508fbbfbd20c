"""Inference on the real tiny int8 bundles; bad bundles; backend selection (Edge TPU faked)."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from installation.inference import BackendError, BundleError, load_classifier
from installation.inference import backends as backends_mod
from installation.inference.int8 import input_lut
from installation.inference.views import (
    CROP_ALONE,
    Views,
    check_zoom,
    flip_views,
    mirrored_corners,
    zoom_view,
)
from installation.paths import MODELS_DIR
from tests.tiny_bundles import synthetic_set


@pytest.fixture
def bundle(tmp_path: Path, tiny_bundles: Path) -> Path:
    out = tmp_path / "dbvae"
    shutil.copytree(tiny_bundles / "tiny_dbvae", out)
    return out


def _u8(images: np.ndarray) -> list[np.ndarray]:
    return [np.round(img * 255).astype(np.uint8) for img in images]


@pytest.mark.parametrize("name", ["tiny_baseline", "tiny_dbvae"])
def test_predictions_follow_the_image(tiny_bundles: Path, name: str) -> None:
    clf = load_classifier(tiny_bundles / name, accelerator="cpu")
    x, y, _ = synthetic_set(64, seed=99)
    preds = [clf.predict(img) for img in _u8(x)]
    acc = np.mean([p.face == bool(t) for p, t in zip(preds, y, strict=True)])
    assert acc > 0.9  # the models learned the synthetic task; a broken LUT or output map fails
    for p in preds:
        assert 0 <= p.p_face <= 1 and p.ms > 0
        assert p.face == (p.p_face >= clf.card.threshold)
        assert p.p_face == pytest.approx(1 / (1 + np.exp(-p.logit)))
    assert clf.backend == "litert-cpu"
    if name == "tiny_dbvae":
        assert preds[0].latent is not None and preds[0].latent.shape == (8,)
        assert clf.rarity is not None
        assert 0 <= clf.rarity.percentile(preds[0].latent) <= 1
    else:
        assert preds[0].latent is None and clf.rarity is None


def test_zoom_view_is_the_centre_resized_back() -> None:
    crop = np.zeros((64, 64, 3), np.uint8)
    crop[9:54, 9:54] = (200, 100, 50)  # the centre 45x45 (0.7 of the side, rounded)
    view = zoom_view(crop, 0.7)
    assert view.shape == (64, 64, 3) and view.dtype == np.uint8
    assert (view == (200, 100, 50)).all()  # nothing of the border is left in the view
    crop[31, 31] = 0  # a pixel of the centre reaches the view
    assert (zoom_view(crop, 0.7) != view).any()
    for bad in (0.2, 1.0, 1.5):
        with pytest.raises(ValueError, match="share of its side"):
            check_zoom(bad)
    check_zoom(None)


def test_a_zoom_card_scores_the_larger_of_two_views(tmp_path: Path, tiny_bundles: Path) -> None:
    """Through the real int8 model: with `zoom` in the card, the score is the larger logit of
    the crop and of its zoomed centre; heatmaps are measured on the view that decided."""
    folder = tmp_path / "zoomed"
    shutil.copytree(tiny_bundles / "tiny_baseline", folder)
    card = json.loads((folder / "card.json").read_text())
    card["zoom"] = 0.7
    (folder / "card.json").write_text(json.dumps(card))
    plain = load_classifier(tiny_bundles / "tiny_baseline", accelerator="cpu")
    zoomed = load_classifier(folder, accelerator="cpu")
    assert plain.zoom is None and zoomed.zoom == 0.7
    x, _, _ = synthetic_set(32, seed=7)
    decided = {False: 0, True: 0}
    for img in _u8(x):
        one = plain.logit(img)
        two = plain.logit(zoom_view(img, 0.7))
        pred = zoomed.predict(img)
        assert pred.logit == pytest.approx(max(one, two))
        assert zoomed.logit(img) == pytest.approx(max(one, two))
        assert pred.face == (pred.p_face >= zoomed.card.threshold)
        wins = zoomed.zoom_decides(img)
        decided[wins] += 1
        fill = img.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
        corners = [(0, 0), (16, 32), (48, 48)]
        base, covered = zoomed.occluded_logits(img, fill, corners, 16)
        assert base == pytest.approx(max(one, two))
        for (y, xx), got in zip(corners, covered, strict=True):
            work = img.copy()
            work[y : y + 16, xx : xx + 16] = fill
            want = plain.logit(zoom_view(work, 0.7)) if wins else plain.logit(work)
            assert got == pytest.approx(want, abs=1e-5)
    assert decided[True] > 0 and decided[False] > 0  # both branches ran
    with pytest.raises(ValueError, match="sets no zoom"):
        plain.view_logit(_u8(x)[0], True)


def _card_with(tmp_path: Path, tiny_bundles: Path, **fields: Any) -> Path:
    folder = tmp_path / "_".join(fields)
    shutil.copytree(tiny_bundles / "tiny_baseline", folder)
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps(card | fields))
    return folder


def test_mirrored_views_and_corners() -> None:
    crop = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    flipped = flip_views(crop)
    assert flipped.flags.c_contiguous and (flipped[:, 0] == crop[:, 3]).all()
    assert (flip_views(crop[None])[0] == flipped).all()  # a batch flips image by image
    # The square at x = 0 of a 4-wide image, 1 wide, is at x = 3 in the mirror image.
    assert mirrored_corners([(0, 0), (2, 1)], 1, 4) == [(0, 3), (2, 2)]


def test_views_round_trip_through_the_card_and_refuse_a_bad_zoom() -> None:
    for views in (CROP_ALONE, Views(0.7), Views(None, True), Views(0.7, True)):
        assert Views.of_card(views.card_fields()) == views
    assert CROP_ALONE.card_fields() == {} and CROP_ALONE.count == 1
    with pytest.raises(ValueError, match="share of its side"):
        Views(1.5)


def test_a_flip_average_card_scores_the_mean_of_crop_and_mirror(
    tmp_path: Path, tiny_bundles: Path
) -> None:
    """Through the real int8 model: with `flip_average` the score is the mean of the crop's
    logit and its mirror image's, in predict, logit and the heatmaps' occlusions alike; with a
    zoom as well, each view is averaged with its mirror and the larger view wins."""
    plain = load_classifier(tiny_bundles / "tiny_baseline", accelerator="cpu")
    flip = load_classifier(_card_with(tmp_path, tiny_bundles, flip_average=True), "cpu")
    both = load_classifier(_card_with(tmp_path, tiny_bundles, flip_average=True, zoom=0.7), "cpu")
    assert (plain.views.count, flip.views.count, both.views.count) == (1, 2, 4)
    x, _, _ = synthetic_set(24, seed=3)
    moved = 0
    for img in _u8(x):
        want = (plain.logit(img) + plain.logit(img[:, ::-1].copy())) / 2
        moved += abs(want - plain.logit(img)) > 1e-3
        pred = flip.predict(img)
        assert pred.logit == pytest.approx(want) and flip.logit(img) == pytest.approx(want)
        assert pred.face == (pred.p_face >= flip.card.threshold)
        fill = img.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
        corners = [(0, 0), (16, 32), (48, 40)]
        base, covered = flip.occluded_logits(img, fill, corners, 16)
        assert base == pytest.approx(want)
        for (y, xx), got in zip(corners, covered, strict=True):
            work = img.copy()
            work[y : y + 16, xx : xx + 16] = fill
            assert got == pytest.approx(flip.logit(work), abs=1e-5)
        z = zoom_view(img, 0.7)
        zoomed = (plain.logit(z) + plain.logit(z[:, ::-1].copy())) / 2
        assert both.predict(img).logit == pytest.approx(max(want, zoomed))
    assert moved > 0  # the mirror image does change the score: the mean is not the crop's own


def test_lut_matches_quantization_formula() -> None:
    lut = input_lut(1 / 255, -128, np.int8)
    assert lut[0] == -128 and lut[255] == 127 and lut[128] == 0
    lut2 = input_lut(0.0039, -128, np.int8)
    assert lut2[255] == 127  # clipped, not wrapped


def test_rejects_a_wrong_crop(tiny_bundles: Path) -> None:
    clf = load_classifier(tiny_bundles / "tiny_baseline")
    with pytest.raises(ValueError, match="uint8"):
        clf.predict(np.zeros((64, 64, 3), np.float32))


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("no_model", "model.tflite: missing"),
        ("no_card", "card.json is missing"),
        ("bad_json", "not readable JSON"),
        ("card_contract", "does not follow the bundle contract"),
        ("threshold_nan", "threshold: Input should be a finite number"),
        ("sha", "does not match card.json"),
        ("corrupt", "does not match card.json"),
        ("corrupt_with_sha", "not a valid TFLite model"),
        ("quant_mismatch", "card does not match model"),
        ("bad_latent", "latent.npz"),
        ("latent_dims", "5 dimensions, model has 8"),
        ("card_outputs", "card does not match model (outputs"),
        ("baseline_model_as_dbvae", "needs output 1, the latent mean"),
        ("edgetpu_sha", "model_edgetpu.tflite: sha256"),
        ("no_folder", "bundle folder not found"),
        ("card_not_utf8", "card.json is not UTF-8"),
        ("card_deep", "nested too deeply"),
        ("latent_truncated", "latent.npz"),
        ("input_shape", "the model cannot be prepared"),
        ("zoom_range", "zoom"),
    ],
)
def test_bad_bundles_get_clear_errors(
    bundle: Path, tiny_bundles: Path, damage: str, words: str
) -> None:
    tiny = tiny_bundles
    card_path = bundle / "card.json"
    card = json.loads(card_path.read_text())
    model = bundle / "model.tflite"
    if damage == "no_model":
        model.unlink()
    elif damage == "no_card":
        card_path.unlink()
    elif damage == "bad_json":
        card_path.write_text("{not json")
    elif damage == "card_contract":
        del card["threshold"]
        card_path.write_text(json.dumps(card))
    elif damage == "threshold_nan":
        card["threshold"] = float("nan")
        card_path.write_text(json.dumps(card))
    elif damage == "sha":
        card["sha256"] = "0" * 64
        card_path.write_text(json.dumps(card))
    elif damage in ("corrupt", "corrupt_with_sha"):
        model.write_bytes(np.random.default_rng(0).bytes(4096))
        if damage == "corrupt_with_sha":
            card["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
            card_path.write_text(json.dumps(card))
    elif damage == "quant_mismatch":
        card["input"]["zero_point"] = 0
        card_path.write_text(json.dumps(card))
    elif damage == "zoom_range":
        card["zoom"] = 1.5
        card_path.write_text(json.dumps(card))
    elif damage == "bad_latent":
        (bundle / "latent.npz").write_bytes(b"nope")
    elif damage == "latent_dims":
        with np.load(bundle / "latent.npz") as npz:
            arrays = dict(npz)
        arrays["edges"], arrays["density"] = arrays["edges"][:5], arrays["density"][:5]
        np.savez(bundle / "latent.npz", **arrays)
    elif damage == "card_outputs":
        card["outputs"][1]["shape"] = [1, 9]
        card_path.write_text(json.dumps(card))
    elif damage == "baseline_model_as_dbvae":
        shutil.copy(tiny / "tiny_baseline" / "model.tflite", model)
        card["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
        card_path.write_text(json.dumps(card))
    elif damage == "edgetpu_sha":
        shutil.copy(model, bundle / "model_edgetpu.tflite")
        card["edgetpu_sha256"] = "1" * 64
        card_path.write_text(json.dumps(card))
    elif damage == "no_folder":
        shutil.rmtree(bundle)
    elif damage == "card_not_utf8":
        card_path.write_bytes(card_path.read_bytes().replace(b'"name"', b'"n\xe4me"', 1))
    elif damage == "card_deep":
        card_path.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "latent_truncated":
        latent = bundle / "latent.npz"
        latent.write_bytes(latent.read_bytes()[: latent.stat().st_size // 2])
    elif damage == "input_shape":
        # The same network with its input tensor declared 32x32: LiteRT rejects it in
        # allocate_tensors (RuntimeError), before any friendly shape check could run.
        data = model.read_bytes()
        old, new = struct.pack("<5i", 4, 1, 64, 64, 3), struct.pack("<5i", 4, 1, 32, 32, 3)
        assert data.count(old) == 1
        model.write_bytes(data.replace(old, new))
        card["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
        card_path.write_text(json.dumps(card))
    with pytest.raises(BundleError) as err:
        load_classifier(bundle, accelerator="cpu")
    msg = str(err.value)
    assert words in msg
    assert str(bundle) in msg
    assert "re-" in msg or "make models" in msg  # says how to fix it


class FakeDelegate:
    """Stands in for libedgetpu (no Edge TPU here); LiteRT accepts no foreign object, so the
    fake interpreter class below records what it was asked to load instead."""


def _fake_runtime(monkeypatch: pytest.MonkeyPatch, loads: bool) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    real = backends_mod._runtime

    def fake_load(library: str, options: dict[str, str] | None = None) -> FakeDelegate:
        calls.append({"library": library, "options": options})
        if not loads:
            raise ValueError(f"Failed to load delegate from {library}")
        return FakeDelegate()

    name, interpreter_cls, _ = real()

    def interpreter(**kwargs: Any) -> Any:
        # Run the (CPU) model the selection picked, without the fake delegate: its bytes, as
        # read and checked by the bundle (a mapped file can change under the running kiosk).
        calls.append({"model_bytes": len(kwargs["model_content"])})
        kwargs.pop("experimental_delegates", None)
        return interpreter_cls(**kwargs)

    monkeypatch.setattr(backends_mod, "load_delegate", fake_load)
    monkeypatch.setattr(backends_mod, "_runtime", lambda: (name, interpreter, fake_load))
    return calls


def test_auto_uses_edgetpu_model_when_the_delegate_loads(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(bundle / "model.tflite", bundle / "model_edgetpu.tflite")
    calls = _fake_runtime(monkeypatch, loads=True)
    clf = load_classifier(bundle, accelerator="auto", edgetpu_device="usb:0")
    assert clf.backend == "litert-edgetpu:usb:0"
    assert clf.model_file.name == "model_edgetpu.tflite"
    assert calls[0] == {"library": "libedgetpu.so.1", "options": {"device": "usb:0"}}


def test_auto_falls_back_to_cpu(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(bundle / "model.tflite", bundle / "model_edgetpu.tflite")
    _fake_runtime(monkeypatch, loads=False)
    clf = load_classifier(bundle, accelerator="auto")
    assert clf.backend == "litert-cpu"
    assert clf.model_file.name == "model.tflite"


def test_auto_without_edgetpu_model_never_tries_the_delegate(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_runtime(monkeypatch, loads=True)
    assert load_classifier(bundle, accelerator="auto").backend == "litert-cpu"
    assert not any("library" in c for c in calls)


def test_explicit_edgetpu_that_cannot_load_says_what_to_install(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(bundle / "model.tflite", bundle / "model_edgetpu.tflite")
    _fake_runtime(monkeypatch, loads=False)
    with pytest.raises(BackendError, match="libedgetpu1-std"):
        load_classifier(bundle, accelerator="edgetpu")


def test_explicit_edgetpu_without_compiled_model(bundle: Path) -> None:
    with pytest.raises(BackendError, match="edgetpu_compiler"):
        load_classifier(bundle, accelerator="edgetpu")


# LiteRT's Delegate.__del__ trips over its own half-built object when the library is missing.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_real_missing_libedgetpu_is_caught(bundle: Path) -> None:
    """No monkeypatching: the real loader fails here (no libedgetpu) and auto falls back."""
    shutil.copy(bundle / "model.tflite", bundle / "model_edgetpu.tflite")
    assert load_classifier(bundle, accelerator="auto").backend == "litert-cpu"
    with pytest.raises(BackendError):
        load_classifier(bundle, accelerator="edgetpu")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_gpu_without_delegate(bundle: Path) -> None:
    with pytest.raises(BackendError, match="GPU delegate"):
        load_classifier(bundle, accelerator="gpu")


def test_predict_benchmark(benchmark, tiny_bundles: Path) -> None:  # type: ignore[no-untyped-def]
    clf = load_classifier(tiny_bundles / "tiny_dbvae")
    crop = _u8(synthetic_set(2, seed=3)[0])[0]
    pred = benchmark(clf.predict, crop)
    assert pred.latent is not None


def test_runtime_never_imports_tensorflow(tiny_bundles: Path) -> None:
    """The kiosk reads bundles only: loading and running both models pulls in no TF/Keras."""
    code = (
        "import sys, numpy as np\n"
        "from installation.inference import load_classifier\n"
        f"for name in ('tiny_baseline', 'tiny_dbvae'):\n"
        f"    clf = load_classifier({str(tiny_bundles)!r} + '/' + name)\n"
        "    clf.predict(np.zeros((64, 64, 3), np.uint8))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(bad)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert res.stdout.strip() == "[]"


def test_a_model_file_truncated_or_rewritten_under_a_running_kiosk_changes_nothing(
    tmp_path: Path,
) -> None:
    # TFLite maps a model_path: truncating the file (cp over it truncates first) killed the
    # process with SIGBUS at the next invoke. In a child process, so that old failure cannot
    # take the test runner down with it. The shipped model: its graph reads weights outside
    # XNNPACK's packed copies, as a real one does.
    bundle = tmp_path / "baseline"
    shutil.copytree(MODELS_DIR / "baseline", bundle)
    script = f"""
import numpy as np
from pathlib import Path
from installation.inference import load_classifier
clf = load_classifier(Path({str(bundle)!r}), accelerator="cpu")
crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
before = clf.predict(crop).logit
model = Path({str(bundle)!r}) / "model.tflite"
with model.open("r+b") as f:
    f.truncate(0)
after = clf.predict(crop).logit
model.write_bytes(b"x" * 4096)  # another file's bytes in its place
again = clf.predict(crop).logit
print(before == after == again)
"""
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 0, (res.returncode, res.stderr[-500:])
    assert res.stdout.strip() == "True"
