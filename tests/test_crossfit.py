"""model_export.diagnostics.crossfit: every face of wider-demog judged by the run that did not
train on its photo, each half alone and both halves pooled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model_export.diagnostics.crossfit import main
from model_export.paired import photo_halves
from model_export.wider import load_wider
from tests.model_fixtures import write_faces64, write_wider

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "models"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("crossfit")
    return write_faces64(root / "faces64"), write_wider(root / "wider-demog", per_cell=10)


def test_each_face_is_judged_once_and_the_pool_adds_the_halves(
    data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faces64, wider = data
    half_a = photo_halves([r.source for r in load_wider(wider).rows])
    n_a, n_b = int(half_a.sum()), int((~half_a).sum())
    assert n_a > 0 and n_b > 0
    out = tmp_path / "crossfit.json"
    two = [str(SHIPPED), str(SHIPPED)]  # two "seeds": the shipped pair twice
    args = ["--data", str(faces64), "--wider", str(wider), "--out", str(out)]
    assert main([*args, "--trained-on", "A", *two, "--trained-on", "B", *two]) == 0
    res = json.loads(out.read_text())
    a, b, both = (res[k] for k in ("half A (trained on B)", "half B (trained on A)", "both halves"))
    for name in ("wider_f050", "wider_f070", "wider_f090"):
        ba, bb, bp = (r["paired"][name]["bootstrap"] for r in (a, b, both))
        assert (ba["faces"], bb["faces"], bp["faces"]) == (n_a, n_b, n_a + n_b)
        assert bp["seeds"] == 2
        for side in ("baseline", "other"):
            # The pool's overall recall is the halves' weighted by their faces.
            mixed = (n_a * ba["overall"][side]["value"] + n_b * bb["overall"][side]["value"]) / (
                n_a + n_b
            )
            assert bp["overall"][side]["value"] == pytest.approx(mixed, abs=1e-3)
        # McNemar per seed: the faces only one model finds add up over the halves.
        for s in range(2):
            ma, mb, mp = (r["paired"][name]["mcnemar"][s] for r in (a, b, both))
            assert mp["only_a"] == ma["only_a"] + mb["only_a"]
            assert mp["only_b"] == ma["only_b"] + mb["only_b"]
        assert isinstance(both["targets"]["debiased_holds"], bool)
    printed = capsys.readouterr().out
    assert "| both halves | wider_f070 |" in printed and "debiasing targets hold" in printed


def test_bad_runs_are_refused_with_the_fix(
    data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faces64, wider = data
    args = ["--data", str(faces64), "--wider", str(wider)]
    # One half only: both are needed to judge every face.
    assert main([*args, "--trained-on", "A", str(SHIPPED)]) == 1
    assert "give both halves, A and B" in capsys.readouterr().err
    # A folder without the bundles.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*args, "--trained-on", "A", str(empty), "--trained-on", "B", str(SHIPPED)]) == 1
    assert "no bundle (card.json)" in capsys.readouterr().err
    # Different numbers of seeds cannot be paired.
    two = [str(SHIPPED), str(SHIPPED)]
    assert main([*args, "--trained-on", "A", *two, "--trained-on", "B", str(SHIPPED)]) == 1
    assert "different numbers of seeds" in capsys.readouterr().err
    # A corrupt bundle: one line naming it, as every bias-mirror-export command prints it.
    broken = tmp_path / "broken"
    shutil.copytree(SHIPPED / "baseline", broken / "baseline")
    shutil.copytree(SHIPPED / "debiased", broken / "debiased")
    model = broken / "debiased" / "model.tflite"
    model.write_bytes(model.read_bytes()[:-100])
    assert main([*args, "--trained-on", "A", str(broken), "--trained-on", "B", str(SHIPPED)]) == 1
    err = capsys.readouterr().err
    assert "does not match card.json" in err and "Traceback" not in err
