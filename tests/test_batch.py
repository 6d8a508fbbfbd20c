"""The heatmaps' occlusions in one invoke, through real int8 bundles and the real interpreter:
the batch reads the very logits one crop at a time does, and anything that does not hold
leaves the heatmaps on the one-by-one path (installation.inference.batch)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from installation.heatmap import occlusion_map
from installation.inference import batch as batch_mod
from installation.inference.backends import content_interpreter
from installation.inference.batch import (
    BatchError,
    Int8BatchReader,
    batch_agnostic_model,
    load_batch_reader,
)
from installation.inference.classifier import load_classifier, load_occluder
from installation.inference.views import zoom_view
from installation.paths import MODELS_DIR

BUNDLES = ["tiny_baseline", "tiny_dbvae"]


def _crops(n: int, seed: int) -> np.ndarray:
    """uint8 [n, 64, 64, 3]: noise over a smooth gradient, so the logits differ crop to crop."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, 64, dtype=np.float32)[None, :, None] * rng.uniform(
        0.2, 1, (n, 1, 1, 1)
    )
    noise = rng.normal(0, 25, (n, 64, 64, 3))
    return np.clip(ramp + noise + 20, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", BUNDLES)
def test_a_batch_reads_each_crops_own_logit(tiny_bundles: Path, name: str) -> None:
    """Row k of one invoke of N crops is the logit of crop k alone, to the bit, for batches of
    several sizes (each one a resize of the same interpreter)."""
    one = load_classifier(tiny_bundles / name, accelerator="cpu")
    content = batch_agnostic_model(one.model_file.read_bytes())
    reader = Int8BatchReader(content_interpreter(content))
    crops = _crops(17, seed=3)
    want = np.array([one.logit(c) for c in crops])
    assert len(set(want.tolist())) > 3  # the crops are told apart: a test that can fail
    for n in (17, 5, 1, 17):
        got = reader.logits(crops[:n])
        assert got.shape == (n,)
        assert np.array_equal(got, want[:n])


@pytest.mark.parametrize("folder", ["baseline", "debiased"])
def test_shipped_heatmaps_run_batched_and_read_the_same_maps(folder: str) -> None:
    occluder = load_occluder(MODELS_DIR / folder)
    one = load_classifier(MODELS_DIR / folder, accelerator="cpu")
    assert occluder.batched and not one.batched
    for crop in _crops(6, seed=11):
        assert np.array_equal(
            occlusion_map(occluder.occluded_logits, crop), occlusion_map(one.occluded_logits, crop)
        )


def test_batched_zoom_maps_are_the_deciding_views(tiny_bundles: Path, tmp_path: Path) -> None:
    """With a zoom in the card, the batch holds the zoomed crop and its covered copies when the
    zoomed view decides, and the same numbers come out as one view at a time."""
    folder = tmp_path / "zoomed"
    shutil.copytree(tiny_bundles / "tiny_baseline", folder)
    card = json.loads((folder / "card.json").read_text())
    card["zoom"] = 0.7
    (folder / "card.json").write_text(json.dumps(card))
    occluder = load_occluder(folder)
    one = load_classifier(folder, accelerator="cpu")
    plain = load_classifier(tiny_bundles / "tiny_baseline", accelerator="cpu")
    assert occluder.batched
    fill = np.full(3, 90, np.uint8)
    corners = [(0, 0), (16, 32), (48, 48)]
    decided = set()
    for crop in _crops(24, seed=5):
        wins = one.zoom_decides(crop)
        decided.add(wins)
        base, covered = occluder.occluded_logits(crop, fill, corners, 16)
        want_base, want_covered = one.occluded_logits(crop, fill, corners, 16)
        assert base == want_base and np.array_equal(covered, want_covered)
        work = crop.copy()
        work[16:32, 32:48] = fill
        want = plain.logit(zoom_view(work, 0.7)) if wins else plain.logit(work)
        assert covered[1] == pytest.approx(want, abs=1e-6)
    assert decided == {True, False}  # both views were measured


def test_batched_flip_average_maps_equal_one_view_at_a_time(
    tiny_bundles: Path, tmp_path: Path
) -> None:
    """With `flip_average`, the batch runs the crop's and the mirror image's occlusions and
    gives the numbers the one-by-one reader gives."""
    folder = tmp_path / "flip"
    shutil.copytree(tiny_bundles / "tiny_baseline", folder)
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps(card | {"flip_average": True}))
    occluder = load_occluder(folder)
    one = load_classifier(folder, accelerator="cpu")
    assert occluder.batched and occluder.flip_average
    for crop in _crops(6, seed=8):
        assert np.array_equal(
            occlusion_map(occluder.occluded_logits, crop), occlusion_map(one.occluded_logits, crop)
        )


def test_a_batch_that_reads_other_logits_is_refused(tiny_bundles: Path) -> None:
    one = load_classifier(tiny_bundles / "tiny_baseline", accelerator="cpu")

    def off_by_a_step(*args: object) -> tuple[float, np.ndarray]:
        base, covered = one.occluded_logits(*args)  # type: ignore[arg-type]
        covered = covered.copy()
        covered[3] += 0.05  # one covered crop's logit a little off
        return base, covered

    with pytest.raises(BatchError, match="other logits"):
        load_batch_reader(one.model.content, off_by_a_step)
    # The true reference passes: the refusal above came from the difference alone.
    assert load_batch_reader(one.model.content, one.occluded_logits).side == 64


def test_a_model_without_a_batch_1_reshape_is_named(tiny_bundles: Path) -> None:
    content = batch_agnostic_model((tiny_bundles / "tiny_baseline" / "model.tflite").read_bytes())
    with pytest.raises(BatchError, match="no RESHAPE"):
        batch_agnostic_model(content)  # already rewritten: nothing left to rewrite
    with pytest.raises(BatchError, match="cannot be parsed"):
        batch_agnostic_model(b"TFL3" + bytes(64))


def test_heatmaps_fall_back_one_by_one_with_the_reason_logged(
    tiny_bundles: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection: a runtime where the rewrite cannot be made still gives the same maps,
    one occluded crop at a time, and says why in the log."""

    def no_schema(content: bytes) -> bytes:
        raise BatchError("no TFLite flatbuffer schema in this runtime (injected)")

    monkeypatch.setattr(batch_mod, "batch_agnostic_model", no_schema)
    with caplog.at_level(logging.INFO, logger="installation.inference.classifier"):
        occluder = load_occluder(tiny_bundles / "tiny_dbvae")
    assert not occluder.batched
    assert "one occluded crop at a time" in caplog.text and "injected" in caplog.text
    one = load_classifier(tiny_bundles / "tiny_dbvae", accelerator="cpu")
    crop = _crops(1, seed=9)[0]
    assert np.array_equal(
        occlusion_map(occluder.occluded_logits, crop), occlusion_map(one.occluded_logits, crop)
    )
