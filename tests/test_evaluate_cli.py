"""`bias-mirror-export evaluate --json` on the checked-in tiny bundles and a generated faces64."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from installation.inference import load_classifier
from model_export.cli import main as export_main
from model_export.data import load_images, read_labels
from tests.model_fixtures import write_faces64


@pytest.fixture(scope="module")
def faces64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_faces64(tmp_path_factory.mktemp("eval") / "faces64", faces_per_race=2)


def test_evaluate_json_schema_and_values(
    faces64: Path, tiny_bundles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export_main(["evaluate", "--models", str(tiny_bundles), "--data", str(faces64)]) == 0
    assert "worst" in capsys.readouterr().out  # the human-readable table
    rc = export_main(["evaluate", "--models", str(tiny_bundles), "--data", str(faces64), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == 1 and out["fpr_target"] == 0.02
    assert set(out["models"]) == {"tiny_baseline", "tiny_dbvae"}
    rows = [r for r in read_labels(faces64) if r.path.startswith("eval/mit6s191/")]
    mit = load_images(faces64, rows)
    for name, res in out["models"].items():
        assert {"name", "kind", "method", "threshold", "card_threshold", "int8"} <= set(res)
        assert set(res["int8"]) == {"mit6s191", "utkface", "camera_shift"}
        for m in res["int8"].values():
            assert m["fpr"] <= 0.02 + 1e-9
            finest = [g for g in m["groups"] if len(g["attrs"]) == 2]
            assert sum(g["count"] for g in finest) == m["count"]
            recalls = {g["key"]: g["recall"] for g in finest}
            assert m["worst_group"] == min(recalls, key=recalls.__getitem__)
            assert m["gap"] == pytest.approx(max(recalls.values()) - min(recalls.values()))
        # Recompute the MIT recall per group by hand from the runtime's own probabilities.
        clf = load_classifier(tiny_bundles / name, accelerator="cpu")
        p = np.array([clf.predict(img).p_face for img in mit.x])
        for g in res["int8"]["mit6s191"]["groups"]:
            m_ = np.array(
                [all(r.attrs.get(k) == v for k, v in g["attrs"].items()) for r in mit.rows]
            )
            assert g["count"] == m_.sum()
            assert g["recall"] == pytest.approx((p[m_] >= res["threshold"]).mean(), abs=1e-4)
            assert g["mean_p"] == pytest.approx(p[m_].mean(), abs=1e-4)


def test_evaluate_bad_inputs(
    faces64: Path, tiny_bundles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_main(["evaluate", "--models", str(empty), "--data", str(faces64)]) == 1
    assert "no bundle" in capsys.readouterr().err
    # A dataset without its MIT evaluation rows: one clear error naming labels.csv.
    broken = tmp_path / "faces64"
    shutil.copytree(faces64, broken)
    lines = (broken / "labels.csv").read_text().splitlines()
    (broken / "labels.csv").write_text(
        "\n".join(line for line in lines if "eval/mit6s191/" not in line) + "\n"
    )
    assert export_main(["evaluate", "--models", str(tiny_bundles), "--data", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "labels.csv" in err and "mit6s191 is empty" in err
