"""The in-the-wild evaluation set (wider-demog format), its kiosk geometry, the statistics that
compare groups and models, and `bias-mirror-export evaluate --wider`."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_export.cli import main as export_main
from model_export.data import DataError
from model_export.fairstats import mcnemar, paired_bootstrap, wilson
from model_export.paired import photo_halves
from model_export.wider import (
    crop64,
    distance_at,
    fraction_at,
    kiosk_eval_range,
    kiosk_fractions,
    load_wider,
)
from tests.model_fixtures import write_faces64, write_wider


@pytest.fixture(scope="module")
def wider(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wider(tmp_path_factory.mktemp("wider") / "wider-demog")


@pytest.fixture(scope="module")
def faces64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_faces64(tmp_path_factory.mktemp("wider_eval") / "faces64", faces_per_race=2)


def test_crop64_cuts_the_readme_square() -> None:
    img = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    # f = 1.0: the face (the centre 64 px) is the whole input, unresized.
    assert np.array_equal(crop64(img, 1.0), img[32:96, 32:96])
    # f = 0.5: the whole crop, halved.
    half = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA)
    assert np.array_equal(crop64(img, 0.5), half)
    # f = 0.7: a 91 px centred square (the README's example).
    ref = cv2.resize(img[18:109, 18:109], (64, 64), interpolation=cv2.INTER_AREA)
    assert np.array_equal(crop64(img, 0.7), ref)


@pytest.mark.parametrize("f", [0.3, 0.49, float("nan")])
def test_fraction_below_half_is_a_clear_error(f: float) -> None:
    img = np.zeros((128, 128, 3), np.uint8)
    with pytest.raises(DataError, match=r"0\.5.*--wider-fractions"):
        crop64(img, f)


def test_kiosk_geometry() -> None:
    # A 0.20 m face at 1 m in a 70-degree, 640 px frame spans 91 px: 0.357 of the 256 px square.
    assert fraction_at(1.0) == pytest.approx(0.20 / (2 * math.tan(math.radians(35))) * 2.5)
    lo, hi = kiosk_fractions()
    assert lo == pytest.approx(fraction_at(1.5)) and hi == pytest.approx(fraction_at(0.5))
    assert lo < 0.5 < hi  # farther visitors than ~0.71 m cannot be cut from the crops
    assert kiosk_eval_range() == (0.5, pytest.approx(hi))
    for d in (0.5, 0.8, 1.5):
        assert distance_at(fraction_at(d)) == pytest.approx(d)


def test_load_wider_reads_groups_and_images(wider: Path) -> None:
    faces = load_wider(wider)
    assert faces.x128.shape == (24, 128, 128, 3)
    cells = {(r.attrs["skin_group"], r.attrs["gender"]) for r in faces.rows}
    assert len(cells) == 4
    k = faces.kiosk()
    assert k.x.shape == (24, 64, 64, 3)
    # Each kiosk face lies between the two fixed-fraction versions of itself (0.5 and 0.714).
    assert not np.array_equal(k.x, faces.at_fraction(0.5).x)
    assert np.array_equal(k.x, faces.kiosk().x)  # deterministic


def test_load_wider_bad_inputs(wider: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"labels\.csv: not found.*--wider"):
        load_wider(tmp_path)
    with pytest.raises(DataError, match=r"unknown wider-demog group column.*skin_group"):
        load_wider(wider, ("ethnicity",))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "labels.csv").write_text("path,gender\nx.jpg,Male\n")
    with pytest.raises(DataError, match=r"missing column\(s\).*skin"):
        load_wider(broken)
    lines = (wider / "labels.csv").read_text().splitlines()
    lines[3] = lines[3].replace(",Lighter,", ",Medium,")
    (broken / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"labels\.csv:4: skin_group = 'Medium'"):
        load_wider(broken)


def test_wilson_matches_known_values() -> None:
    lo, hi = wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson(85, 85)[1] == 1.0 and wilson(85, 85)[0] > 0.95
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_mcnemar_counts_discordant_faces() -> None:
    a = np.array([1, 1, 0, 0, 1] + [0] * 10, bool)
    b = np.array([1, 0, 0, 0, 1] + [1] * 10, bool)
    res = mcnemar(a, b)
    assert (res["only_a"], res["only_b"]) == (1, 10)
    assert res["p_value"] == pytest.approx(2 * 12 / 2**11)  # P(X <= 1), X ~ Bin(11, 0.5), x2
    assert mcnemar(a, a)["p_value"] == 1.0


def test_paired_bootstrap_sees_a_real_change_and_no_change() -> None:
    rng = np.random.default_rng(1)
    groups = ["A"] * 200 + ["B"] * 200
    base = np.stack([np.r_[rng.random(200) < 0.9, rng.random(200) < 0.5] for _ in range(3)])
    same = paired_bootstrap(base, base, groups, n_boot=500)
    assert same["gap"]["change"] == {"value": 0.0, "ci95": [0.0, 0.0]}
    assert same["gap_groups"] == {"best": "A", "worst": "B"}
    assert same["gap"]["baseline"]["ci95"][0] > 0.25  # a 40-point gap on 200 faces is real
    # The other model finds every face of B: the gap closes and turns negative.
    better = base.copy()
    better[:, 200:] = True
    res = paired_bootstrap(base, better, groups, n_boot=500)
    assert res["gap"]["change"]["ci95"][1] < 0
    assert res["worst"]["change"]["ci95"][0] > 0
    assert res["groups"]["B"]["other"]["value"] == 1.0
    # No difference between groups: the baseline gap's interval includes zero.
    flat = np.stack([rng.random(400) < 0.7 for _ in range(3)])
    assert paired_bootstrap(flat, flat, groups, n_boot=500)["gap"]["baseline"]["ci95"][0] < 0


def test_each_model_has_its_own_gap_between_its_own_best_and_worst_group() -> None:
    """`own_gap`: the gap each panel names (its own best minus its own worst group), with its
    bootstrap interval; the other model's pair need not be the baseline's."""
    rng = np.random.default_rng(2)
    groups = ["A"] * 300 + ["B"] * 300 + ["C"] * 300
    # Baseline: A 0.9, B 0.5, C 0.7. Other: A 0.9, B 0.9, C 0.6: its worst group is C.
    base = np.stack([np.r_[rng.random(300) < 0.9, rng.random(300) < 0.5, rng.random(300) < 0.7]])
    other = np.stack([np.r_[rng.random(300) < 0.9, rng.random(300) < 0.9, rng.random(300) < 0.6]])
    res = paired_bootstrap(base, other, groups, n_boot=500)
    own = res["own_gap"]
    assert own["baseline"]["value"] == res["gap"]["baseline"]["value"]
    assert (own["baseline"]["best"], own["baseline"]["worst"]) == ("A", "B")
    assert own["other"]["worst"] == "C" and own["other"]["best"] in ("A", "B")
    g = res["groups"]
    assert own["other"]["value"] == pytest.approx(
        g[own["other"]["best"]]["other"]["value"] - g["C"]["other"]["value"], abs=1e-4
    )
    # The baseline's pair (A - B) on the other model is near zero; its own gap is not.
    assert res["gap"]["other"]["ci95"][0] < 0 < own["other"]["ci95"][0]
    lo, hi = own["other"]["ci95"]
    assert lo <= own["other"]["value"] <= hi


def test_evaluate_with_wider(
    faces64: Path, wider: Path, tiny_bundles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["evaluate", "--models", str(tiny_bundles), "--data", str(faces64)]
    assert export_main([*args, "--wider", str(wider), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    wider_sets = {"wider_f050", "wider_f070", "wider_f090", "wider_f100", "wider_kiosk"}
    for res in out["models"].values():
        assert wider_sets <= set(res["int8"])
        m = res["int8"]["wider_f070"]
        assert m["count"] == 24
        kinds = {tuple(sorted(g["attrs"])) for g in m["groups"]}
        assert kinds == {("gender", "skin_group"), ("skin_group",), ("gender",), ("skin",)}
        for g in m["groups"]:
            k = round(g["recall"] * g["count"])
            assert g["ci95"] == [pytest.approx(v, abs=1e-4) for v in wilson(k, g["count"])]
    assert "paired" not in out  # the tiny bundles are not named baseline / debiased


def test_evaluate_pairs_baseline_and_debiased(
    faces64: Path,
    wider: Path,
    tiny_bundles: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_bundles / "tiny_baseline", models / "baseline")
    shutil.copytree(tiny_bundles / "tiny_dbvae", models / "debiased")
    args = ["evaluate", "--models", str(models), "--data", str(faces64), "--wider", str(wider)]
    assert export_main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for name, res in out["paired"].items():
        b, d = out["models"]["baseline"]["int8"][name], out["models"]["debiased"]["int8"][name]
        mc = res["mcnemar"][0]
        # found by baseline - found by both = only baseline; the totals must agree.
        assert round(b["recall"] * 24) - round(d["recall"] * 24) == mc["only_a"] - mc["only_b"]
        bt = res["bootstrap"]
        assert bt["faces"] == 24 and bt["seeds"] == 1
        assert bt["overall"]["baseline"]["value"] == pytest.approx(b["recall"], abs=1e-4)
        assert bt["overall"]["other"]["value"] == pytest.approx(d["recall"], abs=1e-4)
    assert export_main(args) == 0
    assert "McNemar" in capsys.readouterr().out


def test_evaluate_wider_bad_inputs(
    faces64: Path,
    wider: Path,
    tiny_bundles: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["evaluate", "--models", str(tiny_bundles), "--data", str(faces64)]
    assert export_main([*args, "--wider", str(tmp_path)]) == 1
    assert "labels.csv: not found" in capsys.readouterr().err
    assert export_main([*args, "--wider", str(wider), "--wider-fractions", "0.3"]) == 1
    assert "face fraction 0.3" in capsys.readouterr().err


def test_photo_halves_keep_a_photo_together() -> None:
    sources = [f"img_{i // 3}.jpg" for i in range(300)]  # three faces per photo
    half = photo_halves(sources)
    for i in range(0, 300, 3):
        assert half[i] == half[i + 1] == half[i + 2]
    assert 0.3 < half.mean() < 0.7
    assert np.array_equal(half, photo_halves(sources))  # deterministic
