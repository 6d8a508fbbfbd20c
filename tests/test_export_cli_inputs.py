"""`bias-mirror-export` refuses bad input with one clear line (the problem and the fix) and exit
status 1 (argparse: 2), never a traceback, and before any data is decoded where it can."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from model_export.cli import build_parser, main
from model_export.data import DataError, read_labels
from model_export.evaluate import fpr_arg, threshold_at_fpr
from model_export.wider import load_wider
from tests.model_fixtures import write_faces64, write_wider

BAD_FPRS = ("nan", "inf", "-inf", "-0.1", "0", "1", "2", "abc")
# The bundles of one run folder and the tiny checked-in bundles (tests/data/bundles) they copy.
RUN_BUNDLES = {"baseline": "tiny_baseline", "debiased": "tiny_dbvae"}


@pytest.fixture(scope="module")
def faces64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_faces64(tmp_path_factory.mktemp("inputs") / "faces64", faces_per_race=2)


def _run(root: Path, tiny_bundles: Path) -> Path:
    """A run folder (baseline/, debiased/) made of copies of the tiny bundles."""
    for folder, tiny in RUN_BUNDLES.items():
        shutil.copytree(tiny_bundles / tiny, root / folder)
    return root


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# 1. --fpr


@pytest.mark.parametrize("bad", BAD_FPRS)
def test_fpr_outside_0_1_is_refused_by_argparse(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["evaluate", "--models", str(tmp_path), "--data", str(tmp_path), f"--fpr={bad}"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = _err(capsys)
    assert "argument --fpr: must be a false-positive rate between 0 and 1 (exclusive)" in err
    assert f"got {bad!r}" in err and "e.g. 0.02" in err


def test_fpr_in_range_is_taken_by_every_subcommand(tmp_path: Path) -> None:
    parser = build_parser()
    common = ["--data", str(tmp_path), "--fpr", "0.05"]
    for argv in (
        ["evaluate", "--models", str(tmp_path), *common],
        ["report", "--runs", str(tmp_path), "--out", str(tmp_path), *common],
        ["train", "--method", "baseline", *common],
        ["all", *common],
    ):
        assert parser.parse_args(argv).fpr == 0.05
    assert parser.parse_args(["all", "--data", str(tmp_path)]).fpr == 0.02  # the default


def test_diagnostics_fpr_is_checked_too(capsys: pytest.CaptureFixture[str]) -> None:
    from model_export.diagnostics.crossfit import main as crossfit_main

    with pytest.raises(SystemExit) as exc:
        crossfit_main(["--data", "d", "--wider", "w", "--trained-on", "A", "r", "--fpr", "nan"])
    assert exc.value.code == 2
    assert "argument --fpr: must be a false-positive rate" in _err(capsys)


@pytest.mark.parametrize("bad", [float(b) for b in BAD_FPRS[:-1]])
def test_threshold_at_fpr_refuses_rates_outside_0_1(bad: float) -> None:
    p = np.linspace(0.0, 1.0, 50)
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_at_fpr(p, bad)
    assert fpr_arg("0.02") == 0.02
    # In range, the threshold still lets at most that share of the non-faces pass.
    assert float(np.mean(p >= threshold_at_fpr(p, 0.1))) <= 0.1


# 2. Training options, checked before any data is decoded (--data does not even exist here)


@pytest.mark.train
@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (["--bins", "0"], "--bins must be >= 1"),
        (["--latent-dim", "0"], "--latent-dim must be >= 1"),
        (["--latent-dim", "-3"], "--latent-dim must be >= 1"),
        (["--temperature", "0"], "--temperature must be a finite number > 0"),
        (["--temperature", "-1"], "--temperature must be a finite number > 0"),
        (["--temperature", "nan"], "--temperature must be a finite number > 0"),
        (["--alpha", "nan"], "--alpha must be a finite number > 0"),
        (["--alpha", "-0.5"], "--alpha must be a finite number > 0"),
        (["--alpha", "inf"], "--alpha must be a finite number > 0"),
        (["--cap", "-1"], "--cap must be a finite number >= 1"),
        (["--cap", "0.5"], "--cap must be a finite number >= 1"),
        (["--cap", "nan"], "--cap must be a finite number >= 1"),
        (["--kl-weight", "nan"], "--kl-weight must be a finite number >= 0"),
        (["--kl-weight", "-1"], "--kl-weight must be a finite number >= 0"),
        (["--kl-weight", "inf"], "--kl-weight must be a finite number >= 0"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--epochs", "0"], "--epochs and --batch-size must be >= 1"),
        (["--right-epochs", "0"], "--right-epochs and --batch-size must be >= 1"),
        (["--batch-size", "-1"], "--epochs and --batch-size must be >= 1"),
        (["--learning-rate", "nan"], "--learning-rate must be in (0, 0.1]"),
        (["--learning-rate", "inf"], "--learning-rate must be in (0, 0.1]"),
        (["--width", "0"], "--width and --convs-per-stage must be >= 1"),
        (["--seeds", "-1"], "--seeds (--seed) takes whole numbers from 0 to"),
        (["--seeds", "4294967295"], "--seeds (--seed) takes whole numbers from 0 to"),
        (["--seeds", "0", "1", "0"], "seed 0 is given twice"),
    ],
)
def test_bad_training_options_are_refused_before_the_data(
    option: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("keras", reason="needs the train extra: pip install -e '.[train]'")
    data = ["--data", str(tmp_path / "nowhere")]
    for cmd in (["train", "--method", "dbvae"], ["all", "--out", str(tmp_path / "models")]):
        assert main([*cmd, *data, *option]) == 1
        err = _err(capsys)
        assert err.startswith(f"error: {fragment}") or f": {fragment}" in err, err
        assert "labels.csv" not in err  # refused before the (missing) data was read
    assert not (tmp_path / "models").exists()


@pytest.mark.train
def test_training_options_in_range_are_kept() -> None:
    pytest.importorskip("keras", reason="needs the train extra: pip install -e '.[train]'")
    import argparse

    from model_export.steps import add_training_args, train_config

    parser = argparse.ArgumentParser()
    add_training_args(parser)
    dbvae = ["--bins", "1", "--latent-dim", "2", "--temperature", "0.5", "--alpha", "0.01"]
    more = ["--cap", "1", "--kl-weight", "0", "--epochs", "3", "--right-epochs", "4"]
    args = parser.parse_args([*dbvae, *more])
    cfg = train_config(args, "dbvae", seed=2)
    assert (cfg.bins, cfg.latent_dim, cfg.temperature, cfg.alpha) == (1, 2, 0.5, 0.01)
    assert (cfg.cap, cfg.kl_weight, cfg.epochs, cfg.seed) == (1.0, 0.0, 4, 2)
    assert train_config(args, "baseline", seed=0).epochs == 3
    defaults = train_config(parser.parse_args([]), "dbvae", seed=0)
    assert (defaults.cap, defaults.epochs) == (None, 5)


# 3. Corrupt bundles: the kiosk's own message as one `error:` line


def _truncate_model(bundle: Path) -> str:
    model = bundle / "model.tflite"
    model.write_bytes(model.read_bytes()[:1000])
    return "does not match card.json"


def _break_json(bundle: Path) -> str:
    (bundle / "card.json").write_text('{"name": ')
    return "card.json is not readable JSON"


def _drop_threshold(bundle: Path) -> str:
    card = json.loads((bundle / "card.json").read_text())
    del card["threshold"]
    (bundle / "card.json").write_text(json.dumps(card))
    return "threshold: Field required"


def _nan_threshold(bundle: Path) -> str:
    card = json.loads((bundle / "card.json").read_text())
    card["threshold"] = float("nan")
    (bundle / "card.json").write_text(json.dumps(card))  # json writes NaN, Python reads it
    return "does not follow the bundle contract (threshold"


CORRUPTIONS: list[Callable[[Path], str]] = [
    _truncate_model,
    _break_json,
    _drop_threshold,
    _nan_threshold,
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_corrupt_bundle_is_one_error_line(
    corrupt: Callable[[Path], str],
    tiny_bundles: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = _run(tmp_path / "run", tiny_bundles)
    expected = corrupt(run / "debiased")
    # --data does not exist: the bundles are checked before any data is read.
    data = ["--data", str(tmp_path / "nowhere")]
    assert main(["evaluate", "--models", str(run), *data]) == 1
    err = _err(capsys)
    assert err.startswith(f"error: {run / 'debiased'}") and expected in err, err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert main(["report", "--runs", str(run), *data, "--out", str(tmp_path / "rep")]) == 1
    err = _err(capsys)
    assert err.startswith(f"error: {run / 'debiased'}") and expected in err, err
    assert not (tmp_path / "rep").exists()


def test_bundle_errors_met_later_are_caught_too(
    faces64: Path,
    tiny_bundles: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A BundleError or CardError raised after the up-front check (the data decoded) is still
    one `error:` line: main catches them as it catches DataError."""
    from model_export import cli

    run = _run(tmp_path / "run", tiny_bundles)
    expected = _break_json(run / "baseline")
    monkeypatch.setattr(cli, "_check_loadable", lambda bundles: None)
    assert main(["evaluate", "--models", str(run), "--data", str(faces64)]) == 1
    err = _err(capsys)
    assert err.startswith(f"error: {run / 'baseline' / 'card.json'}") and expected in err, err
    run2 = _run(tmp_path / "run2", tiny_bundles)
    expected = _truncate_model(run2 / "baseline")
    assert main(["evaluate", "--models", str(run2), "--data", str(faces64)]) == 1
    err = _err(capsys)
    assert err.startswith(f"error: {run2 / 'baseline' / 'model.tflite'}") and expected in err


def test_evaluate_on_a_bundle_folder_names_its_parent(
    tiny_bundles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path / "run", tiny_bundles)
    data = ["--data", str(tmp_path / "nowhere")]
    assert main(["evaluate", "--models", str(run / "baseline"), *data]) == 1
    err = _err(capsys)
    assert "this folder is itself a bundle" in err
    assert f"pass its parent folder, {run}" in err
    # An empty folder is still "no bundle inside".
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--models", str(tmp_path / "empty"), *data]) == 1
    assert "no bundle (a folder with card.json and model.tflite) inside" in _err(capsys)


# 4. report: its folders and run lists, checked before any work


def test_report_refuses_bad_folders_and_run_lists_before_any_work(
    tiny_bundles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run0 = _run(tmp_path / "runs" / "s0", tiny_bundles)
    run1 = _run(tmp_path / "runs" / "s1", tiny_bundles)
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    out = tmp_path / "rep"
    base = ["report", "--data", str(tmp_path / "nowhere")]

    def refused(*argv: str) -> str:
        assert main([*base, *argv]) == 1
        return _err(capsys)

    err = refused("--runs", str(run0), str(run1), "--out", str(afile))
    assert f"--out {afile}: names a file, not a folder" in err
    err = refused("--runs", str(run0), "--out", str(afile / "sub"))
    assert f"--out {afile / 'sub'}: {afile} is a file" in err
    err = refused("--runs", str(run0), "--out", str(out), "--ship-to", str(afile))
    assert f"--ship-to {afile}: names a file, not a folder" in err
    works = ["--works", str(tmp_path), str(tmp_path), str(tmp_path)]
    err = refused("--runs", str(run0), str(run1), *works, "--out", str(out))
    assert "3 --works for 2 --runs" in err and "pass as many" in err
    err = refused("--runs", str(run0), str(run1), str(run0), "--out", str(out))
    assert f"--runs: {run0} is given twice" in err and "seeds must be distinct runs" in err
    # The same folder spelled another way is the same run.
    other = tmp_path / "runs" / ".." / "runs" / "s1"
    err = refused("--runs", str(run0), str(run1), str(other), "--out", str(out))
    assert f"{other} is given twice (as {run1})" in err
    err = refused("--runs", str(run0), "--cross-runs", str(run1), str(run1), "--out", str(out))
    assert "--wider-train" in err  # cross runs need the in-the-wild half first
    wider = ["--wider", str(tmp_path / "wider"), "--wider-train", "--out", str(out)]
    err = refused("--runs", str(run0), str(run1), "--cross-runs", str(run1), str(run1), *wider)
    assert f"--cross-runs: {run1} is given twice" in err
    assert not out.exists()
    # Distinct runs, matching --works and good folders pass every check: the data comes next.
    good = ["--runs", str(run0), str(run1), "--works", str(tmp_path), str(tmp_path)]
    err = refused(*good, "--out", str(out), "--ship-to", str(tmp_path / "ship"))
    assert "labels.csv: not found" in err


# 5. labels.csv rows listed twice


def test_faces64_row_listed_twice_is_refused(
    faces64: Path, tiny_bundles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "faces64"
    shutil.copytree(faces64, data)
    lines = (data / "labels.csv").read_text().splitlines()
    (data / "labels.csv").write_text("\n".join([*lines, lines[3]]) + "\n")
    path = lines[3].split(",")[0]
    dup = len(lines) + 1
    with pytest.raises(DataError) as exc:
        read_labels(data)
    msg = str(exc.value)
    assert msg.startswith(f"{data / 'labels.csv'}:{dup}: path {path!r}")
    assert f"appears twice (lines 4 and {dup}); remove the duplicate row" in msg
    assert main(["evaluate", "--models", str(tiny_bundles), "--data", str(data)]) == 1
    assert "appears twice" in _err(capsys)
    assert len(read_labels(faces64)) == len(lines) - 1  # the fixture itself is fine


def test_wider_row_listed_twice_is_refused(tmp_path: Path) -> None:
    wider = write_wider(tmp_path / "wider", per_cell=1)
    assert len(load_wider(wider).rows) == 4
    lines = (wider / "labels.csv").read_text().splitlines()
    (wider / "labels.csv").write_text("\n".join([*lines, lines[1]]) + "\n")
    path = lines[1].split(",")[0]
    with pytest.raises(DataError, match="appears twice") as exc:
        load_wider(wider)
    assert str(exc.value) == (
        f"{wider / 'labels.csv'}:6: path {path!r} appears twice (lines 2 and 6); remove the "
        "duplicate row"
    )


# 6. the probe's smaller findings


def test_a_byte_order_mark_is_not_part_of_a_column(faces64: Path, tmp_path: Path) -> None:
    """A spreadsheet's "CSV UTF-8" starts with a BOM: it read as "missing column(s) ['path']"."""
    data = tmp_path / "faces64"
    shutil.copytree(faces64, data)
    raw = (data / "labels.csv").read_bytes()
    (data / "labels.csv").write_bytes(b"\xef\xbb\xbf" + raw)
    assert len(read_labels(data)) == len(read_labels(faces64))
    wider = write_wider(tmp_path / "wider", per_cell=1)
    raw = (wider / "labels.csv").read_bytes()
    (wider / "labels.csv").write_bytes(b"\xef\xbb\xbf" + raw)
    assert len(load_wider(wider).rows) == 4


def test_a_missing_group_column_is_named_once(tmp_path: Path) -> None:
    wider = write_wider(tmp_path / "wider", per_cell=1)
    lines = (wider / "labels.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("skin_group")
    cut = [",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in lines]
    (wider / "labels.csv").write_text("\n".join(cut) + "\n")
    with pytest.raises(DataError) as exc:
        load_wider(wider)
    assert "missing column(s) ['skin_group'];" in str(exc.value)


def test_options_that_only_mean_something_together(
    faces64: Path, tiny_bundles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--wider-train-half B` without `--wider-train` was ignored; a fraction given twice was
    measured twice."""
    base = ["evaluate", "--models", str(tiny_bundles), "--data", str(faces64)]
    assert main([*base, "--wider-train-half", "B"]) == 1
    assert "add --wider-train" in _err(capsys)
    assert main([*base, "--wider-fractions", "0.5", "0.7", "0.5"]) == 1
    assert "lists 0.5 twice" in _err(capsys)


def test_recipe_mistakes_name_the_value_and_the_field(
    faces64: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model_export.recipe import draw, load_recipe
    from tests.model_fixtures import write_recipe

    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    rows = [r for r in read_labels(faces64) if r.split == "train"]
    martian = recipe.model_copy(update={"faces": {"Martian": 1}})
    with pytest.raises(DataError, match="no training face has race=Martian; use one of Asian"):
        draw(rows, martian)
    nocol = recipe.model_copy(update={"group_by": "planet"})
    with pytest.raises(DataError, match="no face has a planet column value: fix group_by"):
        draw(rows, nocol)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfaces: {White: many}\nnonfaces: -1\n")
    with pytest.raises(DataError) as exc:
        load_recipe(bad)
    msg = str(exc.value)
    assert "faces.White:" in msg and "nonfaces:" in msg and "\n" not in msg
    assert "errors.pydantic.dev" not in msg
