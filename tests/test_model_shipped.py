"""The two shipped bundles in assets/models keep the contract the exhibit relies on, and find
real faces and reject real non-faces in photos that scikit-image ships.

These read only files this project or a package ships, never the training data outside the
repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from installation.inference import Classifier, load_classifier
from installation.inference.bundle import load_bundle
from installation.region import crop_for_model
from installation.types import Region
from model_export.bundle_check import check_tflite

MODELS = Path(__file__).resolve().parents[1] / "assets" / "models"
# The models issue's budget per model (int8, Edge TPU op set): the shipped encoder (width 16,
# two convs per stage) is about 1.05 MB, the lab CNN was 0.67 MB.
MAX_MODEL_BYTES = 2_000_000


@pytest.mark.parametrize("folder", ["baseline", "debiased"])
def test_shipped_bundle_contract(folder: str) -> None:
    bundle = load_bundle(MODELS / folder)  # checks the sha256 against the card
    content = bundle.model_path.read_bytes()
    assert len(content) <= MAX_MODEL_BYTES
    summary = check_tflite(content, expect_latent=bundle.card.kind == "dbvae")
    assert summary.float_tensors == []
    card = bundle.card
    assert "non-commercial research and education only" in card.license.lower()
    assert "UTKFace" in card.license
    raw = json.loads((MODELS / folder / "card.json").read_text())
    method_id = raw["method_id"]
    # The name and method must say what was done: DB-VAE only when the DB-VAE was trained.
    assert ("DB-VAE" in card.name) == (method_id == "dbvae") == (card.kind == "dbvae")
    if method_id == "balanced":
        assert "group labels" in card.method
    faces_by_race = card.training_data["faces_by_race"]
    assert sum(faces_by_race.values()) == card.training_data["faces"]
    assert faces_by_race["White"] / card.training_data["faces"] >= 0.5  # the skew is shipped
    groups = card.display_groups()
    assert 4 <= len(groups) <= 5
    assert all(len(g.label) <= 16 for g in groups)  # readable as a kiosk bar label
    assert card.display is not None and card.display.eval_set in card.metrics["int8"]
    assert set(card.metrics) == {"float", "int8"}
    assert raw["seed_statistics"]["seeds"] >= 3
    # The status line comes from the report that produced these numbers, for this seed count.
    assert raw["status"].startswith(f"seed 0 of {raw['seed_statistics']['seeds']} shipped")
    # The kiosk shows the method's mean over all seeds (one seed on 15 faces a group is mostly
    # luck): every displayed group has it, and it is the report's mean for that group.
    report = json.loads((MODELS / "report" / "report.json").read_text())
    agg = report["aggregate"][folder]["int8"][card.display.eval_set]["groups"]
    assert card.seeds == raw["seed_statistics"]["seeds"] == len(report["runs"])
    for g in groups:
        assert g.recall_mean == agg[g.key]["mean"]
        assert g.shown == g.recall_mean


# -- what the shipped models do on real photos that scikit-image ships -----------------------

# Squares (x, y, side in photo pixels) around the astronaut Eileen Collins's face (NASA, public
# domain), from tight to the kiosk's looser framing: both shipped models find her in all of them.
ASTRONAUT_FACE = [(170, 80, 100), (160, 70, 120), (150, 60, 140), (140, 50, 160)]
# Objects, textures and scenes without a human face. Not the retina photo: a fundus image (round,
# reddish, dark surround) is taken for a face by both models, a known weakness, not a contract.
NON_FACES = (
    "brick", "cell", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
    "horse", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "rocket", "text",
)  # fmt: skip
# Of LFW's 100 background patches, the most each shipped model may fire on (docstring): the
# shipped pair of 2026-12-06 measures 2 (baseline) and 2 (balanced resampling), that of
# 2026-12-07 3 and 2.
MOST_FALSE = {"baseline": 4, "debiased": 4}


def _shipped() -> dict[str, Classifier]:
    return {f: load_classifier(MODELS / f, accelerator="cpu") for f in ("baseline", "debiased")}


def _threshold_logit(clf: Classifier) -> float:
    p = clf.card.threshold
    return float(np.log(p / (1 - p)))


def _bgr(image: np.ndarray) -> np.ndarray:
    """Any skimage picture (bool, float, grey, RGBA) as a uint8 BGR frame, as a camera gives."""
    img = np.asarray(image)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        img = np.round(255 * (img - img.min()) / max(float(img.max() - img.min()), 1e-9))
        img = img.astype(np.uint8)
    if img.ndim == 2:
        img = np.dstack([img] * 3)
    return np.ascontiguousarray(img[..., :3][..., ::-1])


def _logit(clf: Classifier, frame: np.ndarray, region: Region) -> float:
    return float(clf.predict(crop_for_model(frame, region)).logit)  # the kiosk's own crop


def test_shipped_models_find_the_astronaut_with_a_margin() -> None:
    from skimage import data

    frame = _bgr(data.astronaut())
    for name, clf in _shipped().items():
        for x, y, side in ASTRONAUT_FACE:
            logit = _logit(clf, frame, Region(x, y, side, side))
            # At least one logit above the threshold: found, and not by a hair.
            assert logit >= _threshold_logit(clf) + 1.0, (name, (x, y, side), logit)


def test_shipped_models_do_not_take_a_covered_face_for_a_face() -> None:
    """The astronaut with her face (the smallest of the squares above) covered, by a flat patch
    of its mean colour or by scikit-image's cat: what is left is her hair, collar, suit and the
    flag, and no face; at every framing up to the face at half the crop, neither model calls it
    a face, by a margin (assets/models/README.md, the covered-face diagnostic: on 1,260 such
    in-the-wild crops the shipped models fire on 2-5 %). Not every cover is this safe: the same
    hair around the coffee cup picture is called a face by both at the widest framing."""
    import cv2
    from skimage import data

    frame = _bgr(data.astronaut())
    x, y, side = ASTRONAUT_FACE[0]
    covers = {
        "flat": np.broadcast_to(
            frame[y : y + side, x : x + side].reshape(-1, 3).mean(axis=0).astype(np.uint8),
            (side, side, 3),
        ),
        "cat": cv2.resize(_bgr(data.chelsea()), (side, side), interpolation=cv2.INTER_AREA),
    }
    framings = [*ASTRONAUT_FACE[1:3], (120, 30, 200)]  # face at about 0.7 down to 0.5
    for cover_name, cover in covers.items():
        covered = frame.copy()
        covered[y : y + side, x : x + side] = cover
        for name, clf in _shipped().items():
            for fx, fy, fside in framings:
                logit = _logit(clf, covered, Region(fx, fy, fside, fside))
                assert logit <= _threshold_logit(clf) - 1.0, (name, cover_name, fside, logit)


def test_shipped_models_find_most_real_faces_and_reject_the_rest() -> None:
    """scikit-image's LFW subset: 100 faces and 100 non-face patches from the same photos
    (25x25 grey, scaled up as the kiosk scales a crop). The lab-CNN pair found 89 and 78 of the
    faces and none of the non-faces; the deeper pair of 2026-12-04 finds 93 and 95, and 1 and 0
    of the non-faces; a model that finds fewer than 70 or fires on more than 2 %
    of the patches has lost what the exhibit shows. The pair trained with in-the-wild faces too
    (2026-12-05, assets/models/README.md) finds more faces but its DB-VAE fires on 6 of these
    background patches (Wilson 95 % 2.8-12.5 %): above the 2 % its threshold was set for on
    object non-faces, a cost reported there. The pair shipped since 2026-12-06 (balanced
    resampling on the right, in-the-wild faces trained in their own surroundings) finds 96 and
    98 of the faces and fires on 2 and 2 patches (seed 0 of three; seeds 1 and 2 of its
    right-hand model fire on 8 and 6, a spread reported in assets/models/README.md). The bounds
    are those counts plus 2 (`MOST_FALSE`), so a model that gets worse still fails here; the
    baseline shipped since 2026-12-07 (step size 1e-3) finds 100 and fires on 3, and judged with
    its mirror image too (`--flip-average`) on 5, which is why that setting did not ship."""
    from skimage import data

    lfw = data.lfw_subset()  # [200, 25, 25] float in [0, 1]: faces first, then non-faces
    whole = Region(0, 0, 25, 25)
    for name, clf in _shipped().items():
        thr = _threshold_logit(clf)
        found = [
            _logit(clf, _bgr(np.round(img * 255).astype(np.uint8)), whole) >= thr for img in lfw
        ]
        assert sum(found[:100]) >= 70, (name, sum(found[:100]))
        assert sum(found[100:]) <= MOST_FALSE[name], (name, sum(found[100:]))


def test_shipped_models_reject_real_non_faces() -> None:
    """The centre square of each picture and 16 random squares of it (1/4 of its side up to all
    of it), 272 in all. The lab-CNN pair found a face in 3 of them (a clock face, the logo, a
    page) and none, none of them a centre square. The deeper pair shipped on 2026-12-04: the
    DB-VAE takes the clock's centre square for a face (a clock face: the pareidolia every face
    detector shows at its 2 % false-positive threshold). A model that fires on more than 5 %
    of the squares, or on more than one of the 16 centre squares, fails."""
    from skimage import data

    rng = np.random.default_rng(0)
    squares: list[tuple[str, np.ndarray, Region, bool]] = []
    for picture in NON_FACES:
        frame = _bgr(getattr(data, picture)())
        h, w = frame.shape[:2]
        s = min(h, w)
        squares.append((picture, frame, Region((w - s) // 2, (h - s) // 2, s, s), True))
        for _ in range(16):
            side = int(rng.integers(s // 4, s))
            x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            squares.append((picture, frame, Region(x, y, side, side), False))
    for name, clf in _shipped().items():
        thr = _threshold_logit(clf)
        hits = [(p, r, centre) for p, f, r, centre in squares if _logit(clf, f, r) >= thr]
        assert sum(1 for h in hits if h[2]) <= 1, (name, hits)
        assert len(hits) <= 0.05 * len(squares), (name, hits)


def test_shipped_models_report_the_contract_outputs() -> None:
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    for clf in _shipped().values():
        pred = clf.predict(crop)
        assert 0.0 <= pred.p_face <= 1.0
        assert (pred.latent is not None) == (clf.card.kind == "dbvae")
        if pred.latent is not None:
            assert pred.latent.shape == (clf.card.latent_dim,)


def test_logit_alone_is_the_logit_predict_reads() -> None:
    """The heatmaps' lean path (no latent read back) gives the very logit of a full read, for
    a CNN and for a DB-VAE bundle, on crops the models judge differently."""
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8) for _ in range(3)]
    crops.append(np.full((64, 64, 3), 128, np.uint8))
    for clf in _shipped().values():
        logits = [clf.logit(c) for c in crops]
        assert logits == [clf.predict(c).logit for c in crops]
        assert len(set(logits)) > 1  # the crops are told apart: the check can fail
        with pytest.raises(ValueError, match="uint8"):
            clf.logit(crops[0].astype(np.float32))
