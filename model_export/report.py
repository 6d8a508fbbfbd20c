"""Multi-seed fairness report: mean and spread per group, baseline vs debiased, float and int8.

Each run folder holds the bundles of one training seed (`baseline/`, `debiased/`) and the
checkpoint folder that made them (`--work` of `bias-mirror-export all`). Writes report.json,
report.md (`report_text`) and recall_by_group.png (`report_plot`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from installation.inference.views import Views
from installation.paths import BUNDLE_FOLDERS
from model_export.crossfit import POOLED, Found, crossfit
from model_export.data import DataError
from model_export.paired import (
    TARGET_SETS,
    cell_labels,
    compare,
    recheck,
    wider_sets,
    wider_targets,
)
from model_export.report_plot import plot, wider_name
from model_export.report_text import status_line, write_markdown
from model_export.sets import OOD_SETS, Prepared
from model_export.workflow import float_metrics, int8_metrics, right_name

logger = logging.getLogger(__name__)


def _float_model(method: str, ckpt: Path, card: dict[str, Any]) -> Any:
    import numpy as np

    from model_export.models import DBVAE, baseline_cnn
    from model_export.train import AVERAGED_WEIGHTS, LAST_WEIGHTS

    settings = card.get("training", {}).get("settings", {})
    seed = int(settings.get("seed", 0))
    size = {
        "width": int(settings.get("width", 12)),
        "convs_per_stage": int(settings.get("convs_per_stage", 1)),
    }
    if method != "dbvae":  # baseline and balanced share the CNN
        model = baseline_cnn(seed, **size)
        model.build((None, 64, 64, 3))
    else:
        model = DBVAE(
            int(settings.get("latent_dim", 100)),
            float(settings.get("kl_weight", 5e-4)),
            seed,
            **size,
        )
        model(np.zeros((1, 64, 64, 3), np.float32))
    # With `--average-last` the bundle was exported from the mean of the last epochs' weights.
    averaged = int(settings.get("average_last", 0)) > 0
    weights = ckpt / (AVERAGED_WEIGHTS if averaged else LAST_WEIGHTS)
    if not weights.is_file():
        raise DataError(
            f"{weights}: the weights this bundle was exported from are not there; pass the run's "
            "own --work folder (or train it again there)"
        )
    model.load_weights(weights, skip_mismatch=True)
    return model


def evaluate_run(
    run: Path,
    work: Path,
    data: Prepared,
    fpr: float,
    *,
    from_cards: bool = False,
    detections: dict[str, dict[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Float and int8 metrics of one run's two bundles. `from_cards`: take them from the cards
    when the export has just computed them on this same `data` (what `all` does; ~1 min less);
    `report` re-evaluates, and the tests check that both give the same numbers. `detections`
    (folder -> set -> bool [N]) is filled with the int8 bundles' per-face results on the
    in-the-wild sets, for the paired comparisons; they stay in memory."""
    out: dict[str, Any] = {}
    for folder in BUNDLE_FOLDERS:
        found: dict[str, np.ndarray] = {}
        if detections is not None and wider_sets(list(data.evals)):
            # Per-face results are never in a card: measure the int8 bundle again (seconds).
            thr_q, fresh = int8_metrics(run / folder, data, fpr, detections=found)
            detections[folder] = {k: v for k, v in found.items() if k.startswith("wider_")}
            if not from_cards:
                card = json.loads((run / folder / "card.json").read_text())
                entry = _entry(card)
                entry["int8"] = fresh
                entry["thresholds"] = {"int8": thr_q}
                _add_float(entry, card, work, data, fpr)
                out[folder] = entry
                continue
        card = json.loads((run / folder / "card.json").read_text())
        entry = _entry(card)
        metrics = card.get("metrics", {})
        if from_cards and {"float", "int8"} <= set(metrics):
            entry["int8"], entry["float"] = metrics["int8"], metrics["float"]
            entry["thresholds"] = _card_thresholds(card)
            out[folder] = entry
            continue
        thr_q, entry["int8"] = int8_metrics(run / folder, data, fpr)
        entry["thresholds"] = {"int8": thr_q}
        _add_float(entry, card, work, data, fpr)
        out[folder] = entry
    return out


def _card_thresholds(card: dict[str, Any]) -> dict[str, float]:
    """The float and int8 thresholds a card holds (older cards: the int8 one only)."""
    held = card.get("thresholds", {})
    return {k: float(held[k]) for k in ("float", "int8") if k in held} or {
        "int8": float(card["threshold"])
    }


def _entry(card: dict[str, Any]) -> dict[str, Any]:
    seed = int(card.get("training", {}).get("settings", {}).get("seed", 0))
    method = card.get("method_id") or ("dbvae" if card["kind"] == "dbvae" else "baseline")
    return {"seed": seed, "method": method, "name": card["name"]}


def _add_float(
    entry: dict[str, Any],
    card: dict[str, Any],
    work: Path,
    data: Prepared,
    fpr: float,
) -> None:
    """Float metrics from the bundle's checkpoint, when `work` still has it; else the card's
    own float metrics, when they were measured on these very sets (same names and counts: a
    shipped bundle re-reported after its checkpoint is gone) at a threshold set on the same
    non-faces."""
    from model_export.steps import checkpoint_dir
    from model_export.train import LAST_WEIGHTS

    ckpt = checkpoint_dir(work, entry["method"], entry["seed"])
    if (ckpt / LAST_WEIGHTS).is_file():
        model = _float_model(entry["method"], ckpt, card)
        # The float model is scored as its bundle is (the card's views, if any).
        thr_f, entry["float"] = float_metrics(model, data, fpr, Views.of_card(card))
        entry["thresholds"]["float"] = thr_f
        return
    measured = card.get("metrics", {}).get("float", {})
    sizes = {name: len(images.rows) for name, images in data.evals.items()}
    held = card.get("thresholds", {})
    if held.get("nonfaces", {}).get("set", "objects") != data.threshold_set:
        logger.info(
            "%s: no checkpoint in %s, and its card's float metrics are at a threshold set on "
            "other non-faces; no float metrics",
            entry["name"],
            work,
        )
        return
    if measured and all(measured.get(n, {}).get("count") == k for n, k in sizes.items()):
        logger.info("%s: no checkpoint in %s; float metrics from its card", entry["name"], work)
        entry["float"] = {n: measured[n] for n in sizes}
        if "float" in held:
            entry["thresholds"]["float"] = float(held["float"])


def _finest(m: dict[str, Any]) -> list[dict[str, Any]]:
    return [g for g in m["groups"] if len(g["attrs"]) == 2]


def _worst(m: dict[str, Any]) -> float:
    """Recall of the worst finest group of one set's metrics."""
    return float(min(g["recall"] for g in _finest(m)))


def gap_noise_floor(
    recall: float, counts: list[int], n_sim: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """(mean, 95th percentile) of best-minus-worst group recall when every group has the same
    true recall: the gap that sampling noise alone produces with these group sizes. A measured
    gap near it says little about bias."""
    rng = np.random.default_rng(seed)
    n = np.asarray(counts)
    sims = rng.binomial(n, recall, size=(n_sim, len(n))) / n  # [n_sim, groups]
    gaps = sims.max(axis=1) - sims.min(axis=1)
    return round(float(gaps.mean()), 4), round(float(np.quantile(gaps, 0.95)), 4)


def _set_names(runs: list[dict[str, Any]], folder: str, variant: str) -> list[str]:
    """Evaluation sets every run has (in the first run's order)."""
    first = list(runs[0][folder][variant])
    return [n for n in first if all(n in r[folder][variant] for r in runs)]


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """model -> variant -> set -> {recall, worst, gap, groups: key -> {mean, std, label}}."""
    agg: dict[str, Any] = {}
    for folder in BUNDLE_FOLDERS:
        agg[folder] = {}
        for variant in ("float", "int8"):
            if not all(variant in r[folder] for r in runs):
                continue
            sets: dict[str, Any] = {}
            for name in _set_names(runs, folder, variant):
                ms = [r[folder][variant][name] for r in runs]
                groups: dict[str, Any] = {}
                for g in _finest(ms[0]):
                    vals = [
                        next(x["recall"] for x in _finest(m) if x["key"] == g["key"]) for m in ms
                    ]
                    groups[g["key"]] = {
                        "label": g["label"],
                        "mean": round(float(np.mean(vals)), 4),
                        "std": round(float(np.std(vals)), 4),
                        "count": g["count"],
                    }
                # Coarser groups (one attribute, e.g. each skin type): mean and spread too.
                coarse: dict[str, Any] = {}
                for g in ms[0]["groups"]:
                    if len(g["attrs"]) == 2:
                        continue
                    vals = [
                        next(x["recall"] for x in m["groups"] if x["key"] == g["key"]) for m in ms
                    ]
                    coarse[g["key"]] = {
                        "label": g["label"],
                        "mean": round(float(np.mean(vals)), 4),
                        "std": round(float(np.std(vals)), 4),
                        "count": g["count"],
                    }
                worst = [_worst(m) for m in ms]
                gaps = [m["gap"] for m in ms]
                sets[name] = {
                    "recall_mean": round(float(np.mean([m["recall"] for m in ms])), 4),
                    "recall_std": round(float(np.std([m["recall"] for m in ms])), 4),
                    "worst_mean": round(float(np.mean(worst)), 4),
                    "worst_std": round(float(np.std(worst)), 4),
                    "gap_mean": round(float(np.mean(gaps)), 4),
                    "gap_noise_floor": gap_noise_floor(
                        float(np.mean([m["recall"] for m in ms])),
                        [g["count"] for g in groups.values()],
                    ),
                    "fpr_mean": round(float(np.mean([m["fpr"] for m in ms])), 4),
                    "groups": groups,
                    "coarse_groups": coarse,
                }
            agg[folder][variant] = sets
    return agg


def targets(agg: dict[str, Any]) -> dict[str, Any]:
    """The model-export issue's targets, per out-of-distribution set, on int8 means."""
    res: dict[str, Any] = {}
    b, d = agg["baseline"]["int8"], agg["debiased"]["int8"]
    for name in OOD_SETS:
        worst_gain = d[name]["worst_mean"] - b[name]["worst_mean"]
        gap_cut = 1 - d[name]["gap_mean"] / b[name]["gap_mean"] if b[name]["gap_mean"] else 0.0
        res[name] = {
            "worst_group_gain": round(worst_gain, 4),
            "worst_group_gain_ok": worst_gain >= 0.05,
            "gap_reduction": round(gap_cut, 4),
            "gap_reduction_ok": gap_cut >= 0.30,
            "overall_not_lower": d[name]["recall_mean"] >= b[name]["recall_mean"],
        }
    drift = []
    by_set: dict[str, float] = {}
    for folder in BUNDLE_FOLDERS:
        if "float" not in agg[folder]:
            continue
        for name in agg[folder]["float"]:
            if name not in agg[folder]["int8"]:
                continue
            for key, g in agg[folder]["int8"][name]["groups"].items():
                d_ = abs(g["mean"] - agg[folder]["float"][name]["groups"][key]["mean"])
                drift.append(d_)
                by_set[name] = round(max(by_set.get(name, 0.0), d_), 4)
    res["int8_max_drift"] = round(max(drift), 4) if drift else None
    # One face of a 15-face MIT group is 6.7 points: the set's granularity, listed per set.
    res["int8_max_drift_by_set"] = by_set
    res["int8_within_1_5_points"] = bool(drift) and max(drift) <= 0.015
    return res


def _t_interval(x: np.ndarray) -> tuple[float, float]:
    """95 % Student-t interval of the mean of `x` [seeds]. A t interval, not a bootstrap: with
    3-6 seeds a bootstrap's percentile interval comes out too narrow."""
    from scipy import stats

    m = float(x.mean())
    if len(x) < 2:
        return m, m
    half = float(stats.t.ppf(0.975, len(x) - 1)) * float(x.std(ddof=1)) / np.sqrt(len(x))
    return m - half, m + half


def paired_effects(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Debiased minus baseline per seed (int8) on each out-of-distribution set: worst-group
    recall, gap and overall recall, with the mean and a 95 % t interval over seeds.

    Why: with 3-6 seeds the seed-to-seed spread is as large as the effects, so a mean alone
    says too much. The interval covers training variation only; the test faces are the same
    for every seed, so their sampling noise (`gap_noise_floor`) comes on top."""
    out: dict[str, Any] = {}
    for name in OOD_SETS:
        diffs: dict[str, list[float]] = {"worst": [], "gap": [], "overall": []}
        for r in runs:
            b, d = r["baseline"]["int8"][name], r["debiased"]["int8"][name]
            diffs["worst"].append(_worst(d) - _worst(b))
            diffs["gap"].append(d["gap"] - b["gap"])
            diffs["overall"].append(d["recall"] - b["recall"])
        out[name] = {}
        for key, vals in diffs.items():
            x = np.asarray(vals, dtype=float)  # [seeds]
            lo, hi = _t_interval(x)
            out[name][key] = {
                "per_seed": [round(v, 4) for v in vals],
                "mean": round(float(x.mean()), 4),
                "ci95": [round(lo, 4), round(hi, 4)],
                "seeds_better": int((x < 0).sum() if key == "gap" else (x > 0).sum()),
            }
    return out


def _crossfit(
    data: Prepared, found: Found, cells: list[str], cross: tuple[Found, list[str]]
) -> dict[str, Any]:
    """model_export.crossfit over these runs' half and the cross runs' half."""
    from model_export.wider import other_half

    trained = data.counts.get("wider_train", {}).get("half")
    if trained is None:
        raise DataError(
            "--cross-runs re-checks runs trained on half of wider-demog: add --wider-train"
        )
    measured = other_half(trained)
    return crossfit({measured: (found, cells), trained: cross})


def build_report(
    runs: list[Path],
    works: list[Path],
    data: Prepared,
    out: Path,
    fpr: float,
    *,
    from_cards: bool = False,
    cross: tuple[Found, list[str]] | None = None,
) -> dict[str, Any]:
    """The multi-seed report of `runs` (their checkpoints in `works`) on `data`. `cross`: the
    detections and cells of the same recipe trained on the other half of wider-demog's photos,
    on the half these runs trained on (model_export.crossfit): then every face of wider-demog
    is judged by models that never saw its photo, and the debiasing verdict is the re-check's
    rule on all of them (`report["crossfit"]`)."""
    per_face: list[dict[str, dict[str, np.ndarray]]] = []
    results = []
    for r, w in zip(runs, works, strict=True):
        found: dict[str, dict[str, np.ndarray]] = {}
        results.append(evaluate_run(r, w, data, fpr, from_cards=from_cards, detections=found))
        per_face.append(found)
    agg = aggregate(results)
    tg = targets(agg)
    effects = paired_effects(results)
    paired: dict[str, Any] = {}
    halves: dict[str, Any] = {}
    if per_face and per_face[0]:
        names = wider_sets(list(data.evals))
        rows = data.evals[names[0]].rows
        cells = cell_labels([row.attrs for row in rows])
        base = {n: [f["baseline"][n] for f in per_face] for n in names}
        other = {n: [f["debiased"][n] for f in per_face] for n in names}
        paired = compare(base, other, cells)
        tg["wider"] = wider_targets(agg, paired)
        halves = recheck(base, other, cells, [row.source for row in rows])
        if cross is not None:
            cf = _crossfit(data, {"baseline": base, "debiased": other}, cells, cross)
            # The measured half's own verdict stays on record; the label follows the rule.
            tg["wider"]["debiased_holds_measured_half"] = tg["wider"]["debiased_holds"]
            tg["wider"]["debiased_holds"] = cf["holds"]
            pooled = cf[POOLED]
            tg["crossfit_pooled"] = {
                "faces": pooled["paired"][TARGET_SETS[0]]["bootstrap"]["faces"],
                **pooled["targets"],
            }
    elif cross is not None:
        raise DataError("--cross-runs needs the in-the-wild sets: pass --wider and --wider-train")
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "runs": [str(r) for r in runs],
        "per_run": results,
        "aggregate": agg,
        "targets": tg,
        "effects": effects,
        "paired": paired,
        "recheck_halves": halves,
        "status": status_line(tg, len(runs)),
        "threshold_nonfaces": data.threshold_record(),
    }
    if cross is not None:
        report["crossfit"] = cf
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    # Screen names from the cards, so a balanced-resampling run is never labelled DB-VAE.
    names_ = {folder: str(results[0][folder]["name"]) for folder in BUNDLE_FOLDERS}
    wider = tg.get("wider")
    if wider:
        # The report names the right-hand model as the card will (workflow.right_name).
        method = str(results[0]["debiased"]["method"])
        holds = bool(wider.get("debiased_holds"))
        names_["debiased"] = right_name(method, holds, names_["debiased"])
    write_markdown(
        agg,
        tg,
        len(runs),
        out / "report.md",
        names_,
        effects=effects,
        paired=paired,
        halves=halves,
        crossfit=report.get("crossfit"),
        thresholds=f"{fpr * 100:g} % of {report['threshold_nonfaces']['images']} images: "
        f"{report['threshold_nonfaces']['what']}",
    )
    plot(
        agg,
        out / "recall_by_group.png",
        names_,
        paired,
        wider_name=wider_name(data.counts),
        crossfit=report.get("crossfit"),
    )
    return report
