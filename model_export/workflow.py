"""threshold -> evaluate (float and int8) -> export -> ship, for both models; the card's words.

The data they work on: `model_export.sets`."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from installation.inference.card import ModelKind
from installation.inference.views import CROP_ALONE, Views
from installation.logits import sigmoid
from installation.paths import BUNDLE_FOLDERS
from model_export.augment import DEFAULT as AUGMENT
from model_export.augment import augment
from model_export.evaluate import set_metrics, threshold_at_fpr
from model_export.sets import DISPLAY_SET, LICENSE, Prepared, group_combos

# method id -> (bundle kind, screen name, one truthful sentence)
METHODS: dict[str, tuple[ModelKind, str, str]] = {
    "baseline": ("baseline", "Baseline CNN", "Standard face classifier trained on the skewed set."),
    "dbvae": (
        "dbvae",
        "Debiased (DB-VAE)",
        "Same data; learns which faces are rare and shows them more often (DB-VAE).",
    ),
    "balanced": (
        "baseline",
        "Debiased (balanced)",
        "Same data; uses the group labels to show each group equally often in training.",
    ),
}


def augmentation_record(kind: str, scale_draw: str = "uniform") -> dict[str, Any]:
    """The training augmentation as the card records it: its name and every range."""
    from model_export.augment_wild import (
        CONTEXT_AUGMENTS,
        PEOPLE_SHARE,
        WILD_AUGMENTS,
        wild_config,
    )

    cfg: Any = wild_config(scale_draw) if kind in WILD_AUGMENTS else AUGMENT
    record = {"name": kind, **dataclasses.asdict(cfg)}
    if kind in CONTEXT_AUGMENTS:
        record["context"] = (
            "in-the-wild training faces reframed from their 128x128 crops (face at half the "
            "side): their own surroundings, a scene patch only beyond the crop"
        )
    if kind == "wild-people":
        record["people"] = {
            "share": PEOPLE_SHARE,
            "what": "portraits and non-faces laid on a random in-the-wild crop's surroundings "
            "(its face covered by the content) instead of a scene patch",
        }
    return record


def detector_logits(model: Any, x: np.ndarray, views: Views) -> np.ndarray:
    """Float face logits [N] of images [N, 64, 64, 3] as the kiosk scores them with `views`
    (installation.inference.views)."""
    from model_export.train import predict_logits

    return views.score(lambda v: predict_logits(model, v), x)


def float_metrics(
    model: Any, data: Prepared, fpr: float, views: Views = CROP_ALONE
) -> tuple[float, dict[str, Any]]:
    p_val = sigmoid(detector_logits(model, data.val_nonfaces.x, views))
    thr = threshold_at_fpr(p_val, fpr)
    out = {}
    for name, images in data.evals.items():
        p = sigmoid(detector_logits(model, images.x, views))
        out[name] = set_metrics(
            p, [r.attrs for r in images.rows], thr, group_combos(name), float(np.mean(p_val >= thr))
        )
    return thr, out


def int8_probs(bundle: Path, data: Prepared) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Face probabilities of the int8 bundle, as the kiosk computes them: validation non-faces
    [M] and each evaluation set [N_set]."""
    from installation.inference import load_classifier

    clf = load_classifier(bundle, accelerator="cpu")

    def probs(x: np.ndarray) -> np.ndarray:
        return np.array([clf.predict(img).p_face for img in x])

    return probs(data.val_nonfaces.x), {n: probs(im.x) for n, im in data.evals.items()}


def int8_metrics(
    bundle: Path, data: Prepared, fpr: float, *, detections: dict[str, np.ndarray] | None = None
) -> tuple[float, dict[str, Any]]:
    """Threshold at `fpr` and metrics per set of the int8 bundle; `detections`, when given, is
    filled with each set's bool [N] found-or-not per face (for the paired comparisons)."""
    p_val, p_sets = int8_probs(bundle, data)
    thr = threshold_at_fpr(p_val, fpr)
    out = {}
    for name, images in data.evals.items():
        p = p_sets[name]
        out[name] = set_metrics(
            p, [r.attrs for r in images.rows], thr, group_combos(name), float(np.mean(p_val >= thr))
        )
        if detections is not None:
            detections[name] = p >= thr
    return thr, out


def display_keys(metrics: dict[str, Any], name: str = DISPLAY_SET) -> list[str]:
    finest = [g for g in metrics[name]["groups"] if len(g["attrs"]) == 2]
    return [g["key"] for g in finest]


# Written into each card beside the image count: which images set the int8 ranges.
CALIBRATION = (
    "images of the training draw (seed 0), each under the training augmentation "
    "(seed 1: light, gamma, framing, blur, noise, JPEG); see calibration_images"
)


def calibration_images(
    train_x: np.ndarray,
    n: int = 400,
    *,
    augmented: bool = True,
    kind: str = "camera",
    scenes: np.ndarray | None = None,
    scale_draw: str = "uniform",
) -> np.ndarray:
    """uint8 [N, 64, 64, 3] training images -> float32 [min(n, N), 64, 64, 3] in [0, 1]: the
    images that set the int8 activation ranges and the range equalization.

    They are real training images, shown as training showed them (camera augmentation): on
    clean crops alone the ranges clip what other photos make the network do (12 models of the
    2026-12-03 comparison, 95th percentile of |float - int8 logit|: MIT 0.76 -> 0.25,
    camera-shift 0.42 -> 0.33, UTKFace unchanged; assets/models/README.md). `augmented=False`:
    the same crops as they are (the exporter until 2026-12-03;
    `model_export.diagnostics.int8_fidelity`).
    `kind`: the model's training augmentation ("camera", or one of WILD_AUGMENTS, which lay
    content on `scenes`, the training non-faces)."""
    idx = np.random.default_rng(0).choice(len(train_x), size=min(n, len(train_x)), replace=False)
    if not augmented:
        return train_x[idx].astype(np.float32) / 255.0
    from model_export.augment_wild import WILD_AUGMENTS, augment_wild, wild_config

    if kind in WILD_AUGMENTS:  # tight crops on scenes
        return augment_wild(
            train_x[idx],
            np.random.default_rng(1),
            train_x if scenes is None else scenes,
            wild_config(scale_draw),
        )
    return augment(train_x[idx], np.random.default_rng(1))


def export_model(
    method: str,
    model: Any,
    data: Prepared,
    *,
    out: Path,
    train_log: list[dict[str, Any]],
    train_settings: dict[str, Any],
    fpr: float,
    latent_stats: Any = None,
    views: Views = CROP_ALONE,
) -> Path:
    from model_export.export import export_bundle
    from model_export.fold import INT8_GRAPH, int8_serving

    thr_f, m_float = float_metrics(model, data, fpr, views)
    kind = str(train_settings.get("augment", "camera"))
    scale_draw = str(train_settings.get("scale_draw", "uniform"))
    calibration = calibration_images(
        data.train.x, kind=kind, scenes=data.train.x[data.train.y == 0], scale_draw=scale_draw
    )
    fields: dict[str, Any] = {
        "threshold": thr_f,
        **views.card_fields(),
        "method": METHODS[method][2],
        "method_id": method,
        "version": dt.date.today().isoformat(),
        "license": LICENSE,
        "training_data": {**data.counts, "augmentation": augmentation_record(kind, scale_draw)},
        "training": {"settings": train_settings, "log": train_log},
        "metrics": {"float": m_float},
        "thresholds": {"fpr_target": fpr, "float": thr_f, "nonfaces": data.threshold_record()},
        "int8_graph": INT8_GRAPH,
        "int8_calibration": {"images": len(calibration), "source": CALIBRATION},
        "display": {
            "eval_set": data.display_set,
            "group_keys": display_keys(m_float, data.display_set),
        },
    }
    path = export_bundle(
        int8_serving(model, calibration),
        out,
        kind=METHODS[method][0],
        name=METHODS[method][1],
        calibration=calibration,
        card_fields=fields,
        latent_stats=latent_stats,
    )
    # The kiosk runs int8: its threshold and metrics come from the int8 model itself.
    thr_q, m_int8 = int8_metrics(path, data, fpr)
    card = json.loads((path / "card.json").read_text())
    card["threshold"] = thr_q
    card["thresholds"]["int8"] = thr_q
    card["metrics"]["int8"] = m_int8
    tmp = path / "card.json.tmp"
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, path / "card.json")
    return path


# Screen names of a right-hand model whose debiasing the report did not measure as real.
METHOD_NAMES = {"dbvae": "DB-VAE resampling", "balanced": "Balanced resampling"}


def right_name(method: str, holds: bool, name: str) -> str:
    """The right-hand model's name as card and report give it: its debiased name while the
    debiasing targets hold, its method's name otherwise (`name` for a method neither knows)."""
    if not holds:
        return METHOD_NAMES.get(method, name)
    return METHODS[method][1] if method in METHODS else name


def _truthful_labels(card: dict[str, Any], folder: str, report: dict[str, Any]) -> None:
    """With the in-the-wild comparison in the report: the right-hand model is called
    "Debiased" only when the debiasing targets hold (else it is named by its method), and the
    shown set's gap is marked real only when its bootstrap interval excludes zero."""
    wider = report.get("targets", {}).get("wider")
    if not wider:
        return
    shown = (card.get("display") or {}).get("eval_set")
    paired = report.get("paired", {}).get(shown)
    if paired is not None:
        # The model's own best and worst groups, as its panel names them (older reports: the
        # baseline's pair).
        bt = paired["bootstrap"]
        gap = bt.get("own_gap", bt["gap"])["baseline" if folder == "baseline" else "other"]
        card["display"]["gap_real"] = bool(gap["ci95"][0] > 0 or gap["ci95"][1] < 0)
        card["display"]["gap_ci95"] = list(gap["ci95"])
    if folder == "debiased":
        holds = bool(wider["debiased_holds"])
        card["debiased"] = holds
        # A re-shipped card may carry either name from before.
        card["name"] = right_name(str(card.get("method_id", "dbvae")), holds, card["name"])


def ship(run: Path, out: Path, report: dict[str, Any]) -> None:
    """Copy the first seed's bundles to `out`, adding the multi-seed statistics to each card.

    Each group gets `recall_mean` (over all seeds; what the kiosk shows) and `recall_std`, and
    the card a `seed_statistics` block: on 15 faces per group one model's own recall is mostly
    the luck of its seed, and the exhibit is about the method. The model's own numbers stay in
    `recall`.
    """
    import shutil

    agg = report["aggregate"]
    for folder in BUNDLE_FOLDERS:
        tmp = out / f".{folder}.shipping"
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(run / folder, tmp)
        card = json.loads((tmp / "card.json").read_text())
        # The report re-evaluated this very bundle (and its checkpoint) on the current evaluation
        # sets: the card carries those numbers, so card and report always agree.
        first = report["per_run"][0][folder]
        for variant in ("float", "int8"):
            if variant in first:
                card["metrics"][variant] = copy.deepcopy(first[variant])
        # ... and at the thresholds it measured them at, set on the report's non-faces; float
        # numbers it could not measure again (no checkpoint) at another set's threshold go.
        was = card.get("thresholds", {}).get("nonfaces", {}).get("set", "objects")
        if "float" not in first and was != report["threshold_nonfaces"]["set"]:
            card["metrics"].pop("float", None)
            card.get("thresholds", {}).pop("float", None)
        card["thresholds"] = {
            **card.get("thresholds", {}),
            **first.get("thresholds", {}),
            "nonfaces": report["threshold_nonfaces"],
        }
        card["threshold"] = card["thresholds"]["int8"]
        for set_name, m in card["metrics"]["int8"].items():
            groups = agg[folder]["int8"].get(set_name, {}).get("groups", {})
            for g in m["groups"]:
                if (over_seeds := groups.get(g["key"])) is not None:
                    g["recall_std"] = over_seeds["std"]
                    g["recall_mean"] = over_seeds["mean"]
        card["seed_statistics"] = {
            "seeds": len(report["runs"]),
            "int8": {
                name: {k: v for k, v in s.items() if k != "groups"}
                for name, s in agg[folder]["int8"].items()
            },
            "targets": report["targets"],
        }
        # Replaces any older status: the card says what this report measured, met or not.
        card["status"] = report["status"]
        _truthful_labels(card, folder, report)
        (tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        final = out / folder
        old = out / f".{folder}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
