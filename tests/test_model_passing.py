"""The threshold diagnostic (model_export.diagnostics.passing): non-faces are named by their
Caltech class, counted at or above a threshold, and turned grey by luma."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_export.diagnostics.passing import (
    grey,
    main,
    object_class,
    passing_by_class,
    recall_and_lowest,
    threshold_without,
)
from tests.model_fixtures import write_faces64, write_wider

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "models"


def test_object_class_reads_the_caltech_folder() -> None:
    assert object_class("101_ObjectCategories/lotus/image_0001.jpg") == "lotus"
    assert object_class("x/101_ObjectCategories/cougar_face/image_0002.jpg") == "cougar_face"
    assert object_class("data/UTKFace/unlabeled/1_0_0_2017.jpg") == "other"
    assert object_class("lotus") == "other"


def test_passing_counts_each_class_at_or_above_the_threshold() -> None:
    classes = np.array(["lotus", "lotus", "panda", "panda", "panda", "cup"])
    p = np.array([0.9, 0.1, 0.5, 0.49, 0.7, 0.2])
    rows = passing_by_class(p, classes, 0.5)
    assert rows == [("panda", 2, 3), ("lotus", 1, 2)]  # "cup" passes none: not listed
    assert passing_by_class(p, classes, 0.95) == []


def test_grey_keeps_luma_and_drops_colour() -> None:
    x = np.zeros((2, 4, 4, 3), np.uint8)
    x[0, ..., 0] = 200  # red
    x[1] = 90  # already grey
    g = grey(x)
    assert g.shape == x.shape and g.dtype == np.uint8
    assert np.all(g[..., 0] == g[..., 1]) and np.all(g[..., 1] == g[..., 2])
    assert np.all(g[0] == 60)  # 0.299 * 200 = 59.8
    assert np.array_equal(g[1], x[1])


def test_recall_and_lowest_cell() -> None:
    found = np.array([True, True, False, True, False, False])
    cells = np.array(["a", "a", "a", "b", "b", "b"])
    overall, lowest = recall_and_lowest(found, cells)
    assert overall == 0.5 and abs(lowest - 1 / 3) < 1e-12


def test_taking_out_the_highest_non_faces_lowers_the_threshold() -> None:
    """threshold_without: nothing taken out is the plain threshold; taking out m of the highest
    lets the m plus 2 % of the rest pass, of the original ranking."""
    from model_export.evaluate import threshold_at_fpr

    p = np.random.default_rng(3).random(1000)
    base = threshold_at_fpr(p, 0.02)
    assert threshold_without(p, 0.02, 0) == base
    assert int(np.sum(p >= base)) == 20
    for m in (1, 8):
        t = threshold_without(p, 0.02, m)
        assert t <= base
        assert int(np.sum(p >= t)) == m + int(np.floor(0.02 * (1000 - m)))
    with pytest.raises(ValueError, match="take out"):
        threshold_without(p, 0.02, 1000)


def test_the_command_reports_each_shipped_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end on made data and the shipped bundles (real int8 interpreters): one block per
    bundle with its threshold, the colour, taken-out and grey lines; bad input is one clear
    error (exit 2), never a traceback."""
    data = write_faces64(tmp_path / "faces64", faces_per_race=4, nonfaces=200)
    wider = write_wider(tmp_path / "wider-demog", per_cell=4)
    args = ["--data", str(data), "--wider", str(wider)]
    assert main(["--models", str(SHIPPED), *args, "--taken-out", "1"]) == 0
    out = capsys.readouterr().out
    for side in ("baseline", "debiased"):
        block = out.split(f"\n{side}: threshold ")[1].split("\n\n")[0]
        for label in ("colour (threshold", "colour, 1 highest non-faces taken out", "grey ("):
            assert label in block, (side, label)
        assert block.count("f = 0.5: ") == 3
    assert main(["--models", str(tmp_path / "nope"), *args]) == 2
    assert "model bundle folder not found" in capsys.readouterr().err
    assert main(["--models", str(SHIPPED), *args, "--taken-out", "100000"]) == 2
    assert "--taken-out 100000: can take out 0 to" in capsys.readouterr().err
