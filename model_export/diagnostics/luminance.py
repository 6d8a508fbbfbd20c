"""Answered: is an out-of-distribution gap about brightness? (No: assets/models/README.md.)

Recall per group with every test photo's luminance equalized, next to the photos as they are:

    python -m model_export.diagnostics.luminance --data DIR --runs WORK/runs/s0 WORK/runs/s1 ...

For each run's two bundles (int8, each at its card's threshold) prints the mean over runs of
each group's recall on the set as it is (`orig`) and after a per-photo gamma that brings the
centre of every face to the set's mean luminance (`equalized`). A diagnostic for the models
README, not a step of `all`: the shipped evaluation is never altered.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from installation.paths import BUNDLE_FOLDERS

logger = logging.getLogger(__name__)

# The face's centre, not the whole crop: backgrounds differ more than faces do.
CENTRE = slice(16, 48)
# Luma weights of ITU-R BT.601 (R, G, B), as OpenCV's RGB2GRAY uses.
LUMA = np.array([0.299, 0.587, 0.114])


def centre_luminance(x: np.ndarray) -> np.ndarray:
    """Mean luma (BT.601) of the centre 32x32 of each RGB uint8 image [N, 64, 64, 3], in 0-1."""
    c = x[:, CENTRE, CENTRE, :].astype(np.float64) / 255.0
    return np.asarray((c @ LUMA).mean(axis=(1, 2)))


def equalize_luminance(x: np.ndarray, target: float | None = None) -> np.ndarray:
    """Per-image gamma so that each image's centre luminance is about `target` (default: the
    set's mean). Monotone per pixel, so the picture is the same, only brighter or darker."""
    lum = np.clip(centre_luminance(x), 1e-3, 1 - 1e-3)  # [N]
    t = float(lum.mean()) if target is None else target
    gamma = np.log(t) / np.log(lum)  # lum ** gamma == t (exactly so for a flat centre)
    y = (x.astype(np.float64) / 255.0) ** gamma[:, None, None, None]
    return np.asarray(np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    from installation.inference import load_classifier
    from model_export.data import load_images, read_labels
    from model_export.evaluate import set_metrics
    from model_export.sets import EVAL_SETS

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="faces64 folder")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="folders with both bundles")
    p.add_argument(
        "--set", default="mit6s191", choices=("mit6s191", "utkface"), help="a folder of eval/"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = [r for r in read_labels(args.data) if r.path.startswith(f"eval/{args.set}/")]
    images = load_images(args.data, rows)
    cols = EVAL_SETS[args.set][1]
    attrs = [r.attrs for r in images.rows]
    variants = {"orig": images.x, "equalized": equalize_luminance(images.x)}
    found: dict[tuple[str, str, str], list[float]] = {}
    for run in args.runs:
        for folder in BUNDLE_FOLDERS:
            clf = load_classifier(run / folder, accelerator="cpu")
            for tag, x in variants.items():
                probs = np.array([clf.predict(img).p_face for img in x])
                # The finest groups only, as the report's per-group table.
                for g in set_metrics(probs, attrs, clf.card.threshold, [cols])["groups"]:
                    found.setdefault((folder, g["label"], tag), []).append(g["recall"])
    for (folder, k, tag), vals in sorted(found.items()):
        print(f"{folder:9s} {k:24s} {tag:9s} {np.mean(vals):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
