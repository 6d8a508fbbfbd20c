"""`--threshold-nonfaces`: which non-faces each threshold is set on. `camera` adds each
validation non-face once more as a camera shows it; the thresholds, the cards and the report
all follow the set, and the default (`objects`) leaves every threshold as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_export.data import DataError, Images, Row
from model_export.sets import THRESHOLD_NONFACES, camera_nonfaces, threshold_nonfaces


def _nonfaces(n: int = 12) -> Images:
    x = np.random.default_rng(3).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    rows = [Row(f"n{i}.jpg", False, "train", {}, f"s{i}") for i in range(n)]
    return Images(x, rows)


def test_camera_copies_are_deterministic_new_images() -> None:
    val = _nonfaces()
    a, b = camera_nonfaces(val.x), camera_nonfaces(val.x)
    assert a.dtype == np.uint8 and a.shape == val.x.shape
    assert np.array_equal(a, b)  # the same seed, the same set: thresholds reproduce
    assert not np.array_equal(camera_nonfaces(val.x, seed=1), a)
    # Every copy is changed (framing, light, optics), none is its original.
    diff = np.abs(a.astype(int) - val.x.astype(int)).mean(axis=(1, 2, 3))
    assert np.all(diff > 1.0)


def test_threshold_sets() -> None:
    val = _nonfaces()
    assert threshold_nonfaces(val, "objects") is val
    both = threshold_nonfaces(val, "camera")
    assert len(both.rows) == 2 * len(val.rows) and len(both.x) == 2 * len(val.x)
    assert np.array_equal(both.x[: len(val.x)], val.x)  # the objects as they are come first
    assert np.array_equal(both.x[len(val.x) :], camera_nonfaces(val.x))
    assert set(THRESHOLD_NONFACES) == {"objects", "camera"}
    with pytest.raises(DataError, match=r"unknown threshold non-faces 'studio'.*objects, camera"):
        threshold_nonfaces(val, "studio")


def test_report_sets_thresholds_and_cards_on_the_chosen_non_faces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report --threshold-nonfaces camera --ship-to`: every threshold (float and int8, card and
    report) is the one at 2 % of the objects and their camera copies, and the card says so; the
    default report keeps the exported thresholds."""
    from model_export.cli import main as export_main
    from model_export.evaluate import threshold_at_fpr
    from model_export.recipe import load_recipe
    from model_export.sets import prepare
    from model_export.workflow import int8_probs
    from tests.model_fixtures import write_faces64, write_recipe

    data = write_faces64(tmp_path / "faces64")
    recipe = write_recipe(tmp_path / "recipe.yaml")
    out, work = tmp_path / "models", tmp_path / "ck"
    common = ["--data", str(data), "--recipe", str(recipe)]
    train = ["all", *common, "--out", str(out), "--work", str(work), "--method", "balanced"]
    assert export_main([*train, "--epochs", "2", "--seeds", "0"]) == 0
    exported = {
        f: json.loads((out / f / "card.json").read_text()) for f in ("baseline", "debiased")
    }
    assert exported["baseline"]["thresholds"]["nonfaces"]["set"] == "objects"
    run = work / "runs" / "s0"
    rep = ["report", *common, "--runs", str(run), "--works", str(work)]

    assert export_main([*rep, "--out", str(tmp_path / "rep0")]) == 0
    same = json.loads((tmp_path / "rep0" / "report.json").read_text())
    for folder, card in exported.items():
        assert same["per_run"][0][folder]["thresholds"]["int8"] == card["threshold"]

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    args = [*rep, "--out", str(tmp_path / "rep1"), "--threshold-nonfaces", "camera"]
    assert export_main([*args, "--ship-to", str(shipped)]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "rep1" / "report.json").read_text())
    cam = prepare(data, load_recipe(recipe), with_train=False, threshold_set="camera")
    assert report["threshold_nonfaces"]["set"] == "camera"
    assert report["threshold_nonfaces"]["images"] == len(cam.val_nonfaces.rows)
    for folder in ("baseline", "debiased"):
        p_val, _ = int8_probs(run / folder, cam)
        want = threshold_at_fpr(p_val, 0.02)
        card = json.loads((shipped / folder / "card.json").read_text())
        assert card["threshold"] == pytest.approx(want)
        assert card["thresholds"]["int8"] == pytest.approx(want)
        assert card["thresholds"]["nonfaces"]["set"] == "camera"
        assert report["per_run"][0][folder]["thresholds"]["int8"] == pytest.approx(want)
        assert "float" in report["per_run"][0][folder]["thresholds"]  # the checkpoint is there
        # The shown numbers are at the card's threshold: its int8 recall is the report's.
        measured = report["per_run"][0][folder]["int8"]
        for name, m in card["metrics"]["int8"].items():
            assert m["recall"] == measured[name]["recall"] and m["fpr"] == measured[name]["fpr"]
            assert [g["recall"] for g in m["groups"]] == [
                g["recall"] for g in measured[name]["groups"]
            ]
    text = (tmp_path / "rep1" / "report.md").read_text()
    assert f"2 % of {len(cam.val_nonfaces.rows)} images: the validation non-faces" in text
