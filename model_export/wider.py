"""The `wider-demog` evaluation set: in-the-wild faces at the kiosk's framing.

`wider-demog` (see its README) holds 128x128 crops of WIDER FACE validation faces with the face's
longer side at half the crop side (face fraction f = 0.5), labelled with perceived Fitzpatrick
skin type (I-VI), skin group (Lighter I-III / Darker IV-VI) and gender. A 64x64 model input at
any fraction f >= 0.5 is a centred square of side round(128 * 0.5 / f) resized with INTER_AREA,
exactly the README's recipe; smaller fractions would need context the crops do not have.

The kiosk's own range of fractions comes from its geometry (`kiosk_fractions`): the default guide
square (256 px of a 640 px wide frame) and a typical webcam (70 degrees horizontal field of view)
with a face box of 0.20 m at 0.5-1.5 m from the camera.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model_export.data import DataError, Images, Row, check_unique

logger = logging.getLogger(__name__)

NATIVE_FRACTION = 0.5  # face side / crop side of every 128x128 crop
CROP_SIDE = 128
FRACTIONS = (0.5, 0.7, 0.9)  # the fixed fractions; 1.0 = studio-tight
STUDIO_FRACTION = 1.0
# Group columns a caller may ask for; `skin_group` x `gender` is the finest (MIT lab split).
GROUP_COLUMNS = ("skin_group", "gender", "skin", "age")
ATTRS = ("skin_group", "gender")
REQUIRED = ("path", "skin", "skin_group", "gender")
# Values each group column may take (the README's tables); anything else is a labelling error.
VALUES = {
    "skin": ("I", "II", "III", "IV", "V", "VI"),
    "skin_group": ("Lighter", "Darker"),
    "gender": ("Female", "Male"),
}

# Kiosk geometry (README "Evaluation at kiosk conditions"): the face box (chin to hairline, the
# WIDER annotation's longer side) of an adult is about 0.20 m; a typical USB webcam (Logitech
# C920 class) sees 70 degrees horizontally at 640 px; the default guide square is 256 px
# (installation.region: largest square in a 0.4 x 0.6 box of 640 x 480).
FACE_SIDE_M = 0.20
HFOV_DEG = 70.0
FRAME_W_PX = 640
GUIDE_SIDE_PX = 256
DISTANCES_M = (0.5, 1.5)


def fraction_at(distance_m: float) -> float:
    """Face fraction in the guide square for a visitor `distance_m` from the camera."""
    frame_width_m = 2 * distance_m * math.tan(math.radians(HFOV_DEG / 2))
    face_px = FACE_SIDE_M / frame_width_m * FRAME_W_PX
    return face_px / GUIDE_SIDE_PX


def kiosk_fractions() -> tuple[float, float]:
    """(smallest, largest) face fraction over DISTANCES_M: about (0.24, 0.71)."""
    far, near = DISTANCES_M[1], DISTANCES_M[0]
    return fraction_at(far), fraction_at(near)


def kiosk_eval_range() -> tuple[float, float]:
    """The part of the kiosk's range that the crops can give (f >= 0.5): about 0.50-0.71,
    visitors 0.50-0.71 m from the camera. Farther visitors (f < 0.5) are not measurable here."""
    lo, hi = kiosk_fractions()
    return max(lo, NATIVE_FRACTION), hi


@dataclass(frozen=True)
class WiderFaces:
    """The 128x128 crops, uint8 RGB [N, 128, 128, 3], with their rows (attrs: skin, skin_group,
    gender, age)."""

    root: Path
    x128: np.ndarray
    rows: list[Row]

    def at_fraction(self, f: float) -> Images:
        """64x64 inputs at face fraction `f` (>= 0.5), uint8 RGB [N, 64, 64, 3]."""
        return Images(np.stack([crop64(img, f) for img in self.x128]), self.rows)

    def at_fractions(self, fractions: np.ndarray) -> Images:
        """One fraction per face (`fractions` [N])."""
        if len(fractions) != len(self.x128):
            raise ValueError(f"need {len(self.x128)} fractions, got {len(fractions)}")
        x = np.stack([crop64(img, float(f)) for img, f in zip(self.x128, fractions, strict=True)])
        return Images(x, self.rows)

    def subset(self, mask: np.ndarray) -> WiderFaces:
        """The faces where `mask` (bool [N]) is True."""
        return WiderFaces(
            self.root, self.x128[mask], [r for r, m in zip(self.rows, mask, strict=True) if m]
        )

    def kiosk(self, seed: int = 6194) -> Images:
        """Each face at a distance drawn uniformly from the measurable part of the kiosk's range
        (deterministic for a seed): the visitor population the exhibit's comparison rests on."""
        lo, hi = kiosk_eval_range()
        # Uniform in distance, not in fraction: visitors stand anywhere in the measurable band.
        d_lo, d_hi = distance_at(hi), distance_at(lo)
        d = np.random.default_rng(seed).uniform(d_lo, d_hi, size=len(self.x128))
        return self.at_fractions(np.array([fraction_at(v) for v in d]))


# Faces added to training (`--wider-train`): tight, as faces64's portraits are, so the wild
# augmentation reframes them exactly as it reframes those (0.35-1.25 of the crop side).
ADDED_FRACTION = 1.0


@dataclass(frozen=True)
class Split:
    """The trained half's faces as training crops (uint8 RGB [N_t, 64, 64, 3], with their rows,
    and the 128x128 crops they were cut from, [N_t, 128, 128, 3]) and the mask of the other
    half's faces (bool [N]), the only ones measured then."""

    added: np.ndarray
    added_rows: list[Row]
    held_out: np.ndarray
    added128: np.ndarray


# The two halves of wider-demog's photos (`photo_halves`): either can be trained on, the other
# is then measured (`--wider-train-half`; the shipped models train on A and are measured on B).
HALVES = ("A", "B")


def other_half(half: str) -> str:
    """The half measured when `half` is trained on."""
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r}: use one of {', '.join(HALVES)}")
    return HALVES[1 - HALVES.index(half)]


# Seed of `share`'s draw of a half's photos: the same photos on every run and machine.
SHARE_SEED = 6197


def check_share(share: float) -> None:
    if not (math.isfinite(share) and 0 < share <= 1):
        raise DataError(
            f"--wider-train-share {share}: the share of the half's photos to train on must be "
            "above 0 and at most 1, e.g. 0.5"
        )


def split_wider(faces: WiderFaces, half: str = "A", share: float = 1.0) -> Split:
    """One half of the photos for training (A by default), the other held out: by source photo
    (`photo_halves`, the split of every re-check), so no photo gives faces to both sides.
    `share` < 1 trains on that share of the half's photos only (a seeded draw of photos, not
    of faces); the held-out faces are the other half's either way, so runs with different
    shares are measured on the same faces."""
    from model_export.paired import photo_halves

    other_half(half)  # checks the name
    check_share(share)
    sources = [r.source for r in faces.rows]
    half_a = photo_halves(sources)
    half_mask = half_a if half == "A" else ~half_a
    train = half_mask.copy()
    if share < 1:
        photos = sorted({s for s, t in zip(sources, half_mask, strict=True) if t})
        rng = np.random.default_rng(SHARE_SEED)
        keep = set(rng.choice(photos, max(1, round(share * len(photos))), replace=False).tolist())
        train &= np.array([s in keep for s in sources])
    added = np.stack([crop64(img, ADDED_FRACTION) for img in faces.x128[train]])
    rows = [r for r, a in zip(faces.rows, train, strict=True) if a]
    return Split(added, rows, ~half_mask, faces.x128[train])


def distance_at(fraction: float) -> float:
    """Inverse of `fraction_at`."""
    return fraction_at(1.0) / fraction


def check_fraction(f: float) -> None:
    if not math.isfinite(f) or f < NATIVE_FRACTION or f > 2.0:
        raise DataError(
            f"face fraction {f}: wider-demog crops hold the face at {NATIVE_FRACTION} of the side, "
            f"so only fractions from {NATIVE_FRACTION} to 2.0 can be cut from them; pass e.g. "
            "--wider-fractions 0.5 0.7 0.9"
        )


def crop64(img128: np.ndarray, f: float) -> np.ndarray:
    """uint8 [128, 128, 3] at fraction 0.5 -> uint8 [64, 64, 3] at fraction `f` (README)."""
    check_fraction(f)
    s = round(CROP_SIDE * NATIVE_FRACTION / f)
    o = (CROP_SIDE - s) // 2
    out: np.ndarray = cv2.resize(
        img128[o : o + s, o : o + s], (64, 64), interpolation=cv2.INTER_AREA
    )
    return out


def load_wider(root: Path, group_columns: tuple[str, ...] = ATTRS) -> WiderFaces:
    """Read `root/labels.csv` and decode every crop; a missing file, a missing column or an
    unknown group column is a DataError that names the fix. Unreadable crops are skipped and
    counted (logged), never silently."""
    labels = root / "labels.csv"
    if not labels.is_file():
        raise DataError(
            f"{labels}: not found; --wider must point at a wider-demog folder (labels.csv and "
            "the 128x128 crops), e.g. ../shared/datasets/wider-demog"
        )
    unknown = [c for c in group_columns if c not in GROUP_COLUMNS]
    if unknown:
        raise DataError(
            f"unknown wider-demog group column(s) {unknown}; use one of {', '.join(GROUP_COLUMNS)}"
        )
    with labels.open(newline="", encoding="utf-8-sig") as fh:  # a BOM is not a column name
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in dict.fromkeys((*REQUIRED, *group_columns)) if c not in header]
        if missing:
            raise DataError(
                f"{labels}: missing column(s) {missing}; a wider-demog labels.csv has "
                f"{', '.join(REQUIRED)} (see its README)"
            )
        records = list(reader)
    if not records:
        raise DataError(f"{labels}: no rows; is this the wider-demog folder?")
    lines: dict[str, int] = {}
    for line, rec in enumerate(records, start=2):  # before minutes of decoding
        check_unique(labels, rec["path"], line, lines)
    x = np.empty((len(records), CROP_SIDE, CROP_SIDE, 3), np.uint8)
    rows: list[Row] = []
    skipped: list[str] = []
    for line, rec in enumerate(records, start=2):
        for col, allowed in VALUES.items():
            if rec.get(col) not in allowed:
                raise DataError(
                    f"{labels}:{line}: {col} = {rec.get(col)!r} is not one of "
                    f"{', '.join(allowed)}; fix or drop that row (wider-demog README, labels.csv)"
                )
        img = cv2.imread(str(root / rec["path"]), cv2.IMREAD_COLOR)
        if img is None or img.shape != (CROP_SIDE, CROP_SIDE, 3):
            skipped.append(rec["path"])
            continue
        x[len(rows)] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        attrs = {c: rec[c] for c in GROUP_COLUMNS if rec.get(c)}
        rows.append(Row(rec["path"], True, "eval", attrs, rec.get("image") or rec["path"]))
    if skipped:
        logger.warning(
            "%s: %d unreadable or non-128x128 crops skipped (first: %s)",
            root,
            len(skipped),
            skipped[0],
        )
    if not rows:
        raise DataError(f"{root}: none of the {len(records)} crops in labels.csv could be read")
    return WiderFaces(root, x[: len(rows)], rows)
