"""Tiny real int8 bundles for the tests: `python -m tests.tiny_bundles tests/data/bundles`.

Two small Keras CNNs learn a synthetic task (a bright face-like disc with two dark "eyes" vs.
textured background) for a few hundred steps and go through the real exporter. The checked-in
results live in tests/data/bundles/; their card metrics are measured on the synthetic set and
labelled as such, so the kiosk has real numbers and bars to draw.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from installation.inference.card import ModelKind
from installation.logits import sigmoid

logger = logging.getLogger(__name__)

GROUPS = (("A", "Group A"), ("B", "Group B"), ("C", "Group C"), ("D", "Group D"))


def synthetic_set(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images [n, 64, 64, 3] float32 in [0, 1], labels [n] (1 = face), group index [n].

    Groups differ in the disc's brightness, so a model can be measurably worse on one.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    images = rng.uniform(0.0, 0.45, size=(n, 64, 64, 3)).astype(np.float32)
    labels = (np.arange(n) % 2 == 0).astype(np.float32)
    groups = rng.integers(0, len(GROUPS), size=n)
    for i in range(n):
        if labels[i]:
            cx, cy = rng.uniform(24, 40, size=2)
            r = rng.uniform(14, 22)
            tone = 0.95 - 0.15 * groups[i] + rng.uniform(-0.03, 0.03)
            disc = (xx - cx) ** 2 + ((yy - cy) * 0.85) ** 2 < r**2
            images[i][disc] = np.array([tone, tone * 0.85, tone * 0.75], dtype=np.float32)
            for ex in (-r / 2.5, r / 2.5):
                eye = (xx - cx - ex) ** 2 + (yy - cy + r / 4) ** 2 < (r / 7) ** 2
                images[i][eye] = 0.05
        else:
            x0, y0 = rng.integers(0, 40, size=2)
            images[i, y0 : y0 + 24, x0 : x0 + 24] = rng.uniform(0.3, 1.0, size=3)
    return np.clip(images, 0, 1), labels, groups


def tiny_model(latent_dim: int | None, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 5, strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    logit = keras.layers.Dense(1, name="face_logit")(x)
    if latent_dim is None:
        return keras.Model(inp, logit)
    latent = keras.layers.Dense(latent_dim, name="latent_mean")(x)
    return keras.Model(inp, [logit, latent])


def _metrics(p: np.ndarray, labels: np.ndarray, groups: np.ndarray, thr: float) -> dict[str, Any]:
    faces = labels == 1
    detected = p >= thr
    rows = []
    for g, (key, label) in enumerate(GROUPS):
        m = faces & (groups == g)
        rows.append(
            {
                "key": f"group={key}",
                "label": label,
                "attrs": {"group": key},
                "recall": round(float(detected[m].mean()), 4),
                "mean_p": round(float(p[m].mean()), 4),
                "count": int(m.sum()),
            }
        )
    recalls = [float(detected[faces & (groups == g)].mean()) for g in range(len(GROUPS))]
    worst = rows[int(np.argmin(recalls))]
    return {
        "recall": round(float(detected[faces].mean()), 4),
        "fpr": round(float(detected[~faces].mean()), 4),
        "count": int(faces.sum()),
        "groups": rows,
        "worst_group": worst["key"],
        "gap": round(max(recalls) - min(recalls), 4),
    }


def make_tiny_bundles(out: Path, steps: int = 300, seed: int = 6191) -> list[Path]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from model_export.export import export_bundle
    from model_export.latent_stats import compute_latent_stats

    x, y, _ = synthetic_set(512, seed)
    xe, ye, ge = synthetic_set(256, seed + 1)
    made = []
    models: tuple[tuple[ModelKind, int | None], ...] = (("baseline", None), ("dbvae", 8))
    for kind, latent_dim in models:
        # Another seed for the second model, so the two panels show two different models.
        model = tiny_model(latent_dim, seed + (latent_dim is not None))
        logit_model = keras.Model(model.input, model.outputs[0])
        logit_model.compile(
            optimizer=keras.optimizers.Adam(2e-3),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
        )
        logit_model.fit(x, y, batch_size=32, epochs=max(1, steps // 16), verbose=0)
        logits = np.asarray(logit_model.predict(xe, verbose=0)).reshape(-1)
        p = sigmoid(logits)
        thr = 0.5
        metrics = _metrics(p, ye, ge, thr)
        stats = None
        if latent_dim:
            lat = np.asarray(model.predict(x[y == 1], verbose=0)[1])
            stats = compute_latent_stats(lat, bins=10, alpha=0.001)
        card_fields = {
            "threshold": thr,
            "version": "tiny-1",
            "method": "Tiny synthetic test model (not a face model)",
            "license": "Apache-2.0 (synthetic test data)",
            "training_data": {
                "synthetic": True,
                "note": "bright discs with two dark dots vs. textured patches; not faces",
                "faces": int(y.sum()),
                "nonfaces": int((1 - y).sum()),
            },
            # int8 metrics are measured on the exported model below (_measure_int8).
            "metrics": {"float": {"synthetic": metrics}},
            "display": {"eval_set": "synthetic", "group_keys": [f"group={k}" for k, _ in GROUPS]},
        }
        name = "Tiny baseline" if kind == "baseline" else "Tiny DB-VAE"
        path = export_bundle(
            model,
            out / f"tiny_{kind}",
            kind=kind,
            name=name,
            calibration=x[:200],
            card_fields=card_fields,
            latent_stats=stats,
        )
        _measure_int8(path, xe, ye, ge, thr)
        made.append(path)
    return made


def _measure_int8(bundle: Path, x: np.ndarray, y: np.ndarray, g: np.ndarray, thr: float) -> None:
    """Replace the card's int8 metrics with the exported model's own, run by the kiosk runtime."""
    from installation.inference import load_classifier

    clf = load_classifier(bundle, accelerator="cpu")
    # Same uint8 pixels the kiosk feeds: [64, 64, 3] RGB per image.
    p = np.array([clf.predict(np.round(img * 255).astype(np.uint8)).p_face for img in x])
    card = json.loads((bundle / "card.json").read_text(encoding="utf-8"))
    card["metrics"]["int8"] = {"synthetic": _metrics(p, y, g, thr)}
    tmp = bundle / "card.json.tmp"
    tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, bundle / "card.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="folder for tiny_baseline/ and tiny_dbvae/")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    for path in make_tiny_bundles(args.out, steps=args.steps):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
