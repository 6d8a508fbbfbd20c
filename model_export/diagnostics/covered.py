"""Asked: do the models take a person's surroundings for a face? (assets/models/README.md,
"Diagnostic of 2026-12-06 (night), step two".)

Each of half B's in-the-wild crops (photos no model trained on) at face fraction 0.5, with the
face covered: the centre half of the crop, where the face is, replaced by a validation non-face
(a Caltech object, as the training's `wild-people` non-faces are made) or by a flat patch of
the crop's own mean colour. What is left is a real person's hair, shoulders, clothes, the
people beside them and the room, and no face. Every bundle is scored as the kiosk scores it
(int8, the card's threshold, set at 2 % on the validation non-faces); a model that fires on
many more than 2 % of these uses the surroundings as a cue for "face". Also scored: each crop's
four corners (32x32 of the 128x128 crop, outside the face box, enlarged to 64x64), real
surroundings at the scale of scikit-image's LFW background patches; but in crowded photos many
corners hold other people's faces or parts of them (assets/models/README.md, "Diagnostic of
2026-12-07 (late)"), so their share is an upper bound on false alarms, not a false-positive rate:

    python -m model_export.diagnostics.covered --data DIR --wider DIR --bundles DIR [DIR ...]

(each DIR holds `baseline/` and `debiased/`). Prints, per bundle, the share of covered crops and
of corners it calls a face (Wilson 95 %) and its recall on the same crops uncovered. A
diagnostic for the models README, not a step of `all`: no shipped bundle depends on it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from installation.paths import BUNDLE_FOLDERS
from model_export.augment_wild import place
from model_export.fairstats import wilson

logger = logging.getLogger(__name__)

FRACTION = 0.5  # the face is the centre half of the crop's side


def covered(crops: np.ndarray, covers: np.ndarray | None) -> np.ndarray:
    """uint8 [N, 64, 64, 3] crops (face at FRACTION, centred) -> the same with the face covered:
    by `covers` (uint8 [M, 64, 64, 3], crop i gets cover i mod M, laid as the training lays
    content, soft edge included), or with None by a flat patch of each crop's mean colour."""
    out = np.empty_like(crops)
    for i, crop in enumerate(crops):
        if covers is None:
            cover = np.broadcast_to(crop.mean(axis=(0, 1)).astype(np.uint8), crop.shape)
        else:
            cover = covers[i % len(covers)]
        out[i] = place(np.ascontiguousarray(cover), crop, FRACTION, (0.0, 0.0))
    return out


CORNER = 32  # px of the 128x128 crop: the face box is its centre half, [32, 96)


def corners(x128: np.ndarray) -> np.ndarray:
    """uint8 [N, 128, 128, 3] wider-demog crops -> uint8 [4N, 64, 64, 3]: each crop's four
    CORNER x CORNER corners (top-left, top-right, bottom-left, bottom-right), outside the face
    box, enlarged to the model's input with INTER_AREA, as the kiosk resizes its crop
    (installation.region)."""
    import cv2

    side = x128.shape[1]
    at = (0, side - CORNER)
    out = [
        cv2.resize(img[y : y + CORNER, x : x + CORNER], (64, 64), interpolation=cv2.INTER_AREA)
        for img in x128
        for y in at
        for x in at
    ]
    return np.stack(out) if out else np.empty((0, 64, 64, 3), np.uint8)


def main(argv: list[str] | None = None) -> int:
    from installation.inference import load_classifier
    from model_export.recipe import load_recipe
    from model_export.sets import prepare
    from model_export.wider import crop64

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="faces64 folder")
    p.add_argument("--wider", type=Path, required=True, help="wider-demog folder")
    p.add_argument("--bundles", type=Path, nargs="+", required=True, help="folders of bundles")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    data = prepare(args.data, load_recipe(), with_train=False, wider=args.wider, wider_train=True)
    assert data.wider is not None  # half B only (prepare's split with wider_train)
    crops = np.stack([crop64(img, FRACTION) for img in data.wider.x128])
    views = {
        "face": crops,
        "object": covered(crops, data.val_nonfaces.x),
        "flat": covered(crops, None),
        "corner": corners(data.wider.x128),
    }
    results: dict[str, Any] = {"faces": len(crops), "bundles": {}}
    for folder in args.bundles:
        for side in BUNDLE_FOLDERS:
            clf = load_classifier(folder / side, accelerator="cpu")
            row: dict[str, Any] = {"name": clf.card.name}
            for view, x in views.items():
                k = sum(clf.predict(img).face for img in x)
                lo, hi = wilson(k, len(x))
                row[view] = {"called_face": k, "share": round(k / len(x), 4), "ci95": [lo, hi]}
            results["bundles"][f"{folder}/{side}"] = row
            print(
                f"{folder / side!s:48s} recall {row['face']['share']:.3f}; covered by an "
                f"object: face {row['object']['share']:.3f} [{row['object']['ci95'][0]:.3f}, "
                f"{row['object']['ci95'][1]:.3f}], by a flat patch: {row['flat']['share']:.3f} "
                f"[{row['flat']['ci95'][0]:.3f}, {row['flat']['ci95'][1]:.3f}] ({len(crops)}); "
                f"corners: face {row['corner']['share']:.3f} ({len(views['corner'])})"
            )
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
