"""model_export data side: readers and their errors, the grouped split, the recipe."""

from __future__ import annotations

import pytest

# Training tests: they need the train extra (TensorFlow, Keras, h5py). A kiosk developer with
# only `.[runtime,dev]` gets them skipped with this reason; `make test` installs and runs them.
pytest.importorskip("h5py", reason="needs the train extra: pip install -e '.[train]'")
pytestmark = pytest.mark.train

from pathlib import Path

import cv2
import h5py
import numpy as np

from model_export.data import DataError, load_images, read_labels, split_train_val
from model_export.readers import read_celeba, read_mit_h5
from model_export.recipe import DEFAULT_RECIPE, Recipe, draw, load_recipe
from tests.model_fixtures import write_faces64


@pytest.fixture(scope="module")
def faces64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_faces64(tmp_path_factory.mktemp("faces64"))


def test_labels_and_images(faces64: Path) -> None:
    rows = read_labels(faces64)
    assert len(rows) == 240 + 120 + 40 + 20
    imgs = load_images(faces64, rows[:10])
    assert imgs.x.shape == (10, 64, 64, 3) and imgs.x.dtype == np.uint8
    assert imgs.skipped == []


def test_unreadable_images_are_skipped_and_counted(faces64: Path, tmp_path: Path) -> None:
    rows = read_labels(faces64)[:5]
    broken = tmp_path / "broken"
    for r in rows:
        (broken / r.path).parent.mkdir(parents=True, exist_ok=True)
        (broken / r.path).write_bytes(
            cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
        )
    (broken / rows[2].path).write_bytes(b"not a jpeg")
    imgs = load_images(broken, rows)
    assert len(imgs.rows) == 4 and imgs.skipped == [rows[2].path]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "not found"),
        ("path,label\nx.jpg,1\n", "missing column"),
        ("path,is_face,split\nx.jpg,yes,train\n", "is_face must be 0/1"),
        ("path,is_face,split\n", "no rows"),
    ],
)
def test_bad_labels_csv(tmp_path: Path, content: str | None, words: str) -> None:
    if content is not None:
        (tmp_path / "labels.csv").write_text(content)
    with pytest.raises(DataError, match=words) as err:
        read_labels(tmp_path)
    assert "labels.csv" in str(err.value)


def test_split_is_deterministic_and_grouped_by_source_photo(faces64: Path) -> None:
    rows = read_labels(faces64)
    train1, val1 = split_train_val(rows, 0.3)
    _, val2 = split_train_val(rows, 0.3)
    assert [r.path for r in val1] == [r.path for r in val2]
    assert 0 < len(val1) < len(train1)
    val_sources = {r.source for r in val1}
    assert not val_sources & {r.source for r in train1}  # no photo on both sides
    assert all(r.split == "train" for r in val1 + train1)
    nonface_sources = [r.source for r in val1 if not r.is_face]
    assert any(nonface_sources.count(s) == 2 for s in nonface_sources)  # both crops together


def test_recipe_draws_exact_counts(faces64: Path) -> None:
    rows, _ = split_train_val(read_labels(faces64), 0.1)
    recipe = Recipe(name="t", faces={"White": 30, "Black": 5}, nonfaces=50)
    drawn = draw(rows, recipe)
    races = [r.attrs.get("race") for r in drawn if r.is_face]
    assert races.count("White") == 30 and races.count("Black") == 5
    assert sum(not r.is_face for r in drawn) == 50
    assert [r.path for r in draw(rows, recipe)] == [r.path for r in drawn]  # seeded


def test_recipe_that_cannot_be_met(faces64: Path) -> None:
    rows = read_labels(faces64)
    with pytest.raises(DataError, match="race=Black"):
        draw(rows, Recipe(name="t", faces={"Black": 10_000}, nonfaces=1))
    with pytest.raises(DataError, match="race=Martian"):
        draw(rows, Recipe(name="t", faces={"Martian": 1}, nonfaces=1))


def test_shipped_recipe_is_skewed() -> None:
    r = load_recipe()
    total = sum(r.faces.values())
    assert r.faces["White"] / total == pytest.approx(0.95)


@pytest.mark.parametrize(
    ("name", "white_share"),
    [("race-balanced.yaml", 0.2), ("white-only.yaml", 1.0), ("skewed.yaml", 0.8)],
)
def test_diagnostic_recipes_load(name: str, white_share: float) -> None:
    # The diagnostics of assets/models/README.md are reproducible from these files.
    r = load_recipe(DEFAULT_RECIPE.parent / name)
    assert r.group_by == "race" and "not shipped" in r.note
    assert r.faces["White"] / sum(r.faces.values()) == pytest.approx(white_share)


def test_bad_recipe_file(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("name: x\nfaces: {White: 1}\nnonfaces: 1\ncolour: blue\n")
    with pytest.raises(DataError, match=str(bad)):
        load_recipe(bad)


def test_mit_h5_reader_reverses_bgr(tmp_path: Path) -> None:
    path = tmp_path / "train_face.h5"
    imgs = np.zeros((3, 64, 64, 3), np.uint8)
    imgs[..., 0] = 200  # blue in the lab's BGR storage
    with h5py.File(path, "w") as f:
        f["images"] = imgs
        f["labels"] = np.array([[1.0], [0.0], [1.0]])
    out = read_mit_h5(path)
    assert out.x[0, 0, 0].tolist() == [0, 0, 200]
    assert out.y.tolist() == [1.0, 0.0, 1.0]
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["pixels"] = imgs
    with pytest.raises(DataError, match="'images' and 'labels'"):
        read_mit_h5(tmp_path / "bad.h5")


def test_celeba_reader_and_missing_attribute_file(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    for name in ("000001.jpg", "000002.jpg"):
        cv2.imwrite(str(root / "img_align_celeba" / name), np.full((218, 178, 3), 90, np.uint8))
    with pytest.raises(DataError, match=r"list_attr_celeba\.txt"):
        read_celeba(root)
    (root / "list_attr_celeba.txt").write_text(
        "2\nMale Pale_Skin Smiling\n000001.jpg 1 -1 1\n000002.jpg -1 1 -1\n"
    )
    out = read_celeba(root)
    assert out.x.shape == (2, 64, 64, 3)
    assert [r.attrs for r in out.rows] == [
        {"gender": "Male", "skin": "Not pale"},
        {"gender": "Female", "skin": "Pale"},
    ]


def test_camera_shift_set_is_deterministic_and_keeps_labels(faces64: Path) -> None:
    from model_export.camera_shift import make_camera_shift

    rows = read_labels(faces64)
    faces = load_images(faces64, [r for r in rows if r.path.startswith("eval/utkface/")])
    bgs = load_images(faces64, [r for r in rows if not r.is_face][:10]).x
    a = make_camera_shift(faces, bgs, seed=1)
    b = make_camera_shift(faces, bgs, seed=1)
    assert np.array_equal(a.x, b.x)
    n = len(faces.rows)
    assert [r.attrs for r in a.rows] == [r.attrs for r in faces.rows] * 3  # 3 variants each
    assert a.x.shape == (3 * n, *faces.x.shape[1:])
    assert len({r.path for r in a.rows}) == 3 * n
    assert not np.array_equal(a.x[:n], a.x[n : 2 * n])  # variants differ
    one = make_camera_shift(faces, bgs, seed=1, variants=1)
    assert np.array_equal(one.x, a.x[:n])
    # The face shrinks into a real background: the corners come from the backgrounds.
    assert np.abs(one.x[:, :4, :4].astype(int) - faces.x[:, :4, :4].astype(int)).mean() > 10
    with pytest.raises(ValueError, match="variants"):
        make_camera_shift(faces, bgs, variants=0)
