"""The in-the-wild training faces diagnostic (model_export.diagnostics.wild_faces): which faces
it adds to training, which it measures on, and how it counts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_export.data import Images
from model_export.diagnostics.wild_faces import cell_recall, with_added
from model_export.paired import photo_halves
from model_export.wider import ADDED_FRACTION, crop64, load_wider, split_wider
from tests.model_fixtures import write_wider


@pytest.fixture(scope="module")
def wider(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wider(tmp_path_factory.mktemp("wild") / "wider-demog", per_cell=10)


def test_half_a_is_added_half_b_is_held_out_and_no_photo_is_on_both_sides(wider: Path) -> None:
    faces = load_wider(wider)
    split = split_wider(faces)
    sources = np.array([r.source for r in faces.rows])
    half_a = photo_halves(list(sources))
    assert 0 < half_a.sum() < len(half_a)  # both halves hold faces
    assert np.array_equal(split.held_out, ~half_a)
    assert not set(sources[half_a]) & set(sources[split.held_out])
    # The added crops are half A's faces, tight (the square the face fills), in order.
    expected = np.stack([crop64(img, ADDED_FRACTION) for img in faces.x128[half_a]])
    assert split.added.shape == (int(half_a.sum()), 64, 64, 3)
    assert np.array_equal(split.added, expected)


def test_added_faces_are_appended_as_faces(wider: Path) -> None:
    faces = load_wider(wider)
    split = split_wider(faces)
    train = Images(np.zeros((6, 64, 64, 3), np.uint8), faces.rows[:6])
    x, y = with_added(train, split.added)
    assert len(x) == len(y) == 6 + len(split.added)
    assert np.array_equal(x[6:], split.added) and (y[6:] == 1).all()
    x0, y0 = with_added(train, split.added[:0])  # the control: nothing added
    assert np.array_equal(x0, train.x) and np.array_equal(y0, train.y)


def test_recall_is_counted_on_held_out_faces_only(wider: Path) -> None:
    faces = load_wider(wider)
    images = faces.at_fraction(0.7)
    held = split_wider(faces).held_out
    darker = images.attr("skin_group") == "Darker"
    # Every darker face found, no lighter one: per cell 1 or 0, overall the darker share of B.
    r = cell_recall(darker, images, held)
    assert r["count"] == int(held.sum())
    assert r["all"] == pytest.approx(round(float(darker[held].mean()), 4))
    for cell, want in (("Darker Female", 1.0), ("Darker Male", 1.0), ("Lighter Female", 0.0)):
        assert r[cell]["recall"] == want
        assert 0 < r[cell]["count"] < 10  # a part of the cell's 10 faces: half B only


def test_a_share_of_the_half_trains_on_some_of_its_photos_and_measures_the_same_faces(
    wider: Path,
) -> None:
    """`--wider-train-share`: a seeded draw of the half's photos (never a photo of the other
    half), the held-out faces unchanged, the same draw on every call; out-of-range shares are
    refused with the option's name."""
    from model_export.data import DataError
    from model_export.wider import check_share

    faces = load_wider(wider)
    full = split_wider(faces)
    half = split_wider(faces, share=0.5)
    again = split_wider(faces, share=0.5)
    assert np.array_equal(half.held_out, full.held_out)
    paths = {r.path for r in half.added_rows}
    assert paths < {r.path for r in full.added_rows}  # a proper part of half A
    assert len(paths) == pytest.approx(len(full.added_rows) / 2, abs=1)
    assert [r.path for r in again.added_rows] == [r.path for r in half.added_rows]
    assert len(half.added) == len(half.added_rows) == len(half.added128)
    photos = {r.source for r in half.added_rows}
    held = {r.source for r, h in zip(faces.rows, full.held_out, strict=True) if h}
    assert not photos & held
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(DataError, match="--wider-train-share"):
            check_share(bad)
