"""The data every step works on: the recipe's training draw, the validation non-faces that set
each threshold, and the evaluation sets (faces64's, camera-shift, and wider-demog's in-the-wild
faces at each face fraction), with the names and group columns each set is reported by."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_export.augment import DEFAULT as AUGMENT
from model_export.augment_wild import Context
from model_export.camera_shift import make_camera_shift
from model_export.data import DataError, Images, load_images, read_labels, split_train_val
from model_export.evaluate import all_combinations
from model_export.recipe import Recipe, draw
from model_export.wider import (
    FRACTIONS,
    STUDIO_FRACTION,
    WiderFaces,
    check_fraction,
    load_wider,
    split_wider,
)

logger = logging.getLogger(__name__)

LICENSE = (
    "Non-commercial research and education only: trained on UTKFace-derived images "
    "(Zhang, Song, Qi, CVPR 2017) and Caltech-101 (CC BY 4.0)."
)
EVAL_SETS = {
    # name: (path prefix in labels.csv, attribute columns)
    "mit6s191": ("eval/mit6s191/", ("skin_tone", "gender")),
    "utkface": ("eval/utkface/", ("race", "gender")),
    # Made from eval/utkface by model_export.camera_shift (not a folder in the dataset).
    "camera_shift": ("", ("race", "gender")),
}
# The earlier out-of-distribution sets whose model-export targets the report judges.
OOD_SETS = ("mit6s191", "camera_shift")
DISPLAY_SET = "mit6s191"
# The kiosk shows wider-demog at its own geometry when the evaluation had it (`--wider`).
WIDER_DISPLAY_SET = "wider_kiosk"
# The recipe group of the training faces that `--wider-train` adds (they have no race label).
WIDER_GROUP = "wider-demog"
WIDER_GROUPS: list[tuple[str, ...]] = [
    ("skin_group", "gender"),
    ("skin_group",),
    ("gender",),
    ("skin",),
]


# The non-faces each threshold is set on (`--threshold-nonfaces`): the validation split's
# Caltech crops as they are (every bundle until 2026-12-07), or each of them also once as the
# kiosk's camera would show it.
THRESHOLD_NONFACES = {
    "objects": "the validation non-faces (Caltech-101 crops) as they are",
    "camera": "the validation non-faces (Caltech-101 crops) as they are, and each once more as "
    "a camera shows it (the in-the-wild training augmentation: shrunk or enlarged onto a scene "
    "patch of another validation non-face, light, colour cast, blur, noise, JPEG; seed 6196)",
}
CAMERA_NONFACES_SEED = 6196


def camera_nonfaces(x: np.ndarray, seed: int = CAMERA_NONFACES_SEED) -> np.ndarray:
    """uint8 RGB [N, 64, 64, 3] non-faces -> uint8 [N, 64, 64, 3]: each once under the
    in-the-wild augmentation, on scene patches cut from the same N (never a training image, so
    the threshold set stays held out); deterministic for a seed."""
    from model_export.augment_wild import WILD, augment_wild

    out = augment_wild(x, np.random.default_rng(seed), x, WILD)  # float32 [N, 64, 64, 3]
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def check_threshold_set(which: str) -> None:
    if which not in THRESHOLD_NONFACES:
        raise DataError(
            f"unknown threshold non-faces {which!r}; use one of {', '.join(THRESHOLD_NONFACES)}"
        )


def threshold_nonfaces(val: Images, which: str) -> Images:
    """The images each threshold is set on (THRESHOLD_NONFACES[which])."""
    check_threshold_set(which)
    if which == "objects":
        return val
    return Images(np.concatenate([val.x, camera_nonfaces(val.x)]), val.rows + val.rows, val.skipped)


def balance_groups(train: Images, group_by: str) -> np.ndarray:
    """[N] str: the group each training image is balanced over by `--method balanced`.

    Portraits by the recipe's label (race); the in-the-wild faces that `--wider-train` adds by
    their own labels, skin group x gender ("wider-demog Darker female"), the split the exhibit
    speaks of: lumped as one group, the 246 darker-skinned faces among half A's 1,395 would
    stay as rare in the draw as they are in the photos."""

    def key(attrs: dict[str, str]) -> str:
        g = attrs.get(group_by, "")
        if g != WIDER_GROUP:
            return g
        return f"{WIDER_GROUP} {attrs.get('skin_group', '')} {attrs.get('gender', '')}"

    return np.array([key(r.attrs) for r in train.rows])


def wider_set_name(fraction: float | None) -> str:
    """wider_f050 for face fraction 0.5, ...; wider_kiosk for the kiosk's own range."""
    return "wider_kiosk" if fraction is None else f"wider_f{round(fraction * 100):03d}"


def group_combos(name: str) -> list[tuple[str, ...]]:
    """Attribute combinations reported for an evaluation set, finest first."""
    if name.startswith("wider_"):
        return WIDER_GROUPS
    return all_combinations(EVAL_SETS[name][1])


@dataclass
class Prepared:
    train: Images
    val_nonfaces: Images
    evals: dict[str, Images]
    recipe: Recipe
    counts: dict[str, Any]
    wider: WiderFaces | None = None  # the 128x128 crops behind the wider_* sets in `evals`
    # With --wider-train: each training image's row of half A's 128x128 crops (-1 for none).
    train_context: Context | None = None
    # Which non-faces `val_nonfaces` holds (a key of THRESHOLD_NONFACES).
    threshold_set: str = "objects"

    def threshold_record(self) -> dict[str, Any]:
        """What the thresholds were set on, for cards and reports."""
        return {
            "set": self.threshold_set,
            "images": len(self.val_nonfaces.rows),
            "what": THRESHOLD_NONFACES[self.threshold_set],
        }

    @property
    def display_set(self) -> str:
        return WIDER_DISPLAY_SET if WIDER_DISPLAY_SET in self.evals else DISPLAY_SET


def check_memory(n_images: int, what: str) -> None:
    """Refuse a draw that cannot fit in RAM: decoded images are uint8 [N, 64, 64, 3] and training
    keeps about 3 copies (the set, a resampled epoch, float batches in flight)."""
    import psutil

    need = n_images * 64 * 64 * 3 * 3
    have = psutil.virtual_memory().available
    if need > have:
        raise DataError(
            f"{what}: {n_images} images need about {need / 2**30:.1f} GiB of RAM, only "
            f"{have / 2**30:.1f} GiB is free; lower the face/non-face counts in the recipe"
        )


def prepare(
    root: Path,
    recipe: Recipe,
    val_fraction: float = 0.1,
    *,
    with_train: bool = True,
    wider: Path | None = None,
    wider_fractions: tuple[float, ...] = (*FRACTIONS, STUDIO_FRACTION),
    wider_train: bool = False,
    wider_train_half: str = "A",
    wider_train_share: float = 1.0,
    lab_sets: bool = True,
    threshold_set: str = "objects",
    nonface_pool: bool = False,
) -> Prepared:
    """Decode the recipe's training draw (skipped for evaluation only), the validation non-faces
    (threshold calibration) and the evaluation sets, and build the camera-shift set; with
    `wider` (a wider-demog folder) also the in-the-wild sets at each of `wider_fractions` and
    at the kiosk's own geometry (model_export.wider). With `wider_train`, half A of wider-demog's
    photos (or `wider_train_half`) joins the training faces and the in-the-wild sets hold the
    other half's faces only (photos no model saw; `split_wider`). Without `lab_sets` the lab's
    evaluation sets and camera-shift are neither decoded nor built (the cross-fit judges the
    in-the-wild faces only: about 1.5 of its 4 s of decoding went to sets it never scored).
    `threshold_set`: which non-faces set the thresholds (THRESHOLD_NONFACES). With
    `nonface_pool` every training non-face the recipe did not draw joins the training images
    too, for `--nonface-draw pool` or `mined` (model_export.mining) to draw from; never a
    validation one."""
    if wider_train and wider is None:
        raise DataError("--wider-train adds half of wider-demog to training: pass --wider too")
    for f in wider_fractions:
        check_fraction(f)
    check_threshold_set(threshold_set)
    rows = read_labels(root)
    train_rows, val_rows = split_train_val(rows, val_fraction)
    drawn = draw(train_rows, recipe) if with_train else []
    check_memory(len(drawn), f"recipe {recipe.name}")
    t0 = time.perf_counter()
    train = load_images(root, drawn)
    if nonface_pool and with_train:
        taken = {r.path for r in drawn}
        rest = load_images(root, [r for r in train_rows if not r.is_face and r.path not in taken])
        train = Images(
            np.concatenate([train.x, rest.x]), train.rows + rest.rows, train.skipped + rest.skipped
        )
    val_nonfaces = load_images(root, [r for r in val_rows if not r.is_face])
    evals = {
        name: load_images(root, [r for r in rows if r.split == "eval" and r.path.startswith(pre)])
        for name, (pre, _) in EVAL_SETS.items()
        if pre and lab_sets
    }
    labels = root / "labels.csv"
    if not val_nonfaces.rows:
        raise DataError(
            f"{labels}: no readable non-faces (is_face=0, split=train) fall into the validation "
            "split, so no threshold can be set; add non-face rows"
        )
    for name, images in evals.items():
        if not images.rows:
            raise DataError(
                f"{labels}: evaluation set {name} is empty (no readable split=eval rows under "
                f"{EVAL_SETS[name][0]}); add them (README 'Training data format')"
            )
    if lab_sets:
        evals["camera_shift"] = make_camera_shift(evals["utkface"], val_nonfaces.x)
    n_val = len(val_nonfaces.rows)  # distinct crops, before any camera copies
    val_nonfaces = threshold_nonfaces(val_nonfaces, threshold_set)
    faces = load_wider(wider) if wider is not None else None
    added: dict[str, Any] | None = None
    context: Context | None = None
    if faces is not None and wider_train:
        split = split_wider(faces, wider_train_half, wider_train_share)
        if with_train:
            n_added = len(split.added)
            which = np.concatenate([np.full(len(train.x), -1), np.arange(n_added)])
            context = Context(which, split.added128)
            train = Images(
                np.concatenate([train.x, split.added]),
                train.rows
                + [
                    dataclasses.replace(r, attrs={**r.attrs, recipe.group_by: WIDER_GROUP})
                    for r in split.added_rows
                ],
                train.skipped,
            )
        by_skin = Counter(r.attrs.get("skin_group", "") for r in split.added_rows)
        added = {
            "half": wider_train_half,
            "share_of_photos": wider_train_share,
            "faces": len(split.added_rows),
            "by_skin_group": dict(by_skin),
        }
        faces = faces.subset(split.held_out)
    if faces is not None:
        for f in wider_fractions:
            evals[wider_set_name(f)] = faces.at_fraction(f)
        evals[wider_set_name(None)] = faces.kiosk()
    logger.info("decoded %d images in %.1f s", len(train.rows), time.perf_counter() - t0)
    faces_by_group: dict[str, int] = {}
    for r in train.rows:
        if r.is_face:
            g = r.attrs.get(recipe.group_by, "unknown")
            faces_by_group[g] = faces_by_group.get(g, 0) + 1
    counts = {
        "recipe": recipe.model_dump(),
        "faces": int(train.y.sum()),
        "nonfaces": int((1 - train.y).sum()),
        # With `nonface_pool`, "nonfaces" is the pool; each epoch trains on the recipe's count.
        "nonface_pool": nonface_pool,
        "faces_by_" + recipe.group_by: faces_by_group,
        "validation_nonfaces": n_val,
        "skipped_unreadable": len(train.skipped) + len(val_nonfaces.skipped),
        "source": "faces64 (UTKFace faces, Caltech-101 non-faces)"
        + (f" + wider-demog half {wider_train_half} (in-the-wild faces)" if added else ""),
        "augmentation": dataclasses.asdict(AUGMENT),
        "license": LICENSE,
    }
    if added is not None:
        # What joined the training faces; the in-the-wild sets then hold the other half only.
        counts["wider_train"] = added
    return Prepared(train, val_nonfaces, evals, recipe, counts, faces, context, threshold_set)
