"""The two shipped bundles in assets/models keep the contract the exhibit relies on.

These read only files this project ships (assets/models), never the training data outside
the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from installation.inference import load_classifier
from installation.inference.bundle import load_bundle
from model_export.bundle_check import check_tflite

MODELS = Path(__file__).resolve().parents[1] / "assets" / "models"
ONE_MB = 1_000_000


@pytest.mark.parametrize("folder", ["baseline", "debiased"])
def test_shipped_bundle_contract(folder: str) -> None:
    bundle = load_bundle(MODELS / folder)  # checks the sha256 against the card
    content = bundle.model_path.read_bytes()
    assert len(content) <= ONE_MB
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


def test_shipped_models_run_and_agree_with_their_threshold() -> None:
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    for folder in ("baseline", "debiased"):
        clf = load_classifier(MODELS / folder, accelerator="cpu")
        pred = clf.predict(crop)
        assert 0.0 <= pred.p_face <= 1.0
        assert pred.face == (pred.p_face >= clf.card.threshold)
        assert (pred.latent is not None) == (clf.card.kind == "dbvae")
