"""model_export.diagnostics.per_seed: two runs' bundles side by side, seed by seed, from cards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model_export.diagnostics.per_seed import main

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "models"


def _seed(root: Path, scale: float = 1.0) -> Path:
    """A seed folder with the shipped pair's cards; int8 recalls multiplied by `scale`."""
    for side in ("baseline", "debiased"):
        card = json.loads((SHIPPED / side / "card.json").read_text())
        for m in card["metrics"]["int8"].values():
            m["recall"] = round(m["recall"] * scale, 4)
            for g in m["groups"]:
                g["recall"] = round(g["recall"] * scale, 4)
        (root / side).mkdir(parents=True)
        (root / side / "card.json").write_text(json.dumps(card))
    return root


def test_each_seed_is_a_column_with_recall_and_lowest_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _seed(tmp_path / "a"), _seed(tmp_path / "b", scale=0.5)
    assert main(["--run", "old", str(a), "--run", "new", str(b)]) == 0
    out = capsys.readouterr().out
    card = json.loads((SHIPPED / "debiased" / "card.json").read_text())
    m = card["metrics"]["int8"]["wider_f050"]
    low = min(g["recall"] for g in m["groups"] if set(g["attrs"]) == {"skin_group", "gender"})
    row = next(ln for ln in out.split("\n\n")[1].splitlines() if ln.startswith("| f = 0.5 |"))
    half = round(m["recall"] * 0.5, 4)
    assert (
        row
        == f"| f = 0.5 | {m['recall']:.3f} ({low:.2f}) | {half:.3f} ({round(low * 0.5, 4):.2f}) |"
    )
    assert "| debiased | old seed 0 | new seed 0 |" in out


def test_a_folder_without_bundles_or_wider_metrics_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--run", "x", str(tmp_path / "nope")]) == 1
    assert "cannot read the bundle's card" in capsys.readouterr().err
    seed = _seed(tmp_path / "s")
    card = json.loads((seed / "baseline" / "card.json").read_text())
    del card["metrics"]["int8"]["wider_kiosk"]
    (seed / "baseline" / "card.json").write_text(json.dumps(card))
    assert main(["--run", "x", str(seed)]) == 1
    assert "no int8 metrics for wider_kiosk; export it with --wider" in capsys.readouterr().err
    shutil.rmtree(seed)


def test_sides_compares_runs_that_hold_one_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--sides baseline`: folders without debiased/ (a `train --method baseline` run) are
    compared; without it they are a clear error."""
    seed = _seed(tmp_path / "s")
    shutil.rmtree(seed / "debiased")
    assert main(["--run", "x", str(seed), "--sides", "baseline"]) == 0
    out = capsys.readouterr().out
    assert "| baseline | x seed 0 |" in out and "debiased" not in out
    assert main(["--run", "x", str(seed)]) == 1
    assert "cannot read the bundle's card" in capsys.readouterr().err
